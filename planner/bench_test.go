package planner_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/internal/render"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec/spectest"
)

// manyPods is a stack of n pods of one container each, as bench -scale
// makes them.
func manyPods(n int) string {
	var b strings.Builder
	b.WriteString("berth { stack = \"scale\" }\n")
	for i := range n {
		fmt.Fprintf(&b, "pod \"p%03d\" {\n  container \"main\" {\n    image        = \"docker.io/library/busybox:1.36\"\n    command      = [\"sleep\", \"3600\"]\n    stop_timeout = \"1s\"\n  }\n}\n", i)
	}
	return b.String()
}

// BenchmarkNoOpPlan is berth's own work in a no-op plan of 500 pods,
// past the runtime's answers: observe (on the fake), diff and render; and
// in a watcher's no-op round, which keeps the decoded records between
// rounds.
func BenchmarkNoOpPlan(b *testing.B) {
	cfg := spectest.Load(b, manyPods(500))
	rt := fake.New(image)
	ctx := context.Background()
	snap, err := planner.ObserveWorkloads(ctx, rt, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if res := apply.Execute(ctx, planner.Diff(cfg, snap, planner.Options{}), rt, apply.Options{LogRoot: b.TempDir(), TmpfsRoot: b.TempDir()}); res.Err() != nil {
		b.Fatal(res.Err())
	}
	for _, bc := range []struct {
		name    string
		records *planner.RecordCache
	}{
		{name: "plan"},
		{name: "watch", records: &planner.RecordCache{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := planner.Options{Offline: true, Records: bc.records}
			b.ReportAllocs()
			for b.Loop() {
				snap, err := planner.Observe(ctx, rt, cfg, opts)
				if err != nil {
					b.Fatal(err)
				}
				p := planner.Diff(cfg, snap, opts)
				if p.HasChanges() {
					b.Fatal("changes")
				}
				render.Text(io.Discard, p, render.Style{})
			}
		})
	}
}

// BenchmarkLoad is loading the configuration of 500 pods, as every plan
// does first.
func BenchmarkLoad(b *testing.B) {
	src := manyPods(500)
	b.ReportAllocs()
	for b.Loop() {
		spectest.Load(b, src)
	}
}
