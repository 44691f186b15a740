package runtime

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Event is a change on the runtime that may concern a stack: a task that
// exited, a container or sandbox deleted. ID is the container's or the
// sandbox's ID, as CRI names them.
type Event struct {
	Topic string
	ID    string
	// Exited: a container's or sandbox's own process exited (its task's
	// init process, not one exec'd in it), with ExitCode, at ExitedAt.
	Exited   bool
	ExitCode int32
	ExitedAt time.Time
	// OOM: the kernel's OOM killer ended a process of the container.
	OOM bool
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
				ev, ok := toEvent(env.Topic, env.Event)
				if !ok {
					continue
				}
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

// toEvent reads which container or sandbox an event is about; false for
// an event that says nothing about what runs: a type berth does not know,
// or the exit of a process exec'd in a container (a probe, berth exec),
// whose ID is not the container's.
func toEvent(topic string, any typeurl.Any) (Event, bool) {
	if any == nil {
		return Event{}, false
	}
	v, err := typeurl.UnmarshalAny(any)
	if err != nil {
		return Event{}, false
	}
	ev := Event{Topic: topic}
	switch e := v.(type) {
	case *apievents.TaskExit:
		if e.ID != "" && e.ID != e.ContainerID {
			return Event{}, false
		}
		ev.ID, ev.Exited, ev.ExitCode, ev.ExitedAt = e.ContainerID, true, int32(e.ExitStatus), timeOf(e.ExitedAt)
	case *apievents.TaskOOM:
		ev.ID, ev.OOM = e.ContainerID, true
	case *apievents.ContainerDelete:
		ev.ID = e.ID
	case *apievents.SandboxExit:
		ev.ID, ev.Exited, ev.ExitCode, ev.ExitedAt = e.SandboxID, true, int32(e.ExitStatus), timeOf(e.ExitedAt)
	case *apievents.SandboxCreate:
		ev.ID = e.SandboxID
	case *apievents.SandboxStart:
		ev.ID = e.SandboxID
	}
	if ev.ID == "" {
		return Event{}, false
	}
	return ev, true
}

// timeOf is a protobuf time, or the zero time for none (AsTime would say
// 1970).
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
