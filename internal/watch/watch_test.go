package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/syncbuf"

	"github.com/hashicorp/hcl/v2"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
)

const image = "docker.io/library/busybox:1.36"

// harness runs a watcher on a fake runtime over a configuration directory
// of its own, and reads what it logs.
type harness struct {
	t      *testing.T
	dir    string
	rt     *fake.Runtime
	opts   Options
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan error
	reload chan struct{}
}

// logBuffer keeps the watcher's JSON log lines.
type logBuffer struct{ syncbuf.Buffer }

func (b *logBuffer) lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			out = append(out, line)
		}
	}
	return out
}

// newHarness writes src and prepares a watcher; start runs it.
func newHarness(t *testing.T, src string) *harness {
	t.Helper()
	h := &harness{t: t, dir: filepath.Join(t.TempDir(), "test"), rt: fake.New(image), logs: &logBuffer{}, reload: make(chan struct{}, 1)}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.write(src)
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.opts = Options{
		Dir: h.dir, Load: h.load, Address: "unix:///fake.sock", LockDir: t.TempDir(),
		Resync: time.Hour, Debounce: 20 * time.Millisecond, Parallelism: 2,
		Backoff: planner.Backoff{Initial: time.Hour, Max: time.Hour, Reset: time.Hour},
		Reload:  h.reload, Log: log, Command: "watch test",
		LogRoot: t.TempDir(), TmpfsRoot: t.TempDir(),
		Dial: func(context.Context, string) (Runtime, error) { return h.rt, nil },
	}
	return h
}

func (h *harness) load(dir string) (*spec.Config, hcl.Diagnostics) {
	return spec.NewLoader(spec.Options{Environ: func() []string { return nil }}).Load(dir)
}

func (h *harness) write(src string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) start() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- Run(ctx, h.opts) }()
	h.t.Cleanup(func() { h.stop() })
	return h
}

// stop ends the watcher and returns what Run returned.
func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("the watcher did not stop")
		return nil
	}
}

// waitFor waits for the n-th log line whose keys hold the wanted texts.
func (h *harness) waitFor(n int, want map[string]string) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var found []map[string]any
		for _, line := range h.logs.lines() {
			if matches(line, want) {
				found = append(found, line)
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range h.logs.lines() {
				fmt.Fprintln(&b, l)
			}
			h.t.Fatalf("no %d log lines matching %v; the log:\n%s", n, want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) count(want map[string]string) int {
	n := 0
	for _, line := range h.logs.lines() {
		if matches(line, want) {
			n++
		}
	}
	return n
}

func matches(line map[string]any, want map[string]string) bool {
	for k, v := range want {
		got, ok := line[k]
		if !ok || !strings.Contains(fmt.Sprint(got), v) {
			return false
		}
	}
	return true
}

// container is the newest container of a pod, by name.
func (h *harness) container(pod, name string) *cri.Container {
	h.t.Helper()
	list, err := h.rt.ListContainers(context.Background(), map[string]string{spec.LabelPod: pod, spec.LabelContainer: name})
	if err != nil {
		h.t.Fatal(err)
	}
	var newest *cri.Container
	for _, c := range list {
		if newest == nil || c.Metadata.Attempt > newest.Metadata.Attempt {
			newest = c
		}
	}
	return newest
}

const webPod = `
pod "web" {
  container "app" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "1000"]
    env          = { MODE = "prod" }
    stop_timeout = "1s"
  }
}
`

func TestWatchAppliesAndFollowsFiles(t *testing.T) {
	h := newHarness(t, webPod).start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web", "action": "create", "reason_code": "declared"})

	h.write(strings.Replace(webPod, `"prod"`, `"dev"`, 1))
	h.waitFor(1, map[string]string{"msg": "converging", "trigger": "files changed"})
	h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web.container.app", "action": "replace", "reason": "changed: env.MODE", "reason_code": "fields_changed"})
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "converge"})

	h.reload <- struct{}{}
	h.waitFor(1, map[string]string{"msg": "converged", "trigger": "reload requested"})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.waitFor(1, map[string]string{"msg": "stopped; workloads keep running"})
	if c := h.container("web", "app"); c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("web/app after stop: %v, want it running", c)
	}
}

// A crash restarts at once; a crash loop is then held back by the
// backoff, as a deferred action in the plan, not as a restart.
func TestWatchCrashBackoff(t *testing.T) {
	h := newHarness(t, webPod).start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	first := h.container("web", "app")
	h.rt.Exit(first.Id, 1) // and its restarts exit with 1 too

	restart := h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web.container.app", "action": "restart"})
	if restart["reason"] != `exited with code 1; restart = "always"` || restart["reason_code"] != "exited" {
		t.Errorf("restart line %v", restart)
	}
	h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web.container.app", "action": "defer", "reason": "restart 2 in a row waits 1h0m0s", "reason_code": "exited,crash_backoff"})
	if c := h.container("web", "app"); c.Metadata.Attempt != 1 || c.State != cri.ContainerState_CONTAINER_EXITED {
		t.Errorf("web/app attempt %d %s, want attempt 1 exited and left so", c.Metadata.Attempt, c.State)
	}

	// The deferral is said once, however many rounds see it.
	h.reload <- struct{}{}
	h.waitFor(1, map[string]string{"msg": "converged", "trigger": "reload requested"})
	if n := h.count(map[string]string{"msg": "decision", "action": "defer"}); n != 1 {
		t.Errorf("%d deferral lines, want 1", n)
	}
}

// A round for a crash lists only the crashed container's pod, and says
// so; the round after the restart lists every pod, so that what changed
// without an event (a pod removed behind berth's back) is seen at once.
func TestWatchCrashListsItsPod(t *testing.T) {
	h := newHarness(t, webPod+strings.ReplaceAll(webPod, `"web"`, `"db"`)).start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.db", "action": "create"})
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	h.waitFor(1, map[string]string{"msg": "converged"})
	db := h.container("db", "app")
	if err := h.rt.RemoveSandbox(context.Background(), db.PodSandboxId); err != nil { // no event
		t.Fatal(err)
	}
	h.rt.Exit(h.container("web", "app").Id, 1)
	h.waitFor(1, map[string]string{"msg": "converging", "trigger": "runtime: /tasks/exit pod.web.container.app", "listed_afresh": "web"})
	follow := h.waitFor(1, map[string]string{"msg": "converging", "trigger": "follow-up"})
	if _, ok := follow["listed_afresh"]; ok {
		t.Errorf("the follow-up round listed only some pods: %v", follow)
	}
	h.waitFor(2, map[string]string{"msg": "decision", "resource": "pod.db", "action": "create"})
	// In the log, the crash's round decides on web alone, the follow-up on
	// db. (Held restarts are told before their round's "converging".)
	var order []string
	for _, l := range h.logs.lines() {
		switch {
		case matches(l, map[string]string{"msg": "converging", "trigger": "runtime"}):
			order = append(order, "crash")
		case matches(l, map[string]string{"msg": "converging", "trigger": "follow-up"}):
			order = append(order, "follow-up")
		case len(order) > 0 && matches(l, map[string]string{"msg": "decision"}) && l["action"] != "defer":
			order = append(order, fmt.Sprint(l["resource"], " ", l["action"]))
		}
	}
	want := []string{"crash", "pod.web.container.app restart", "follow-up", "pod.db create"}
	if !slices.Equal(order[:min(len(order), len(want))], want) {
		t.Errorf("rounds and decisions %v, want %v first", order, want)
	}
}

// A runtime that reports an exit before its lists show it (a busy one):
// the round the event starts waits until the runtime's state shows it,
// and past exitWait the watcher looks again soon instead of waiting for
// the resync (an hour).
func TestWatchAwaitsALaggingExit(t *testing.T) {
	hostPID := strings.Replace(webPod, `pod "web" {`, `pod "web" {
  host_pid = true`, 1)
	for _, tc := range []struct {
		name    string
		config  string
		lag     time.Duration
		trigger string
	}{
		{"its own PID namespace: the event's round acts on the report", webPod, exitWait + time.Second, "runtime: /tasks/exit pod.web.container.app"},
		{"the host's: the event's round waits for the lists", hostPID, 300 * time.Millisecond, "runtime: /tasks/exit pod.web.container.app"},
		{"the host's: a later round looks again", hostPID, exitWait + 500*time.Millisecond, "runtime: an exit the runtime's lists did not show yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.config).start()
			h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
			first := h.container("web", "app")
			h.rt.ExitLagging(first.Id, 1, tc.lag)
			h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web.container.app", "action": "restart", "reason": `exited with code 1; restart = "always"`})
			h.waitFor(1, map[string]string{"msg": "converging", "trigger": tc.trigger})
		})
	}
}

// A round for a runtime event uses the configuration as last read; one
// for changed files reads it again.
func TestWatchRereadsOnlyWhatMayHaveChanged(t *testing.T) {
	h := newHarness(t, webPod)
	var loads atomic.Int32
	h.opts.Load = func(dir string) (*spec.Config, hcl.Diagnostics) {
		loads.Add(1)
		return h.load(dir)
	}
	h.start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	before := loads.Load()
	h.rt.Exit(h.container("web", "app").Id, 1)
	h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web.container.app", "action": "restart"})
	h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web.container.app", "action": "defer"}) // the restart's own crash, held back
	if n := loads.Load(); n != before {
		t.Errorf("the rounds for a crash read the configuration %d times, want 0", n-before)
	}
	h.write(strings.Replace(webPod, `"prod"`, `"dev"`, 1))
	h.waitFor(1, map[string]string{"msg": "converging", "trigger": "files changed"})
	if n := loads.Load(); n != before+1 {
		t.Errorf("the round for changed files read the configuration %d times, want 1", n-before)
	}
}

// A failed liveness probe is one restart in a plan, with the probe's
// failure as its reason.
func TestWatchLivenessRestarts(t *testing.T) {
	src := strings.Replace(webPod, `stop_timeout = "1s"`, `stop_timeout = "1s"
    probe "liveness" {
      exec { command = ["test", "-f", "/tmp/alive"] }
      interval          = "50ms"
      failure_threshold = 2
    }`, 1)
	h := newHarness(t, src)
	var failing atomic.Value
	failing.Store("")
	h.rt.Exec = func(id string, cmd []string) int32 {
		if id == failing.Load() {
			return 1
		}
		return 0
	}
	h.start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	first := h.container("web", "app")
	failing.Store(first.Id)

	restart := h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web.container.app", "action": "restart", "reason_code": "probe_failed"})
	if restart["reason"] != "liveness probe failed 2 times in a row: test exited with code 1" {
		t.Errorf("reason %q", restart["reason"])
	}
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "converge"})
	c := h.container("web", "app")
	if c.Id == first.Id || c.Metadata.Attempt != 1 || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("web/app %s attempt %d %s, want a new running attempt 1", c.Id, c.Metadata.Attempt, c.State)
	}
	if h.rt.Stops[first.Id] != time.Second {
		t.Errorf("the old container was stopped with %s, want its 1s grace", h.rt.Stops[first.Id])
	}
	h.reload <- struct{}{}
	h.waitFor(1, map[string]string{"msg": "converged", "trigger": "reload requested"})
	if n := h.count(map[string]string{"msg": "decision", "resource": "pod.web.container.app"}); n != 1 {
		t.Errorf("%d decisions about web/app, want the one restart", n)
	}
}

// A pod waits, deferred in the plan, until its dependency is ready.
func TestWatchReadinessGates(t *testing.T) {
	src := `
pod "db" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "1000"]
    probe "readiness" {
      exec { command = ["test", "-f", "/tmp/ready"] }
      interval = "50ms"
    }
  }
}
pod "web" {
  depends_on = ["pod.db"]
  container "app" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "1000"]
  }
}
`
	h := newHarness(t, src)
	var ready atomic.Bool
	h.rt.Exec = func(string, []string) int32 {
		if ready.Load() {
			return 0
		}
		return 1
	}
	h.start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.db", "action": "create"})
	h.waitFor(1, map[string]string{"msg": "decision", "resource": "pod.web", "action": "defer", "reason": "pod.db is not", "reason_code": "waiting_ready"})
	if c := h.container("web", "app"); c != nil {
		t.Fatal("web was created before db was ready")
	}
	ready.Store(true)
	h.waitFor(1, map[string]string{"msg": "readiness", "resource": "pod.db.container.main", "state": "ready"})
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
}

// An invalid configuration changes nothing and is said once; the last
// good one stays in force, and fixing the files is noticed.
func TestWatchInvalidConfiguration(t *testing.T) {
	h := newHarness(t, webPod).start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	h.write(webPod + "\npod \"broken\" {\n")
	h.waitFor(1, map[string]string{"msg": "invalid configuration", "at": "main.hcl:"})
	h.waitFor(1, map[string]string{"msg": "configuration invalid; nothing changes until it is fixed"})
	h.reload <- struct{}{}
	h.waitFor(1, map[string]string{"msg": "converged", "trigger": "reload requested"})
	if n := h.count(map[string]string{"msg": "configuration invalid"}); n != 1 {
		t.Errorf("said %d times, want once", n)
	}
	h.write(strings.Replace(webPod, `"web"`, `"web2"`, 1))
	h.waitFor(1, map[string]string{"msg": "configuration valid again"})
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web2", "action": "create"})
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "destroy"})

	h.write("berth { stack = \"other\" }\n" + webPod)
	h.waitFor(1, map[string]string{"msg": "the stack name changed"})
}

func TestWatchRefusesABadStartAndASecondWatcher(t *testing.T) {
	bad := newHarness(t, "pod \"x\" {\n")
	if err := Run(context.Background(), bad.opts); err == nil || !strings.Contains(err.Error(), "is invalid") {
		t.Errorf("a broken start: %v", err)
	}

	h := newHarness(t, webPod).start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	second := h.opts
	second.Log = slog.New(slog.DiscardHandler)
	if err := Run(context.Background(), second); err == nil || !strings.Contains(err.Error(), "another berth watch keeps stack") {
		t.Errorf("a second watcher: %v", err)
	}
}

// A runtime that fails mid-watch is retried with backoff; the watcher
// says when it answers again, and a lost event stream is reconnected.
func TestWatchRuntimeAway(t *testing.T) {
	h := newHarness(t, webPod).start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	h.rt.Fail("ListPodSandbox", errors.New("connection refused"))
	h.reload <- struct{}{}
	h.waitFor(1, map[string]string{"msg": "round failed before changing anything; retrying", "error": "connection refused"})
	h.rt.Fail("ListPodSandbox", nil)
	h.waitFor(1, map[string]string{"msg": "runtime reachable again"})

	h.rt.BreakEvents()
	h.waitFor(1, map[string]string{"msg": "runtime event stream lost; reconnecting"})
	h.waitFor(1, map[string]string{"msg": "converged", "trigger": "runtime: reconnect"})
}

// Dial retries while the runtime is away, and gives up when stopped.
func TestWatchStoppedBeforeTheRuntimeAnswered(t *testing.T) {
	h := newHarness(t, webPod)
	h.opts.Dial = func(context.Context, string) (Runtime, error) { return nil, errors.New("no socket") }
	h.start()
	h.waitFor(1, map[string]string{"msg": "runtime unreachable; retrying", "error": "no socket"})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.waitFor(1, map[string]string{"msg": "stopped before the runtime answered"})
}

// A panic in a round is logged with its stack; the watcher goes on, and
// what runs keeps running.
func TestWatchRecoversFromAPanic(t *testing.T) {
	h := newHarness(t, webPod)
	var boom atomic.Bool
	load := h.opts.Load
	h.opts.Load = func(dir string) (*spec.Config, hcl.Diagnostics) {
		if boom.Load() {
			panic("a bug")
		}
		return load(dir)
	}
	h.start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	boom.Store(true)
	h.reload <- struct{}{}
	line := h.waitFor(1, map[string]string{"msg": "round failed: internal error", "panic": "a bug"})
	if !strings.Contains(fmt.Sprint(line["stack"]), "watch.(*watcher).round") {
		t.Errorf("no stack in %v", line)
	}
	boom.Store(false)
	h.waitFor(1, map[string]string{"msg": "converged", "trigger": "retry"})
	if c := h.container("web", "app"); c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatal("web/app is not running after the panic")
	}
}
