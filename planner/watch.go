package planner

import (
	"slices"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// WatchState is what a watcher knows beyond the runtime's state: its crash
// restarts in a row and its probes' results. Diff turns it into plan
// actions like any other input, so a watcher acts only through plans.
type WatchState struct {
	// Now is the time the backoffs are measured against.
	Now     time.Time
	Backoff Backoff
	// Streaks are the restarts in a row of each container so far.
	Streaks map[spec.Address]int
	// Probes are the probes' latest results, by container ID. A container
	// with a readiness probe and no result here is not ready yet.
	Probes map[string]ProbeResult
	// Exits are the exits the runtime reported that its lists may not
	// show yet, by container ID.
	Exits map[string]ReportedExit
}

// ProbeResult is what a container's probes said last.
type ProbeResult struct {
	// Ready is the readiness probe's verdict.
	Ready bool
	// Failed is a liveness or startup probe that failed its threshold.
	Failed *ProbeFailure
}

// ProbeFailure is a liveness or startup probe past its failure threshold.
type ProbeFailure struct {
	Kind     spec.ProbeKind
	Failures int
	Detail   string
}

// Backoff is the schedule of crash restarts: the first restart is at once,
// the next waits Initial, each later one twice as long up to Max. A
// container that ran for Reset before it exited starts the schedule over.
type Backoff struct {
	Initial, Max, Reset time.Duration
}

// DefaultBackoff is 1s doubling to 5m, reset after 10m of running.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// Delay is the wait before the restart that follows n restarts in a row.
func (b Backoff) Delay(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

func (w *WatchState) probeFailure(id string) *ProbeFailure {
	if w == nil {
		return nil
	}
	return w.Probes[id].Failed
}

// backOff defers the restart cc of the exited container oc until its crash
// backoff runs out, and reports whether it did. A restart that goes ahead
// carries its place in the streak, which a container that ran for
// Backoff.Reset starts over.
func (w *WatchState) backOff(cc *ContainerChange, oc *ObservedContainer) bool {
	streak := w.Streaks[cc.Address]
	finished := w.Now
	if !oc.FinishedAt.IsZero() {
		finished = oc.FinishedAt
		if !oc.StartedAt.IsZero() && oc.FinishedAt.Sub(oc.StartedAt) >= w.Backoff.Reset {
			streak = 0
		}
	}
	cc.Streak = streak + 1
	until := finished.Add(w.Backoff.Delay(streak))
	if !w.Now.Before(until) {
		return false
	}
	cc.Action, cc.Until = Defer, until
	cc.Reasons = append(cc.Reasons, because(ReasonCrashBackoff, "crash backoff: restart %d in a row waits %s, until %s",
		streak+1, w.Backoff.Delay(streak), until.Format(time.TimeOnly)))
	return true
}

// probeDecision restarts a running container whose liveness or startup
// probe failed, or stops it when its restart policy is "never": one action
// that carries the probe's failure as its reason.
func probeDecision(cc *ContainerChange, c *spec.Container, oc *ObservedContainer, f *ProbeFailure, w *WatchState) {
	failed := because(ReasonProbeFailed, "%s probe failed %d times in a row: %s", f.Kind, f.Failures, f.Detail)
	if c.Restart == spec.RestartNever {
		cc.Action = Stop
		failed.Text += `; restart = "never": stopped, not restarted`
	} else {
		cc.Action = Restart
		cc.Streak = w.Streaks[cc.Address] + 1
	}
	cc.Reasons = []Reason{failed}
}

// deferUnready holds back the starts of pods whose dependencies are not
// ready yet, and so, level by level, of their own dependents. Readiness
// gates starts only: a pod that runs is never stopped because a
// dependency became unready.
func deferUnready(cfg *spec.Config, snap *Snapshot, w *WatchState, plan *Plan) {
	deferred := map[string]bool{}
	byLevel := slices.Clone(plan.Pods)
	slices.SortStableFunc(byLevel, func(a, b *PodChange) int { return a.Level - b.Level })
	for _, pc := range byLevel {
		if pc.Action != Create && pc.Action != Replace {
			continue
		}
		for _, dep := range pc.DependsOn {
			var why Reason
			if deferred[dep] {
				why = because(ReasonWaitingReady, "waiting: %s is held back", spec.PodAddress(dep))
			} else if ready, reason := podReady(cfg, snap, w, dep); !ready {
				why = because(ReasonWaitingReady, "waiting: %s is not ready: %s", spec.PodAddress(dep), reason)
			} else {
				continue
			}
			deferred[pc.Name] = true
			pc.Action, pc.Reasons, pc.Containers = Defer, []Reason{why}, nil
			break
		}
	}
}

// podReady reports whether a pod is ready for its dependents: every one of
// its containers with a readiness probe runs and passed it. A pod without
// readiness probes is ready once it runs, which apply's order of levels
// already ensures.
func podReady(cfg *spec.Config, snap *Snapshot, w *WatchState, name string) (bool, string) {
	p := cfg.Pod(name)
	if p == nil {
		return true, ""
	}
	op := snap.Pods[name]
	for _, c := range p.Containers {
		if c.Probe(spec.Readiness) == nil {
			continue
		}
		var oc *ObservedContainer
		if op != nil {
			oc = op.Containers[c.Name]
		}
		if oc == nil || oc.Container.State != cri.ContainerState_CONTAINER_RUNNING {
			return false, "container " + c.Name + " is not running yet"
		}
		result, probed := w.Probes[oc.Container.Id]
		switch {
		case !probed:
			return false, "container " + c.Name + " is not probed yet"
		case !result.Ready:
			return false, "container " + c.Name + " has not passed its readiness probe"
		}
	}
	return true, ""
}
