package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// berth forward relays connections into the pod, by either path, and
// follows the pod when it is replaced.
func TestForward(t *testing.T) {
	for _, via := range []string{"netns", "cri"} {
		t.Run(via, func(t *testing.T) { testForward(t, via) })
	}
}

func testForward(t *testing.T, via string) {
	s := newStack(t)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	web := func(hostname, page string) string { return forwardedWeb(hostname, listen, page) }
	s.write(web("one", "first"))
	s.apply()

	cmd := exec.Command(berthBin, "forward", "--via", via, s.dir)
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir, "NO_COLOR=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var out strings.Builder
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "Ctrl-C stops." {
				ready <- out.String()
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case out := <-ready:
		if !strings.Contains(out, "Forwarding "+listen+" -> pod.web:80 (via "+via+")") {
			t.Fatalf("forward said:\n%s", out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("berth forward did not start")
	}

	if body := getWithRetry(t, "http://"+listen+"/"); strings.TrimSpace(body) != "first" {
		t.Fatalf("through the forward: %q", body)
	}

	// A new hostname replaces the pod: a new network namespace.
	s.write(web("two", "second"))
	s.apply()
	if body := getWithRetry(t, "http://"+listen+"/"); strings.TrimSpace(body) != "second" {
		t.Fatalf("through the forward after the pod was replaced: %q", body)
	}

	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("berth forward after Ctrl-C: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("berth forward did not stop on Ctrl-C")
	}
	exited <- nil // for the cleanup
}

// forwardedWeb is a pod "web" serving page on port 80, forwarded from
// listen; a new hostname replaces the pod.
func forwardedWeb(hostname, listen, page string) string {
	return fmt.Sprintf(`
pod "web" {
  hostname = %q
  forward "http" {
    port   = 80
    listen = %q
  }
  container "httpd" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "mkdir -p /tmp/www && echo %s > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"]
    stop_timeout = "1s"
  }
}`, hostname, listen, page)
}
