// Package stats measures the CPU and memory of a stack's running
// containers from the runtime's CRI counters.
package stats

import (
	"context"
	"sort"
	"time"

	"github.com/containerd/errdefs"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// Source is what measuring needs from the runtime.
type Source interface {
	ListContainers(ctx context.Context, labels map[string]string) ([]*cri.Container, error)
	ListContainerStats(ctx context.Context, labels map[string]string) ([]*cri.ContainerStats, error)
	ContainerStatus(ctx context.Context, id string) (*cri.ContainerStatus, error)
}

// Sample is one container's counters at one moment.
type Sample struct {
	ID, Pod, Container string
	// At is when the runtime read the CPU counter.
	At time.Time
	// CPUTotal is the CPU time used since the container started, in
	// core-nanoseconds; nil when the runtime did not report it.
	CPUTotal *uint64
	// NanoCores is the runtime's own recent rate, when it reports one.
	NanoCores *uint64
	// Memory is the working set in bytes (what the OOM killer counts).
	Memory *uint64
	// Limit is the memory limit in bytes; 0: none.
	Limit int64
}

// Row is one line of `berth stats`, for the table and --json alike.
type Row struct {
	Pod         string `json:"pod"`
	Container   string `json:"container"`
	ContainerID string `json:"container_id"`
	// CPUPercent is 100 per busy core; null when not yet measurable.
	CPUPercent  *float64 `json:"cpu_percent"`
	MemoryBytes *uint64  `json:"memory_bytes"`
	// MemoryLimitBytes is absent when the container has no limit.
	MemoryLimitBytes *int64 `json:"memory_limit_bytes,omitempty"`
}

// Meter reads a stack's containers again and again, keeping the previous
// samples so that CPU use is measured over the interval between reads.
type Meter struct {
	src   Source
	stack string
	prev  map[string]Sample
}

// NewMeter measures stack's containers through src.
func NewMeter(src Source, stack string) *Meter {
	return &Meter{src: src, stack: stack}
}

// Read samples every running container of the stack and returns its rows,
// sorted by pod and container.
func (m *Meter) Read(ctx context.Context) ([]Row, error) {
	cur, err := collect(ctx, m.src, m.stack, m.prev)
	if err != nil {
		return nil, err
	}
	rows := Rows(m.prev, cur)
	m.prev = map[string]Sample{}
	for _, s := range cur {
		m.prev[s.ID] = s
	}
	return rows, nil
}

// collect takes one sample of each running container of the stack: one
// list of containers (for names), one list of stats, and a status per
// container not in prev (for its memory limit, which CRI's stats leave
// out; refreshes reuse the one read, so a top-like view costs two list
// calls a round).
func collect(ctx context.Context, src Source, stack string, prev map[string]Sample) ([]Sample, error) {
	sel := map[string]string{spec.LabelStack: stack}
	ctrs, err := src.ListContainers(ctx, sel)
	if err != nil {
		return nil, err
	}
	list, err := src.ListContainerStats(ctx, sel)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*cri.ContainerStats, len(list))
	for _, st := range list {
		byID[st.GetAttributes().GetId()] = st
	}
	var out []Sample
	for _, c := range ctrs {
		if c.State != cri.ContainerState_CONTAINER_RUNNING {
			continue
		}
		s := Sample{ID: c.Id, Pod: c.Labels[spec.LabelPod], Container: c.Labels[spec.LabelContainer]}
		if st := byID[c.Id]; st != nil {
			if cpu := st.GetCpu(); cpu != nil {
				s.At = time.Unix(0, cpu.Timestamp)
				s.CPUTotal = value(cpu.UsageCoreNanoSeconds)
				s.NanoCores = value(cpu.UsageNanoCores)
			}
			s.Memory = value(st.GetMemory().GetWorkingSetBytes())
		}
		if p, seen := prev[c.Id]; seen {
			s.Limit = p.Limit
		} else if status, err := src.ContainerStatus(ctx, c.Id); err == nil {
			s.Limit = status.GetResources().GetLinux().GetMemoryLimitInBytes()
		} else if !errdefs.IsNotFound(err) { // gone since the list: no limit to show
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func value(v *cri.UInt64Value) *uint64 {
	if v == nil {
		return nil
	}
	n := v.Value
	return &n
}

// Rows turns samples into rows. CPU use is measured between a container's
// previous sample and this one when there is one; otherwise it is the
// runtime's own rate, if it reports one.
func Rows(prev map[string]Sample, cur []Sample) []Row {
	rows := make([]Row, 0, len(cur))
	for _, s := range cur {
		r := Row{Pod: s.Pod, Container: s.Container, ContainerID: s.ID, MemoryBytes: s.Memory}
		if p, ok := prev[s.ID]; ok {
			r.CPUPercent = cpuPercent(p, s)
		}
		if r.CPUPercent == nil && s.NanoCores != nil {
			pct := float64(*s.NanoCores) / 1e7 // 1e9 nano-cores = one core = 100%
			r.CPUPercent = &pct
		}
		if s.Limit > 0 {
			limit := s.Limit
			r.MemoryLimitBytes = &limit
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		return a.ContainerID < b.ContainerID
	})
	return rows
}

// cpuPercent is the CPU time used between two samples over the time
// between them, 100 per core; nil when the samples cannot tell.
func cpuPercent(prev, cur Sample) *float64 {
	if prev.CPUTotal == nil || cur.CPUTotal == nil || *cur.CPUTotal < *prev.CPUTotal {
		return nil // a counter that went backwards belongs to a restarted container
	}
	elapsed := cur.At.Sub(prev.At)
	if elapsed <= 0 {
		return nil
	}
	pct := float64(*cur.CPUTotal-*prev.CPUTotal) / float64(elapsed.Nanoseconds()) * 100
	return &pct
}

// Measured reports whether every row has its CPU use.
func Measured(rows []Row) bool {
	for _, r := range rows {
		if r.CPUPercent == nil {
			return false
		}
	}
	return true
}
