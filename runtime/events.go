package runtime

import (
	"context"
	"fmt"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
)

// Event is a change on the runtime that may concern a stack: a task that
// exited, a container or sandbox deleted. ID is the container's or the
// sandbox's ID, as CRI names them.
type Event struct {
	Topic string
	ID    string
}

// eventFilters are the topics that mean "what runs changed": CRI's pods are
// containerd containers with tasks, so their exits and deletions show here.
var eventFilters = []string{
	`topic=="/tasks/exit"`,
	`topic=="/tasks/oom"`,
	`topic=="/containers/delete"`,
	`topic~="^/sandboxes/"`,
}

// Events streams the runtime's events until ctx ends or the stream breaks
// (the runtime went away); then the error channel says why. The event
// channel is closed when the stream ends.
func (c *Client) Events(ctx context.Context) (<-chan Event, <-chan error) {
	out := make(chan Event, 64)
	errc := make(chan error, 1)
	cl, err := c.containerd()
	if err != nil {
		close(out)
		errc <- err
		return out, errc
	}
	envelopes, errs := cl.Subscribe(ctx, eventFilters...)
	go func() {
		defer close(out)
		for {
			select {
			case env := <-envelopes:
				ev := Event{Topic: env.Topic, ID: eventID(env.Event)}
				select {
				case out <- ev:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case err := <-errs:
				if err == nil {
					err = fmt.Errorf("the runtime's event stream ended")
				}
				errc <- err
				return
			}
		}
	}()
	return out, errc
}

// eventID reads the container or sandbox an event is about; "" when the
// event's type is not one berth knows.
func eventID(any typeurl.Any) string {
	if any == nil {
		return ""
	}
	v, err := typeurl.UnmarshalAny(any)
	if err != nil {
		return ""
	}
	switch e := v.(type) {
	case *apievents.TaskExit:
		return e.ContainerID
	case *apievents.TaskOOM:
		return e.ContainerID
	case *apievents.ContainerDelete:
		return e.ID
	case *apievents.SandboxExit:
		return e.SandboxID
	case *apievents.SandboxCreate:
		return e.SandboxID
	case *apievents.SandboxStart:
		return e.SandboxID
	}
	return ""
}
