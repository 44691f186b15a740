// Package forward holds user-space TCP forwards into pods, like crictl
// port-forward: berth listens on a host address, and for each connection
// dials the pod's port from inside the pod's network namespace, then lets
// the kernel copy the bytes (io.Copy between TCP connections splices).
// Without root it goes through the runtime's streaming server instead,
// keeping streaming connections open for the next connections.
//
// The target pod is looked up again whenever a dial fails, so a forward
// follows its pod across replacements; and whenever the stack's serving
// mark for the pod changes, so that a start-first replace moves new
// connections to the new pod the moment apply switches.
package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/berth-dev/berth/internal/serving"
	"github.com/berth-dev/berth/spec"
)

// Target is one forward: connections to Listen go to Port of the stack's
// pod named Pod.
type Target struct {
	Address string // for logs: pod.NAME.forward.NAME
	Stack   string
	Pod     string
	Port    int
	Listen  string
	// Marks is the stack's serving marks directory (serving.Dir): which
	// sandbox takes new connections while a replace runs two.
	Marks string
}

// Targets are the forward blocks of a configuration, in order; marks is
// the stack's serving marks directory.
func Targets(cfg *spec.Config, marks string) []Target {
	var out []Target
	for _, p := range cfg.Pods {
		for _, f := range p.Forwards {
			out = append(out, Target{Address: spec.ForwardAddress(p.Name, f.Name).String(),
				Stack: cfg.Berth.Stack, Pod: p.Name, Port: f.Port, Listen: f.Listen, Marks: marks})
		}
	}
	return out
}

// Finder finds pods, their network namespaces and streaming URLs.
type Finder interface {
	ListSandboxes(ctx context.Context, labels map[string]string) ([]*cri.PodSandbox, error)
	SandboxNetNS(ctx context.Context, id string) (string, error)
	SandboxStatus(ctx context.Context, id string) (*cri.PodSandboxStatus, error)
	PortForward(ctx context.Context, id string, port int32) (string, error)
}

// Path is how connections reach the pod.
type Path string

// The paths of a forward.
const (
	// Namespace dials from inside the pod's network namespace: fast, and
	// needs root (setns).
	Namespace Path = "netns"
	// CRI goes through the runtime's streaming PortForward, as crictl
	// port-forward does: slower, and works without root.
	CRI Path = "cri"
)

// DefaultPath is the namespace path for root, the CRI path otherwise.
func DefaultPath() Path {
	if os.Geteuid() == 0 {
		return Namespace
	}
	return CRI
}

// Serve listens on every target's address, calls listening (if not nil)
// once all listeners are open, and forwards until ctx ends. It returns an
// error only when a listener cannot be opened.
func Serve(ctx context.Context, f Finder, targets []Target, path Path, log *slog.Logger, listening func()) error {
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
	if listening != nil {
		listening()
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		fw := &forwarder{target: t, finder: f, path: path, log: log.With("forward", t.Address)}
		if t.Marks != "" {
			fw.mark = serving.NewMark(t.Marks, t.Pod)
		}
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
	path   Path
	log    *slog.Logger
	mark   *serving.Mark // nil: no marks
	cri    criConns      // the CRI path's idle streaming connections

	mu      sync.Mutex
	sandbox string // cached; found again when a dial fails
	netns   string
}

// maxConns is how many connections one forward carries at once; more
// wait in the listener's backlog until one ends. Each costs two sockets
// (and on the CRI path a streaming connection and a frame buffer), in a
// process the watcher shares with its runtime calls.
var maxConns = 512

func (fw *forwarder) accept(ctx context.Context, ln net.Listener) {
	var conns sync.WaitGroup
	defer fw.cri.close()
	defer conns.Wait()
	slots := make(chan struct{}, maxConns)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		c, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			fw.log.Warn("accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		conns.Add(1)
		go func() {
			defer func() { <-slots }()
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
	pipe := func(dst io.Writer, src io.Reader) {
		_, _ = io.Copy(dst, src) // TCP to TCP: the kernel splices
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite() // pass the half-close on
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

// dial connects to the target port by the forward's path, finding the
// pod again when the cached one no longer answers.
func (fw *forwarder) dial(ctx context.Context) (io.ReadWriteCloser, error) {
	marked, switched := fw.marked()
	for attempt := 0; attempt < 2; attempt++ {
		sandbox, netns, err := fw.find(ctx, marked, attempt > 0 || switched)
		if err != nil {
			return nil, err
		}
		var conn io.ReadWriteCloser
		if fw.path == CRI {
			conn, err = fw.dialCRI(ctx, sandbox)
		} else {
			err = ns.WithNetNSPath(netns, func(ns.NetNS) error {
				var d net.Dialer
				c, derr := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(fw.target.Port)))
				conn = c
				return derr
			})
		}
		if err == nil {
			return conn, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("dial port %d in pod %s: %w", fw.target.Port, fw.target.Pod, err)
		}
	}
	return nil, errors.New("unreachable")
}

// dialCRI opens a forwarded connection to sandbox through the runtime's
// streaming server, on an idle streaming connection when there is one.
func (fw *forwarder) dialCRI(ctx context.Context, sandbox string) (io.ReadWriteCloser, error) {
	done := func(c httpstream.Connection) { fw.cri.put(sandbox, c) }
	if conn := fw.cri.take(sandbox); conn != nil {
		// The streaming server keeps a connection open after its pod
		// stopped, and a PortForward call is what would have said so:
		// ask, while the streams open.
		ready := make(chan error, 1)
		go func() { ready <- fw.sandboxReady(ctx, sandbox) }()
		s, err := openCRI(conn, fw.target.Port, fw.log, done)
		if rerr := <-ready; rerr != nil {
			if s != nil {
				s.done = nil
				s.Close()
			} else {
				conn.Close()
			}
			fw.cri.drop()
			return nil, rerr
		}
		if err == nil {
			return s, nil
		}
		conn.Close() // broken: open a new one
	}
	url, err := fw.finder.PortForward(ctx, sandbox, int32(fw.target.Port))
	if err != nil {
		return nil, err
	}
	conn, err := connectCRI(ctx, url)
	if err != nil {
		return nil, err
	}
	s, err := openCRI(conn, fw.target.Port, fw.log, done)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// sandboxReady fails unless the runtime reports sandbox ready.
func (fw *forwarder) sandboxReady(ctx context.Context, sandbox string) error {
	st, err := fw.finder.SandboxStatus(ctx, sandbox)
	if err != nil {
		return err
	}
	if st.GetState() != cri.PodSandboxState_SANDBOX_READY {
		return fmt.Errorf("pod %s: sandbox %s is not ready", fw.target.Pod, sandbox[:min(12, len(sandbox))])
	}
	return nil
}

// marked is the sandbox the serving mark names, if any, and whether the
// mark changed since the last connection.
func (fw *forwarder) marked() (string, bool) {
	if fw.mark == nil {
		return "", false
	}
	return fw.mark.Sandbox()
}

// find returns the pod's sandbox and network namespace path, looked up
// again when refresh is set or nothing is cached: the marked sandbox when
// it is ready, else the newest ready one.
func (fw *forwarder) find(ctx context.Context, marked string, refresh bool) (string, string, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.sandbox != "" && !refresh {
		return fw.sandbox, fw.netns, nil
	}
	sbs, err := fw.finder.ListSandboxes(ctx, map[string]string{spec.LabelStack: fw.target.Stack, spec.LabelPod: fw.target.Pod})
	if err != nil {
		return "", "", err
	}
	var newest *cri.PodSandbox
	for _, sb := range sbs {
		if sb.State != cri.PodSandboxState_SANDBOX_READY {
			continue
		}
		if sb.Id == marked {
			newest = sb
			break
		}
		if newest == nil || sb.CreatedAt > newest.CreatedAt {
			newest = sb
		}
	}
	if newest == nil {
		return "", "", fmt.Errorf("pod %s of stack %s is not running", fw.target.Pod, fw.target.Stack)
	}
	path := ""
	if fw.path != CRI {
		if path, err = fw.finder.SandboxNetNS(ctx, newest.Id); err != nil {
			return "", "", err
		}
	}
	if newest.Id != fw.sandbox {
		fw.log.Info("forwarding to the pod", "pod", fw.target.Pod, "sandbox", newest.Id[:min(12, len(newest.Id))], "path", fw.path)
	}
	fw.sandbox, fw.netns = newest.Id, path
	return fw.sandbox, path, nil
}
