package apply_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// An interrupted run leaves what the next one cannot see when it plans: a
// sandbox or container whose create finished on the runtime after berth
// died, or a sandbox whose task a killed destroy took away. The next apply
// recovers in the same run, once, and says so.
func TestApplyRecoversFromInterruptedRuns(t *testing.T) {
	src := recoverStack
	tests := []struct {
		name    string
		applied bool // start from the stack applied, then change its env
		setup   func(t *testing.T, rt *fake.Runtime)
		want    string // in the pod step's detail
		check   func(t *testing.T, rt *fake.Runtime)
	}{
		{
			name: "a sandbox name held by a half-made sandbox of the pod",
			setup: func(t *testing.T, rt *fake.Runtime) {
				id, _ := rt.RunSandbox(context.Background(), &cri.PodSandboxConfig{Metadata: &cri.PodSandboxMetadata{Name: "web"},
					Labels: map[string]string{spec.LabelStack: "rec", spec.LabelPod: "web"}}, "")
				rt.Once["RunPodSandbox"] = &runtime.NameReservedError{ID: id}
			},
			want: "removed sandbox",
			check: func(t *testing.T, rt *fake.Runtime) {
				if len(rt.Sandboxes) != 1 {
					t.Errorf("%d sandboxes, want the pod's one", len(rt.Sandboxes))
				}
			},
		},
		{
			name: "a container name held by a container of the pod",
			setup: func(t *testing.T, rt *fake.Runtime) {
				// The reserving container is one the fake holds with the
				// pod's labels: made by the run that died.
				sb, _ := rt.RunSandbox(context.Background(), &cri.PodSandboxConfig{Metadata: &cri.PodSandboxMetadata{Name: "other"}}, "")
				id, _ := rt.CreateContainer(context.Background(), sb, &cri.ContainerConfig{Metadata: &cri.ContainerMetadata{Name: "app"},
					Labels: map[string]string{spec.LabelStack: "rec", spec.LabelPod: "web", spec.LabelContainer: "app"}}, nil)
				rt.Once["CreateContainer"] = &runtime.NameReservedError{ID: id}
			},
			want: "removed container",
		},
		{
			name: "a sandbox name held by nothing the runtime shows",
			setup: func(t *testing.T, rt *fake.Runtime) {
				rt.Once["RunPodSandbox"] = &runtime.NameReservedError{ID: "0123456789abcdef"}
			},
			want: "made the pod under another name",
			check: func(t *testing.T, rt *fake.Runtime) {
				for _, sb := range rt.Sandboxes {
					if sb.Metadata.Attempt != 1 {
						t.Errorf("sandbox attempt %d, want 1", sb.Metadata.Attempt)
					}
				}
			},
		},
		{
			name: "a container name held by nothing the runtime shows",
			setup: func(t *testing.T, rt *fake.Runtime) {
				rt.Once["CreateContainer"] = &runtime.NameReservedError{ID: "0123456789abcdef"}
			},
			want: "made it as the next attempt",
		},
		{
			name:    "a sandbox whose task is gone",
			applied: true,
			setup: func(t *testing.T, rt *fake.Runtime) {
				rt.Once["CreateContainer"] = fmt.Errorf("%w: sandbox container \"x\" is not running", runtime.ErrSandboxGone)
			},
			want: "replaced the pod",
			check: func(t *testing.T, rt *fake.Runtime) {
				running := 0
				for _, sb := range rt.Sandboxes {
					if sb.State == cri.PodSandboxState_SANDBOX_READY {
						running++
					}
				}
				if running != 1 {
					t.Errorf("%d ready sandboxes, want one new one", running)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := fake.New(image)
			cfg := spectest.Load(t, src)
			if tt.applied {
				run(t, rt, cfg)
				cfg = spectest.Load(t, strings.Replace(src, `["sleep", "1000"]`, `["sleep", "1001"]`, 1))
			}
			snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
			if err != nil {
				t.Fatal(err)
			}
			plan := planner.Diff(cfg, snap, planner.Options{})
			tt.setup(t, rt) // after observing: what the plan could not see
			res := apply.Execute(context.Background(), plan, rt, apply.Options{LogRoot: t.TempDir(), TmpfsRoot: t.TempDir()})
			if err := res.Err(); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if len(res.Steps) != 1 || !strings.Contains(res.Steps[0].Detail, tt.want) {
				t.Errorf("steps %+v, want a detail saying %q", res.Steps, tt.want)
			}
			if tt.check != nil {
				tt.check(t, rt)
			}
		})
	}
}

// Stopping running containers may take their whole grace, so it is said
// before it is waited out: for a destroyed pod, and for a replaced
// container.
func TestStopsAreAnnounced(t *testing.T) {
	const src = `
berth { stack = "stops" }
pod "web" {
  container "app" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "1000"]
    stop_timeout = "2m"
  }
}
`
	for _, tt := range []struct {
		name, next, address, want string
	}{
		{"a destroyed pod", `berth { stack = "stops" }`, "pod.web", "its container, up to 2m0s before it is killed"},
		{"a replaced container", strings.Replace(src, `"1000"`, `"1001"`, 1), "pod.web.container.app", "its container, up to 2m0s before it is killed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt := fake.New(image)
			run(t, rt, spectest.Load(t, src))
			cfg := spectest.Load(t, tt.next)
			snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var stops []apply.Event
			res := apply.Execute(context.Background(), planner.Diff(cfg, snap, planner.Options{}), rt, apply.Options{LogRoot: t.TempDir(), TmpfsRoot: t.TempDir(),
				Report: func(ev apply.Event) {
					if ev.Status == apply.Stopping {
						stops = append(stops, ev)
					}
				}})
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			if len(stops) != 1 || stops[0].Address.String() != tt.address || stops[0].Detail != tt.want {
				t.Errorf("stopping events %+v, want one for %s saying %q", stops, tt.address, tt.want)
			}
		})
	}
}

// recoverStack is the engine tests' pod, in a stack of its own.
var recoverStack = strings.Replace(engineStack, `stack = "eng"`, `stack = "rec"`, 1)

// A start cut short can leave containerd running a task under a container
// the CRI reports exited; CRI then refuses to remove it or its sandbox.
// Apply ends the task and removes them, in one run.
func TestApplyEndsOrphanTasks(t *testing.T) {
	for _, tc := range []struct {
		name string
		then string // the configuration after: the container replaced, or the pod gone
	}{
		{"the container is replaced", strings.Replace(engineStack, `"sleep", "1000"`, `"sleep", "1001"`, 1)},
		{"the pod is destroyed", `berth { stack = "eng" }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New(image)
			e := newEngine(t, rt)
			ctx := context.Background()
			if _, res, err := e.Converge(ctx, spectest.Load(t, engineStack), planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			for id := range rt.Containers {
				rt.OrphanTasks[id] = true
			}
			if _, res, err := e.Converge(ctx, spectest.Load(t, tc.then), planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
				t.Fatalf("apply: %v %v", err, res.Err())
			}
			if n := rt.Calls()["KillTask"]; n == 0 || len(rt.OrphanTasks) != 0 {
				t.Errorf("%d KillTask calls, %d orphan tasks left", n, len(rt.OrphanTasks))
			}
		})
	}
}
