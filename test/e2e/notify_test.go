package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// berth watch --notify on the real runtime: a pod whose image cannot be
// pulled fails the round (told once), removing it recovers (told), and a
// container that keeps exiting is a crash loop (told once).
func TestWatchNotifies(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev map[string]string
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("a notification that is not JSON: %s", b)
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer srv.Close()
	var w *watcher
	waitEvent := func(kind string) map[string]string {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			for _, ev := range got {
				if ev["event"] == kind {
					mu.Unlock()
					return ev
				}
			}
			events := fmt.Sprint(got)
			mu.Unlock()
			if time.Now().After(deadline) {
				t.Fatalf("no %s notification within 60s; got %s; the watcher's log:\n%s", kind, events, w.log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	s := newStack(t)
	good := fmt.Sprintf(watchedSleeper, "app", "1")
	broken := `
pod "broken" {
  container "c" {
    image = "127.0.0.1:1/berth/missing:1"
  }
}
`
	s.write(good + broken)
	t.Setenv("BERTH_NOTIFY_URL", srv.URL+"/hooks/T0KEN")
	w = s.watch("--resync", "1h", "--backoff-initial", "1s")
	ev := waitEvent("round_failed")
	if ev["stack"] != s.name || !strings.Contains(ev["message"], "127.0.0.1:1/berth/missing:1") {
		t.Errorf("round_failed event %v", ev)
	}
	s.write(good)
	waitEvent("recovered")

	s.write(good + `
pod "crash" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "exit 3"]
    stop_timeout = "1s"
  }
}
`)
	if ev := waitEvent("crash_loop"); ev["resource"] != "pod.crash.container.c" || !strings.Contains(ev["message"], "exited with code 3") {
		t.Errorf("crash_loop event %v", ev)
	}
	mu.Lock()
	n := 0
	for _, ev := range got {
		if ev["event"] == "round_failed" {
			n++
		}
	}
	mu.Unlock()
	if n != 1 {
		t.Errorf("%d round_failed events for one failing streak, want 1", n)
	}
	if strings.Contains(w.log(), "T0KEN") {
		t.Error("the notification URL's token is in the log")
	}
	s.write(good) // the cleanup's destroy reads the directory
}
