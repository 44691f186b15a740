package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// fakeExec answers ExecSync with the exit code it holds, counting calls.
type fakeExec struct {
	code  atomic.Int32
	err   error
	calls atomic.Int32
	block bool
}

func (f *fakeExec) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*cri.ExecSyncResponse, error) {
	f.calls.Add(1)
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return &cri.ExecSyncResponse{ExitCode: f.code.Load(), Stdout: []byte("out of " + id)}, nil
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

func TestCheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "db.example" || r.Header.Get("X-Probe") != "1" {
			http.Error(w, "wrong host or header", http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host, port := hostPort(t, srv.Listener.Addr().String())

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort := hostPort(t, closed.Addr().String())
	closed.Close()

	headers := map[string]string{"Host": "db.example", "X-Probe": "1"}
	tests := []struct {
		name       string
		probe      spec.Probe
		exec       *fakeExec
		host       string
		wantOK     bool
		wantDetail string
	}{
		{name: "exec exits 0", probe: spec.Probe{Exec: []string{"true"}}, exec: &fakeExec{}, wantOK: true, wantDetail: "out of c1"},
		{name: "exec exits 1", probe: spec.Probe{Exec: []string{"false"}}, exec: func() *fakeExec { f := &fakeExec{}; f.code.Store(1); return f }(), wantDetail: "false exited with code 1: out of c1"},
		{name: "exec fails", probe: spec.Probe{Exec: []string{"x"}}, exec: &fakeExec{err: errors.New("container not running")}, wantDetail: "container not running"},
		{name: "exec times out", probe: spec.Probe{Exec: []string{"sleep"}}, exec: &fakeExec{block: true}, wantDetail: "did not finish within"},
		{name: "tcp open", probe: spec.Probe{TCP: &spec.TCPCheck{Port: port}}, host: host, wantOK: true},
		{name: "tcp refused", probe: spec.Probe{TCP: &spec.TCPCheck{Port: closedPort}}, host: host, wantDetail: "refused"},
		{name: "tcp without an IP", probe: spec.Probe{TCP: &spec.TCPCheck{Port: port}}, wantDetail: "no IP address"},
		{name: "http 200 with host and headers", probe: spec.Probe{HTTP: &spec.HTTPCheck{Port: port, Path: "/ok", Scheme: "http", Headers: headers}}, host: host, wantOK: true, wantDetail: "200 OK"},
		{name: "http 503", probe: spec.Probe{HTTP: &spec.HTTPCheck{Port: port, Path: "/fail", Scheme: "http"}}, host: host, wantDetail: "503"},
		{name: "http redirect is success, not followed", probe: spec.Probe{HTTP: &spec.HTTPCheck{Port: port, Path: "/moved", Scheme: "http"}}, host: host, wantOK: true, wantDetail: "302"},
		{name: "http refused", probe: spec.Probe{HTTP: &spec.HTTPCheck{Port: closedPort, Path: "/", Scheme: "http"}}, host: host, wantDetail: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.probe.Timeout = 200 * time.Millisecond
			ex := tt.exec
			if ex == nil {
				ex = &fakeExec{}
			}
			r := Check(context.Background(), ex, &tt.probe, Target{ContainerID: "c1", Host: tt.host})
			if r.OK != tt.wantOK || !strings.Contains(r.Detail, tt.wantDetail) {
				t.Errorf("Check = %+v, want OK %v and detail containing %q", r, tt.wantOK, tt.wantDetail)
			}
		})
	}
}
