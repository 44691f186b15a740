package runtime

import (
	"context"
	"fmt"
	"syscall"

	"github.com/containerd/errdefs"
)

// KillTask kills a container's task through containerd itself and deletes
// it. It is for a container the CRI reports exited while containerd still
// runs its task, which a start cut short can leave: CRI then neither stops
// it (it is "exited") nor removes it ("cannot delete running task"). A
// container without a task is left as it is.
func (c *Client) KillTask(ctx context.Context, id string) error {
	cl, err := c.containerd()
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	cont, err := cl.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", shortID(id), err)
	}
	task, err := cont.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task of container %s: %w", shortID(id), err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait for the task of container %s: %w", shortID(id), err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("kill the task of container %s: %w", shortID(id), err)
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete the task of container %s: %w", shortID(id), err)
	}
	return nil
}

func shortID(id string) string { return id[:min(12, len(id))] }
