package probe

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/spec"
)

func execProbe(kind spec.ProbeKind, failures int) spec.Probe {
	return spec.Probe{Kind: kind, Exec: []string{"check"}, Interval: 2 * time.Millisecond, Timeout: time.Second, FailureThreshold: failures, SuccessThreshold: 1}
}

// verdicts collects a manager's verdicts on a channel.
func verdicts() (chan Verdict, func(Verdict)) {
	ch := make(chan Verdict, 16)
	return ch, func(v Verdict) { ch <- v }
}

func next(t *testing.T, ch chan Verdict) Verdict {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no verdict")
	}
	return Verdict{}
}

func TestLivenessFailsAfterThreshold(t *testing.T) {
	ex := &fakeExec{}
	ex.code.Store(1)
	ch, report := verdicts()
	m := NewManager(ex, report)
	defer m.Stop()
	m.Sync(context.Background(), []Container{{Pod: "web", Name: "app", Target: Target{ContainerID: "c1"}, StartedAt: time.Now(),
		Probes: []spec.Probe{execProbe(spec.Liveness, 3)}}})
	v := next(t, ch)
	if !v.Failed || v.Kind != spec.Liveness || v.Failures != 3 || v.ContainerID != "c1" {
		t.Errorf("verdict = %+v, want liveness failed after 3", v)
	}
	if n := ex.calls.Load(); n != 3 {
		t.Errorf("%d checks before the verdict, want 3 (the worker stops after it)", n)
	}
}

func TestStartPeriodFailuresDoNotCount(t *testing.T) {
	ex := &fakeExec{}
	ex.code.Store(1)
	ch, report := verdicts()
	m := NewManager(ex, report)
	defer m.Stop()
	p := execProbe(spec.Liveness, 2)
	p.StartPeriod = 100 * time.Millisecond
	started := time.Now()
	m.Sync(context.Background(), []Container{{Pod: "web", Name: "app", Target: Target{ContainerID: "c1"}, StartedAt: started, Probes: []spec.Probe{p}}})
	next(t, ch)
	if since := time.Since(started); since < p.StartPeriod {
		t.Errorf("failed after %s, inside the %s start period", since, p.StartPeriod)
	}
}

func TestStartupHoldsLivenessBack(t *testing.T) {
	ex := &fakeExec{}
	ex.code.Store(1)
	ch, report := verdicts()
	m := NewManager(ex, report)
	defer m.Stop()
	m.Sync(context.Background(), []Container{{Pod: "web", Name: "app", Target: Target{ContainerID: "c1"}, StartedAt: time.Now(),
		Probes: []spec.Probe{execProbe(spec.Liveness, 1), execProbe(spec.Startup, 4)}}})
	v := next(t, ch)
	if v.Kind != spec.Startup || !v.Failed || v.Failures != 4 {
		t.Errorf("verdict = %+v, want the startup probe to fail first, after 4", v)
	}
}

func TestReadinessFlips(t *testing.T) {
	ex := &fakeExec{}
	ex.code.Store(1)
	ch, report := verdicts()
	m := NewManager(ex, report)
	defer m.Stop()
	m.Sync(context.Background(), []Container{{Pod: "db", Name: "pg", Target: Target{ContainerID: "c1"}, StartedAt: time.Now(),
		Probes: []spec.Probe{execProbe(spec.Readiness, 2)}}})
	if ready, probed := m.Ready("c1"); ready || !probed {
		t.Fatalf("Ready = %v, %v before any success; want false, true", ready, probed)
	}
	ex.code.Store(0)
	if v := next(t, ch); !v.Ready || v.Failed {
		t.Fatalf("verdict = %+v, want ready", v)
	}
	if ready, _ := m.Ready("c1"); !ready {
		t.Error("Ready = false after the readiness verdict")
	}
	ex.code.Store(1)
	if v := next(t, ch); v.Ready || v.Failures != 2 {
		t.Fatalf("verdict = %+v, want unready after 2 failures", v)
	}
	if _, probed := m.Ready("other"); probed {
		t.Error("a container without a readiness probe reported as probed")
	}
}

func TestSyncStopsGoneContainers(t *testing.T) {
	ex := &fakeExec{}
	m := NewManager(ex, func(Verdict) {})
	c := Container{Pod: "db", Name: "pg", Target: Target{ContainerID: "c1"}, StartedAt: time.Now(), Probes: []spec.Probe{execProbe(spec.Readiness, 1)}}
	m.Sync(context.Background(), []Container{c})
	m.Sync(context.Background(), nil)
	if _, probed := m.Ready("c1"); probed {
		t.Error("a removed container is still probed")
	}
	m.Stop()
	n := ex.calls.Load()
	time.Sleep(20 * time.Millisecond)
	if ex.calls.Load() != n {
		t.Error("checks went on after Stop")
	}
}
