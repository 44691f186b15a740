package planner_test

import (
	"context"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec/spectest"
)

const twoPods = `berth { stack = "web" }
pod "a" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "b" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}`

// An observation that lists one pod afresh sees that pod as the runtime
// has it now and every other as the earlier observation listed it, in
// one list of each kind; a plan made from it is covered only while it
// changes that pod alone.
func TestPodReads(t *testing.T) {
	ctx := context.Background()
	rt := fake.New(image)
	cfg := spectest.Load(t, twoPods)
	converge(t, rt, cfg)
	a, b := containerID(t, rt, "a", "main"), containerID(t, rt, "b", "main")

	// The earlier observation takes b's exit from the report; its lists
	// must keep b as they listed it.
	w := &planner.WatchState{Now: time.Now(), Backoff: planner.DefaultBackoff, Exits: map[string]planner.ReportedExit{b: {Code: 1, At: time.Now()}}}
	prev, err := planner.Observe(ctx, rt, cfg, planner.Options{Offline: true, Watch: w})
	if err != nil {
		t.Fatal(err)
	}
	if !prev.Pods["b"].Containers["main"].Exited() || prev.Partial() {
		t.Fatal("the earlier observation did not take b's reported exit, or was partial")
	}
	rt.Exit(a, 2)
	rt.Exit(b, 2) // not seen: b is not listed afresh

	rt.ResetCalls()
	reads := planner.StartPodReads(ctx, rt, prev, []string{"a"}, "", nil)
	snap, err := planner.Observe(ctx, rt, cfg, planner.Options{Offline: true, Reads: reads})
	if err != nil {
		t.Fatal(err)
	}
	calls := rt.Calls()
	for _, m := range []string{"ListPodSandbox", "ListContainers", "ListImages"} {
		if calls[m] != 1 {
			t.Errorf("%s called %d times, want 1", m, calls[m])
		}
	}
	if !snap.Partial() {
		t.Error("an observation of pod a alone says it listed every pod")
	}
	if got := snap.Pods["a"].Containers["main"]; !got.Exited() || got.ExitCode != 2 {
		t.Errorf("a's container: exited %v with %d, want its exit with 2 listed afresh", got.Exited(), got.ExitCode)
	}
	if got := snap.Pods["b"].Containers["main"].Container.State; got != cri.ContainerState_CONTAINER_RUNNING {
		t.Errorf("b's container is %s, want running as the earlier lists said", got)
	}

	plan := planner.Diff(cfg, snap, planner.Options{})
	if !snap.Covers(plan) {
		t.Errorf("a plan restarting a's container alone is not covered: %v", changes(plan))
	}
	more := spectest.Load(t, twoPods+`
pod "c" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}`)
	if plan := planner.Diff(more, snap, planner.Options{}); snap.Covers(plan) {
		t.Errorf("a plan that creates pod c, not listed afresh, is covered: %v", changes(plan))
	}
	if full, _ := planner.Observe(ctx, rt, more, planner.Options{Offline: true}); !full.Covers(planner.Diff(more, full, planner.Options{})) {
		t.Error("a full observation does not cover its own plan")
	}
	if planner.StartPodReads(ctx, rt, nil, []string{"a"}, "", nil) != nil || planner.StartPodReads(ctx, rt, prev, nil, "", nil) != nil {
		t.Error("reads of some pods were started with no earlier observation, or no pods")
	}
}

// The status call that an exit taken from the runtime's report needs is
// made beside the pod's lists, not after them: the observation itself
// makes no call.
func TestPodReadsReadTheExitsStatus(t *testing.T) {
	ctx := context.Background()
	rt := fake.New(image)
	cfg := spectest.Load(t, twoPods)
	converge(t, rt, cfg)
	a := containerID(t, rt, "a", "main")
	prev, err := planner.Observe(ctx, rt, cfg, planner.Options{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	rt.ExitLagging(a, 1, time.Minute) // told, not yet listed
	w := &planner.WatchState{Now: time.Now(), Backoff: planner.DefaultBackoff, Exits: map[string]planner.ReportedExit{a: {Code: 1, At: time.Now()}}}

	rt.ResetCalls()
	reads := planner.StartPodReads(ctx, rt, prev, []string{"a"}, "", w.Exits)
	<-reads.Done()
	if n := rt.Calls()["ContainerStatus"]; n != 1 {
		t.Fatalf("%d status calls beside the lists, want 1", n)
	}
	rt.ResetCalls()
	snap, err := planner.Observe(ctx, rt, cfg, planner.Options{Offline: true, Reads: reads, Watch: w})
	if err != nil {
		t.Fatal(err)
	}
	if n := rt.Calls()["ContainerStatus"]; n != 0 {
		t.Errorf("the observation made %d status calls, want none", n)
	}
	if got := snap.Pods["a"].Containers["main"]; !got.Exited() || got.ExitCode != 1 || !got.ExitReported || got.StartedAt.IsZero() {
		t.Errorf("a's container: exited %v with %d, reported %v, started %v; want the reported exit with 1 and its start", got.Exited(), got.ExitCode, got.ExitReported, got.StartedAt)
	}
}
