package probe

import (
	"context"
	"maps"
	"reflect"
	"sync"
	"time"

	"github.com/berth-dev/berth/spec"
)

// Container is one running container to probe.
type Container struct {
	Pod, Name string
	Target    Target
	// StartedAt begins the probes' start periods.
	StartedAt time.Time
	Probes    []spec.Probe
}

// Verdict is a change worth acting on: a liveness or startup probe that
// reached its failure threshold, or a readiness probe that flipped.
type Verdict struct {
	Pod, Container, ContainerID string
	Kind                        spec.ProbeKind
	// Failed is set for liveness and startup verdicts: the container should
	// be restarted. For readiness, Ready says which way it flipped.
	Failed bool
	Ready  bool
	// Failures is the count of consecutive failures behind a failed verdict.
	Failures int
	Detail   string
}

// Manager runs one worker per probed container. Its verdicts go to the
// function given to NewManager, which must not block for long.
type Manager struct {
	ex      Execer
	verdict func(Verdict)

	running sync.WaitGroup // every worker, stopped or not, until it returns

	mu      sync.Mutex
	workers map[string]*worker // by container ID
	ready   map[string]bool    // by container ID, for containers with a readiness probe
}

// NewManager returns a manager whose checks run through ex.
func NewManager(ex Execer, verdict func(Verdict)) *Manager {
	return &Manager{ex: ex, verdict: verdict, workers: map[string]*worker{}, ready: map[string]bool{}}
}

type worker struct {
	c      Container
	cancel context.CancelFunc
}

// Sync makes the running workers match want: new containers get a worker,
// gone ones lose theirs, and a container whose probes changed in the
// configuration starts over with the new ones.
func (m *Manager) Sync(ctx context.Context, want []Container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]bool{}
	for _, c := range want {
		if len(c.Probes) == 0 {
			continue
		}
		id := c.Target.ContainerID
		keep[id] = true
		if w, ok := m.workers[id]; ok {
			if reflect.DeepEqual(w.c.Probes, c.Probes) && w.c.Target == c.Target {
				continue
			}
			m.stopLocked(id)
		}
		wctx, cancel := context.WithCancel(ctx)
		m.workers[id] = &worker{c: c, cancel: cancel}
		if c.probe(spec.Readiness) != nil {
			m.ready[id] = false
		}
		m.running.Go(func() { m.run(wctx, c) })
	}
	for id := range m.workers {
		if !keep[id] {
			m.stopLocked(id)
		}
	}
}

func (m *Manager) stopLocked(id string) {
	w := m.workers[id]
	w.cancel()
	delete(m.workers, id)
	delete(m.ready, id)
}

// Stop ends every worker and waits for them.
func (m *Manager) Stop() {
	m.mu.Lock()
	for id := range m.workers {
		m.stopLocked(id)
	}
	m.mu.Unlock()
	m.running.Wait()
}

// Ready reports whether the container passed its readiness probe; probed
// is false when berth is not probing it for readiness.
func (m *Manager) Ready(containerID string) (ready, probed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ready, probed = m.ready[containerID]
	return ready, probed
}

func (c Container) probe(kind spec.ProbeKind) *spec.Probe { return spec.ProbeOf(c.Probes, kind) }

// run is one container's worker: the startup probe until it passes, then
// liveness and readiness side by side. It returns when a liveness or
// startup verdict fails the container, or when ctx ends.
func (m *Manager) run(ctx context.Context, c Container) {
	if p := c.probe(spec.Startup); p != nil {
		if !m.loop(ctx, c, p) {
			return
		}
	}
	var wg sync.WaitGroup
	for _, kind := range []spec.ProbeKind{spec.Liveness, spec.Readiness} {
		if p := c.probe(kind); p != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.loop(ctx, c, p)
			}()
		}
	}
	wg.Wait()
}

// loop checks p every interval. A startup probe returns true on its first
// success; liveness and startup probes return false once their failures
// reach the threshold; readiness runs until ctx ends.
func (m *Manager) loop(ctx context.Context, c Container, p *spec.Probe) bool {
	var s streak
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	for {
		r := Check(ctx, m.ex, p, c.Target)
		if ctx.Err() != nil {
			return false
		}
		inGrace := time.Now().Before(c.StartedAt.Add(p.StartPeriod))
		s.record(r.OK, inGrace)
		switch p.Kind {
		case spec.Startup:
			if r.OK {
				return true
			}
			if s.failures >= p.FailureThreshold {
				m.verdict(Verdict{Pod: c.Pod, Container: c.Name, ContainerID: c.Target.ContainerID, Kind: p.Kind, Failed: true, Failures: s.failures, Detail: r.Detail})
				return false
			}
		case spec.Liveness:
			if s.failures >= p.FailureThreshold {
				m.verdict(Verdict{Pod: c.Pod, Container: c.Name, ContainerID: c.Target.ContainerID, Kind: p.Kind, Failed: true, Failures: s.failures, Detail: r.Detail})
				return false
			}
		case spec.Readiness:
			m.judgeReadiness(c, p, &s, r)
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

func (m *Manager) judgeReadiness(c Container, p *spec.Probe, s *streak, r Result) {
	id := c.Target.ContainerID
	m.mu.Lock()
	was, tracked := m.ready[id]
	now := was
	switch {
	case s.successes >= p.SuccessThreshold:
		now = true
	case s.failures >= p.FailureThreshold:
		now = false
	}
	if tracked && m.workers[id] != nil {
		m.ready[id] = now
	}
	m.mu.Unlock()
	if tracked && now != was {
		m.verdict(Verdict{Pod: c.Pod, Container: c.Name, ContainerID: id, Kind: p.Kind, Ready: now, Failures: s.failures, Detail: r.Detail})
	}
}

// streak counts consecutive results; a failure within the start period
// counts for nothing, as it does in Docker's health checks.
type streak struct{ successes, failures int }

func (s *streak) record(ok, inGrace bool) {
	switch {
	case ok:
		s.successes++
		s.failures = 0
	case !inGrace:
		s.failures++
		s.successes = 0
	}
}

// Readiness is every readiness verdict so far, by container ID: false
// until a container's readiness probe first passes.
func (m *Manager) Readiness() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.ready)
}
