package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
)

// runtimeTimes split a sample by containerd's own clock: when the runtime
// published the old container's exit, the next container's creation and
// its task's start, each counted from the change. They tell the runtime's
// part of a reaction (create and start, the same calls for berth and the
// raw baseline) from the watcher's (until it asks), which the lists polled
// every pollEvery cannot. Zero: the event was not seen.
type runtimeTimes struct {
	exited, created, started time.Duration
}

// complete says all three events were seen.
func (t runtimeTimes) complete() bool { return t.exited > 0 && t.created > 0 && t.started > 0 }

// eventTopics are what a sample's timeline needs.
var eventTopics = []string{`topic=="/tasks/exit"`, `topic=="/containers/create"`, `topic=="/tasks/start"`}

// client is the benchmark's containerd client, made on first use and
// closed by cleanup.
func (wb *watchBench) client() (*containerd.Client, error) {
	if wb.ctrd == nil {
		cl, err := containerd.New(strings.TrimPrefix(wb.address, "unix://"), containerd.WithDefaultNamespace(criNamespace), containerd.WithTimeout(10*time.Second))
		if err != nil {
			return nil, fmt.Errorf("containerd at %s: %w", wb.address, err)
		}
		wb.ctrd = cl
	}
	return wb.ctrd, nil
}

// eventLog is containerd's events of one sample, by container ID, with
// the timestamps containerd gave them.
type eventLog struct {
	cancel context.CancelFunc
	done   chan struct{}
	// exited is closed when the old container's task exits; started when
	// a task other than the old container's starts: the sample's new
	// container is up, and the lists may be polled.
	exited, started        chan struct{}
	mu                     sync.Mutex
	exits, creates, starts map[string]time.Time
	up                     bool // started is closed
	err                    error
}

// recordEvents subscribes to containerd's events until stop, for a sample
// that replaces container old.
func (wb *watchBench) recordEvents(ctx context.Context, old string) (*eventLog, error) {
	cl, err := wb.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &eventLog{cancel: cancel, done: make(chan struct{}), exited: make(chan struct{}), started: make(chan struct{}),
		exits: map[string]time.Time{}, creates: map[string]time.Time{}, starts: map[string]time.Time{}}
	envelopes, errs := cl.Subscribe(ctx, eventTopics...)
	go func() {
		defer close(l.done)
		for {
			select {
			case env := <-envelopes:
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				l.mu.Lock()
				switch e := v.(type) {
				case *apievents.TaskExit:
					if e.ID != e.ContainerID { // an exec's, not the container's own process
						break
					}
					if _, seen := l.exits[old]; e.ContainerID == old && !seen {
						close(l.exited)
					}
					l.exits[e.ContainerID] = env.Timestamp
				case *apievents.ContainerCreate:
					l.creates[e.ID] = env.Timestamp
				case *apievents.TaskStart:
					if e.ContainerID != old && !l.up {
						l.up = true
						close(l.started)
					}
					l.starts[e.ContainerID] = env.Timestamp
				}
				l.mu.Unlock()
			case err := <-errs:
				if ctx.Err() == nil {
					l.mu.Lock()
					l.err = fmt.Errorf("containerd's events: %v", err)
					l.mu.Unlock()
				}
				return
			}
		}
	}()
	// Subscribe returns before the stream is up: a moment for it, so that
	// the change's first event is not missed.
	return l, sleep(ctx, 50*time.Millisecond)
}

// awaitExit returns once the old container's exit has been told, or
// ended (nil: never) says its stop failed, or the events stopped.
func (l *eventLog) awaitExit(ctx context.Context, ended <-chan error) error {
	for {
		select {
		case <-l.exited:
			return nil
		case err := <-ended:
			if err != nil {
				return err
			}
			ended = nil // returned before its exit was told: wait for that
		case <-l.done:
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop ends the subscription and says what the sample's containers did,
// from t0: old's exit, next's creation and start.
func (l *eventLog) stop(t0 time.Time, old, next string) (runtimeTimes, error) {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	since := func(m map[string]time.Time, id string) time.Duration {
		if at, ok := m[id]; ok && id != "" {
			return at.Sub(t0)
		}
		return 0
	}
	return runtimeTimes{exited: since(l.exits, old), created: since(l.creates, next), started: since(l.starts, next)}, l.err
}
