package watch

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Minute}
	want := map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 50: 5 * time.Minute}
	for n, d := range want {
		if got := b.Delay(n); got != d {
			t.Errorf("Delay(%d) = %s, want %s", n, got, d)
		}
	}
}

// restartPlan is a plan that restarts web/app, which ran from started to
// finished.
func restartPlan(started, finished time.Time) *planner.Plan {
	return &planner.Plan{Pods: []*planner.PodChange{{
		Name: "web", Address: "pod.web", Action: planner.NoOp,
		Actual: &planner.ObservedPod{Containers: map[string]*planner.ObservedContainer{
			"app": {Name: "app", StartedAt: started, FinishedAt: finished},
		}},
		Containers: []*planner.ContainerChange{{Name: "app", Address: "pod.web.container.app", Action: planner.Restart}},
	}}}
}

func TestHoldRestarts(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	b := Backoff{Initial: time.Second, Max: time.Minute, Reset: 10 * time.Minute}
	tests := []struct {
		name      string
		before    int // restarts in a row already done
		ran       time.Duration
		exitedAgo time.Duration
		wantHeld  bool
		wantUntil time.Time
		wantAfter int // the count after hold
	}{
		{name: "first crash restarts at once", before: 0, ran: time.Second, exitedAgo: 0},
		{name: "second crash waits the initial delay", before: 1, ran: time.Second, exitedAgo: 0, wantHeld: true, wantUntil: now.Add(time.Second), wantAfter: 1},
		{name: "second crash after the delay went by", before: 1, ran: time.Second, exitedAgo: 2 * time.Second, wantAfter: 1},
		{name: "fourth crash waits four seconds", before: 3, ran: time.Second, exitedAgo: 3 * time.Second, wantHeld: true, wantUntil: now.Add(time.Second), wantAfter: 3},
		{name: "capped at max", before: 20, ran: time.Second, exitedAgo: 30 * time.Second, wantHeld: true, wantUntil: now.Add(30 * time.Second), wantAfter: 20},
		{name: "a long run resets the count", before: 20, ran: 11 * time.Minute, exitedAgo: 0, wantAfter: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			finished := now.Add(-tt.exitedAgo)
			plan := restartPlan(finished.Add(-tt.ran), finished)
			done := crashes{}
			if tt.before > 0 {
				done["web/app"] = tt.before
			}
			held := hold(plan, now, done, b, func(string) (bool, string) { return true, "" })
			if tt.wantHeld {
				if len(held) != 1 || held[0].Address != "pod.web.container.app" || !held[0].Until.Equal(tt.wantUntil) || !strings.Contains(held[0].Reason, "crash backoff") {
					t.Fatalf("held = %+v, want the restart held until %s", held, tt.wantUntil)
				}
				if len(plan.Pods[0].Containers) != 0 {
					t.Error("a held restart is still in the plan")
				}
			} else {
				if len(held) != 0 || len(plan.Pods[0].Containers) != 1 {
					t.Fatalf("held = %+v, want the restart to go ahead", held)
				}
			}
			if done["web/app"] != tt.wantAfter {
				t.Errorf("count = %d, want %d", done["web/app"], tt.wantAfter)
			}
		})
	}
}

func TestHoldForReadiness(t *testing.T) {
	pods := func() *planner.Plan {
		return &planner.Plan{Pods: []*planner.PodChange{
			{Name: "db", Address: "pod.db", Action: planner.NoOp, Level: 0},
			{Name: "cache", Address: "pod.cache", Action: planner.Create, Level: 0},
			{Name: "api", Address: "pod.api", Action: planner.Create, Level: 1, DependsOn: []string{"db", "cache"}},
			{Name: "web", Address: "pod.web", Action: planner.Replace, Level: 2, DependsOn: []string{"api"}},
			{Name: "metrics", Address: "pod.metrics", Action: planner.NoOp, Level: 1, DependsOn: []string{"db"}},
		}}
	}
	tests := []struct {
		name     string
		notReady map[string]string
		wantHeld []string
		wantKept []string
	}{
		{name: "all ready", wantKept: []string{"db", "cache", "api", "web", "metrics"}},
		{name: "db not ready holds api and, through it, web", notReady: map[string]string{"db": "readiness probe failing"},
			wantHeld: []string{"pod.api: waiting: pod.db is not ready: readiness probe failing", "pod.web: waiting: pod.api is held back"},
			wantKept: []string{"db", "cache", "metrics"}},
		{name: "a running dependent is not stopped", notReady: map[string]string{"api": "x"},
			wantHeld: []string{"pod.web: waiting: pod.api is not ready: x"}, wantKept: []string{"db", "cache", "api", "metrics"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := pods()
			held := hold(plan, time.Now(), crashes{}, DefaultBackoff, func(pod string) (bool, string) {
				why, bad := tt.notReady[pod]
				return !bad, why
			})
			var got []string
			for _, h := range held {
				got = append(got, h.Address+": "+h.Reason)
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantHeld, "\n") {
				t.Errorf("held:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantHeld, "\n"))
			}
			var kept []string
			for _, pc := range plan.Pods {
				kept = append(kept, pc.Name)
			}
			if strings.Join(kept, ",") != strings.Join(tt.wantKept, ",") {
				t.Errorf("kept %v, want %v", kept, tt.wantKept)
			}
		})
	}
}
