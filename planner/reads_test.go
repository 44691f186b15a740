package planner_test

import (
	"context"
	"maps"
	"testing"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// An observation takes the reads started early for its stack and
// registry directory, and makes its own for any other: the calls are
// those of one observation either way, and the snapshot is the one the
// configuration's stack has.
func TestObserveTakesEarlyReads(t *testing.T) {
	const src = `berth { stack = "web" }
pod "a" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}`
	rt := fake.New(image)
	cfg := spectest.Load(t, src)
	converge(t, rt, cfg)
	ctx := context.Background()
	plain := calls(t, rt, func() { observeWith(t, rt, cfg.Berth.Stack, cfg, nil) })
	for _, tc := range []struct {
		name            string
		stack, certsDir string
		extra           int // lists made again, by Observe itself
	}{
		{"the stack's", "web", "", 0},
		{"another stack's", "db", "", 1},
		{"another registry directory's", "web", "/etc/containerd/certs.d", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := calls(t, rt, func() {
				reads := planner.StartReads(ctx, rt, tc.stack, tc.certsDir)
				observeWith(t, rt, "web", cfg, reads)
				<-reads.Done() // reads not taken go on in the background
			})
			for _, m := range []string{"ListPodSandbox", "ListContainers", "ListImages"} {
				if got[m] != plain[m]*(1+tc.extra) {
					t.Errorf("%s called %d times, want %d (one observation's %d, made %d more times)", m, got[m], plain[m]*(1+tc.extra), plain[m], tc.extra)
				}
			}
		})
	}
}

// observeWith observes cfg with reads (nil for none) and checks that the
// snapshot is of stack and holds its one pod.
func observeWith(t *testing.T, rt *fake.Runtime, stack string, cfg *spec.Config, reads *planner.Reads) {
	t.Helper()
	snap, err := planner.Observe(context.Background(), rt, cfg, planner.Options{Offline: true, Reads: reads})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Stack != stack || len(snap.Pods) != 1 || snap.Pods["a"] == nil {
		t.Fatalf("observed stack %q with pods %v, want %q with pod a", snap.Stack, maps.Keys(snap.Pods), stack)
	}
}

// calls are the runtime calls f made.
func calls(t *testing.T, rt *fake.Runtime, f func()) map[string]int {
	t.Helper()
	rt.ResetCalls()
	f()
	return rt.Calls()
}
