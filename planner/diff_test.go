package planner_test

import (
	"context"
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

// base is the configuration every case starts from: a database pod and a
// web pod that depends on it and has an init container.
const base = `
berth { stack = "test" }
variable "password" {
  type      = string
  default   = "hunter2"
  sensitive = true
}
pod "db" {
  hostname = "db"
  container "main" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "1000"]
    env          = { PASSWORD = var.password }
    stop_timeout = "2m"
  }
}
pod "web" {
  depends_on = ["pod.db"]
  container "setup" {
    image = "docker.io/library/busybox:1.36"
    init  = true
    args  = ["true"]
  }
  container "app" {
    image = "docker.io/library/busybox:1.36"
    env   = { MODE = "prod" }
  }
  container "sidecar" {
    image = "docker.io/library/busybox:1.36"
  }
}
`

func plan(t *testing.T, rt *fake.Runtime, cfg *spec.Config, opts planner.Options) *planner.Plan {
	t.Helper()
	snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return planner.Diff(cfg, snap, opts)
}

// converge applies cfg to rt and fails the test on any error.
func converge(t *testing.T, rt *fake.Runtime, cfg *spec.Config) {
	t.Helper()
	p := plan(t, rt, cfg, planner.Options{})
	if len(p.Errors) > 0 {
		t.Fatalf("plan errors: %v", p.Errors)
	}
	res := apply.Execute(context.Background(), p, rt, apply.Options{LogRoot: t.TempDir()})
	if err := res.Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// newApplied returns a runtime on which base is applied, with the init
// container exited 0 as it would be.
func newApplied(t *testing.T) *fake.Runtime {
	rt := fake.New(image)
	rt.ExitCodes["setup"] = 0
	converge(t, rt, spectest.Load(t, base))
	rt.ResetCalls()
	return rt
}

// changes lists "address action" for every non-no-op change, in plan order.
func changes(p *planner.Plan) []string {
	var out []string
	for _, pc := range p.Pods {
		if pc.Action != planner.NoOp {
			out = append(out, pc.Address.String()+" "+string(pc.Action))
			continue
		}
		for _, cc := range pc.Containers {
			if cc.Action != planner.NoOp {
				out = append(out, cc.Address.String()+" "+string(cc.Action))
			}
		}
	}
	return out
}

func containerID(t *testing.T, rt *fake.Runtime, pod, name string) string {
	t.Helper()
	for id, c := range rt.Containers {
		if c.Labels[spec.LabelPod] == pod && c.Metadata.Name == name {
			return id
		}
	}
	t.Fatalf("no container %s/%s", pod, name)
	return ""
}

func TestDiff(t *testing.T) {
	cases := []struct {
		name    string
		fresh   bool                            // start from an empty runtime instead of base applied
		config  func(string) string             // mutation of the configuration
		runtime func(*testing.T, *fake.Runtime) // mutation of the actual state
		opts    planner.Options
		want    []string // "address action"
		check   func(*testing.T, *planner.Plan)
	}{
		{
			name:  "empty runtime creates everything",
			fresh: true,
			want:  []string{"pod.db create", "pod.web create"},
			check: func(t *testing.T, p *planner.Plan) {
				if s := p.Summary(); s != (planner.Summary{Add: 6}) {
					t.Errorf("summary = %+v, want 6 to add (2 pods, 4 containers)", s)
				}
				if p.Pods[0].Level != 0 || p.Pods[1].Level != 1 {
					t.Errorf("levels = %d, %d; want db at 0 and web at 1", p.Pods[0].Level, p.Pods[1].Level)
				}
			},
		},
		{
			name: "applied and unchanged is a no-op",
			want: nil,
		},
		{
			name:   "container env change replaces only that container",
			config: func(s string) string { return strings.Replace(s, `MODE = "prod"`, `MODE = "dev"`, 1) },
			want:   []string{"pod.web.container.app replace"},
			check: func(t *testing.T, p *planner.Plan) {
				f := p.Pods[1].Containers[1].Fields
				if len(f) != 1 || f[0].Path != "env.MODE" || f[0].Before != "prod" || f[0].After != "dev" || !f[0].ForcesReplace {
					t.Errorf("fields = %+v, want env.MODE prod -> dev forcing replacement", f)
				}
			},
		},
		{
			name:   "pod hostname change replaces the pod and recreates its containers",
			config: func(s string) string { return strings.Replace(s, `hostname = "db"`, `hostname = "database"`, 1) },
			want:   []string{"pod.db replace"},
			check: func(t *testing.T, p *planner.Plan) {
				pc := p.Pods[0]
				if len(pc.Fields) != 1 || pc.Fields[0].Path != "hostname" || pc.Fields[0].Before != "db" || pc.Fields[0].After != "database" {
					t.Errorf("fields = %+v", pc.Fields)
				}
				if len(pc.Containers) != 1 || pc.Containers[0].Action != planner.Create {
					t.Errorf("containers = %+v, want main created", pc.Containers)
				}
				if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "pod.db.container.main; it gets up to 2m0s") {
					t.Errorf("warnings = %q, want the 2m grace of db/main", p.Warnings)
				}
			},
		},
		{
			name: "a pod removed from the configuration is destroyed",
			config: func(s string) string {
				s = strings.Replace(s, `depends_on = ["pod.db"]`, ``, 1)
				return s[:strings.Index(s, `pod "db"`)] + s[strings.Index(s, `pod "web"`):]
			},
			want: []string{"pod.db destroy"},
			check: func(t *testing.T, p *planner.Plan) {
				pc := p.Pods[len(p.Pods)-1]
				if len(pc.Containers) != 1 || time.Duration(pc.Containers[0].StopTimeout) != 2*time.Minute {
					t.Errorf("containers = %+v, want main stopped with its recorded 2m grace", pc.Containers)
				}
			},
		},
		{
			name: "a removed container is destroyed",
			config: func(s string) string {
				return strings.Replace(s, "  container \"sidecar\" {\n    image = \"docker.io/library/busybox:1.36\"\n  }\n", "", 1)
			},
			want: []string{"pod.web.container.sidecar destroy"},
		},
		{
			name:    "crashed container with restart always is restarted",
			runtime: func(t *testing.T, rt *fake.Runtime) { rt.Exit(containerID(t, rt, "web", "app"), 3) },
			want:    []string{"pod.web.container.app restart"},
			check: func(t *testing.T, p *planner.Plan) {
				cc := p.Pods[1].Containers[1]
				if cc.Attempt != 1 || !strings.Contains(cc.Reasons[0].Text, "exited with code 3") {
					t.Errorf("attempt %d reasons %q", cc.Attempt, cc.Reasons)
				}
			},
		},
		{
			name: "restart never leaves an exited container alone",
			config: func(s string) string {
				return strings.Replace(s, `env   = { MODE = "prod" }`, `env   = { MODE = "prod" }`+"\nrestart = \"never\"", 1)
			},
			runtime: func(t *testing.T, rt *fake.Runtime) { rt.Exit(containerID(t, rt, "web", "app"), 3) },
			want:    nil,
		},
		{
			name: "restart on_failure ignores a clean exit",
			config: func(s string) string {
				return strings.Replace(s, `env   = { MODE = "prod" }`, `env   = { MODE = "prod" }`+"\nrestart = \"on_failure\"", 1)
			},
			runtime: func(t *testing.T, rt *fake.Runtime) { rt.Exit(containerID(t, rt, "web", "app"), 0) },
			want:    nil,
		},
		{
			name: "restart on_failure restarts a failed exit",
			config: func(s string) string {
				return strings.Replace(s, `env   = { MODE = "prod" }`, `env   = { MODE = "prod" }`+"\nrestart = \"on_failure\"", 1)
			},
			runtime: func(t *testing.T, rt *fake.Runtime) { rt.Exit(containerID(t, rt, "web", "app"), 1) },
			want:    []string{"pod.web.container.app restart"},
		},
		{
			name:   "a changed init container replaces the pod",
			config: func(s string) string { return strings.Replace(s, `args  = ["true"]`, `args  = ["false"]`, 1) },
			want:   []string{"pod.web replace"},
		},
		{
			name: "a sandbox that is not ready is replaced",
			runtime: func(t *testing.T, rt *fake.Runtime) {
				for _, sb := range rt.Sandboxes {
					if sb.Labels[spec.LabelPod] == "db" {
						sb.State = cri.PodSandboxState_SANDBOX_NOTREADY
					}
				}
			},
			want: []string{"pod.db replace"},
		},
		{
			name: "prevent_replace makes a replacing plan fail",
			config: func(s string) string {
				return strings.Replace(s, `hostname = "db"`, "hostname = \"other\"\nprevent_replace = true", 1)
			},
			want: []string{"pod.db replace"},
			check: func(t *testing.T, p *planner.Plan) {
				if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "--allow-replace") {
					t.Errorf("errors = %q", p.Errors)
				}
			},
		},
		{
			name: "allow-replace overrides prevent_replace",
			config: func(s string) string {
				return strings.Replace(s, `hostname = "db"`, "hostname = \"other\"\nprevent_replace = true", 1)
			},
			opts: planner.Options{AllowReplace: true},
			want: []string{"pod.db replace"},
			check: func(t *testing.T, p *planner.Plan) {
				if len(p.Errors) != 0 {
					t.Errorf("errors = %q", p.Errors)
				}
			},
		},
		{
			name: "a missing image is pulled",
			config: func(s string) string {
				return strings.Replace(s, `container "sidecar" {`+"\n    image = \"docker.io/library/busybox:1.36\"", `container "sidecar" {`+"\n    image = \"alpine:3\"", 1)
			},
			want: []string{"pod.web.container.sidecar replace"},
			check: func(t *testing.T, p *planner.Plan) {
				if cc := p.Pods[1].Containers[2]; !cc.Pull {
					t.Errorf("sidecar does not pull its missing image")
				}
			},
		},
		{
			name: "pull never with a missing image is an error",
			config: func(s string) string {
				return strings.Replace(s, `container "sidecar" {`+"\n    image = \"docker.io/library/busybox:1.36\"", `container "sidecar" {`+"\n    pull = \"never\"\n    image = \"alpine:3\"", 1)
			},
			want: []string{"pod.web.container.sidecar replace"},
			check: func(t *testing.T, p *planner.Plan) {
				if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], `pull = "never"`) {
					t.Errorf("errors = %q", p.Errors)
				}
			},
		},
		{
			name:   "a changed secret is shown redacted",
			config: func(s string) string { return strings.Replace(s, `"hunter2"`, `"swordfish"`, 1) },
			want:   []string{"pod.db.container.main replace"},
			check: func(t *testing.T, p *planner.Plan) {
				f := p.Pods[0].Containers[0].Fields
				if len(f) != 1 || f[0].Path != "env.PASSWORD" || f[0].Before != spec.Redacted || f[0].After != spec.Redacted {
					t.Errorf("fields = %+v, want env.PASSWORD redacted on both sides", f)
				}
			},
		},
		{
			name: "a policy-only change does nothing",
			config: func(s string) string {
				return strings.Replace(s, `stop_timeout = "2m"`, `stop_timeout = "5m"`+"\nrestart = \"on_failure\"", 1)
			},
			want: nil,
		},
		{
			name: "other stacks and foreign pods are invisible",
			runtime: func(t *testing.T, rt *fake.Runtime) {
				rt.Sandboxes["foreign"] = &cri.PodSandbox{Id: "foreign", Metadata: &cri.PodSandboxMetadata{Name: "db"}, State: cri.PodSandboxState_SANDBOX_READY}
				rt.Sandboxes["other"] = &cri.PodSandbox{Id: "other", Metadata: &cri.PodSandboxMetadata{Name: "db"}, State: cri.PodSandboxState_SANDBOX_READY,
					Labels: map[string]string{spec.LabelStack: "other", spec.LabelPod: "db"}}
			},
			want: nil,
		},
		{
			name: "a container created but never started is restarted",
			runtime: func(t *testing.T, rt *fake.Runtime) {
				rt.Containers[containerID(t, rt, "web", "sidecar")].State = cri.ContainerState_CONTAINER_CREATED
			},
			want: []string{"pod.web.container.sidecar restart"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rt *fake.Runtime
			if tc.fresh {
				rt = fake.New(image)
			} else {
				rt = newApplied(t)
			}
			if tc.runtime != nil {
				tc.runtime(t, rt)
			}
			src := base
			if tc.config != nil {
				src = tc.config(base)
			}
			p := plan(t, rt, spectest.Load(t, src), tc.opts)
			got := changes(p)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("changes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if tc.want == nil && p.HasChanges() {
				t.Errorf("HasChanges() = true for a plan without changes")
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// Planning costs three list calls however many pods there are, and no
// status call while every container runs.
func TestObserveCallsAreConstant(t *testing.T) {
	rt := newApplied(t)
	plan(t, rt, spectest.Load(t, base), planner.Options{})
	want := map[string]int{"ListPodSandbox": 1, "ListContainers": 1, "ListImages": 1, "ContainerStatus": 1}
	// ContainerStatus: the init container has exited, its code is read.
	got := rt.Calls()
	if len(got) != len(want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("calls[%s] = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// The observed fingerprint changes with the actual state, and only then.
func TestFingerprint(t *testing.T) {
	rt := newApplied(t)
	cfg := spectest.Load(t, base)
	a := plan(t, rt, cfg, planner.Options{}).Observed()
	if b := plan(t, rt, cfg, planner.Options{}).Observed(); a != b {
		t.Fatalf("fingerprint changed without a change: %s vs %s", a, b)
	}
	rt.Exit(containerID(t, rt, "web", "app"), 1)
	if c := plan(t, rt, cfg, planner.Options{}).Observed(); c == a {
		t.Fatalf("fingerprint did not change after a container exited")
	}
}

// After apply, a plan of the same configuration is empty: apply did what
// the plan said, for every kind of change.
func TestApplyThenPlanIsEmpty(t *testing.T) {
	mutations := map[string]func(string) string{
		"env":      func(s string) string { return strings.Replace(s, `MODE = "prod"`, `MODE = "dev"`, 1) },
		"hostname": func(s string) string { return strings.Replace(s, `hostname = "db"`, `hostname = "x"`, 1) },
		"init":     func(s string) string { return strings.Replace(s, `args  = ["true"]`, `args  = ["yes"]`, 1) },
		"secret":   func(s string) string { return strings.Replace(s, `"hunter2"`, `"swordfish"`, 1) },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			rt := newApplied(t)
			cfg := spectest.Load(t, mutate(base))
			converge(t, rt, cfg)
			if got := changes(plan(t, rt, cfg, planner.Options{})); len(got) > 0 {
				t.Fatalf("plan after apply: %v", got)
			}
		})
	}
}

const vm = `
berth { stack = "test" }
pod "vm" {
  privileged = true
  host_network = true
  container "windows" {
    image      = "docker.io/library/busybox:1.36"
    privileged = true
    device "/dev/kvm" {}
    mount "/storage" { host_path = "/etc" }
    mount "/sock" { host_path = "/run/containerd" }
    resources {
      cpus   = 2
      memory = "4GiB"
    }
  }
}
`

// Resources change in place; lifting a limit replaces; risky settings warn.
func TestResourcesAndRisk(t *testing.T) {
	rt := fake.New(image)
	opts := planner.Options{RuntimeSocket: "/run/containerd/containerd.sock"}
	first := plan(t, rt, spectest.Load(t, vm), opts)
	wantWarnings := []string{
		"pod.vm is privileged",
		"pod.vm shares the host's network namespace",
		"pod.vm.container.windows is privileged",
		"pod.vm.container.windows mounts the host's /etc (read-write)",
		"pod.vm.container.windows mounts /run/containerd (read-write), which holds the container runtime's socket",
	}
	for i, w := range wantWarnings {
		if i >= len(first.Warnings) || !strings.HasPrefix(first.Warnings[i], w) {
			t.Fatalf("warnings = %q\nwant prefixes %q", first.Warnings, wantWarnings)
		}
	}
	converge(t, rt, spectest.Load(t, vm))
	id := containerID(t, rt, "vm", "windows")

	// More memory: an in-place update, no warnings (nothing is restarted).
	more := strings.Replace(vm, `"4GiB"`, `"8GiB"`, 1)
	p := plan(t, rt, spectest.Load(t, more), opts)
	if got := changes(p); len(got) != 1 || got[0] != "pod.vm.container.windows update" {
		t.Fatalf("changes = %v", got)
	}
	f := p.Pods[0].Containers[0].Fields
	if len(f) != 1 || f[0].Path != "resources.memory" || f[0].Before != float64(4<<30) || f[0].After != float64(8<<30) || f[0].ForcesReplace {
		t.Fatalf("fields = %+v", f)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings for an in-place update: %q", p.Warnings)
	}
	converge(t, rt, spectest.Load(t, more))
	if containerID(t, rt, "vm", "windows") != id {
		t.Fatal("the container was replaced by a resources change")
	}
	if got := rt.Configs[id].Linux.Resources.MemoryLimitInBytes; got != 8<<30 {
		t.Fatalf("memory limit after update = %d", got)
	}
	// The record still says 4GiB; the live limits are read, so no change.
	rt.ResetCalls()
	if got := changes(plan(t, rt, spectest.Load(t, more), opts)); len(got) != 0 {
		t.Fatalf("plan after the update: %v", got)
	}
	if rt.Calls()["ContainerStatus"] != 1 {
		t.Errorf("calls = %v, want one status read for the updated container", rt.Calls())
	}

	// Lifting the memory limit needs a new container.
	lifted := strings.Replace(more, `memory = "8GiB"`, ``, 1)
	p = plan(t, rt, spectest.Load(t, lifted), opts)
	if got := changes(p); len(got) != 1 || got[0] != "pod.vm.container.windows replace" {
		t.Fatalf("changes = %v", got)
	}
}
