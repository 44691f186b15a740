package planner_test

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// A replace takes the attempt after the old container's, so the new one
// can start before the old one is removed, and restarts count from it.
func TestAttempts(t *testing.T) {
	const pod = `pod "a" {
  container "main" {
    image = "docker.io/library/busybox:1.36"
    env   = { V = "1" }
  }
}`
	rt := fake.New(image)
	cfg := spectest.Load(t, pod)
	edited := spectest.Load(t, strings.Replace(pod, `"1"`, `"2"`, 1))
	for i, step := range []struct {
		change        func()
		cfg           *spec.Config
		action        planner.Action
		attempt, base uint32
		restarts      uint32 // of the container the step leaves
	}{
		{func() {}, cfg, planner.NoOp, 0, 0, 0}, // created by converge below
		{func() { rt.Exit(containerID(t, rt, "a", "main"), 1) }, cfg, planner.Restart, 1, 0, 1},
		{func() { rt.Exit(containerID(t, rt, "a", "main"), 1) }, cfg, planner.Restart, 2, 0, 2},
		{func() {}, edited, planner.Replace, 3, 3, 0},
		{func() { rt.Exit(containerID(t, rt, "a", "main"), 1) }, edited, planner.Restart, 4, 3, 1},
	} {
		if i == 0 {
			converge(t, rt, cfg)
		}
		step.change()
		snap, err := planner.ObserveWorkloads(context.Background(), rt, step.cfg)
		if err != nil {
			t.Fatal(err)
		}
		plan := planner.Diff(step.cfg, snap, planner.Options{})
		cc := plan.Pods[0].Containers[0]
		if cc.Action != step.action || step.action != planner.NoOp && (cc.Attempt != step.attempt || cc.AttemptBase != step.base) {
			t.Fatalf("step %d: %s of attempt %d (base %d), want %s of attempt %d (base %d)", i, cc.Action, cc.Attempt, cc.AttemptBase, step.action, step.attempt, step.base)
		}
		if res := apply.Execute(context.Background(), plan, rt, apply.Options{LogRoot: t.TempDir(), TmpfsRoot: t.TempDir()}); res.Err() != nil {
			t.Fatal(res.Err())
		}
		snap, err = planner.ObserveWorkloads(context.Background(), rt, step.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.Pods["a"].Containers["main"].Restarts(); got != step.restarts {
			t.Errorf("step %d: %d restarts, want %d", i, got, step.restarts)
		}
	}
}
