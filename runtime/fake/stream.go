package fake

import (
	"context"
	"errors"
	"slices"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
)

// Events streams a task exit for every container Exit ends, until ctx
// ends. BreakEvents ends the streams as a runtime restart would.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	s := &stream{events: make(chan runtime.Event, 64), errc: make(chan error, 1)}
	r.mu.Lock()
	r.streams = append(r.streams, s)
	r.mu.Unlock()
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.end(s, ctx.Err())
	}()
	return s.events, s.errc
}

// stream is one Events call's channels.
type stream struct {
	events chan runtime.Event
	errc   chan error
}

// BreakEvents ends every event stream with an error, as a runtime that
// restarts does.
func (r *Runtime) BreakEvents() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range slices.Clone(r.streams) {
		r.end(s, errors.New("the runtime closed the event stream"))
	}
}

// end closes a stream that is still open with err; r.mu is held.
func (r *Runtime) end(s *stream, err error) {
	i := slices.Index(r.streams, s)
	if i < 0 {
		return
	}
	r.streams = slices.Delete(r.streams, i, i+1)
	close(s.events)
	s.errc <- err
}

// emit sends an event to every stream that has room; r.mu is held.
func (r *Runtime) emit(ev runtime.Event) {
	for _, s := range r.streams {
		select {
		case s.events <- ev:
		default:
		}
	}
}

// ExecSync runs nothing: Exec, if set, decides the exit code (0 without).
func (r *Runtime) ExecSync(_ context.Context, id string, cmd []string, _ time.Duration) (*cri.ExecSyncResponse, error) {
	r.mu.Lock()
	if err := r.enter("ExecSync", id); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	exec := r.Exec
	r.mu.Unlock()
	var code int32
	if exec != nil {
		code = exec(id, cmd)
	}
	return &cri.ExecSyncResponse{ExitCode: code}, nil
}

// errNoNetwork is what the fake says to forwards: it has no pod networks.
var errNoNetwork = errors.New("the fake runtime has no pod networks")

// SandboxNetNS fails: the fake has no network namespaces.
func (r *Runtime) SandboxNetNS(context.Context, string) (string, error) { return "", errNoNetwork }

// PortForward fails: the fake has no streaming server.
func (r *Runtime) PortForward(context.Context, string, int32) (string, error) {
	return "", errNoNetwork
}

// Close does nothing.
func (r *Runtime) Close() error { return nil }
