package apply_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

const image = "docker.io/library/busybox:1.36"

func run(t *testing.T, rt *fake.Runtime, cfg *spec.Config) (*planner.Plan, *apply.Result) {
	t.Helper()
	snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := planner.Diff(cfg, snap, planner.Options{})
	return p, apply.Execute(context.Background(), p, rt, apply.Options{LogRoot: t.TempDir(), Parallelism: 2})
}

// A pod replaced right after its container's exit was reported, before
// CRI shows it, is removed once CRI does: it refuses the sandbox's removal
// until then.
func TestReplaceAfterAReportedExit(t *testing.T) {
	const pod = `pod "a" {
  hostname = "%s"
  container "main" { image = "docker.io/library/busybox:1.36" }
}`
	rt := fake.New(image)
	if _, res := run(t, rt, spectest.Load(t, fmt.Sprintf(pod, "one"))); res.Err() != nil {
		t.Fatal(res.Err())
	}
	var old string
	for id := range rt.Containers {
		old = id
	}
	rt.ExitLagging(old, 1, 100*time.Millisecond)
	w := reportedExit(old)
	plan, res := runWatched(t, rt, spectest.Load(t, fmt.Sprintf(pod, "two")), w)
	if res.Err() != nil {
		t.Fatal(res.Err())
	}
	if plan.Pods[0].Action != planner.Replace {
		t.Fatalf("planned %s, want replace", plan.Pods[0].Action)
	}
	if rt.Containers[old] != nil || len(rt.Sandboxes) != 1 {
		t.Errorf("left %d sandboxes, the old container: %t; want the new pod alone", len(rt.Sandboxes), rt.Containers[old] != nil)
	}
}

// reportedExit is a watcher's state that heard, a minute ago, of id's
// exit with code 1.
func reportedExit(id string) *planner.WatchState {
	return &planner.WatchState{Now: time.Now(), Backoff: planner.DefaultBackoff, Exits: map[string]planner.ReportedExit{id: {Code: 1, At: time.Now().Add(-time.Minute)}}}
}

// runWatched is run as a watcher's round plans: with what the watcher
// heard from the runtime.
func runWatched(t *testing.T, rt *fake.Runtime, cfg *spec.Config, w *planner.WatchState) (*planner.Plan, *apply.Result) {
	t.Helper()
	if w == nil {
		return run(t, rt, cfg)
	}
	opts := planner.Options{Watch: w, Offline: true}
	snap, err := planner.Observe(context.Background(), rt, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := planner.Diff(cfg, snap, opts)
	return p, apply.Execute(context.Background(), p, rt, apply.Options{LogRoot: t.TempDir(), Parallelism: 2})
}

const stack = `
pod "a" {
  container "init" {
    image = "docker.io/library/busybox:1.36"
    init  = true
  }
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "b" {
  depends_on = ["pod.a"]
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "c" {
  depends_on = ["pod.b"]
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "free" {
  container "main" { image = "alpine:3" }
}
`

// A pod's steps run in the documented order: pull, sandbox, init
// containers to completion, then the others; dependents after dependencies.
func TestCreateOrder(t *testing.T) {
	rt := fake.New(image)
	rt.ExitCodes["init"] = 0
	_, res := run(t, rt, spectest.Load(t, stack))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	log := strings.Join(rt.Log(), "\n")
	for _, seq := range [][]string{
		{"RunPodSandbox a", "CreateContainer init", "StartContainer init", "CreateContainer main"},
		{"PullImage alpine:3", "RunPodSandbox free"},
		{"RunPodSandbox a", "RunPodSandbox b", "RunPodSandbox c"},
	} {
		at := 0
		for _, step := range seq {
			i := strings.Index(log[at:], step)
			if i < 0 {
				t.Fatalf("%q not after position %d in:\n%s", step, at, log)
			}
			at += i + len(step)
		}
	}
}

// A failed pod is reported with its cause, its dependents are skipped,
// independent pods still converge, and a rerun finishes the job.
func TestFailureSkipsDependentsAndRerunConverges(t *testing.T) {
	rt := fake.New(image)
	rt.ExitCodes["init"] = 7 // pod a's init container fails
	_, res := run(t, rt, spectest.Load(t, stack))

	status := map[string]apply.Status{}
	for _, s := range res.Steps {
		status[s.Address.String()] = s.Status
	}
	want := map[string]apply.Status{"pod.a": apply.Failed, "pod.b": apply.Skipped, "pod.c": apply.Skipped, "pod.free": apply.Done}
	for addr, st := range want {
		if status[addr] != st {
			t.Errorf("%s: %s, want %s", addr, status[addr], st)
		}
	}
	err := res.Err()
	if err == nil || !strings.Contains(err.Error(), "init container init exited with code 7") {
		t.Fatalf("error = %v, want the init container's exit code", err)
	}

	rt.ExitCodes["init"] = 0 // fixed
	_, res = run(t, rt, spectest.Load(t, stack))
	if err := res.Err(); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	p, _ := run(t, rt, spectest.Load(t, stack))
	if p.HasChanges() {
		t.Fatalf("plan after the rerun still has changes")
	}
}

// An error from the runtime surfaces with the pod's address.
func TestRuntimeError(t *testing.T) {
	rt := fake.New(image)
	rt.Errors["RunPodSandbox"] = errors.New("no network")
	_, res := run(t, rt, spectest.Load(t, `pod "x" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}`))
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "pod.x: no network") {
		t.Fatalf("error = %v", err)
	}
}

// envPod is pod "a" with the pod settings of the first verb and one
// container whose env V is the second.
const envPod = `pod "a" {%s
  container "main" {
    image = "docker.io/library/busybox:1.36"
    env   = { V = "%s" }
  }
}`

// A stop that returns before CRI has handled the container's exit, as
// containerd's does when its event loop is behind and the stop, retried
// after the shim closed, finds no task: CRI refuses the removal ("still
// running") until it lists the exit, and the apply removes it then.
func TestStopBeforeTheExitIsHandled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hostPID string
		change  string // "edit" or "destroy"
		removal string // the call refused, then made again
	}{
		{"replaced: the next attempt first", "", "edit", "RemoveContainer OLD"},
		{"replaced in the host's PID namespace: stopped and removed first", "\n  host_pid = true", "edit", "RemoveContainer OLD"},
		{"destroyed: the sandbox's removal", "", "destroy", "RemovePodSandbox SANDBOX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New(image)
			if _, res := run(t, rt, spectest.Load(t, fmt.Sprintf(envPod, tc.hostPID, "1"))); res.Err() != nil {
				t.Fatal(res.Err())
			}
			var old, sandbox string
			for id, c := range rt.Containers {
				old, sandbox = id, c.PodSandboxId
			}
			cfg := spectest.Load(t, fmt.Sprintf(envPod, tc.hostPID, "2"))
			if tc.change == "destroy" {
				cfg.Pods = nil
			}
			rt.ResetCalls()
			rt.ExitHandleLag = 100 * time.Millisecond
			if _, res := run(t, rt, cfg); res.Err() != nil {
				t.Fatal(res.Err())
			}
			removals := 0
			for _, call := range rt.Log() {
				if strings.NewReplacer(old, "OLD", sandbox, "SANDBOX").Replace(call) == tc.removal {
					removals++
				}
			}
			if removals != 2 {
				t.Errorf("%q called %d times, want twice (refused, then made once CRI listed the exit); calls %q", tc.removal, removals, rt.Log())
			}
			if rt.Containers[old] != nil {
				t.Errorf("the old container is left")
			}
		})
	}
}

// Destroy gives each container the grace it was created with.
func TestDestroyUsesRecordedGrace(t *testing.T) {
	rt := fake.New(image)
	cfg := spectest.Load(t, `pod "vm" {
  container "windows" {
    image        = "docker.io/library/busybox:1.36"
    stop_timeout = "2m"
  }
}`)
	if _, res := run(t, rt, cfg); res.Err() != nil {
		t.Fatal(res.Err())
	}
	cfg.Pods = nil
	if _, res := run(t, rt, cfg); res.Err() != nil {
		t.Fatal(res.Err())
	}
	if len(rt.Sandboxes) != 0 || len(rt.Containers) != 0 {
		t.Fatalf("left behind: %d sandboxes, %d containers", len(rt.Sandboxes), len(rt.Containers))
	}
	if len(rt.Stops) != 1 {
		t.Fatalf("stops = %v", rt.Stops)
	}
	for _, grace := range rt.Stops {
		if grace != 2*time.Minute {
			t.Fatalf("grace = %s, want 2m", grace)
		}
	}
}

// Pods wait for the readiness of the pods they depend on, once per
// dependency; a dependency that never gets ready skips its dependents.
func TestWaitReady(t *testing.T) {
	const src = `
pod "db" {
  container "main" {
    image = "docker.io/library/busybox:1.36"
    probe "readiness" {
      tcp { port = 5432 }
    }
  }
}
pod "api" {
  depends_on = ["pod.db"]
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "worker" {
  depends_on = ["pod.db", "pod.api"]
  container "main" { image = "docker.io/library/busybox:1.36" }
}
`
	tests := []struct {
		name      string
		notReady  error
		wantWaits int // waiting events for pod.db: one per dependent that got that far
		wantSteps map[string]apply.Status
	}{
		{name: "ready", wantWaits: 2, wantSteps: map[string]apply.Status{"pod.db": apply.Done, "pod.api": apply.Done, "pod.worker": apply.Done}},
		{name: "never ready", notReady: errors.New("readiness probe did not pass"), wantWaits: 1,
			wantSteps: map[string]apply.Status{"pod.db": apply.Done, "pod.api": apply.Skipped, "pod.worker": apply.Skipped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := fake.New(image)
			cfg := spectest.Load(t, src)
			snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var waited []string
			var events []apply.Event
			plan := planner.Diff(cfg, snap, planner.Options{})
			for _, pc := range plan.Pods {
				if want := map[string]string{"db": "", "api": "db", "worker": "db"}[pc.Name]; strings.Join(pc.WaitFor, ",") != want {
					t.Errorf("pod.%s waits for %v in the plan, want [%s]", pc.Name, pc.WaitFor, want)
				}
			}
			res := apply.Execute(context.Background(), plan, rt, apply.Options{
				LogRoot: t.TempDir(), Parallelism: 2,
				Report: func(ev apply.Event) { events = append(events, ev) },
				WaitReady: func(_ context.Context, dep *spec.Pod) error {
					waited = append(waited, dep.Name)
					if !strings.Contains(strings.Join(rt.Log(), "\n"), "RunPodSandbox "+dep.Name) {
						t.Errorf("waited for pod.%s before it was created", dep.Name)
					}
					return tt.notReady
				},
			})
			got := map[string]apply.Status{}
			for _, s := range res.Steps {
				got[s.Address.String()] = s.Status
			}
			for addr, st := range tt.wantSteps {
				if got[addr] != st {
					t.Errorf("%s: %s, want %s", addr, got[addr], st)
				}
			}
			if strings.Join(waited, ",") != "db" {
				t.Errorf("waited for %v, want db once (api has no readiness probe)", waited)
			}
			waits := 0
			for _, ev := range events {
				if ev.Status == apply.Waiting && ev.Detail == "pod.db" {
					waits++
				}
			}
			if waits != tt.wantWaits {
				t.Errorf("%d waiting events for pod.db, want %d", waits, tt.wantWaits)
			}
			if (res.Err() != nil) != (tt.notReady != nil) {
				t.Errorf("Err() = %v", res.Err())
			}
			if tt.notReady != nil {
				for _, s := range res.Steps {
					if s.Address.String() == "pod.api" && !strings.Contains(s.Detail, "pod.db, which it depends on, is not ready: readiness probe did not pass") {
						t.Errorf("api skipped with %q", s.Detail)
					}
				}
			}
		})
	}
}

// The next attempt of a container starts as soon as nothing of the old
// one runs, before the old one is removed: the removal, and a stop's
// return, wait for the runtime to have handled the exit. A container that
// shares the host's PID namespace may leave processes until then, and one
// that never started holds nothing: those go the plain way.
func TestSuccessionOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hostPID bool
		change  string // "crash", "created" or "edit"
		want    []string
	}{
		{"exited: the next attempt first", false, "crash",
			[]string{"CreateContainer main", "StartContainer main", "StopContainer OLD", "RemoveContainer OLD"}},
		{"replaced: started once the old task exited, before the stop returned", false, "edit",
			[]string{"StopContainer OLD", "CreateContainer main", "StartContainer main", "StopContainer returned OLD", "StopContainer OLD", "RemoveContainer OLD"}},
		{"replaced in the host's PID namespace: stopped and removed first", true, "edit",
			[]string{"StopContainer OLD", "StopContainer returned OLD", "RemoveContainer OLD", "CreateContainer main", "StartContainer main"}},
		{"exited on the runtime's report, before CRI shows it: the next attempt first, the old removed once CRI has the exit", false, "reported",
			[]string{"CreateContainer main", "StartContainer main", "StopContainer OLD", "RemoveContainer OLD"}},
		{"exited in the host's PID namespace: the next attempt first", true, "crash",
			[]string{"CreateContainer main", "StartContainer main", "StopContainer OLD", "RemoveContainer OLD"}},
		{"never started: removed first", false, "created",
			[]string{"StopContainer OLD", "StopContainer returned OLD", "RemoveContainer OLD", "CreateContainer main", "StartContainer main"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostPID := ""
			if tc.hostPID {
				hostPID = "\n  host_pid = true"
			}
			rt := fake.New(image)
			if _, res := run(t, rt, spectest.Load(t, fmt.Sprintf(envPod, hostPID, "1"))); res.Err() != nil {
				t.Fatal(res.Err())
			}
			var old string
			for id := range rt.Containers {
				old = id
			}
			cfg, want := spectest.Load(t, fmt.Sprintf(envPod, hostPID, "1")), planner.Restart
			var watch *planner.WatchState
			switch tc.change {
			case "crash":
				rt.Exit(old, 1)
			case "reported":
				rt.ExitLagging(old, 1, 100*time.Millisecond)
				watch = reportedExit(old)
			case "created":
				rt.Containers[old].State = cri.ContainerState_CONTAINER_CREATED
			case "edit":
				cfg, want = spectest.Load(t, fmt.Sprintf(envPod, hostPID, "2")), planner.Replace
			}
			rt.ResetCalls()
			rt.StopLag = 50 * time.Millisecond
			plan, res := runWatched(t, rt, cfg, watch)
			if res.Err() != nil {
				t.Fatal(res.Err())
			}
			if cc := plan.Pods[0].Containers[0]; cc.Action != want || cc.Attempt != 1 {
				t.Fatalf("planned %s of attempt %d, want %s of attempt 1", cc.Action, cc.Attempt, want)
			}
			var got []string
			for _, call := range rt.Log() {
				if m, _, _ := strings.Cut(call, " "); strings.HasSuffix(m, "Container") {
					got = append(got, strings.Replace(call, old, "OLD", 1))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("calls %q\nwant %q", got, tc.want)
			}
			if len(rt.Containers) != 1 {
				t.Errorf("%d containers left, want the new attempt alone", len(rt.Containers))
			}
		})
	}
}
