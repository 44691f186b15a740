package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rawRestart is the crash measurement's baseline: the restart as fast as
// the runtime allows it, by a raw CRI and containerd client with none of
// berth's code (rawBaseline): an idle pod of the stack is crashed the
// same way as berth's (SIGTERM to the container's process). Timed like
// berth's crashes: from the kill until CRI lists the new container
// RUNNING.
func (wb *watchBench) rawRestart(ctx context.Context, s *watchStack, pod string) (*watchSample, error) {
	return wb.rawBaseline(ctx, s, pod, func(_ context.Context, a *rawNext) (time.Time, <-chan error, error) {
		t0, err := terminate(a.old, a.pid)
		return t0, nil, err
	})
}

// rawReplace is the file save's baseline: the replace a save comes to,
// as fast as the runtime allows it (rawBaseline). An idle pod's
// container is stopped with the stacks' stop_timeout (the workload exits
// on SIGTERM with -workload trap); containerd tells its exit before the
// stop returns, and berth acts on that too. Timed from the stop call.
// What berth's save takes beyond it is noticing the file, loading and
// planning.
func (wb *watchBench) rawReplace(ctx context.Context, s *watchStack, pod string) (*watchSample, error) {
	return wb.rawBaseline(ctx, s, pod, func(ctx context.Context, a *rawNext) (time.Time, <-chan error, error) {
		t0 := time.Now()
		stopped := make(chan error, 1)
		go func() {
			_, err := wb.rt.rs.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: a.old, Timeout: int64(grace / time.Second)})
			stopped <- err
		}()
		return t0, stopped, nil
	})
}

// rawEnd ends a baseline's old container and says when it began; ended,
// if not nil, gives the result of a call that returns after the exit.
type rawEnd func(ctx context.Context, a *rawNext) (t0 time.Time, ended <-chan error, err error)

// rawBaseline times a raw client's next attempt of a pod's container.
// The watcher is paused (SIGSTOP) so that it does not race it; end ends
// the old container; on containerd's /tasks/exit event for it (the report
// berth acts on) the baseline creates and starts the next attempt in the
// same sandbox, then removes the old one. The new container carries the
// old one's labels and annotations, so the watcher, resumed, finds its
// own container and changes nothing.
func (wb *watchBench) rawBaseline(ctx context.Context, s *watchStack, pod string, end rawEnd) (*watchSample, error) {
	a, err := wb.rawAttempt(ctx, s, pod)
	if err != nil {
		return nil, err
	}
	if err := s.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	defer s.proc.cmd.Process.Signal(syscall.SIGCONT)
	ectx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	events, err := wb.recordEvents(ectx, a.old)
	if err != nil {
		return nil, err
	}
	defer events.cancel() // on the errors before the sample is done; stop cancels it too
	t0, ended, err := end(ectx, a)
	if err != nil {
		return nil, err
	}
	if err := events.awaitExit(ectx, ended); err != nil {
		return nil, fmt.Errorf("end the old attempt in %s: %w", pod, err)
	}
	decided := time.Since(t0)
	c, err := wb.rt.rs.CreateContainer(ectx, &cri.CreateContainerRequest{PodSandboxId: a.sandboxID, Config: a.next, SandboxConfig: a.sandbox})
	if err != nil {
		return nil, fmt.Errorf("create the next attempt in %s: %w", pod, err)
	}
	if _, err := wb.rt.rs.StartContainer(ectx, &cri.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		return nil, fmt.Errorf("start the next attempt in %s: %w", pod, err)
	}
	if ended != nil {
		if err := <-ended; err != nil {
			return nil, fmt.Errorf("end the old attempt in %s: %w", pod, err)
		}
	}
	sample, err := wb.await(ctx, s, pod, a.old, t0, events.started, func(n *cri.Container) bool { return n.Id == c.ContainerId })
	if sample, err = withRuntimeTimes(sample, err, events, t0, a.old); err != nil {
		return nil, err
	}
	sample.decided, sample.trigger = decided, "raw: /tasks/exit"
	if _, err := wb.rt.rs.RemoveContainer(ectx, &cri.RemoveContainerRequest{ContainerId: a.old}); err != nil {
		return nil, fmt.Errorf("remove the old attempt in %s: %w", pod, err)
	}
	// The watcher, resumed, has the events of the pause to take in (a
	// round that changes nothing and logs nothing): a second for it, so
	// that the next measurement does not share its round.
	if err := s.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return nil, err
	}
	return sample, sleep(ctx, time.Second)
}

// rawNext is what a raw baseline needs of a pod: its running container,
// that container's PID, and the configurations of the next attempt.
type rawNext struct {
	old, sandboxID string
	pid            int
	next           *cri.ContainerConfig
	sandbox        *cri.PodSandboxConfig
}

// rawAttempt reads the pod for a raw baseline (target): the old
// container and the configurations of its next attempt.
func (wb *watchBench) rawAttempt(ctx context.Context, s *watchStack, pod string) (*rawNext, error) {
	ctr, st, pid, err := wb.target(ctx, s, pod)
	if err != nil {
		return nil, err
	}
	sb, err := wb.rt.rs.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: ctr.PodSandboxId})
	if err != nil {
		return nil, fmt.Errorf("status of sandbox %s: %w", ctr.PodSandboxId, err)
	}
	logDir := filepath.Join(wb.rt.logRoot, "raw-restart", pod)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	return &rawNext{old: ctr.Id, sandboxID: ctr.PodSandboxId, pid: pid,
		sandbox: &cri.PodSandboxConfig{Metadata: sb.Status.Metadata, Labels: sb.Status.Labels, Annotations: sb.Status.Annotations, LogDirectory: logDir,
			Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{NamespaceOptions: sb.Status.GetLinux().GetNamespaces().GetOptions()}}},
		next: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: st.Metadata.Name, Attempt: st.Metadata.Attempt + 1},
			Image:    &cri.ImageSpec{Image: st.Image.Image}, Command: workloads[wb.o.workload],
			Labels: st.Labels, Annotations: st.Annotations, LogPath: "main.log",
			Linux: &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: wb.rt.network(), Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
				Seccomp:          &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}, // as berth asks
			}},
		}}, nil
}
