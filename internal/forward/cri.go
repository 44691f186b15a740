package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// The portforward.k8s.io protocol, as the CRI streaming server speaks it:
// per forwarded connection, an error stream and a data stream, both
// naming the port and a request ID. One streaming connection carries any
// number of them, one after another.
const (
	portForwardProtocol = "portforward.k8s.io"
	headerStreamType    = "streamType"
	headerPort          = "port"
	headerRequestID     = "requestID"
)

// upgradeTimeout bounds the runtime's answer to a streaming request: the
// upgrade, or the error it sends instead.
const upgradeTimeout = 30 * time.Second

// errorMax is the most of the runtime's error message that is read.
const errorMax = 4 << 10

var requestIDs atomic.Int64

// connectCRI opens a streaming connection on a CRI streaming URL. The
// request goes straight to the runtime's address, never through a proxy.
func connectCRI(ctx context.Context, url string) (httpstream.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, upgradeTimeout)
	defer cancel()
	var raw net.Conn
	stop := func() bool { return true }
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// The upgrade reads from the connection without a context: its
		// deadline is what ends a runtime that does not answer.
		deadline, _ := ctx.Deadline()
		_ = c.SetDeadline(deadline)
		stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
		raw = c
		return c, nil
	}
	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{UpgradeTransport: &http.Transport{DialContext: dial}})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, fmt.Errorf("the runtime's streaming URL: %w", err)
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, portForwardProtocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("open the runtime's stream: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, errorMax))
		raw.Close()
		return nil, fmt.Errorf("the runtime refused the stream: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("upgrade the runtime's stream: %w", err)
	}
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("open the runtime's stream: %w", ctx.Err())
	}
	_ = raw.SetDeadline(time.Time{})
	return conn, nil
}

// openCRI opens one forwarded connection to port over conn. done takes
// conn back when the forwarded connection closes; the runtime's error
// message for it, if any, goes to log.
func openCRI(conn httpstream.Connection, port int, log *slog.Logger, done func(httpstream.Connection)) (*criStream, error) {
	headers := http.Header{}
	headers.Set(headerPort, strconv.Itoa(port))
	headers.Set(headerRequestID, strconv.FormatInt(requestIDs.Add(1), 10))
	errHeaders := headers.Clone()
	errHeaders.Set(headerStreamType, "error")
	headers.Set(headerStreamType, "data")

	// Each stream waits for the runtime's reply: open both at once.
	type opened struct {
		stream httpstream.Stream
		err    error
	}
	errOpened := make(chan opened, 1)
	go func() {
		s, err := conn.CreateStream(errHeaders)
		errOpened <- opened{s, err}
	}()
	data, dataErr := conn.CreateStream(headers)
	e := <-errOpened
	if err := errors.Join(e.err, dataErr); err != nil {
		for _, s := range []httpstream.Stream{e.stream, data} {
			if s != nil {
				_ = s.Reset()
			}
		}
		return nil, fmt.Errorf("open a stream to port %d: %w", port, err)
	}
	_ = e.stream.Close() // nothing to send on it
	go reportCRIError(e.stream, port, log)
	return &criStream{conn: conn, data: data, errStream: e.stream, done: done}, nil
}

// reportCRIError logs what the runtime says on a forwarded connection's
// error stream: why it could not reach the port.
func reportCRIError(s httpstream.Stream, port int, log *slog.Logger) {
	msg, _ := io.ReadAll(io.LimitReader(s, errorMax))
	if m := strings.TrimSpace(string(msg)); m != "" {
		log.Warn("the runtime could not forward the connection", "port", port, "err", m)
	}
}

// criStream is one forwarded connection over a streaming connection.
type criStream struct {
	conn      httpstream.Connection
	data      httpstream.Stream
	errStream httpstream.Stream
	done      func(httpstream.Connection) // nil: close conn
	closeOnce sync.Once
}

func (s *criStream) Read(p []byte) (int, error)  { return s.data.Read(p) }
func (s *criStream) Write(p []byte) (int, error) { return s.data.Write(p) }

// criFrame is the most one write to the stream carries: each write is one
// SPDY data frame, and the runtime's cost goes by frames more than by
// bytes (io.Copy's 32 KiB made it the bottleneck of a bulk transfer).
const criFrame = 512 << 10

var frameBuffers = sync.Pool{New: func() any { b := make([]byte, criFrame); return &b }}

// ReadFrom copies r to the stream in frames of up to criFrame: as much
// as each read returns.
func (s *criStream) ReadFrom(r io.Reader) (int64, error) {
	buf := frameBuffers.Get().(*[]byte)
	defer frameBuffers.Put(buf)
	return io.CopyBuffer(writerOnly{s.data}, readerOnly{r}, *buf)
}

// readerOnly and writerOnly hide WriteTo and ReadFrom, which would pick
// their own buffers.
type (
	readerOnly struct{ io.Reader }
	writerOnly struct{ io.Writer }
)

// CloseWrite passes a half-close on.
func (s *criStream) CloseWrite() error { return s.data.Close() }

// Close ends the forwarded connection and hands the streaming connection
// back for the next one.
func (s *criStream) Close() error {
	s.closeOnce.Do(func() {
		_ = s.data.Reset()
		_ = s.errStream.Reset()
		s.conn.RemoveStreams(s.data, s.errStream)
		if s.done != nil {
			s.done(s.conn)
		} else {
			_ = s.conn.Close()
		}
	})
	return nil
}

// The idle streaming connections a forward keeps, and for how long.
const (
	criIdleMax     = 4
	criIdleTimeout = 90 * time.Second
)

// criConns keeps a forward's idle streaming connections to one sandbox
// for its next connections: a new one costs the runtime a PortForward
// call and an HTTP upgrade, more than the rest of a short connection.
// Each carries one forwarded connection at a time: streams on one SPDY
// connection share its reader, so a slow client would stall the others.
type criConns struct {
	mu      sync.Mutex
	sandbox string
	idle    []idleConn // oldest first
	closed  bool
}

type idleConn struct {
	conn  httpstream.Connection
	timer *time.Timer
}

// take returns an idle connection to sandbox, or nil.
func (p *criConns) take(sandbox string) httpstream.Connection {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sandbox != p.sandbox {
		p.dropLocked()
		p.sandbox = sandbox
		return nil
	}
	for len(p.idle) > 0 {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		last.timer.Stop()
		if !isClosed(last.conn) {
			return last.conn
		}
		_ = last.conn.Close()
	}
	return nil
}

// put keeps conn, to sandbox, for the next connection, or closes it: when
// the forward ended, moved to another sandbox, or has enough idle ones.
func (p *criConns) put(sandbox string, conn httpstream.Connection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || sandbox != p.sandbox || len(p.idle) >= criIdleMax || isClosed(conn) {
		_ = conn.Close()
		return
	}
	timer := time.AfterFunc(criIdleTimeout, func() { p.expire(conn) })
	p.idle = append(p.idle, idleConn{conn: conn, timer: timer})
}

// expire closes conn when it is still idle.
func (p *criConns) expire(conn httpstream.Connection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.idle {
		if c.conn == conn {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			_ = conn.Close()
			return
		}
	}
}

// drop closes every idle connection: their sandbox is gone.
func (p *criConns) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked()
}

func (p *criConns) dropLocked() {
	for _, c := range p.idle {
		c.timer.Stop()
		_ = c.conn.Close()
	}
	p.idle = nil
}

// close drops the idle connections, and closes those handed back later.
func (p *criConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.dropLocked()
}

// isClosed reports whether the runtime closed conn.
func isClosed(conn httpstream.Connection) bool {
	select {
	case <-conn.CloseChan():
		return true
	default:
		return false
	}
}
