# Windows in a KVM virtual machine, in a container: dockur/windows
# (https://github.com/dockur/windows), declared the way its README runs it.
#
#   berth plan  --var password=... examples/windows
#   berth apply --var password=... examples/windows
#
# The web console is on port 8006 of the host, RDP on 3389; by default only
# on 127.0.0.1 (set host_ip = "" to listen on every address).

berth {
  stack = "windows"
}

variable "version" {
  type        = string
  default     = "11"
  description = "Windows edition to install: 11, 10, 2022, ... (see dockur/windows)."
}

variable "ram_size" {
  type        = string
  default     = "4G"
  description = "Memory of the virtual machine."
}

variable "cpu_cores" {
  type        = number
  default     = 2
  description = "Virtual CPUs of the virtual machine."
}

variable "disk_size" {
  type        = string
  default     = "64G"
  description = "Size of the virtual machine's disk, created in the storage directory."
}

variable "host_ip" {
  type        = string
  default     = "127.0.0.1"
  description = "Host address the ports listen on; \"\" for every address."
}

variable "storage" {
  type        = string
  default     = "/srv/vms/windows"
  description = "Host directory that holds the VM's disk and the downloaded ISO."
}

variable "username" {
  type      = string
  default   = "Docker"
  sensitive = true
}

variable "password" {
  type        = string
  sensitive   = true
  description = "Password of the Windows account; set it with --var, BERTH_VAR_password or a .berthvars file."
}

pod "windows" {
  hostname = "windows"
  restart  = "always"

  port "web" {
    container = 8006
    host_ip   = var.host_ip
    protocol  = "tcp"
  }
  port "rdp" {
    container = 3389
    host_ip   = var.host_ip
    protocol  = "tcp"
  }
  port "rdp-udp" {
    container = 3389
    host_ip   = var.host_ip
    protocol  = "udp"
  }

  container "windows" {
    image = "docker.io/dockurr/windows:latest"
    env = {
      VERSION   = var.version
      RAM_SIZE  = var.ram_size
      CPU_CORES = tostring(var.cpu_cores)
      DISK_SIZE = var.disk_size
      USERNAME  = var.username
      PASSWORD  = var.password
    }

    # KVM and a tap network for the VM; no privileged mode needed.
    device "/dev/kvm" {}
    device "/dev/net/tun" {}
    capabilities {
      add = ["NET_ADMIN"]
    }

    mount "/storage" {
      host_path = var.storage
      create    = true
    }

    # Windows needs time to shut down cleanly before it is killed.
    stop_timeout = "2m"
  }
}
