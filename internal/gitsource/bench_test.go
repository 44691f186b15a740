package gitsource

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
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
			// This process's CPU, the watcher's share; over HTTP the
			// server runs in another process.
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
// http-backend, from a child process (this test binary again), so that
// the CPU this process spends is the client's alone.
func serveHTTP(b *testing.B, dir string) string {
	if _, err := backendPath(); err != nil {
		b.Skip("git is needed for its http-backend:", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the child serves until its stdin closes
		cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal("the HTTP server did not start:", err)
	}
	return "http://" + strings.TrimSpace(addr) + "/" + filepath.Base(dir) + "/.git"
}

// serveEnv, set to a repository's directory, makes this test binary its
// HTTP server (see TestMain).
const serveEnv = "GITSOURCE_TEST_SERVE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(serveEnv); dir != "" {
		serve(dir)
		return
	}
	os.Exit(m.Run())
}

// serve serves dir's repository on a loopback port, prints the address,
// and returns when stdin closes.
func serve(dir string) {
	backend, err := backendPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: &cgi.Handler{Path: backend,
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(dir), "GIT_HTTP_EXPORT_ALL=1"}}}
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

func backendPath() (string, error) {
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"), nil
}
