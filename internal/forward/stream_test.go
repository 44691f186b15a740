package forward

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/syncbuf"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// streamingServer speaks portforward.k8s.io as the runtime's streaming
// server does: data streams echo, and port 81 has no listener, which the
// error stream says.
type streamingServer struct {
	*httptest.Server
	upgrades atomic.Int32
	mu       sync.Mutex
	conns    []httpstream.Connection
}

func newStreamingServer(t *testing.T) *streamingServer {
	s := &streamingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(httpstream.HeaderProtocolVersion) != portForwardProtocol {
			http.Error(w, "no such protocol", http.StatusBadRequest)
			return
		}
		conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(st httpstream.Stream, replySent <-chan struct{}) error {
			go func() {
				<-replySent
				refused := st.Headers().Get(headerPort) == "81"
				switch st.Headers().Get(headerStreamType) {
				case "data":
					if refused {
						st.Close()
						return
					}
					_, _ = io.Copy(st, st)
					st.Close()
				case "error":
					if refused {
						_, _ = io.WriteString(st, "no listener on port 81")
						st.Close()
					}
				}
			}()
			return nil
		})
		if conn == nil {
			return
		}
		s.upgrades.Add(1)
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		<-conn.CloseChan()
	}))
	t.Cleanup(s.Close)
	return s
}

// closeAll closes every streaming connection from the server's side.
func (s *streamingServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// streamingRuntime is a Finder whose sandboxes forward to a streaming
// server, counting the calls.
type streamingRuntime struct {
	url string
	mu  sync.Mutex
	sbs []*cri.PodSandbox
	// calls by method and sandbox, as "PortForward aa"
	calls map[string]int
}

func (r *streamingRuntime) count(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[call]++
}

func (r *streamingRuntime) called(call string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[call]
}

func (r *streamingRuntime) set(sbs ...*cri.PodSandbox) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sbs = sbs
}

func (r *streamingRuntime) ListSandboxes(context.Context, map[string]string) ([]*cri.PodSandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sbs, nil
}

func (r *streamingRuntime) SandboxNetNS(context.Context, string) (string, error) { return "", nil }

func (r *streamingRuntime) SandboxStatus(_ context.Context, id string) (*cri.PodSandboxStatus, error) {
	r.count("SandboxStatus " + id)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sb := range r.sbs {
		if sb.Id == id {
			return &cri.PodSandboxStatus{Id: id, State: sb.State}, nil
		}
	}
	return nil, io.ErrUnexpectedEOF
}

func (r *streamingRuntime) PortForward(_ context.Context, id string, _ int32) (string, error) {
	r.count("PortForward " + id)
	return r.url + "/portforward/" + id, nil
}

// echo sends a line through a forwarded connection and reads it back.
func echo(t *testing.T, fw *forwarder) {
	t.Helper()
	conn, err := fw.dial(context.Background())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "berth\n"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "berth\n" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

// The CRI path keeps its streaming connections for the next forwarded
// connections, opens a new one while one is busy and when the runtime
// closed the idle one, and leaves them for a sandbox that is no longer
// ready.
func TestCRIReusesStreamingConnections(t *testing.T) {
	ready, notReady := cri.PodSandboxState_SANDBOX_READY, cri.PodSandboxState_SANDBOX_NOTREADY
	srv := newStreamingServer(t)
	rt := &streamingRuntime{url: srv.URL, calls: map[string]int{}}
	rt.set(&cri.PodSandbox{Id: "aa", CreatedAt: 1, State: ready})
	fw := &forwarder{target: Target{Stack: "s", Pod: "web", Port: 80}, finder: rt, path: CRI, log: slog.New(slog.DiscardHandler)}
	defer fw.cri.close()

	for range 3 {
		echo(t, fw)
	}
	if n, pf, st := srv.upgrades.Load(), rt.called("PortForward aa"), rt.called("SandboxStatus aa"); n != 1 || pf != 1 || st != 2 {
		t.Fatalf("three connections in turn: %d upgrades, %d PortForward, %d SandboxStatus calls; want 1, 1, 2", n, pf, st)
	}

	// Two at once take two streaming connections, and both are kept.
	a, err := fw.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := fw.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	if n := srv.upgrades.Load(); n != 2 {
		t.Fatalf("two connections at once: %d upgrades in all, want 2", n)
	}
	echo(t, fw)
	echo(t, fw)
	if n := srv.upgrades.Load(); n != 2 {
		t.Fatalf("after two kept: %d upgrades in all, want 2", n)
	}

	// The runtime closed the idle ones: a new one.
	srv.closeAll()
	waitFor(t, "the idle connections to close", func() bool {
		fw.cri.mu.Lock()
		defer fw.cri.mu.Unlock()
		for _, c := range fw.cri.idle {
			if !isClosed(c.conn) {
				return false
			}
		}
		return true
	})
	echo(t, fw)
	if n := srv.upgrades.Load(); n != 3 {
		t.Fatalf("after the runtime closed them: %d upgrades in all, want 3", n)
	}

	// The sandbox stopped and a new one runs: the kept connection is
	// left, and the new sandbox gets its own.
	rt.set(&cri.PodSandbox{Id: "aa", CreatedAt: 1, State: notReady}, &cri.PodSandbox{Id: "bb", CreatedAt: 2, State: ready})
	echo(t, fw)
	if n, pf := srv.upgrades.Load(), rt.called("PortForward bb"); n != 4 || pf != 1 {
		t.Fatalf("after the sandbox stopped: %d upgrades in all, %d PortForward to the new one; want 4, 1", n, pf)
	}
	fw.cri.mu.Lock()
	if fw.cri.sandbox != "bb" || len(fw.cri.idle) != 1 {
		t.Errorf("kept %d connections to %q, want 1 to bb", len(fw.cri.idle), fw.cri.sandbox)
	}
	fw.cri.mu.Unlock()

	// Once the forward ends, nothing is kept.
	kept := fw.cri.idle[0].conn
	fw.cri.close()
	waitFor(t, "the idle connection to close with its forward", func() bool { return isClosed(kept) })
}

// What the runtime says on the error stream is logged, and the client's
// connection ends.
func TestCRILogsTheRuntimesError(t *testing.T) {
	srv := newStreamingServer(t)
	rt := &streamingRuntime{url: srv.URL, calls: map[string]int{}}
	rt.set(&cri.PodSandbox{Id: "aa", State: cri.PodSandboxState_SANDBOX_READY})
	var logs syncbuf.Buffer
	fw := &forwarder{target: Target{Stack: "s", Pod: "web", Port: 81}, finder: rt, path: CRI, log: slog.New(slog.NewTextHandler(&logs, nil))}
	defer fw.cri.close()
	conn, err := fw.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a port nothing listens on", n)
	}
	waitFor(t, "the runtime's error in the log", func() bool {
		return strings.Contains(logs.String(), "no listener on port 81")
	})
}

// A runtime that refuses the upgrade gets its answer quoted, bounded.
func TestConnectCRIQuotesARefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(bytes.Repeat([]byte("x"), 1<<20))
	}))
	defer srv.Close()
	_, err := connectCRI(context.Background(), srv.URL+"/portforward/gone")
	if err == nil || !strings.Contains(err.Error(), "404") || len(err.Error()) > errorMax+200 {
		t.Fatalf("connectCRI = %.300v (%d bytes); want the 404, bounded", err, len(err.Error()))
	}
}

// A runtime that accepts and never answers does not hold a forward past
// its context.
func TestConnectCRIHonoursTheContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel) // a forward that stops
	done := make(chan error, 1)
	go func() { _, err := connectCRI(ctx, srv.URL); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("connectCRI to a silent server succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connectCRI to a silent server hung past its deadline")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A forward carries at most maxConns connections at once; the next waits
// in the backlog and is carried once one ends.
func TestForwardCarriesAtMostMaxConns(t *testing.T) {
	defer func(n int) { maxConns = n }(maxConns)
	maxConns = 2
	srv := newStreamingServer(t)
	rt := &streamingRuntime{url: srv.URL, calls: map[string]int{}}
	rt.set(&cri.PodSandbox{Id: "aa", CreatedAt: 1, State: cri.PodSandboxState_SANDBOX_READY})
	fw := &forwarder{target: Target{Stack: "s", Pod: "web", Port: 80}, finder: rt, path: CRI, log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fw.accept(ctx, ln); close(done) }()
	defer func() { cancel(); ln.Close(); <-done }()

	roundTrip := func(c net.Conn, wait time.Duration) error {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(c, "berth\n"); err != nil {
			return err
		}
		got := make([]byte, 6)
		_, err := io.ReadFull(c, got)
		return err
	}
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	for i, c := range held[:2] {
		if err := roundTrip(c, 10*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	if err := roundTrip(held[2], 300*time.Millisecond); err == nil {
		t.Fatal("a third connection was carried beside two")
	}
	held[0].Close()
	if err := roundTrip(held[2], 10*time.Second); err != nil {
		t.Fatalf("the third connection, once one ended: %v", err)
	}
}
