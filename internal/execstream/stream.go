// Package execstream connects local streams to a command running in a
// container, through the URL the runtime's streaming Exec returns.
//
// The protocol (SPDY, stream negotiation, exit codes on the error stream)
// is client-go's remotecommand, the client kubectl and crictl use.
package execstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// Options are the local ends of the remote command's streams.
type Options struct {
	Stdin  io.Reader // nil: the command gets no standard input
	Stdout io.Writer
	Stderr io.Writer // unused with TTY: a terminal merges both outputs
	TTY    bool
	// Sizes reports the local terminal's size, then each change; nil
	// leaves the remote terminal at the runtime's default.
	Sizes SizeQueue
}

// SizeQueue is remotecommand's resize queue: Next blocks until the
// terminal has a (new) size and returns nil when there will be no more.
type SizeQueue = remotecommand.TerminalSizeQueue

// Size is a terminal's width and height in cells.
type Size = remotecommand.TerminalSize

// Run streams until the remote command ends and returns its exit code. An
// error means the session itself failed (or ctx ended it), not the command.
func Run(ctx context.Context, streamURL string, o Options) (int, error) {
	u, err := url.Parse(streamURL)
	if err != nil {
		return 0, fmt.Errorf("the runtime's exec URL %q: %w", streamURL, err)
	}
	// A plain http URL on the runtime's streaming server: no TLS, and
	// nothing of a proxy's business.
	rt, err := spdy.NewRoundTripperWithProxy(nil, noProxy)
	if err != nil {
		return 0, err
	}
	executor, err := remotecommand.NewSPDYExecutorRejectRedirects(rt, rt, "POST", u)
	if err != nil {
		return 0, err
	}
	err = executor.StreamWithContext(ctx, remotecommand.StreamOptions{
		Stdin:             o.Stdin,
		Stdout:            o.Stdout,
		Stderr:            o.Stderr,
		Tty:               o.TTY,
		TerminalSizeQueue: o.Sizes,
	})
	return exitCode(err)
}

func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

// exitCode separates the remote command's non-zero exit, which
// remotecommand reports as an error, from failures of the session.
func exitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return exit.ExitStatus(), nil
	}
	return 0, fmt.Errorf("exec session: %w", err)
}
