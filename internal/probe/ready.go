package probe

import (
	"context"
	"fmt"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// ReadyRuntime is what WaitReady needs from the runtime.
type ReadyRuntime interface {
	Execer
	ListSandboxes(ctx context.Context, labels map[string]string) ([]*cri.PodSandbox, error)
	ListContainers(ctx context.Context, labels map[string]string) ([]*cri.Container, error)
	SandboxStatus(ctx context.Context, id string) (*cri.PodSandboxStatus, error)
	ContainerStatus(ctx context.Context, id string) (*cri.ContainerStatus, error)
}

// WaitReady waits until every readiness probe of pod passes, as a one-shot
// apply does before it starts the pods that depend on it. A probe that has
// not passed by its start period plus failure_threshold intervals fails
// the wait, with what the last check saw.
func WaitReady(ctx context.Context, rt ReadyRuntime, stack string, pod *spec.Pod) error {
	if !hasReadiness(pod) {
		return nil
	}
	sandboxes, err := rt.ListSandboxes(ctx, map[string]string{spec.LabelStack: stack, spec.LabelPod: pod.Name})
	if err != nil {
		return err
	}
	var sb *cri.PodSandbox
	for _, s := range sandboxes {
		if s.State == cri.PodSandboxState_SANDBOX_READY && (sb == nil || s.CreatedAt > sb.CreatedAt) {
			sb = s
		}
	}
	if sb == nil {
		return fmt.Errorf("it has no running sandbox")
	}
	_, err = waitSandbox(ctx, rt, stack, pod, sb.Id, false)
	return err
}

// AwaitSandbox waits until the pod's sandbox sandboxID is ready to take
// another's place, as a start-first replace needs: every readiness probe
// passed (within its budget), and then every container that is not an
// init container has run for the pod's min_ready without exiting.
func AwaitSandbox(ctx context.Context, rt ReadyRuntime, stack string, pod *spec.Pod, sandboxID string) error {
	ids, err := waitSandbox(ctx, rt, stack, pod, sandboxID, true)
	if err != nil {
		return err
	}
	var latest time.Time
	for _, c := range ids {
		latest = later(latest, c.started)
	}
	if wait := time.Until(latest.Add(pod.MinReady)); wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	// One list says which still run; only one that does not is asked why.
	listed, err := rt.ListContainers(ctx, map[string]string{spec.LabelStack: stack, spec.LabelPod: pod.Name})
	if err != nil {
		return err
	}
	running := map[string]bool{}
	for _, c := range listed {
		running[c.Id] = c.State == cri.ContainerState_CONTAINER_RUNNING
	}
	for name, c := range ids {
		if running[c.id] {
			continue
		}
		st, err := rt.ContainerStatus(ctx, c.id)
		if err != nil {
			return fmt.Errorf("container %s: %w", name, err)
		}
		if st.State != cri.ContainerState_CONTAINER_RUNNING {
			return fmt.Errorf("container %s exited with code %d, %s after it started (min_ready %s)", name, st.ExitCode,
				time.Unix(0, st.FinishedAt).Sub(time.Unix(0, st.StartedAt)).Round(time.Millisecond), pod.MinReady)
		}
	}
	return nil
}

func hasReadiness(pod *spec.Pod) bool {
	for _, c := range pod.Containers {
		if c.Probe(spec.Readiness) != nil {
			return true
		}
	}
	return false
}

// started is one running container of a sandbox.
type started struct {
	id      string
	started time.Time
}

// waitSandbox waits until each readiness probe of the pod passes in the
// given sandbox, and returns its running containers by name: those with a
// readiness probe, or with every, all but init containers. One of them
// that does not run fails the wait.
func waitSandbox(ctx context.Context, rt ReadyRuntime, stack string, pod *spec.Pod, sandboxID string, every bool) (map[string]started, error) {
	host := "127.0.0.1"
	if !pod.HostNetwork {
		st, err := rt.SandboxStatus(ctx, sandboxID)
		if err != nil {
			return nil, err
		}
		host = st.GetNetwork().GetIp()
	}
	containers, err := rt.ListContainers(ctx, map[string]string{spec.LabelStack: stack, spec.LabelPod: pod.Name})
	if err != nil {
		return nil, err
	}
	running := map[string]started{}
	for _, c := range pod.Containers {
		if c.Init || !every && c.Probe(spec.Readiness) == nil {
			continue
		}
		var found *cri.Container
		for _, oc := range containers {
			if oc.PodSandboxId == sandboxID && oc.Labels[spec.LabelContainer] == c.Name && oc.State == cri.ContainerState_CONTAINER_RUNNING &&
				(found == nil || oc.CreatedAt > found.CreatedAt) {
				found = oc
			}
		}
		if found == nil {
			return nil, fmt.Errorf("container %s is not running", c.Name)
		}
		running[c.Name] = started{id: found.Id, started: time.Unix(0, found.CreatedAt)}
		if p := c.Probe(spec.Readiness); p != nil {
			if err := waitProbe(ctx, rt, p, Target{ContainerID: found.Id, Host: host}, time.Unix(0, found.CreatedAt)); err != nil {
				return nil, fmt.Errorf("container %s: %w", c.Name, err)
			}
		}
	}
	return running, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func waitProbe(ctx context.Context, ex Execer, p *spec.Probe, t Target, started time.Time) error {
	deadline := started.Add(p.StartPeriod + time.Duration(p.FailureThreshold)*p.Interval)
	var s streak
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	for {
		r := Check(ctx, ex, p, t)
		s.record(r.OK, false)
		if s.successes >= p.SuccessThreshold {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("readiness probe did not pass within %s of the start (start_period %s + %d × interval %s): %s",
				deadline.Sub(started).Round(time.Second), p.StartPeriod, p.FailureThreshold, p.Interval, r.Detail)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
