package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/berth-dev/berth/internal/watch"
)

// listenAddress reads --listen: HOST:PORT, or a bare port for loopback.
func listenAddress(s string) (string, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 65535 {
			return "", usageErrorf("--listen %s: a port is 1-65535", s)
		}
		return net.JoinHostPort("127.0.0.1", s), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", usageErrorf("--listen %q: give HOST:PORT, such as 127.0.0.1:9090, or a port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", usageErrorf("--listen %q: %q is not a port", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// serveTelemetry serves the watcher's endpoints on addr until ctx ends.
// The listener is opened before it returns, so a port in use fails the
// command at once.
func serveTelemetry(ctx context.Context, addr string, t *watch.Telemetry, log *slog.Logger) (wait func(), bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--listen: %w", err)
	}
	srv := &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the metrics and health endpoints stopped", "error", err.Error())
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("serving /metrics, /healthz, /readyz and /status", "listen", ln.Addr().String())
	if !loopback(ln.Addr()) {
		log.Warn("the endpoints answer anyone who can reach this address, without authentication: /status shows the stack's pods, images and addresses; listen on 127.0.0.1, or behind a proxy that authenticates", "listen", ln.Addr().String())
	}
	return func() { <-done }, ln.Addr().String(), nil
}

// notifySystemd tells systemd, when it runs berth as a Type=notify
// service, that the watcher is up, and pings its watchdog while rounds
// keep finishing: a round stuck for longer than the watchdog allows
// stops the pings, and systemd restarts the service.
func notifySystemd(ctx context.Context, t *watch.Telemetry) (ready func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err == nil && interval > 0 {
		go func() {
			tick := time.NewTicker(interval / 2)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					if t.Alive(now, interval) {
						_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
					}
				}
			}
		}()
	}
	return func() { _, _ = daemon.SdNotify(false, daemon.SdNotifyReady) }
}

// loopback says whether a listener is reachable from this host alone.
func loopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
