# Imported by `berth import crictl` from pod.json, container.json.
# berth restarts exited containers (restart = "always", the default); crictl does not.

berth {
  stack = "windows"
}

pod "windows" {
  hostname   = "windows"
  privileged = true

  port "8006" {
    container = 8006
    host_ip   = "127.0.0.1"
  }

  port "3389" {
    container = 3389
    host_ip   = "127.0.0.1"
  }

  port "3389-udp" {
    container = 3389
    host_ip   = "127.0.0.1"
    protocol  = "udp"
  }

  container "windows" {
    image = "docker.io/dockurr/windows:latest"
    env = {
      CPU_CORES = "2"
      DISK_SIZE = "64G"
      RAM_SIZE  = "4G"
      VERSION   = "11"
    }

    capabilities {
      add = ["NET_ADMIN"]
    }

    device "/dev/kvm" {}

    device "/dev/net/tun" {}

    mount "/storage" {
      host_path = "/srv/vms/windows"
    }
  }
}
