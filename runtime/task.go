package runtime

import (
	"context"
	"fmt"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// KillTask kills a container's task through containerd itself and deletes
// it. It is for a container the CRI reports exited while containerd still
// runs its task, which a start cut short can leave: CRI then neither stops
// it (it is "exited") nor removes it ("cannot delete running task"). A
// container without a task is left as it is.
func (c *Client) KillTask(ctx context.Context, id string) error {
	task, err := c.task(ctx, id)
	if task == nil {
		return err // nil when it is gone already
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

// task is the container's containerd task; nil and no error when the
// container or its task is gone.
func (c *Client) task(ctx context.Context, id string) (containerd.Task, error) {
	cl, err := c.containerd()
	if err != nil {
		return nil, fmt.Errorf("connect to containerd: %w", err)
	}
	cont, err := cl.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", shortID(id), err)
	}
	task, err := cont.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("task of container %s: %w", shortID(id), err)
	}
	return task, nil
}

func shortID(id string) string { return id[:min(12, len(id))] }

// TaskExit waits, for as long as ctx lasts, until a container's task
// exits, and says nil then: containerd's own wait, which returns as the
// process ends, while CRI's StopContainer returns only once the CRI has
// handled the exit (100-250 ms later with 500 pods). A container without
// a task has exited, and so has one that ended before the wait reached
// containerd or was deleted meanwhile: a stop sent after TaskExit returns
// cannot be missed.
func (c *Client) TaskExit(ctx context.Context, id string) (<-chan error, error) {
	done := make(chan error, 1)
	task, err := c.task(ctx, id)
	if err != nil {
		return nil, err
	}
	if task == nil {
		done <- nil
		return done, nil
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for the task of container %s: %w", shortID(id), err)
	}
	go func() {
		st := <-exited
		if err := st.Error(); err != nil && !errdefs.IsNotFound(err) {
			done <- fmt.Errorf("wait for the task of container %s: %w", shortID(id), err)
			return
		}
		done <- nil
	}()
	return done, nil
}
