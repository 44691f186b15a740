package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
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

	fw := startForward(t, s.dir, via)
	if !strings.Contains(fw.banner, "Forwarding "+listen+" -> pod.web:80 (via "+via+")") {
		t.Fatalf("forward said:\n%s", fw.banner)
	}

	if body := getWithRetry(t, "http://"+listen+"/"); strings.TrimSpace(body) != "first" {
		t.Fatalf("through the forward: %q", body)
	}
	// Connections one after another: over cri, on the streaming
	// connections the first ones left open.
	getEach(t, "http://"+listen+"/", "first", 5)

	// A new hostname replaces the pod: a new network namespace.
	s.write(web("two", "second"))
	s.apply()
	if body := getWithRetry(t, "http://"+listen+"/"); strings.TrimSpace(body) != "second" {
		t.Fatalf("through the forward after the pod was replaced: %q", body)
	}
	getEach(t, "http://"+listen+"/", "second", 5)

	if err := fw.stop(); err != nil {
		t.Fatal(err)
	}
}

// getEach gets url n times, each on a new connection, and wants page.
func getEach(t *testing.T, url, page string, n int) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range n {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s, connection %d: %v", url, i+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || strings.TrimSpace(string(body)) != page {
			t.Fatalf("GET %s, connection %d: %q, %v; want %q", url, i+1, body, err, page)
		}
	}
}

// forwarder is a running berth forward.
type forwarder struct {
	banner string // what it printed once it listened
	stop   func() error
}

// startForward runs berth forward for the configuration in dir until the
// test ends or stop is called, which interrupts it as Ctrl-C does.
func startForward(t *testing.T, dir, via string) forwarder {
	t.Helper()
	cmd := exec.Command(berthBin, "forward", "--via", via, dir)
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
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGINT)
			select {
			case err := <-exited:
				if err != nil {
					stopErr = fmt.Errorf("berth forward after Ctrl-C: %w", err)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
				stopErr = fmt.Errorf("berth forward did not stop on Ctrl-C")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { stop() })
	select {
	case out := <-ready:
		return forwarder{banner: out, stop: stop}
	case <-time.After(20 * time.Second):
		t.Fatal("berth forward did not start")
	}
	return forwarder{}
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
