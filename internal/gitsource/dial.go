package gitsource

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/net/proxy"
)

// go-git's SSH transport dials and shakes hands without the caller's
// context (its dial is bounded only by the ClientConfig's Timeout, the
// handshake not at all), so a server that accepts and never answers would
// hold a sync for ever. Its one hook into that dial is a proxy: berth
// registers a "proxy" scheme of its own that dials directly and closes the
// connection when the sync's context ends, which ends whatever waits on it.

// boundScheme is the proxy scheme whose dialer is bound to a sync's context.
const boundScheme = "berth-bound"

var (
	registerOnce sync.Once
	boundCtxs    sync.Map // id (string) → context.Context
	nextBound    atomic.Uint64
)

// boundProxy returns the proxy options that tie an SSH transport's
// connection to ctx, and a function that forgets them. Other transports
// honour ctx themselves and get no proxy.
func boundProxy(ctx context.Context, rawURL string) (transport.ProxyOptions, func()) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil || ep.Protocol != "ssh" {
		return transport.ProxyOptions{}, func() {}
	}
	registerOnce.Do(func() { proxy.RegisterDialerType(boundScheme, boundDialerFor) })
	id := strconv.FormatUint(nextBound.Add(1), 10)
	boundCtxs.Store(id, ctx)
	return transport.ProxyOptions{URL: boundScheme + "://" + id}, func() { boundCtxs.Delete(id) }
}

func boundDialerFor(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
	ctx, ok := boundCtxs.Load(u.Host)
	if !ok {
		return nil, errors.New("the sync that asked for this connection has ended")
	}
	return boundDialer{ctx.(context.Context)}, nil
}

// boundDialer dials directly, under its sync's context.
type boundDialer struct{ ctx context.Context }

func (d boundDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d boundDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	// Either context ends the dial: go-git's carries its dial timeout.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopDial := context.AfterFunc(d.ctx, cancel)
	defer stopDial()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		if d.ctx.Err() != nil {
			return nil, context.Cause(d.ctx)
		}
		return nil, err
	}
	stop := context.AfterFunc(d.ctx, func() { _ = conn.Close() })
	return &boundConn{Conn: conn, stop: stop}, nil
}

// boundConn is closed when its sync's context ends, if not before.
type boundConn struct {
	net.Conn
	stop func() bool
}

func (c *boundConn) Close() error {
	c.stop()
	return c.Conn.Close()
}
