package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rawRestart is the crash measurement's baseline: the restart as fast as
// the runtime allows it, by a raw CRI and containerd client with none of
// berth's code. The watcher is paused (SIGSTOP) so that it does not race
// it; an idle pod of its stack is crashed the same way (SIGTERM to the
// container's process); on containerd's /tasks/exit event for it (the
// report berth acts on) the baseline creates and starts the next attempt
// in the same sandbox, then removes the old one. Timed like berth's
// crashes: from the kill until CRI lists the new container RUNNING. The
// new container carries the old one's labels and annotations, so the
// watcher, resumed, finds its own container and changes nothing.
func (wb *watchBench) rawRestart(ctx context.Context, s *watchStack, pod string) (*watchSample, error) {
	a, err := wb.rawAttempt(ctx, s, pod)
	if err != nil {
		return nil, err
	}
	old, sandboxID, pid, next, sandbox := a.old, a.sandboxID, a.pid, a.next, a.sandbox

	if err := s.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	defer s.proc.cmd.Process.Signal(syscall.SIGCONT)
	ectx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	exited, err := wb.exitEvent(ectx, old)
	if err != nil {
		return nil, err
	}
	events, err := wb.recordEvents(ectx, old)
	if err != nil {
		return nil, err
	}
	defer events.cancel() // on the errors before the sample is done; stop cancels it too
	t0, err := terminate(old, pid)
	if err != nil {
		return nil, err
	}
	if err := <-exited; err != nil {
		return nil, err
	}
	decided := time.Since(t0)
	c, err := wb.rt.rs.CreateContainer(ectx, &cri.CreateContainerRequest{PodSandboxId: sandboxID, Config: next, SandboxConfig: sandbox})
	if err != nil {
		return nil, fmt.Errorf("create the next attempt in %s: %w", pod, err)
	}
	if _, err := wb.rt.rs.StartContainer(ectx, &cri.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		return nil, fmt.Errorf("start the next attempt in %s: %w", pod, err)
	}
	sample, err := wb.await(ctx, s, pod, old, t0, events.started, func(n *cri.Container) bool { return n.Id == c.ContainerId })
	if sample, err = withRuntimeTimes(sample, err, events, t0, old); err != nil {
		return nil, err
	}
	sample.decided, sample.trigger = decided, "raw: /tasks/exit"
	if _, err := wb.rt.rs.RemoveContainer(ectx, &cri.RemoveContainerRequest{ContainerId: old}); err != nil {
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

// rawReplace is the file save's baseline: the replace a save comes to,
// as fast as the runtime allows it, by the same raw client, the watcher
// paused. An idle pod's container is stopped (with the stacks'
// stop_timeout; the workload exits on SIGTERM with -workload trap); on
// containerd's /tasks/exit event for it, which comes before the stop
// returns, the next attempt is created and started in its sandbox; then
// the old one is removed. Timed from the stop call until CRI lists the
// new container RUNNING. What berth's save takes beyond it is noticing
// the file, loading and planning.
func (wb *watchBench) rawReplace(ctx context.Context, s *watchStack, pod string) (*watchSample, error) {
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
	exited, err := wb.exitEvent(ectx, a.old)
	if err != nil {
		return nil, err
	}
	events, err := wb.recordEvents(ectx, a.old)
	if err != nil {
		return nil, err
	}
	defer events.cancel() // on the errors before the sample is done; stop cancels it too
	t0 := time.Now()
	stopped := make(chan error, 1)
	go func() {
		_, err := wb.rt.rs.StopContainer(ectx, &cri.StopContainerRequest{ContainerId: a.old, Timeout: int64(grace / time.Second)})
		stopped <- err
	}()
	select { // the exit event comes before the stop returns
	case err = <-exited:
	case err = <-stopped:
		stopped <- err
	}
	if err != nil {
		return nil, fmt.Errorf("stop the old attempt in %s: %w", pod, err)
	}
	decided := time.Since(t0)
	c, err := wb.rt.rs.CreateContainer(ectx, &cri.CreateContainerRequest{PodSandboxId: a.sandboxID, Config: a.next, SandboxConfig: a.sandbox})
	if err != nil {
		return nil, fmt.Errorf("create the next attempt in %s: %w", pod, err)
	}
	if _, err := wb.rt.rs.StartContainer(ectx, &cri.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		return nil, fmt.Errorf("start the next attempt in %s: %w", pod, err)
	}
	if err := <-stopped; err != nil {
		return nil, fmt.Errorf("stop the old attempt in %s: %w", pod, err)
	}
	sample, err := wb.await(ctx, s, pod, a.old, t0, events.started, func(n *cri.Container) bool { return n.Id == c.ContainerId })
	if sample, err = withRuntimeTimes(sample, err, events, t0, a.old); err != nil {
		return nil, err
	}
	sample.decided, sample.trigger = decided, "raw: /tasks/exit"
	if _, err := wb.rt.rs.RemoveContainer(ectx, &cri.RemoveContainerRequest{ContainerId: a.old}); err != nil {
		return nil, fmt.Errorf("remove the old attempt in %s: %w", pod, err)
	}
	if err := s.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return nil, err
	}
	return sample, sleep(ctx, time.Second) // as rawRestart's
}

// rawNext is what a raw baseline needs of a pod: its running container,
// that container's PID, and the configurations of the next attempt.
type rawNext struct {
	old, sandboxID string
	pid            int
	next           *cri.ContainerConfig
	sandbox        *cri.PodSandboxConfig
}

// rawAttempt reads the pod for a raw baseline (target). The next attempt carries the old one's labels and annotations,
// so the watcher, resumed, finds its own container and changes nothing.
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

// exitEvent subscribes to containerd's events and says when the task of
// container id reported its exit.
func (wb *watchBench) exitEvent(ctx context.Context, id string) (<-chan error, error) {
	cl, err := wb.client()
	if err != nil {
		return nil, err
	}
	envelopes, errs := cl.Subscribe(ctx, `topic=="/tasks/exit"`)
	out := make(chan error, 1)
	go func() {
		for {
			select {
			case env := <-envelopes:
				v, err := typeurl.UnmarshalAny(env.Event)
				if e, ok := v.(*apievents.TaskExit); err == nil && ok && e.ContainerID == id && e.ID == id {
					out <- nil
					return
				}
			case err := <-errs:
				out <- fmt.Errorf("containerd's events: %v", err)
				return
			}
		}
	}()
	// Subscribe returns before the stream is up: a moment for it, so that
	// the kill's event is not missed.
	return out, sleep(ctx, 50*time.Millisecond)
}
