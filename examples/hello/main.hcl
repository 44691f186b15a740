# A busybox web server: the smallest useful berth stack.
#
#   berth plan examples/hello
#   berth apply examples/hello

berth {
  stack = "hello"
}

variable "greeting" {
  type        = string
  default     = "hello from berth"
  description = "What the web server answers."
}

locals {
  web_root = "/tmp/www"
}

pod "web" {
  hostname = "hello"
  labels   = { app = "hello" }

  container "httpd" {
    image = "docker.io/library/busybox:1.36"
    # Write the page, then serve it in the foreground so the runtime
    # sees the server's exit.
    command      = ["sh", "-c", "mkdir -p ${local.web_root} && echo \"$GREETING\" > ${local.web_root}/index.html && exec httpd -f -v -p 80 -h ${local.web_root}"]
    env          = { GREETING = var.greeting }
    stop_timeout = "5s"
  }
}
