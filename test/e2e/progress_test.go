package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// slowRegistry serves the mirror registry through a proxy that sends at
// most rate bytes a second, so a pull lasts long enough to show progress.
func slowRegistry(t *testing.T, upstream string, rate int) string {
	t.Helper()
	target, _ := url.Parse("http://" + upstream)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		r.Body = &throttled{r: r.Body, rate: rate}
		return nil
	}
	return serveProxy(t, proxy)
}

// serveProxy serves a registry proxy on loopback until the test ends, and
// returns its address.
func serveProxy(t *testing.T, proxy *httputil.ReverseProxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type throttled struct {
	r    io.ReadCloser
	rate int
}

func (t *throttled) Read(p []byte) (int, error) {
	chunk := t.rate / 20 // twenty reads a second
	if len(p) > chunk {
		p = p[:chunk]
	}
	n, err := t.r.Read(p)
	time.Sleep(time.Duration(n) * time.Second / time.Duration(t.rate))
	return n, err
}

func (t *throttled) Close() error { return t.r.Close() }

// A pull shows live progress on a terminal, and one line per image when
// the output is not a terminal.
func TestPullProgress(t *testing.T) {
	reg := testRegistries(t)
	// berth/fresh:v1 holds 4 MB of random data that no other image shares,
	// so the pull downloads it all: some 4 s at this rate.
	const rate = 1 << 20

	s := newStack(t)
	live := slowRegistry(t, reg.mirror, rate) + "/berth/fresh:v1"
	t.Cleanup(func() { removeImage(t, live) })
	s.write("image " + quote(live) + " {}\n")
	out := runOnTerminal(t, "", "apply", "--auto-approve", s.dir)
	updates := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "image "+live+": pulling, ") {
			updates[strings.TrimSpace(line)] = true
		}
	}
	if len(updates) < 3 || !strings.Contains(out, "image "+live+": pulled, ") {
		t.Fatalf("%d distinct progress lines on a terminal, want at least 3:\n%s", len(updates), out)
	}

	s2 := newStack(t)
	removeImage(t, live) // so that its blobs are downloaded again
	logged := slowRegistry(t, reg.mirror, rate*4) + "/berth/fresh:v1"
	t.Cleanup(func() { removeImage(t, logged) })
	s2.write("image " + quote(logged) + " {}\n")
	r := s2.apply()
	if strings.Contains(r.stdout, ": pulling, ") || strings.Count(r.stdout, "image "+logged+": pulled, ") != 1 {
		t.Fatalf("without a terminal, want exactly one line for the pull:\n%s", r.stdout)
	}
}

func quote(s string) string { return `"` + s + `"` }

// removeImage removes an image, and so its blobs, from the runtime. Only
// for images that share no ID with others (here: random content).
func removeImage(t *testing.T, ref string) {
	if _, err := images.RemoveImage(context.Background(), &cri.RemoveImageRequest{Image: &cri.ImageSpec{Image: ref}}); err != nil {
		t.Logf("remove %s: %v", ref, err)
	}
}
