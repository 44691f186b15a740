# macOS in a KVM virtual machine, in a container: dockur/macos
# (https://github.com/dockur/macos), declared the way its README runs it.
#
#   berth plan  examples/macos
#   berth apply examples/macos
#
# The web console is on port 8006 of the host, VNC on 5900; by default only
# on 127.0.0.1 (set host_ip = "" to listen on every address).

berth {
  stack = "macos"
}

variable "version" {
  type        = string
  default     = "13"
  description = "macOS version to install: 15, 14, 13, ... (see dockur/macos)."
}

variable "ram_size" {
  type    = string
  default = "4G"
}

variable "cpu_cores" {
  type    = number
  default = 2
}

variable "disk_size" {
  type    = string
  default = "64G"
}

variable "host_ip" {
  type        = string
  default     = "127.0.0.1"
  description = "Host address the ports listen on; \"\" for every address."
}

variable "storage" {
  type        = string
  default     = "/srv/vms/macos"
  description = "Host directory that holds the VM's disk and the downloaded installer."
}

pod "macos" {
  hostname = "macos"
  restart  = "always"

  port "web" {
    container = 8006
    host_ip   = var.host_ip
    protocol  = "tcp"
  }
  port "vnc" {
    container = 5900
    host_ip   = var.host_ip
    protocol  = "tcp"
  }
  port "vnc-udp" {
    container = 5900
    host_ip   = var.host_ip
    protocol  = "udp"
  }

  container "macos" {
    image = "docker.io/dockurr/macos:latest"
    env = {
      VERSION   = var.version
      RAM_SIZE  = var.ram_size
      CPU_CORES = tostring(var.cpu_cores)
      DISK_SIZE = var.disk_size
    }

    device "/dev/kvm" {}
    device "/dev/net/tun" {}
    capabilities {
      add = ["NET_ADMIN"]
    }

    mount "/storage" {
      host_path = var.storage
      create    = true
    }

    stop_timeout = "2m"
  }
}
