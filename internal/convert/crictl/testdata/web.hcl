# Imported by `berth import crictl` from pod.yaml, server.yaml, sidecar.json.
# berth restarts exited containers (restart = "always", the default); crictl does not.

pod "web" {
  namespace = "shop"
  hostname  = "web.shop.lan"
  labels = {
    app                         = "web"
    "app.kubernetes.io/part-of" = "shop"
  }
  annotations = {
    "example.com/owner" = "team-web"
  }
  sysctls = {
    "net.ipv4.ip_unprivileged_port_start" = "0"
  }

  dns {
    servers  = ["192.0.2.53"]
    searches = ["shop.lan"]
    options  = ["ndots:2"]
  }

  port "8080" {
    container = 8080
    host      = 18080
  }

  container "server" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sh", "-c"]
    args    = ["exec httpd -f -p 8080 -h $${WEB_ROOT:-/srv}"]
    env = {
      GREETING = "hello \"shop\""
      WEB_ROOT = "/srv"
    }
    working_dir = "/srv"
    user        = "1000:1000"
    stop_signal = "SIGQUIT"
    labels = {
      tier = "front"
    }
    read_only_root    = true
    no_new_privileges = true
    apparmor          = "unconfined"

    capabilities {
      add  = ["NET_BIND_SERVICE"]
      drop = ["ALL"]
    }

    mount "/srv" {
      host_path   = "/var/lib/shop/www"
      read_only   = true
      propagation = "host_to_container"
    }

    resources {
      cpus       = 0.5
      cpu_shares = 512
      cpuset     = "0-1"
      memory     = "256Mi"
      pids       = 128
    }
  }

  container "sidecar" {
    image       = "docker.io/library/busybox:1.36"
    command     = ["sleep", "infinity"]
    user        = "nobody"
    tty         = true
    stdin       = true
    log_path    = "sidecar/0.log"
    seccomp     = "localhost//etc/seccomp/sidecar.json"
    cdi_devices = ["vendor.com/device=one"]
  }
}
