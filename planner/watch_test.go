package planner_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

func TestBackoffDelay(t *testing.T) {
	b := planner.Backoff{Initial: time.Second, Max: 5 * time.Minute}
	want := map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 50: 5 * time.Minute}
	for n, d := range want {
		if got := b.Delay(n); got != d {
			t.Errorf("Delay(%d) = %s, want %s", n, got, d)
		}
	}
}

// TestDiffWatch covers the decisions only a watcher's knowledge allows:
// crash backoff, probe failures and readiness. Each case starts from base
// applied, with web/app exited with code 3 unless it says otherwise.
func TestDiffWatch(t *testing.T) {
	app := spec.ContainerAddress("web", "app")
	b := planner.Backoff{Initial: time.Second, Max: time.Minute, Reset: 10 * time.Minute}
	withReadiness := func(s string) string {
		return strings.Replace(s, `stop_timeout = "2m"`, `stop_timeout = "2m"
    probe "readiness" {
      exec { command = ["true"] }
    }`, 1)
	}
	cases := []struct {
		name    string
		config  func(string) string
		running bool          // leave web/app running
		streak  int           // restarts in a row of web/app so far
		since   time.Duration // time since web/app exited
		reset   time.Duration // Backoff.Reset, if not b's
		probes  func(ids map[string]string) map[string]planner.ProbeResult
		want    []string
		check   func(*testing.T, *planner.Plan)
	}{
		{
			name: "a first crash restarts at once",
			want: []string{"pod.web.container.app restart"},
			check: func(t *testing.T, p *planner.Plan) {
				if cc := p.Pods[1].Containers[1]; cc.Streak != 1 || cc.Reasons[0].Code != planner.ReasonExited {
					t.Errorf("streak %d, reasons %v; want 1 and exited", cc.Streak, cc.Reasons)
				}
			},
		},
		{
			name:   "the second crash waits out the initial delay",
			streak: 1,
			want:   []string{"pod.web.container.app defer"},
			check: func(t *testing.T, p *planner.Plan) {
				cc := p.Pods[1].Containers[1]
				r := cc.Reasons[len(cc.Reasons)-1]
				if r.Code != planner.ReasonCrashBackoff || !strings.Contains(r.Text, "restart 2 in a row waits 1s") {
					t.Errorf("reasons %v, want crash backoff for restart 2", cc.Reasons)
				}
				if cc.Until.IsZero() || p.HasChanges() {
					t.Errorf("until %v, has changes %v: want a due time and nothing to do now", cc.Until, p.HasChanges())
				}
			},
		},
		{
			name:   "the delay gone by, it restarts",
			streak: 1, since: 2 * time.Second,
			want: []string{"pod.web.container.app restart"},
			check: func(t *testing.T, p *planner.Plan) {
				if cc := p.Pods[1].Containers[1]; cc.Streak != 2 {
					t.Errorf("streak %d, want 2", cc.Streak)
				}
			},
		},
		{
			name:   "the delay is capped",
			streak: 30, since: 59 * time.Second,
			want: []string{"pod.web.container.app defer"},
		},
		{
			name:   "a long run starts the streak over",
			streak: 30, reset: time.Nanosecond,
			want: []string{"pod.web.container.app restart"},
			check: func(t *testing.T, p *planner.Plan) {
				if cc := p.Pods[1].Containers[1]; cc.Streak != 1 {
					t.Errorf("streak %d, want 1", cc.Streak)
				}
			},
		},
		{
			name:    "a failed liveness probe restarts, with the failure as its reason",
			running: true, streak: 4,
			probes: func(ids map[string]string) map[string]planner.ProbeResult {
				return map[string]planner.ProbeResult{ids["web/app"]: {Failed: &planner.ProbeFailure{Kind: spec.Liveness, Failures: 3, Detail: "test exited with code 1"}}}
			},
			want: []string{"pod.web.container.app restart"},
			check: func(t *testing.T, p *planner.Plan) {
				cc := p.Pods[1].Containers[1]
				if len(cc.Reasons) != 1 || cc.Reasons[0].Code != planner.ReasonProbeFailed || cc.Reasons[0].Text != "liveness probe failed 3 times in a row: test exited with code 1" {
					t.Errorf("reasons %v", cc.Reasons)
				}
				if cc.Attempt != 1 || cc.Streak != 5 {
					t.Errorf("attempt %d streak %d, want 1 and 5", cc.Attempt, cc.Streak)
				}
			},
		},
		{
			name: `a failed probe under restart = "never" stops the container`,
			config: func(s string) string {
				return strings.Replace(s, `MODE = "prod" }`, "MODE = \"prod\" }\nrestart = \"never\"", 1)
			},
			running: true,
			probes: func(ids map[string]string) map[string]planner.ProbeResult {
				return map[string]planner.ProbeResult{ids["web/app"]: {Failed: &planner.ProbeFailure{Kind: spec.Startup, Failures: 1, Detail: "timed out"}}}
			},
			want: []string{"pod.web.container.app stop"},
			check: func(t *testing.T, p *planner.Plan) {
				if s := p.Summary(); s != (planner.Summary{Change: 1}) {
					t.Errorf("summary %+v, want one change", s)
				}
			},
		},
		{
			name: "a dependency without readiness probes holds nothing back",
			config: func(s string) string {
				return strings.Replace(withReadiness(s), `MODE = "prod"`, `MODE = "dev"`, 1) + "pod \"late\" {\n  depends_on = [\"pod.web\"]\n  container \"c\" {\n    image = \"docker.io/library/busybox:1.36\"\n  }\n}\n"
			},
			running: true,
			probes:  func(map[string]string) map[string]planner.ProbeResult { return nil },
			want:    []string{"pod.web.container.app replace", "pod.late create"},
		},
		{
			name: "a pod created after an unready one is deferred, and so are its dependents",
			config: func(s string) string {
				return withReadiness(s) + "pod \"api\" {\n  depends_on = [\"pod.db\"]\n  container \"c\" {\n    image = \"docker.io/library/busybox:1.36\"\n  }\n}\n" +
					"pod \"edge\" {\n  depends_on = [\"pod.api\"]\n  container \"c\" {\n    image = \"docker.io/library/busybox:1.36\"\n  }\n}\n"
			},
			running: true,
			probes: func(ids map[string]string) map[string]planner.ProbeResult {
				return map[string]planner.ProbeResult{ids["db/main"]: {Ready: false}}
			},
			want: []string{"pod.api defer", "pod.edge defer"},
			check: func(t *testing.T, p *planner.Plan) {
				api, edge := podNamed(t, p, "api"), podNamed(t, p, "edge")
				if api.Reasons[0].Code != planner.ReasonWaitingReady || api.Reasons[0].Text != "waiting: pod.db is not ready: container main has not passed its readiness probe" {
					t.Errorf("pod.api reasons %v", api.Reasons)
				}
				if edge.Reasons[0].Text != "waiting: pod.api is held back" || len(edge.Containers) != 0 {
					t.Errorf("pod.edge reasons %v, containers %d", edge.Reasons, len(edge.Containers))
				}
				if p.HasChanges() {
					t.Error("a plan of deferrals has changes")
				}
			},
		},
		{
			name: "once the dependency is ready, the pod is created",
			config: func(s string) string {
				return withReadiness(s) + "pod \"api\" {\n  depends_on = [\"pod.db\"]\n  container \"c\" {\n    image = \"docker.io/library/busybox:1.36\"\n  }\n}\n"
			},
			running: true,
			probes: func(ids map[string]string) map[string]planner.ProbeResult {
				return map[string]planner.ProbeResult{ids["db/main"]: {Ready: true}}
			},
			want: []string{"pod.api create"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := newApplied(t)
			cfg := base
			if tc.config != nil {
				cfg = tc.config(cfg)
			}
			if !tc.running {
				rt.Exit(containerID(t, rt, "web", "app"), 3)
			}
			ids := map[string]string{"web/app": containerID(t, rt, "web", "app"), "db/main": containerID(t, rt, "db", "main")}
			c := spectest.Load(t, cfg)
			snap, err := planner.ObserveWorkloads(context.Background(), rt, c)
			if err != nil {
				t.Fatal(err)
			}
			w := &planner.WatchState{Backoff: b, Streaks: map[spec.Address]int{app: tc.streak}}
			if tc.reset > 0 {
				w.Backoff.Reset = tc.reset
			}
			w.Now = snap.Pods["web"].Containers["app"].FinishedAt.Add(tc.since)
			if tc.running {
				w.Now = time.Now()
			}
			if tc.probes != nil {
				w.Probes = tc.probes(ids)
			}
			p := planner.Diff(c, snap, planner.Options{Watch: w})
			if got := changes(p); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("changes = %q, want %q", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// A destroy plan says destroy was asked; a plan without the pod says it
// left the configuration.
func TestDestroyReasons(t *testing.T) {
	rt := newApplied(t)
	empty := spectest.Load(t, `berth { stack = "test" }`)
	for _, tc := range []struct {
		destroy bool
		want    planner.ReasonCode
	}{{false, planner.ReasonRemoved}, {true, planner.ReasonDestroyRequested}} {
		p := plan(t, rt, empty, planner.Options{Destroy: tc.destroy})
		for _, pc := range p.Pods {
			if pc.Action != planner.Destroy || len(pc.Reasons) != 1 || pc.Reasons[0].Code != tc.want {
				t.Errorf("destroy=%v: %s %s %v, want destroy for %s", tc.destroy, pc.Address, pc.Action, pc.Reasons, tc.want)
			}
		}
	}
}

func podNamed(t *testing.T, p *planner.Plan, name string) *planner.PodChange {
	t.Helper()
	for _, pc := range p.Pods {
		if pc.Name == name {
			return pc
		}
	}
	t.Fatalf("no pod %s in the plan", name)
	return nil
}

// A forward that listens beyond loopback is a plan warning.
func TestForwardBeyondLoopbackWarns(t *testing.T) {
	for listen, warn := range map[string]bool{"0.0.0.0:8080": true, "192.0.2.1:8080": true, "127.0.0.1:8080": false, "[::1]:8080": false} {
		cfg := spectest.Load(t, `
pod "web" {
  forward "http" {
    port   = 80
    listen = "`+listen+`"
  }
  container "app" {
    image = "docker.io/library/busybox:1.36"
  }
}
`)
		p := plan(t, fake.New(image), cfg, planner.Options{})
		got := slices.ContainsFunc(p.Warnings, func(w string) bool {
			return strings.Contains(w, "pod.web.forward.http listens on "+listen+", not on loopback")
		})
		if got != warn {
			t.Errorf("listen %s: warning %v, want %v (%q)", listen, got, warn, p.Warnings)
		}
	}
}
