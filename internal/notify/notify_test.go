package notify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A receiver that fails first is tried again; a 4xx is not; the token in
// the URL is never logged.
func TestDelivery(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if strings.Contains(r.URL.Path, "reject") {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		var ev Event
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("body %s: %v", b, err)
		}
		got = append(got, ev)
	}))
	defer srv.Close()

	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) }), nil))
	n, err := New(srv.URL+"/hook/T0KEN", log)
	if err != nil {
		t.Fatal(err)
	}
	n.retry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Send(Event{Kind: RoundFailed, Stack: "shop", Message: "pod.web: pull failed"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		done := len(got) == 1
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event was not delivered after the receiver's first failure")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got[0].Kind != RoundFailed || got[0].Stack != "shop" {
		t.Errorf("delivered %+v", got[0])
	}

	r, _ := New(srv.URL+"/reject/T0KEN", log)
	r.retry = time.Millisecond
	r.deliver(ctx, Event{Kind: Recovered})
	mu.Lock()
	if calls != 3 {
		t.Errorf("%d calls; a 400 must not be retried", calls)
	}
	mu.Unlock()
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "notification not delivered") || strings.Contains(logs.String(), "T0KEN") {
		t.Errorf("log:\n%s", logs.String())
	}
}

func TestSendNeverBlocks(t *testing.T) {
	n, err := New("http://127.0.0.1:1/", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // nobody delivers: the queue fills, and Send still returns
		for range queueSize * 3 {
			n.Send(Event{Kind: CrashLoop})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a full queue")
	}
}

func TestNewRefusesOtherSchemes(t *testing.T) {
	for _, u := range []string{"ftp://x/", "x", "http://", "file:///etc/passwd"} {
		if _, err := New(u, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A receiver that redirects is not followed: the event never reaches the
// other host, nor does the URL's token in a Referer, and a redirect does
// not count as delivered.
func TestRedirectIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	reached := 0
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
	}))
	defer other.Close()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/elsewhere", code)
		}))
		var logs strings.Builder
		n, err := New(srv.URL+"/hook/T0KEN", slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		n.retry = time.Millisecond
		n.deliver(context.Background(), Event{Kind: RoundFailed})
		srv.Close()
		if !strings.Contains(logs.String(), "notification not delivered") || !strings.Contains(logs.String(), "redirects") {
			t.Errorf("HTTP %d: log:\n%s", code, logs.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if reached != 0 {
		t.Errorf("the other host was reached %d times", reached)
	}
}
