// Package forward holds user-space TCP forwards into pods, like crictl
// port-forward: berth listens on a host address, and for each connection
// dials the pod's port from inside the pod's network namespace, then lets
// the kernel copy the bytes (io.Copy between TCP connections splices).
//
// The target pod is looked up again whenever a dial fails, so a forward
// follows its pod across replacements.
package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
)

// Target is one forward: connections to Listen go to Port of the stack's
// pod named Pod.
type Target struct {
	Address string // for logs: pod.NAME.forward.NAME
	Stack   string
	Pod     string
	Port    int
	Listen  string
}

// Finder finds pods and their network namespaces.
type Finder interface {
	ListSandboxes(ctx context.Context, labels map[string]string) ([]*cri.PodSandbox, error)
	SandboxNetNS(ctx context.Context, id string) (string, error)
}

// Serve listens on every target's address and forwards until ctx ends. It
// returns an error only when a listener cannot be opened.
func Serve(ctx context.Context, f Finder, targets []Target, log *slog.Logger) error {
	var lns []net.Listener
	for _, t := range targets {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", t.Listen)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("%s: listen on %s: %w", t.Address, t.Listen, err)
		}
		lns = append(lns, ln)
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		fw := &forwarder{target: t, finder: f, log: log.With("forward", t.Address)}
		wg.Add(1)
		go func() { defer wg.Done(); fw.accept(ctx, lns[i]) }()
	}
	<-ctx.Done()
	for _, l := range lns {
		l.Close()
	}
	wg.Wait()
	return nil
}

type forwarder struct {
	target Target
	finder Finder
	log    *slog.Logger

	mu    sync.Mutex
	netns string // cached; cleared when a dial through it fails
}

func (fw *forwarder) accept(ctx context.Context, ln net.Listener) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			fw.log.Warn("accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			fw.handle(ctx, c)
		}()
	}
}

func (fw *forwarder) handle(ctx context.Context, client net.Conn) {
	defer client.Close()
	upstream, err := fw.dial(ctx)
	if err != nil {
		fw.log.Warn("no connection to the pod", "err", err)
		return
	}
	defer upstream.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // TCP to TCP: the kernel splices
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // pass the half-close on
		}
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// dial connects to the target port inside the pod's network namespace,
// finding the pod again when the cached namespace no longer answers.
func (fw *forwarder) dial(ctx context.Context) (net.Conn, error) {
	for attempt := 0; attempt < 2; attempt++ {
		path, err := fw.namespace(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		var conn net.Conn
		err = ns.WithNetNSPath(path, func(ns.NetNS) error {
			var d net.Dialer
			var derr error
			conn, derr = d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(fw.target.Port)))
			return derr
		})
		if err == nil {
			return conn, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("dial port %d in pod %s: %w", fw.target.Port, fw.target.Pod, err)
		}
	}
	return nil, errors.New("unreachable")
}

// namespace returns the pod's network namespace path, looked up again when
// refresh is set or nothing is cached.
func (fw *forwarder) namespace(ctx context.Context, refresh bool) (string, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.netns != "" && !refresh {
		return fw.netns, nil
	}
	sbs, err := fw.finder.ListSandboxes(ctx, map[string]string{runtime.LabelStack: fw.target.Stack, runtime.LabelPod: fw.target.Pod})
	if err != nil {
		return "", err
	}
	var newest *cri.PodSandbox
	for _, sb := range sbs {
		if sb.State == cri.PodSandboxState_SANDBOX_READY && (newest == nil || sb.CreatedAt > newest.CreatedAt) {
			newest = sb
		}
	}
	if newest == nil {
		return "", fmt.Errorf("pod %s of stack %s is not running", fw.target.Pod, fw.target.Stack)
	}
	path, err := fw.finder.SandboxNetNS(ctx, newest.Id)
	if err != nil {
		return "", err
	}
	if path != fw.netns {
		fw.log.Info("forwarding to the pod", "pod", fw.target.Pod, "sandbox", newest.Id[:12])
	}
	fw.netns = path
	return path, nil
}
