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
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
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
	up := &boundUpgrade{}
	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{UpgradeTransport: &http.Transport{DialContext: up.dial(ctx)}})
	if err != nil {
		return 0, err
	}
	up.SpdyRoundTripper = rt
	defer up.end()
	executor, err := remotecommand.NewSPDYExecutorRejectRedirects(rt, up, "POST", u)
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

// upgradeTimeout bounds the runtime's answer to the exec request: the
// upgrade, or the error it sends instead.
var upgradeTimeout = 30 * time.Second

// boundUpgrade puts a deadline on the exec request's connection until the
// runtime has upgraded it. client-go reads the answer without a context,
// so a streaming server that accepts and never answers would hold berth
// exec for ever, with the terminal raw and Ctrl-C only a byte.
type boundUpgrade struct {
	*spdy.SpdyRoundTripper
	mu   sync.Mutex
	raw  net.Conn
	stop func() bool // ends ctx's hold on the connection's deadline
}

func (b *boundUpgrade) dial(ctx context.Context) func(context.Context, string, string) (net.Conn, error) {
	return func(dctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: upgradeTimeout}).DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(upgradeTimeout))
		b.mu.Lock()
		defer b.mu.Unlock()
		b.raw = c
		b.stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
		return c, nil
	}
}

// NewConnection takes the upgraded connection: from here the session runs
// as long as the command, and remotecommand watches ctx itself.
func (b *boundUpgrade) NewConnection(resp *http.Response) (httpstream.Connection, error) {
	conn, err := b.SpdyRoundTripper.NewConnection(resp)
	if err == nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.stop != nil && b.stop() {
			_ = b.raw.SetDeadline(time.Time{})
		}
	}
	return conn, err
}

func (b *boundUpgrade) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		b.stop()
	}
}

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
