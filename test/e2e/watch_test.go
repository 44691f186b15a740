package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// watcher is a running `berth watch` whose JSON log lines the test reads.
type watcher struct {
	t   *testing.T
	cmd *exec.Cmd

	mu    sync.Mutex
	lines []map[string]any
	raw   strings.Builder
	more  chan struct{} // closed and replaced on every new line
	ended chan struct{}

	stopOnce sync.Once
}

// watch starts berth watch on the stack's directory. It is stopped with
// SIGTERM when the test ends, before the stack is destroyed, and must then
// exit 0 having left the workloads running.
func (s *stack) watch(args ...string) *watcher {
	s.t.Helper()
	args = append([]string{"watch", "--log-format", "json", "--debounce", "200ms"}, args...)
	if !slices.Contains(args, "--git") { // a git source instead of the directory
		args = append(args, s.dir)
	}
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir, "NO_COLOR=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	w := &watcher{t: s.t, cmd: cmd, more: make(chan struct{}), ended: make(chan struct{})}
	go w.read(stderr)
	s.t.Cleanup(w.stop)
	return w
}

// stop sends SIGTERM and checks that berth watch ends cleanly, saying so.
// It may be called more than once.
func (w *watcher) stop() {
	w.stopOnce.Do(func() {
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.ended:
		case <-time.After(30 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.ended
			w.t.Error("berth watch did not stop on SIGTERM")
		}
		if err := w.cmd.Wait(); err != nil {
			w.t.Errorf("berth watch ended with %v; its log:\n%s", err, w.log())
		}
		if !w.seen(map[string]string{"msg": "stopped; workloads keep running"}) {
			w.t.Errorf("berth watch did not say it stopped; its log:\n%s", w.log())
		}
	})
}

func (w *watcher) read(r io.Reader) {
	defer close(w.ended)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		_ = json.Unmarshal(sc.Bytes(), &line)
		w.mu.Lock()
		w.raw.WriteString(sc.Text() + "\n")
		if line != nil {
			w.lines = append(w.lines, line)
		}
		close(w.more)
		w.more = make(chan struct{})
		w.mu.Unlock()
	}
}

func (w *watcher) log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.raw.String()
}

// matches reports whether a log line has every key with a value that
// contains the wanted text.
func matches(line map[string]any, want map[string]string) bool {
	for k, v := range want {
		got, ok := line[k]
		if !ok || !strings.Contains(fmt.Sprint(got), v) {
			return false
		}
	}
	return true
}

// count is the number of log lines so far that match want.
func (w *watcher) count(want map[string]string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, l := range w.lines {
		if matches(l, want) {
			n++
		}
	}
	return n
}

func (w *watcher) seen(want map[string]string) bool { return w.count(want) > 0 }

// waitCount waits until n lines match want, and returns them.
func (w *watcher) waitCount(n int, timeout time.Duration, want map[string]string) []map[string]any {
	w.t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		var found []map[string]any
		for _, l := range w.lines {
			if matches(l, want) {
				found = append(found, l)
			}
		}
		more := w.more
		w.mu.Unlock()
		if len(found) >= n {
			return found
		}
		select {
		case <-more:
		case <-w.ended:
			w.t.Fatalf("berth watch ended before %d lines matching %v; its log:\n%s", n, want, w.log())
		case <-deadline:
			w.t.Fatalf("no %d log lines matching %v within %s; the log:\n%s", n, want, timeout, w.log())
		}
	}
}

func (w *watcher) waitFor(timeout time.Duration, want map[string]string) map[string]any {
	w.t.Helper()
	return w.waitCount(1, timeout, want)[0]
}

// eventually polls cond until it holds.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// saveByRename writes a file the way editors do: a temporary file beside
// it, renamed over the original.
func saveByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func running(c *cri.Container) bool {
	return c != nil && c.State == cri.ContainerState_CONTAINER_RUNNING
}

const watchedSleeper = `
pod %q {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    env          = { V = %q }
    stop_timeout = "1s"
  }
}
`

// A burst of file changes is one round; a broken file changes nothing and
// is logged; fixing it applies.
func TestWatchFiles(t *testing.T) {
	s := newStack(t)
	s.write(fmt.Sprintf(watchedSleeper, "app", "1"))
	w := s.watch("--resync", "1h", "--log-level", "debug")
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})
	// The round after a change looks again; the burst below must come
	// after it, or that round, not the files' own, would pick it up.
	w.waitFor(30*time.Second, map[string]string{"msg": "converged", "trigger": "follow-up"})
	first := s.containers()["app/c"]

	// A git pull: one file rewritten by rename, one added, an editor's
	// leftover beside them, all at once.
	saveByRename(t, filepath.Join(s.dir, "main.hcl"), fmt.Sprintf(watchedSleeper, "app", "2"))
	if err := os.WriteFile(filepath.Join(s.dir, "more.hcl"), []byte(fmt.Sprintf(watchedSleeper, "extra", "1")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "main.hcl~"), []byte("not { valid"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.extra", "action": "create"})
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "converge"})
	eventually(t, 10*time.Second, "app/c replaced and running", func() bool {
		c := s.containers()["app/c"]
		return running(c) && c.Id != first.Id
	})
	if env := execIn(t, s.containers()["app/c"].Id, "sh", "-c", "echo $V"); strings.TrimSpace(env) != "2" {
		t.Errorf("V = %q in the new container, want 2", env)
	}
	if n := w.count(map[string]string{"msg": "converging", "trigger": "files changed"}); n != 1 {
		t.Errorf("%d rounds for one burst of changes, want 1; the log:\n%s", n, w.log())
	}
	if n := w.count(map[string]string{"msg": "decision", "resource": "pod.app.container.c", "action": "replace"}); n != 1 {
		t.Errorf("app/c replaced %d times, want once", n)
	}

	// A broken file: logged with where, nothing changes, even on SIGHUP.
	before := s.containers()
	if err := os.WriteFile(filepath.Join(s.dir, "main.hcl"), []byte(fmt.Sprintf(watchedSleeper, "app", "3")+"\npod \"broken\" {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := w.waitFor(30*time.Second, map[string]string{"msg": "invalid configuration"})
	if !strings.Contains(fmt.Sprint(bad["at"]), "main.hcl:") {
		t.Errorf("the diagnostic does not say where: %v", bad)
	}
	_ = w.cmd.Process.Signal(syscall.SIGHUP)
	w.waitFor(30*time.Second, map[string]string{"msg": "converged", "trigger": "reload requested"})
	after := s.containers()
	for k, c := range before {
		if after[k] == nil || after[k].Id != c.Id || !running(after[k]) {
			t.Errorf("%s changed while the configuration was broken", k)
		}
	}
	if n := w.count(map[string]string{"msg": "invalid configuration"}); n != 1 {
		t.Errorf("the same diagnostics logged %d times, want once", n)
	}

	// Fixed: applied.
	saveByRename(t, filepath.Join(s.dir, "main.hcl"), fmt.Sprintf(watchedSleeper, "app", "3"))
	w.waitFor(30*time.Second, map[string]string{"msg": "configuration valid again"})
	eventually(t, 30*time.Second, "app/c running with V=3", func() bool {
		c := s.containers()["app/c"]
		return running(c) && c.Id != before["app/c"].Id
	})
	if env := execIn(t, s.containers()["app/c"].Id, "sh", "-c", "echo $V"); strings.TrimSpace(env) != "3" {
		t.Errorf("V = %q after the fix, want 3", env)
	}
}

// A killed container restarts at once and its restart count grows; one that
// keeps crashing is restarted at growing intervals.
func TestWatchRestarts(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "steady" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "trap 'exit 1' TERM; sleep 3600 & wait"]
    stop_timeout = "1s"
  }
}
pod "crash" {
  container "c" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sh", "-c", "sleep 1; exit 3"]
    restart = "on_failure"
  }
}
`)
	w := s.watch("--resync", "1h", "--backoff-initial", "1s")
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.steady", "action": "create"})
	killed := s.containers()["steady/c"]
	if _, err := rt.ExecSync(context.Background(), &cri.ExecSyncRequest{ContainerId: killed.Id, Cmd: []string{"kill", "1"}, Timeout: 5}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "steady/c restarted", func() bool {
		c := s.containers()["steady/c"]
		return running(c) && c.Id != killed.Id && c.Metadata.Attempt == 1
	})
	restart := w.waitFor(5*time.Second, map[string]string{"msg": "decision", "resource": "pod.steady.container.c", "action": "restart"})
	if !strings.Contains(fmt.Sprint(restart["reason"]), "exited with code 1") {
		t.Errorf("restart reason = %v", restart["reason"])
	}

	// The crashing container: restarts 1..4 happen at once, then after 1s,
	// 2s and 4s of backoff, on top of its 1s of running.
	restarts := w.waitCount(4, 60*time.Second, map[string]string{"msg": "decision", "resource": "pod.crash.container.c", "action": "restart"})
	var at []time.Time
	for _, l := range restarts[:4] {
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"]))
		if err != nil {
			t.Fatal(err)
		}
		at = append(at, ts)
	}
	gaps := []time.Duration{at[1].Sub(at[0]), at[2].Sub(at[1]), at[3].Sub(at[2])}
	t.Logf("gaps between restarts: %v", gaps)
	// The backoff adds 1s, then 2s: each gap must grow by at least half that.
	if !(gaps[1] > gaps[0]+500*time.Millisecond && gaps[2] > gaps[1]+time.Second) {
		t.Errorf("restart intervals %v do not grow with the backoff (1s, 2s, 4s on top of 1s of running)", gaps)
	}
	if n := w.count(map[string]string{"msg": "decision", "resource": "pod.crash.container.c", "action": "defer", "reason": "crash backoff", "reason_code": "exited,crash_backoff"}); n < 3 {
		t.Errorf("%d backoff waits logged, want at least 3", n)
	}

	restartsOf := func() map[string]int {
		var status struct {
			Pods []struct {
				Pod        string `json:"pod"`
				Containers []struct {
					Name     string `json:"name"`
					Restarts int    `json:"restarts"`
				} `json:"containers"`
			} `json:"pods"`
		}
		r := s.mustBerth("status", "--json", s.dir)
		if err := json.Unmarshal([]byte(r.stdout), &status); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		got := map[string]int{}
		for _, p := range status.Pods {
			for _, c := range p.Containers {
				got[p.Pod] = c.Restarts
			}
		}
		return got
	}
	// The crashing container may be between its removal and its next
	// attempt; the count shows once the attempt exists.
	var got map[string]int
	eventually(t, 20*time.Second, "status shows the restarts", func() bool {
		got = restartsOf()
		return got["steady"] == 1 && got["crash"] >= 4
	})
}

// A pod removed behind berth's back is recreated on the runtime's event,
// not at the next resync.
func TestWatchRepairsDrift(t *testing.T) {
	s := newStack(t)
	s.write(fmt.Sprintf(watchedSleeper, "app", "1"))
	w := s.watch("--resync", "1h")
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})
	old := s.pods()["app"]
	ctx := context.Background()
	if _, err := rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: old.Id}); err != nil {
		t.Fatal(err)
	}
	// The watcher sees the stop and may be removing the sandbox already.
	removeSandboxRacing(t, old.Id)
	eventually(t, 30*time.Second, "pod app recreated", func() bool {
		p := s.pods()["app"]
		return p != nil && p.Id != old.Id && p.State == cri.PodSandboxState_SANDBOX_READY && running(s.containers()["app/c"])
	})
	round := w.waitFor(5*time.Second, map[string]string{"msg": "converging", "trigger": "runtime: "})
	t.Logf("repaired on %v", round["trigger"])

	// One watcher per stack.
	second := s.berth("watch", s.dir)
	if second.code == 0 || !strings.Contains(second.stderr, "another berth watch keeps stack") {
		t.Errorf("a second watcher of the stack: %s", second)
	}
	// Stopping the watcher leaves the workloads running.
	running := s.containers()["app/c"]
	w.stop()
	time.Sleep(500 * time.Millisecond)
	if c := s.containers()["app/c"]; c == nil || c.Id != running.Id || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Error("the workload did not keep running after watch stopped")
	}
}

// A liveness probe that starts failing restarts its container.
func TestWatchLiveness(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "app" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "touch /tmp/alive; trap 'exit 0' TERM; sleep 3600 & wait"]
    stop_timeout = "1s"
    probe "liveness" {
      exec { command = ["test", "-f", "/tmp/alive"] }
      interval          = "500ms"
      failure_threshold = 2
    }
  }
}
`)
	w := s.watch("--resync", "1h")
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})
	first := s.containers()["app/c"]
	time.Sleep(2 * time.Second) // passing checks meanwhile restart nothing
	if c := s.containers()["app/c"]; c.Id != first.Id {
		t.Fatal("the container was restarted while its probe passed")
	}
	execIn(t, first.Id, "rm", "/tmp/alive")
	// One decision, in a plan: restart for the failed probe (not a stop
	// outside the plan, then a restart for its exit code).
	restart := w.waitFor(30*time.Second, map[string]string{"msg": "decision", "resource": "pod.app.container.c", "action": "restart", "reason_code": "probe_failed"})
	if !strings.Contains(fmt.Sprint(restart["reason"]), "liveness probe failed 2 times") {
		t.Errorf("restart reason = %v", restart["reason"])
	}
	eventually(t, 30*time.Second, "app/c restarted", func() bool {
		c := s.containers()["app/c"]
		return running(c) && c.Id != first.Id && c.Metadata.Attempt == 1
	})
	if n := w.count(map[string]string{"msg": "decision", "resource": "pod.app.container.c", "reason_code": "exited"}); n != 0 {
		t.Errorf("%d restarts for an exit logged; the probe's restart is the only decision", n)
	}
}

// A pod that depends on one with a readiness probe starts only once that
// probe passes.
func TestWatchReadinessGatesDependents(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "db" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
    probe "readiness" {
      exec { command = ["test", "-f", "/tmp/ready"] }
      interval = "300ms"
    }
  }
}
pod "web" {
  depends_on = ["pod.db"]
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}
`)
	w := s.watch("--resync", "1h")
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.db", "action": "create"})
	w.waitFor(30*time.Second, map[string]string{"msg": "decision", "resource": "pod.web", "action": "defer", "reason": "pod.db is not ready", "reason_code": "waiting_ready"})
	time.Sleep(time.Second)
	if p := s.pods()["web"]; p != nil {
		t.Fatal("pod web started before pod db was ready")
	}
	execIn(t, s.containers()["db/c"].Id, "touch", "/tmp/ready")
	w.waitFor(30*time.Second, map[string]string{"msg": "readiness", "resource": "pod.db.container.c", "state": "ready"})
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	if !running(s.containers()["web/c"]) {
		t.Error("web/c is not running")
	}
}

// berth apply while watch runs waits for the watcher's round: the pods
// both want exist once each.
func TestWatchAndApplySerialised(t *testing.T) {
	s := newStack(t)
	s.write(fmt.Sprintf(watchedSleeper, "p0", "1"))
	w := s.watch("--resync", "1h", "--debounce", "1ms")
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.p0", "action": "create"})
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("p%d", i)
		if err := os.WriteFile(filepath.Join(s.dir, name+".hcl"), []byte(fmt.Sprintf(watchedSleeper, name, "1")), 0o644); err != nil {
			t.Fatal(err)
		}
		s.apply() // races the watcher's round for the same new pod
		eventually(t, 30*time.Second, name+" running", func() bool { return running(s.containers()[name+"/c"]) })
	}
	time.Sleep(time.Second) // any round still due
	resp, err := rt.ListPodSandbox(context.Background(), &cri.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, sb := range resp.Items {
		if sb.Labels["berth.io/stack"] == s.name {
			per[sb.Metadata.Name]++
		}
	}
	for name, n := range per {
		if n != 1 {
			t.Errorf("pod %s has %d sandboxes, want 1", name, n)
		}
	}
	if len(per) != 4 {
		t.Errorf("pods %v, want p0..p3", per)
	}
}

// watch holds the configuration's forwards open, and they follow a
// replaced pod.
func TestWatchForward(t *testing.T) {
	s := newStack(t)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.write(forwardedWeb("web", listen, "first"))
	w := s.watch("--resync", "1h")
	w.waitFor(30*time.Second, map[string]string{"msg": "forwarding", "resource": "pod.web.forward.http"})
	if body := getWithRetry(t, "http://"+listen+"/"); strings.TrimSpace(body) != "first" {
		t.Fatalf("through the forward: %q", body)
	}
	saveByRename(t, filepath.Join(s.dir, "main.hcl"), forwardedWeb("web", listen, "second"))
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.web", "action": "converge"})
	eventually(t, 30*time.Second, "the forward reaches the new container", func() bool {
		body, err := get("http://" + listen + "/")
		return err == nil && strings.TrimSpace(body) == "second"
	})
}

// get fetches a URL once.
func get(url string) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The runtime restarting under a running watcher: watch says so, keeps
// running, reconnects, and repairs drift on events again.
func TestWatchRuntimeRestart(t *testing.T) {
	s := newStack(t)
	s.write(fmt.Sprintf(watchedSleeper, "app", "1"))
	w := s.watch("--resync", "1h", "--log-level", "debug")
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})

	restart := exec.Command("../../hack/runtime.sh", "restart")
	restart.Stdout, restart.Stderr = os.Stderr, os.Stderr
	if err := restart.Run(); err != nil {
		t.Fatalf("hack/runtime.sh restart: %v", err)
	}
	w.waitFor(30*time.Second, map[string]string{"msg": "runtime event stream lost"})
	// Back: a round planned again, after failing while the runtime was
	// down, or on the reconnection itself when the restart was quick.
	eventually(t, 60*time.Second, "a round on the restarted runtime", func() bool {
		return w.seen(map[string]string{"msg": "runtime reachable again"}) || w.seen(map[string]string{"msg": "converged", "trigger": "runtime: reconnect"})
	})
	if p := s.pods()["app"]; p == nil || !running(s.containers()["app/c"]) {
		t.Fatal("the workload did not survive the runtime's restart")
	}

	old := s.pods()["app"]
	ctx := context.Background()
	if _, err := rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: old.Id}); err != nil {
		t.Fatal(err)
	}
	// The watcher sees the stop and may be removing the sandbox already.
	removeSandboxRacing(t, old.Id)
	eventually(t, 30*time.Second, "pod app recreated after the runtime's restart", func() bool {
		p := s.pods()["app"]
		return p != nil && p.Id != old.Id && running(s.containers()["app/c"])
	})
}

// removeSandboxRacing removes a sandbox behind a watcher's back; the
// watcher, seeing it stopped, may be removing it already, and the runtime
// then refuses this removal, which is fine.
func removeSandboxRacing(t *testing.T, id string) {
	t.Helper()
	_, err := rt.RemovePodSandbox(context.Background(), &cri.RemovePodSandboxRequest{PodSandboxId: id})
	if err != nil && !strings.Contains(err.Error(), "removing state") && status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
}
