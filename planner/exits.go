package planner

import (
	"context"
	"time"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ReportedExit is a container's exit as the runtime's event stream
// reported it. The task's own report comes first: CRI's lists show the
// exit only once the runtime has handled it, which with 500 pods takes
// 100-250 ms more.
type ReportedExit struct {
	Code int32
	At   time.Time
	// OOM: the runtime reported an OOM kill in the container too.
	OOM bool
}

// takeReportedExits counts as exited the containers whose exit the
// watcher heard of while CRI's lists still show them running, when each
// had a PID namespace of its own: the kernel ends every process in a PID
// namespace before its init's exit can be reported, so nothing of the
// container runs. One status call each, for when it started (the crash
// backoff needs it), unless read beside the lists (read). With the
// host's PID namespace, processes the init left may live on until the
// runtime has handled the exit, so those wait for CRI's lists.
func takeReportedExits(ctx context.Context, rt Observer, snap *Snapshot, w *WatchState, read map[string]statusRead) error {
	if w == nil || len(w.Exits) == 0 {
		return nil
	}
	for _, p := range snap.Pods {
		if p.Record == nil || p.Record.HostPID {
			continue
		}
		for _, c := range p.Containers {
			exit, ok := w.Exits[c.Container.Id]
			if !ok || c.Container.State != cri.ContainerState_CONTAINER_RUNNING {
				continue
			}
			r, ok := read[c.Container.Id]
			if !ok {
				r.st, r.err = rt.ContainerStatus(ctx, c.Container.Id)
			}
			st, err := r.st, r.err
			if errdefs.IsNotFound(err) {
				continue // removed meanwhile; the plan sees what the list said
			}
			if err != nil {
				return err
			}
			// A copy: the list's entry stays as listed, for an observation
			// that takes it again (StartPodReads).
			c.Container = proto.CloneOf(c.Container)
			c.Container.State = cri.ContainerState_CONTAINER_EXITED
			if st.State == cri.ContainerState_CONTAINER_EXITED { // CRI caught up
				c.exitFrom(st)
				continue
			}
			c.StartedAt, c.ExitCode, c.FinishedAt, c.ExitReported = unixNano(st.StartedAt), exit.Code, exit.At, true
			if exit.OOM {
				c.Reason = "OOMKilled"
			}
		}
	}
	return nil
}

// statusRead is one container's status call, made ahead of its need.
type statusRead struct {
	st  *cri.ContainerStatus
	err error
}
