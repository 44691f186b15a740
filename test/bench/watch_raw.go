package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
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
	if err := wb.prepare(ctx, s); err != nil {
		return nil, err
	}
	ctr, err := wb.runningContainer(ctx, s, pod)
	if err != nil {
		return nil, err
	}
	old, sandboxID := ctr.Id, ctr.PodSandboxId
	st, pid, err := wb.verboseStatus(ctx, old)
	if err != nil {
		return nil, err
	}
	sb, err := wb.rt.rs.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: sandboxID})
	if err != nil {
		return nil, fmt.Errorf("status of sandbox %s: %w", sandboxID, err)
	}
	logDir := filepath.Join(wb.rt.logRoot, "raw-restart", pod)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	sandbox := &cri.PodSandboxConfig{Metadata: sb.Status.Metadata, Labels: sb.Status.Labels, Annotations: sb.Status.Annotations, LogDirectory: logDir,
		Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{NamespaceOptions: sb.Status.GetLinux().GetNamespaces().GetOptions()}}}
	next := &cri.ContainerConfig{
		Metadata: &cri.ContainerMetadata{Name: st.Metadata.Name, Attempt: st.Metadata.Attempt + 1},
		Image:    &cri.ImageSpec{Image: st.Image.Image}, Command: workloads[wb.o.workload],
		Labels: st.Labels, Annotations: st.Annotations, LogPath: "main.log",
		Linux: &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: wb.rt.network(), Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
			Seccomp:          &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}, // as berth asks
		}},
	}

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
	sample, err := wb.await(ctx, s, pod, old, t0, func(n *cri.Container) bool { return n.Id == c.ContainerId })
	if err != nil {
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

// exitEvent subscribes to containerd's events and says when the task of
// container id reported its exit.
func (wb *watchBench) exitEvent(ctx context.Context, id string) (<-chan error, error) {
	if wb.ctrd == nil {
		cl, err := containerd.New(strings.TrimPrefix(wb.address, "unix://"), containerd.WithDefaultNamespace(criNamespace), containerd.WithTimeout(10*time.Second))
		if err != nil {
			return nil, fmt.Errorf("containerd at %s: %w", wb.address, err)
		}
		wb.ctrd = cl // closed by cleanup
	}
	envelopes, errs := wb.ctrd.Subscribe(ctx, `topic=="/tasks/exit"`)
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
