package gitsource

import (
	"context"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSyncUnchanged is the cost of a fetch that finds nothing new,
// the watcher's idle case, over file:// (git's server side runs in this
// process) and over smart HTTP (it runs in git http-backend, as a real
// server's would, elsewhere).
func BenchmarkSyncUnchanged(b *testing.B) {
	up := newUpstream(b)
	up.commit(map[string]string{"main.hcl": "pod \"a\" {}\n"})
	for _, tc := range []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"file", func(*testing.B) string { return "file://" + up.dir }},
		{"http", func(b *testing.B) string { return serveHTTP(b, up.dir) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := &Source{URL: tc.url(b), Dir: b.TempDir()}
			if _, err := src.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			before := cpuTime()
			for b.Loop() {
				if _, err := src.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			// This process's CPU, the watcher's share: over HTTP it holds
			// the test's server too, but not git http-backend's.
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serveHTTP serves the repository in dir over smart HTTP with git's own
// http-backend for the benchmark's life.
func serveHTTP(b *testing.B, dir string) string {
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		b.Skip("git is needed for its http-backend:", err)
	}
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(dir), "GIT_HTTP_EXPORT_ALL=1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: backend, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/" + filepath.Base(dir) + "/.git"
}
