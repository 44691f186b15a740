# Imported by `berth import crictl` from pod.json, app.json.
# berth restarts exited containers (restart = "always", the default); crictl does not.

pod "lossy-pod" {
  hostname = "lossy"
  labels = {
    keep = "yes"
  }
  privileged = true

  container "app" {
    image = "docker.io/library/busybox:1.36"
    env = {
      A = "2"
    }
    privileged = true

    mount "/data" {
      host_path = "/srv/data"
    }

    resources {
      cpus = 3
      pids = 64
    }
  }
}
