package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/connloop"
	"github.com/berth-dev/berth/test/servedpod"
)

// slowWeb is the served pod, two seconds from start to serving.
func slowWeb(order, page string, hostPort int, listen string) string {
	return servedpod.Pod{Order: order, Page: page, HostPort: hostPort, Listen: listen, StartDelay: 2 * time.Second}.HCL()
}

// A start-first replace keeps a served pod answering: through a forward
// not one new connection fails, where a stop-first replace of the same
// pod fails them for as long as the new pod takes to start; through the
// host port it leaves at most the runtime's teardown window, and far less
// than stop-first's. The pod that depends on it is not restarted.
func TestStartFirstReplaceWithoutDowntime(t *testing.T) {
	s := newStack(t)
	hostPort, listen := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	const client = `
pod "client" {
  depends_on = ["pod.web"]
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
  }
}`
	config := func(order, page string) string {
		return slowWeb(order, page, hostPort, listen) + client
	}
	s.write(config("start_first", "first"))
	s.apply()
	startForward(t, s.dir, "netns") // until the test ends
	urls := map[string]string{"forward": "http://" + listen + "/", "host port": fmt.Sprintf("http://127.0.0.1:%d/", hostPort)}
	for _, u := range urls {
		if body := getWithRetry(t, u); strings.TrimSpace(body) != "first" {
			t.Fatalf("GET %s = %q", u, body)
		}
	}
	clientPod := s.pods()["client"].Id

	// replace applies the configuration while a client loop runs against
	// each URL, and returns what each saw.
	replace := func(order, page string) map[string]connloop.Result {
		t.Helper()
		ctx, stop := context.WithCancel(context.Background())
		loops, waits := map[string]*connloop.Loop{}, []func(){}
		for name, u := range urls {
			l, wait := connloop.Start(ctx, u, 20*time.Millisecond)
			loops[name], waits = l, append(waits, wait)
		}
		time.Sleep(500 * time.Millisecond)
		s.write(config(order, page))
		r := s.apply()
		for _, want := range []string{"# pod.web must be replaced (start first, then stop the old)", "pod.web: Waiting for the new pod (sandbox "} {
			if (order == "start_first") != strings.Contains(r.stdout, want) {
				t.Errorf("%s: the output (want %q: %v):\n%s", order, want, order == "start_first", r.stdout)
			}
		}
		// Until the new pod answers everywhere, and a while after.
		for _, u := range urls {
			getWithRetry(t, u)
		}
		time.Sleep(500 * time.Millisecond)
		stop()
		out := map[string]connloop.Result{}
		for _, wait := range waits {
			wait()
		}
		for name, l := range loops {
			res := l.Result()
			out[name] = res
			t.Logf("%s, through the %s: %d answered %v, %d failed in %s (first error: %v)", order, name, res.OK, res.Bodies, len(res.Failures), res.Window().Round(time.Millisecond), res.FirstErr)
			if res.Bodies[page] == 0 {
				t.Errorf("%s, through the %s: the new pod never answered", order, name)
			}
		}
		return out
	}

	start := replace("start_first", "second")
	if n := len(start["forward"].Failures); n != 0 {
		t.Errorf("start_first: %d connections through the forward failed, want none", n)
	}
	if got := s.pods()["client"].Id; got != clientPod {
		t.Errorf("pod.client, which depends on pod.web, was replaced by pod.web's start-first replace")
	}
	if n := len(s.pods()); n != 2 {
		t.Errorf("the stack has %d pods after the replace, want 2 (the old pod removed)", n)
	}
	if _, err := os.Stat(servingMarks(s)); !os.IsNotExist(err) {
		t.Errorf("the serving marks stay after the replace: %v", err)
	}

	stopFirst := replace("stop_first", "third")
	for _, name := range []string{"forward", "host port"} {
		if a, b := len(start[name].Failures), len(stopFirst[name].Failures); a >= b {
			t.Errorf("through the %s: start_first failed %d connections, stop_first %d; want fewer", name, a, b)
		}
	}
}

// servingMarks is the directory of the stack's serving marks, beside its
// lock.
func servingMarks(s *stack) string {
	matches, _ := filepath.Glob(filepath.Join(lockDir, s.name+"-*.serving"))
	if len(matches) > 0 {
		return matches[0]
	}
	return filepath.Join(lockDir, s.name+".serving") // none: a path that does not exist
}

// berth watch carries out the same start-first replace when the file
// changes, and its own forward keeps every new connection answered.
func TestWatchStartFirst(t *testing.T) {
	s := newStack(t)
	hostPort, listen := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.write(slowWeb("start_first", "first", hostPort, listen))
	w := s.watch("--resync", "1h")
	w.waitFor(60*time.Second, map[string]string{"msg": "forwarding", "resource": "pod.web.forward.http"})
	if body := getWithRetry(t, "http://"+listen+"/"); strings.TrimSpace(body) != "first" {
		t.Fatalf("through the forward: %q", body)
	}
	ctx, stop := context.WithCancel(context.Background())
	loop, wait := connloop.Start(ctx, "http://"+listen+"/", 20*time.Millisecond)
	saveByRename(t, filepath.Join(s.dir, "main.hcl"), slowWeb("start_first", "second", hostPort, listen))
	w.waitFor(60*time.Second, map[string]string{"msg": "done", "resource": "pod.web", "action": "replace", "detail": "started before"})
	time.Sleep(500 * time.Millisecond)
	stop()
	wait()
	res := loop.Result()
	t.Logf("through the watcher's forward: %d answered %v, %d failed (first error: %v)", res.OK, res.Bodies, len(res.Failures), res.FirstErr)
	if len(res.Failures) != 0 || res.Bodies["second"] == 0 {
		t.Errorf("through the watcher's forward: %d failures, %d answers from the new pod; want none and some", len(res.Failures), res.Bodies["second"])
	}
}
