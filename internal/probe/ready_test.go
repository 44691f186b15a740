package probe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/internal/probe"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec/spectest"
)

// Without readiness probes, a start-first pod is ready once its
// containers have run for min_ready; one that exits within it is not.
func TestAwaitSandboxMinReady(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exit    bool
		wantErr string
	}{
		{name: "runs through min_ready"},
		{name: "exits within min_ready", exit: true, wantErr: "container main exited with code 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New("docker.io/library/busybox:1.36")
			cfg := spectest.Load(t, `
berth { stack = "ready" }
pod "web" {
  update_order = "start_first"
  min_ready    = "200ms"
  container "main" { image = "docker.io/library/busybox:1.36" }
}`)
			ctx := context.Background()
			snap, err := planner.ObserveWorkloads(ctx, rt, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res := apply.Execute(ctx, planner.Diff(cfg, snap, planner.Options{}), rt, apply.Options{LogRoot: t.TempDir(), TmpfsRoot: t.TempDir()}); res.Err() != nil {
				t.Fatal(res.Err())
			}
			var sandbox, container string
			for id := range rt.Sandboxes {
				sandbox = id
			}
			for id := range rt.Containers {
				container = id
			}
			if tc.exit {
				go func() {
					time.Sleep(50 * time.Millisecond)
					rt.Exit(container, 3)
				}()
			}
			start := time.Now()
			err = probe.AwaitSandbox(ctx, rt, "ready", cfg.Pod("web"), sandbox)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("AwaitSandbox: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("AwaitSandbox = %v, want %q", err, tc.wantErr)
			}
			if waited := time.Since(start); waited < 100*time.Millisecond {
				t.Errorf("returned after %s, before min_ready was over", waited)
			}
		})
	}
}
