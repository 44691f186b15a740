# Imported by `berth import crictl` from pod.json, agent.json.
# berth restarts exited containers (restart = "always", the default); crictl does not.

pod "node-agent" {
  namespace    = "kube-system"
  host_network = true
  host_pid     = true
  host_ipc     = true
  privileged   = true

  container "agent" {
    image      = "docker.io/library/busybox:1.36"
    args       = ["sh", "-c", "while true; do sleep 60; done"]
    privileged = true

    device "/dev/net/tun" {
      container_path = "/dev/tun0"
      permissions    = "rw"
    }

    mount "/host" {
      host_path   = "/"
      read_only   = true
      propagation = "host_to_container"
    }

    mount "/var/lib/agent" {
      host_path   = "/var/lib/agent"
      propagation = "bidirectional"
    }
  }
}
