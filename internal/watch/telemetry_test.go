package watch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec/spectest"
)

// get fetches one endpoint of the telemetry's handler.
func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape parses /metrics with Prometheus' own text parser.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, srv, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return families
}

// value is a metric's value for the labels given, or -1.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		ok := true
		for _, lp := range m.Label {
			if want, set := labels[lp.GetName()]; set && want != lp.GetValue() {
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTelemetryEndpoints(t *testing.T) {
	h := newHarness(t, webPod)
	tel := NewTelemetry()
	h.opts.Telemetry, h.opts.Version = tel, "v9.9.9"
	started := make(chan struct{})
	h.opts.Started = func() { close(started) }
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()

	// Before the watcher runs: not connected, not ready.
	if code, _ := get(t, srv, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz before start: %d", code)
	}
	h.start()
	<-started
	eventually(t, "/readyz to say ready", func() bool { code, _ := get(t, srv, "/readyz"); return code == http.StatusOK })
	if code, body := get(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	m := scrape(t, srv)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"berth_watch_rounds_total", map[string]string{"trigger": "start", "result": "applied"}, 1},
		{"berth_watch_actions_total", map[string]string{"action": "create", "kind": "pod"}, 1},
		{"berth_watch_actions_total", map[string]string{"action": "create", "kind": "container"}, 1},
		{"berth_watch_round_duration_seconds", nil, 1},
		{"berth_watch_info", map[string]string{"stack": "test", "version": "v9.9.9"}, 1},
		{"berth_watch_held_back_changes", nil, 0},
		{"berth_watch_config_errors_total", nil, 0},
	} {
		if got := value(m, c.name, c.labels); got < c.want || (c.want == 0 && got != 0) {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value(m, "berth_watch_last_success_timestamp_seconds", nil) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Error("no recent success time")
	}

	code, body := get(t, srv, "/status")
	var st StatusReport
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/status: %d %v\n%s", code, err, body)
	}
	if st.Stack != "test" || len(st.Pods) != 1 || st.Pods[0].Pod != "web" || !st.Watcher.Ready || st.Watcher.LastRound == nil || st.Watcher.HeldBack == nil {
		t.Errorf("/status = %s", body)
	}

	// A broken file: the last good configuration stays, readiness goes,
	// and the error shows where it is.
	h.write(webPod + "\npod \"broken\" {\n")
	eventually(t, "/readyz to say not ready", func() bool { code, _ := get(t, srv, "/readyz"); return code == http.StatusServiceUnavailable })
	if _, body := get(t, srv, "/readyz"); !strings.Contains(body, "the newest configuration is invalid: ") || !strings.Contains(body, "main.hcl:") {
		t.Errorf("/readyz says %q", body)
	}
	if got := value(scrape(t, srv), "berth_watch_config_errors_total", nil); got != 1 {
		t.Errorf("config errors = %v, want 1", got)
	}
	h.write(webPod)
	eventually(t, "/readyz to recover", func() bool { code, _ := get(t, srv, "/readyz"); return code == http.StatusOK })

	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, srv, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz after the watcher stopped: %d", code)
	}
}

func TestTriggerKind(t *testing.T) {
	for in, want := range map[string]string{
		"start": "start", "files changed": "files_changed", "runtime: exit of pod.web": "runtime",
		"readiness of pod.db.container.c": "readiness", "liveness probe of pod.web.container.app failed": "probe",
		"backoff over": "backoff_over", "reload requested": "reload_requested",
		"git: commit 0123456789ab": "git",
	} {
		if got := triggerKind(in); got != want {
			t.Errorf("triggerKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkScrape is one /metrics scrape, as Prometheus makes it.
func BenchmarkScrape(b *testing.B) {
	tel := NewTelemetry()
	tel.started("bench", "/dir", "v0", time.Now())
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()
	for b.Loop() {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// slowRuntime holds its CNI and sandbox reads until released, and counts
// them.
type slowRuntime struct {
	*fake.Runtime
	release chan struct{}
	mu      sync.Mutex
	reads   map[string]int
}

func (s *slowRuntime) held(name string) {
	s.mu.Lock()
	s.reads[name]++
	release := s.release
	s.mu.Unlock()
	<-release
}

func (s *slowRuntime) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[name]
}

func (s *slowRuntime) CNI(ctx context.Context) (runtime.CNI, error) {
	s.held("CNI")
	return s.Runtime.CNI(ctx)
}

func (s *slowRuntime) ListSandboxes(ctx context.Context, sel map[string]string) ([]*cri.PodSandbox, error) {
	s.held("ListSandboxes")
	return s.Runtime.ListSandboxes(ctx, sel)
}

// However many clients poll /healthz and /status at once, the runtime
// answers one read of each at a time, and every client gets its answer.
func TestEndpointsShareTheirRuntimeReads(t *testing.T) {
	rt := &slowRuntime{Runtime: fake.New(image), reads: map[string]int{}}
	tel := NewTelemetry()
	tel.connected(rt)
	tel.loaded(spectest.Load(t, webPod), "", "")
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()

	for path, read := range map[string]string{"/healthz": "CNI", "/status": "ListSandboxes"} {
		const clients = 8
		release := make(chan struct{})
		rt.mu.Lock()
		rt.release = release
		rt.mu.Unlock()
		codes := make(chan int, clients)
		for range clients {
			go func() {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					codes <- 0
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		eventually(t, "a read to be under way", func() bool { return rt.count(read) > 0 })
		time.Sleep(100 * time.Millisecond) // the other clients' requests arrive meanwhile
		close(release)
		for range clients {
			if code := <-codes; code != http.StatusOK {
				t.Errorf("%s: %d", path, code)
			}
		}
		if n := rt.count(read); n != 1 {
			t.Errorf("%s: %d %s reads for %d clients at once, want 1", path, n, read, clients)
		}
	}
}
