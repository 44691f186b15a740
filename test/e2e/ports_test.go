package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// freePort finds a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A host port answers on 127.0.0.1 through the portmap plugin; removing the
// port block replaces the pod and closes it.
func TestHostPort(t *testing.T) {
	s := newStack(t)
	port := freePort(t)
	web := func(portBlock string) string {
		return fmt.Sprintf(`
pod "web" {
  %s
  container "httpd" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "mkdir -p /tmp/www && echo port-ok > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"]
    stop_timeout = "1s"
  }
}`, portBlock)
	}
	s.write(web(fmt.Sprintf("port \"http\" {\n    container = 80\n    host      = %d\n    host_ip   = \"127.0.0.1\"\n  }", port)))
	r := s.apply()
	if !strings.Contains(r.stdout, fmt.Sprintf(`+ ports.http.host = %d`, port)) {
		t.Errorf("the plan does not show the port:\n%s", r.stdout)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if body := getWithRetry(t, url); strings.TrimSpace(body) != "port-ok" {
		t.Fatalf("GET %s = %q", url, body)
	}

	s.write(web(""))
	r = s.apply()
	if !strings.Contains(r.stdout, "# pod.web must be replaced") || !strings.Contains(r.stdout, "- ports.http.host") {
		t.Fatalf("removing the port: %s", r)
	}
	client := &http.Client{Timeout: time.Second}
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s still answers after the port block is gone", url)
	}
}
