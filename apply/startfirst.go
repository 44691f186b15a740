package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/planner"
)

// replaceStartFirst replaces a pod without a gap: the new sandbox is made
// beside the old one (host ports too: the runtime's port mapping keeps
// sending to the old one until it is torn down), and once it is ready the
// forwards switch to it, and the old one is stopped with its grace, so
// connections in flight finish, and removed. A new pod that fails to
// start or to get ready is removed, and the old one keeps serving.
//
// Until the switch the old sandbox is marked as the one that serves, so a
// forward that looks for the pod meanwhile does not pick the newer one.
func (x *executor) replaceStartFirst(ctx context.Context, pc *planner.PodChange) (string, error) {
	old := pc.Actual.Sandbox
	if err := x.serve(pc, old.Id); err != nil {
		return "", err
	}
	newID, err := x.createPod(ctx, pc, old)
	if err == nil {
		x.report(Event{Address: pc.Address, Action: pc.Action, Status: Waiting, Detail: fmt.Sprintf("the new pod (sandbox %s; the old one serves meanwhile)", shortID(newID))})
		if x.opts.AwaitReady != nil {
			err = x.opts.AwaitReady(ctx, pc.Desired, newID)
		}
		if err != nil {
			err = fmt.Errorf("the new pod did not get ready: %w", err)
		}
	}
	if err != nil {
		if newID != "" {
			// Its own context: the new pod goes also when ctx was cut.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
			defer cancel()
			if derr := x.discardSandbox(cctx, newID); derr != nil {
				err = errors.Join(err, fmt.Errorf("remove the new sandbox %s: %w", shortID(newID), derr))
			}
		}
		_ = x.serve(pc, "")
		return "", fmt.Errorf("%w; the old pod keeps serving", err)
	}
	if err := x.serve(pc, newID); err != nil {
		return "", err
	}
	if err := x.removeSandbox(ctx, pc); err != nil {
		return "", fmt.Errorf("the new sandbox %s serves, but the old one was not removed: %w", shortID(newID), err)
	}
	_ = x.serve(pc, "") // the newest ready sandbox is the one now
	return fmt.Sprintf("sandbox %s, started before %s was stopped", shortID(newID), shortID(old.Id)), nil
}

// discardTimeout bounds removing a new pod that did not get ready.
const discardTimeout = time.Minute

// serve marks the sandbox of pc's pod that takes new connections.
func (x *executor) serve(pc *planner.PodChange, sandboxID string) error {
	if x.opts.Serving == nil {
		return nil
	}
	if err := x.opts.Serving(pc.Name, sandboxID); err != nil {
		return fmt.Errorf("mark the sandbox that serves %s: %w", pc.Address, err)
	}
	return nil
}

// discardSandbox removes a sandbox this apply made and its host
// directories (tmpfs mounts, logs). Its containers were never ready, so
// they get no grace.
func (x *executor) discardSandbox(ctx context.Context, id string) error {
	st, err := x.rt.SandboxStatus(ctx, id)
	if err != nil {
		return err
	}
	if err := x.rt.StopSandbox(ctx, id); err != nil {
		return err
	}
	if err := x.rt.RemoveSandbox(ctx, id); err != nil {
		return err
	}
	return x.releaseHostDirs(st.GetMetadata())
}
