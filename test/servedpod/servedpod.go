// Package servedpod writes the served pod that the zero-downtime tests and
// the replace benchmark replace: busybox httpd behind a readiness probe,
// serving a page a while after its container starts (as a real server
// loads before it listens) and stopping at once on SIGTERM (the worst
// case for a drain), reached through a host port on 127.0.0.1 and a
// forward. Its hostname is the page, so every new page replaces the pod.
package servedpod

import (
	"fmt"
	"time"
)

// Pod is one version of the served pod.
type Pod struct {
	Order      string // update_order
	Page       string // what it serves, and its hostname: a DNS label
	HostPort   int
	Listen     string        // the forward's listen address
	StartDelay time.Duration // how long after its start it begins to serve
}

// HCL is the pod block.
func (p Pod) HCL() string {
	return fmt.Sprintf(`
pod "web" {
  hostname     = %q
  update_order = %q
  port "http" {
    container = 80
    host      = %d
    host_ip   = "127.0.0.1"
  }
  forward "http" {
    port   = 80
    listen = %q
  }
  container "httpd" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "trap 'kill $pid; exit 0' TERM; sleep %g; mkdir -p /tmp/www && echo %s > /tmp/www/index.html; httpd -f -p 80 -h /tmp/www & pid=$!; wait $pid"]
    stop_timeout = "5s"
    probe "readiness" {
      http {
        port = 80
        path = "/"
      }
      interval          = "100ms"
      failure_threshold = 100
    }
  }
}
`, p.Page, p.Order, p.HostPort, p.Listen, p.StartDelay.Seconds(), p.Page)
}
