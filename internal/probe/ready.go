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
}

// WaitReady waits until every readiness probe of pod passes, as a one-shot
// apply does before it starts the pods that depend on it. A probe that has
// not passed by its start period plus failure_threshold intervals fails
// the wait, with what the last check saw.
func WaitReady(ctx context.Context, rt ReadyRuntime, stack string, pod *spec.Pod) error {
	var probed []*spec.Container
	for _, c := range pod.Containers {
		if c.Probe(spec.Readiness) != nil {
			probed = append(probed, c)
		}
	}
	if len(probed) == 0 {
		return nil
	}
	sel := map[string]string{spec.LabelStack: stack, spec.LabelPod: pod.Name}
	sandboxes, err := rt.ListSandboxes(ctx, sel)
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
	host := "127.0.0.1"
	if !pod.HostNetwork {
		st, err := rt.SandboxStatus(ctx, sb.Id)
		if err != nil {
			return err
		}
		host = st.GetNetwork().GetIp()
	}
	containers, err := rt.ListContainers(ctx, sel)
	if err != nil {
		return err
	}
	for _, c := range probed {
		var found *cri.Container
		for _, oc := range containers {
			if oc.PodSandboxId == sb.Id && oc.Labels[spec.LabelContainer] == c.Name && oc.State == cri.ContainerState_CONTAINER_RUNNING &&
				(found == nil || oc.CreatedAt > found.CreatedAt) {
				found = oc
			}
		}
		if found == nil {
			return fmt.Errorf("container %s is not running", c.Name)
		}
		if err := waitProbe(ctx, rt, c.Probe(spec.Readiness), Target{ContainerID: found.Id, Host: host}, time.Unix(0, found.CreatedAt)); err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
	}
	return nil
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
