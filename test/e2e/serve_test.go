package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// berth watch --listen serves /metrics, /healthz, /readyz and /status on
// the real runtime, and tells systemd (a notify socket of the test's own)
// READY=1 after its first round, then pings the watchdog.
func TestWatchServesMetricsAndHealth(t *testing.T) {
	notify := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", notify)
	t.Setenv("WATCHDOG_USEC", "2000000") // a ping each second

	s := newStack(t)
	s.write(fmt.Sprintf(watchedSleeper, "app", "1"))
	w := s.watch("--resync", "1h", "--listen", "127.0.0.1:0")
	listen := w.waitFor(30*time.Second, map[string]string{"msg": "serving /metrics"})["listen"].(string)
	w.waitFor(30*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})

	got := map[string]bool{}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !got["READY=1"] || !got["WATCHDOG=1"] {
		buf := make([]byte, 256)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("systemd heard %v, then: %v", got, err)
		}
		got[string(buf[:n])] = true
	}

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + listen + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	eventually(t, 30*time.Second, "/readyz to say ready", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	code, body := get("/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if code != http.StatusOK || err != nil {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, name := range []string{"berth_watch_rounds_total", "berth_watch_round_duration_seconds", "berth_watch_last_success_timestamp_seconds",
		"berth_watch_actions_total", "berth_watch_info", "berth_watch_held_back_changes", "process_resident_memory_bytes"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(body, `berth_watch_actions_total{action="create",kind="pod"} 1`) {
		t.Errorf("/metrics does not count the pod's creation:\n%s", body)
	}

	code, body = get("/status")
	var st struct {
		Stack string
		Pods  []struct {
			Pod, State string
			Containers []struct{ Container, State string }
		}
		Watcher struct {
			Ready     bool
			LastRound *struct{ Trigger, Result string } `json:"last_round"`
		}
	}
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/status: %d %v\n%s", code, err, body)
	}
	if st.Stack != s.name || len(st.Pods) != 1 || st.Pods[0].Pod != "app" || len(st.Pods[0].Containers) != 1 ||
		st.Pods[0].Containers[0].State != "running" || !st.Watcher.Ready || st.Watcher.LastRound == nil {
		t.Errorf("/status:\n%s", body)
	}

	// berth status shows the watcher, from the state file it keeps.
	if st := s.mustBerth("status", s.dir); !strings.Contains(st.stdout, "Watcher: pid ") || !strings.Contains(st.stdout, "endpoints on "+listen+", ready") ||
		!strings.Contains(st.stdout, "  last round: ") {
		t.Errorf("status does not show the watcher:\n%s", st.stdout)
	}
	if st := s.mustBerth("status", "--json", s.dir); !strings.Contains(st.stdout, `"watcher": {`) || !strings.Contains(st.stdout, `"pid": `) {
		t.Errorf("status --json does not show the watcher:\n%s", st.stdout)
	}

	// A broken file: not ready, and says where; the workload keeps running.
	s.write(fmt.Sprintf(watchedSleeper, "app", "1") + "\npod \"broken\" {\n")
	eventually(t, 30*time.Second, "/readyz to say not ready", func() bool { code, _ := get("/readyz"); return code == http.StatusServiceUnavailable })
	if _, body := get("/readyz"); !strings.Contains(body, "the newest configuration is invalid") {
		t.Errorf("/readyz: %s", body)
	}
	if !running(s.containers()["app/c"]) {
		t.Error("the workload stopped with the broken file")
	}
	// (The directory's file is broken: status names the stack instead.)
	if st := s.mustBerth("--stack", s.name, "status", t.TempDir()); !strings.Contains(st.stdout, "not ready: the newest configuration is invalid") {
		t.Errorf("status does not say why the watcher is not ready:\n%s", st.stdout)
	}
	s.write(fmt.Sprintf(watchedSleeper, "app", "1")) // for the cleanup's destroy
	eventually(t, 30*time.Second, "/readyz to recover", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })

	w.stop()
	if st := s.mustBerth("status", s.dir); strings.Contains(st.stdout, "Watcher:") {
		t.Errorf("status shows a watcher that stopped:\n%s", st.stdout)
	}
}
