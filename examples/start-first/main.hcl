# A web server replaced without downtime: change the page (or the image)
# and apply; the new pod starts beside the old one, and takes its place
# once its readiness probe passes.
#
#   berth apply examples/start-first
#   berth forward examples/start-first &   # 127.0.0.1:8081
#   curl http://127.0.0.1:8080/            # the host port

variable "page" {
  default = "hello, v1"
}

berth { stack = "start-first" }

pod "web" {
  update_order = "start_first"

  port "http" {
    container = 80
    host      = 8080
    host_ip   = "127.0.0.1"
  }
  forward "http" {
    port   = 80
    listen = "127.0.0.1:8081"
  }

  container "httpd" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "trap 'kill $pid; exit 0' TERM; mkdir -p /www && echo \"$PAGE\" > /www/index.html; httpd -f -p 80 -h /www & pid=$!; wait $pid"]
    env          = { PAGE = var.page }
    stop_timeout = "10s"

    probe "readiness" {
      http {
        port = 80
        path = "/"
      }
      interval = "1s"
    }
  }
}
