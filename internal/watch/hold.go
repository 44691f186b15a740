package watch

import (
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/planner"
)

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

// crashes counts each container's restarts in a row, by "pod/container".
type crashes map[string]int

// Held is a change the watcher keeps back for now, and why.
type Held struct {
	Address string
	Reason  string
	// Until is when a held restart becomes due; zero for changes that wait
	// for an event (a dependency becoming ready).
	Until time.Time
}

// readiness answers whether a pod is ready for its dependents, and if not,
// what it waits for.
type readiness func(pod string) (ready bool, why string)

// hold takes out of plan the changes that must wait: restarts whose backoff
// has not run out, and creates of pods whose dependencies are not ready
// (and so, transitively, of their own dependents). It returns what it held.
func hold(plan *planner.Plan, now time.Time, done crashes, b Backoff, ready readiness) []Held {
	var held []Held
	for _, pc := range plan.Pods {
		kept := pc.Containers[:0]
		for _, cc := range pc.Containers {
			if cc.Action == planner.Restart {
				if until, wait := restartDue(pc, cc, now, done, b); wait {
					held = append(held, Held{Address: cc.Address, Until: until,
						Reason: fmt.Sprintf("crash backoff: restart %d in a row waits %s, until %s", done[key(pc.Name, cc.Name)]+1, b.Delay(done[key(pc.Name, cc.Name)]), until.Format(time.TimeOnly))})
					continue
				}
			}
			kept = append(kept, cc)
		}
		pc.Containers = kept
	}

	// Readiness gates starts only: a pod that runs is never stopped
	// because a dependency became unready.
	waiting := map[string]bool{}
	byLevel := slices.Clone(plan.Pods)
	slices.SortStableFunc(byLevel, func(a, b *planner.PodChange) int { return a.Level - b.Level })
	for _, pc := range byLevel {
		if pc.Action != planner.Create && pc.Action != planner.Replace {
			continue
		}
		for _, dep := range pc.DependsOn {
			why := ""
			if waiting[dep] {
				why = "pod." + dep + " is held back"
			} else if ok, reason := ready(dep); !ok {
				why = "pod." + dep + " is not ready: " + reason
			}
			if why != "" {
				waiting[pc.Name] = true
				held = append(held, Held{Address: pc.Address, Reason: "waiting: " + why})
				break
			}
		}
	}
	if len(waiting) > 0 {
		plan.Pods = slices.DeleteFunc(plan.Pods, func(pc *planner.PodChange) bool { return waiting[pc.Name] })
	}
	return held
}

// restartDue decides whether a restart may happen now, resetting the
// count of a container that ran long enough.
func restartDue(pc *planner.PodChange, cc *planner.ContainerChange, now time.Time, done crashes, b Backoff) (time.Time, bool) {
	k := key(pc.Name, cc.Name)
	var oc *planner.ObservedContainer
	if pc.Actual != nil {
		oc = pc.Actual.Containers[cc.Name]
	}
	finished := now
	if oc != nil && !oc.FinishedAt.IsZero() {
		finished = oc.FinishedAt
		if !oc.StartedAt.IsZero() && oc.FinishedAt.Sub(oc.StartedAt) >= b.Reset {
			delete(done, k)
		}
	}
	until := finished.Add(b.Delay(done[k]))
	return until, now.Before(until)
}

func key(pod, container string) string { return pod + "/" + container }
