package stats

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/spec"
)

func u64(v uint64) *uint64 { return &v }

var t0 = time.Unix(1000, 0)

func TestRowsCPU(t *testing.T) {
	base := func() (Sample, Sample) {
		prev := Sample{ID: "c1", At: t0, CPUTotal: u64(1_000_000_000)}
		// 0.5 s of CPU in 2 s: a quarter of a core.
		cur := Sample{ID: "c1", At: t0.Add(2 * time.Second), CPUTotal: u64(1_500_000_000)}
		return prev, cur
	}
	tests := []struct {
		name    string
		mutate  func(prev, cur *Sample)
		noPrev  bool
		want    float64
		unknown bool
	}{
		{name: "delta over the interval", want: 25},
		{name: "two cores busy", mutate: func(_, c *Sample) { c.CPUTotal = u64(5_000_000_000) }, want: 200},
		{name: "delta wins over the runtime's rate", mutate: func(_, c *Sample) { c.NanoCores = u64(900_000_000) }, want: 25},
		{name: "first sample: the runtime's rate", noPrev: true, mutate: func(_, c *Sample) { c.NanoCores = u64(120_000_000) }, want: 12},
		{name: "first sample without a rate", noPrev: true, unknown: true},
		{name: "counter went backwards, rate known", mutate: func(_, c *Sample) { c.CPUTotal = u64(10); c.NanoCores = u64(10_000_000) }, want: 1},
		{name: "counter went backwards", mutate: func(_, c *Sample) { c.CPUTotal = u64(10) }, unknown: true},
		{name: "no time passed", mutate: func(p, c *Sample) { c.At = p.At }, unknown: true},
		{name: "no counter", mutate: func(_, c *Sample) { c.CPUTotal = nil }, unknown: true},
		{name: "other container's sample", mutate: func(p, _ *Sample) { p.ID = "c0" }, unknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, cur := base()
			if tt.mutate != nil {
				tt.mutate(&prev, &cur)
			}
			prevs := map[string]Sample{prev.ID: prev}
			if tt.noPrev {
				prevs = nil
			}
			rows := Rows(prevs, []Sample{cur})
			got := rows[0].CPUPercent
			switch {
			case tt.unknown && got != nil:
				t.Fatalf("CPU%% = %v, want unknown", *got)
			case !tt.unknown && got == nil:
				t.Fatalf("CPU%% unknown, want %v", tt.want)
			case !tt.unknown && math.Abs(*got-tt.want) > 1e-9:
				t.Fatalf("CPU%% = %v, want %v", *got, tt.want)
			}
			if Measured(rows) == tt.unknown {
				t.Errorf("Measured = %v with CPU%% %v", Measured(rows), got)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	pct := 12.345
	limit := int64(64 << 20)
	rows := Rows(nil, []Sample{
		{ID: "b", Pod: "web", Container: "app", NanoCores: u64(123_450_000), Memory: u64(3 << 20), Limit: limit},
		{ID: "a", Pod: "db", Container: "main", Memory: u64(1536)},
		{ID: "c", Pod: "web", Container: "sidecar"},
	})
	var b strings.Builder
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := `POD  CONTAINER  CPU%    MEMORY  LIMIT
db   main       -       1.5KiB  -
web  app        12.35%  3MiB    64MiB
web  sidecar    -       -       -
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	if got := *rows[1].CPUPercent; math.Abs(got-pct) > 1e-9 {
		t.Errorf("web/app CPU%% = %v", got)
	}
}

// source is a runtime whose counters the test sets.
type source struct {
	ctrs     []*cri.Container
	stats    map[string]*cri.ContainerStats
	limits   map[string]int64
	statuses int
}

func (s *source) ListContainers(_ context.Context, sel map[string]string) ([]*cri.Container, error) {
	var out []*cri.Container
	for _, c := range s.ctrs {
		if c.Labels[spec.LabelStack] == sel[spec.LabelStack] {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *source) ListContainerStats(context.Context, map[string]string) ([]*cri.ContainerStats, error) {
	var out []*cri.ContainerStats
	for _, st := range s.stats {
		out = append(out, st)
	}
	return out, nil
}

func (s *source) ContainerStatus(_ context.Context, id string) (*cri.ContainerStatus, error) {
	s.statuses++
	limit, ok := s.limits[id]
	if !ok {
		return nil, fmt.Errorf("container %s status: %w", id, errdefs.ErrNotFound)
	}
	return &cri.ContainerStatus{Id: id, Resources: &cri.ContainerResources{Linux: &cri.LinuxContainerResources{MemoryLimitInBytes: limit}}}, nil
}

func (s *source) set(id string, at time.Time, cpu, mem uint64) {
	s.stats[id] = &cri.ContainerStats{
		Attributes: &cri.ContainerAttributes{Id: id},
		Cpu:        &cri.CpuUsage{Timestamp: at.UnixNano(), UsageCoreNanoSeconds: &cri.UInt64Value{Value: cpu}},
		Memory:     &cri.MemoryUsage{Timestamp: at.UnixNano(), WorkingSetBytes: &cri.UInt64Value{Value: mem}},
	}
}

func ctr(id, stack, pod, name string, state cri.ContainerState) *cri.Container {
	return &cri.Container{Id: id, State: state, Labels: map[string]string{
		spec.LabelStack: stack, spec.LabelPod: pod, spec.LabelContainer: name}}
}

func TestMeter(t *testing.T) {
	src := &source{
		ctrs: []*cri.Container{
			ctr("run", "shop", "web", "app", cri.ContainerState_CONTAINER_RUNNING),
			ctr("gone", "shop", "web", "old", cri.ContainerState_CONTAINER_RUNNING), // removed between list and status
			ctr("done", "shop", "web", "init", cri.ContainerState_CONTAINER_EXITED),
			ctr("other", "blog", "web", "app", cri.ContainerState_CONTAINER_RUNNING),
		},
		stats:  map[string]*cri.ContainerStats{},
		limits: map[string]int64{"run": 128 << 20, "done": 0, "other": 0},
	}
	src.set("run", t0, 2_000_000_000, 5<<20)
	m := NewMeter(src, "shop")
	ctx := context.Background()

	rows, err := m.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Container != "app" || rows[1].Container != "old" {
		t.Fatalf("rows of running containers of the stack: %+v", rows)
	}
	app := rows[0]
	if app.CPUPercent != nil || *app.MemoryBytes != 5<<20 || *app.MemoryLimitBytes != 128<<20 {
		t.Fatalf("first read of app: %+v", app)
	}
	if old := rows[1]; old.MemoryBytes != nil || old.MemoryLimitBytes != nil {
		t.Fatalf("a container without stats: %+v", old)
	}

	src.set("run", t0.Add(4*time.Second), 3_000_000_000, 6<<20) // 1 s of CPU in 4 s
	statuses := src.statuses
	rows, err = m.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0].CPUPercent; got == nil || math.Abs(*got-25) > 1e-9 || *rows[0].MemoryBytes != 6<<20 {
		t.Fatalf("second read of app: %+v", rows[0])
	}
	if *rows[0].MemoryLimitBytes != 128<<20 || src.statuses != statuses {
		t.Errorf("second read: limit %v after %d more status calls; want the first read's limit and none", rows[0].MemoryLimitBytes, src.statuses-statuses)
	}
}
