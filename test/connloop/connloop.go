// Package connloop is a client that opens a new connection to a URL at a
// fixed interval, one HTTP GET each, and counts what answered and what
// failed, with when: what the zero-downtime tests and benchmarks measure
// a replace with.
package connloop

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Loop is one client's record.
type Loop struct {
	URL      string
	Interval time.Duration

	mu       sync.Mutex
	ok       int
	failures []time.Time
	bodies   map[string]int // by trimmed body
	firstErr error
}

// Start runs the loop until ctx ends; Wait returns once it has.
func Start(ctx context.Context, url string, interval time.Duration) (*Loop, func()) {
	l := &Loop{URL: url, Interval: interval, bodies: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := newClient()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var wg sync.WaitGroup
		for {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.get(ctx, client)
			}()
		}
	}()
	return l, func() { <-done }
}

func (l *Loop) get(ctx context.Context, client *http.Client) {
	at := time.Now()
	body, err := get(context.Background(), client, l.URL) // a request in flight finishes; its answer counts
	if ctx.Err() != nil {
		return // the loop's end, not the server's
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures = append(l.failures, at)
		if l.firstErr == nil {
			l.firstErr = err
		}
		return
	}
	l.ok++
	l.bodies[body]++
}

// newClient opens a new connection for each request, as a new client
// does, and waits a second at most.
func newClient() *http.Client {
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// Get GETs url once, on a new connection, and returns its body trimmed;
// an answer other than 200 is an error.
func Get(ctx context.Context, url string) (string, error) { return get(ctx, newClient(), url) }

func get(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = &statusError{resp.Status}
	}
	return strings.TrimSpace(string(body)), err
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "HTTP " + e.status }

// Result is a loop's counts so far.
type Result struct {
	OK       int
	Failures []time.Time
	Bodies   map[string]int
	FirstErr error
}

// Result returns the counts so far.
func (l *Loop) Result() Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	bodies := map[string]int{}
	for k, v := range l.bodies {
		bodies[k] = v
	}
	return Result{OK: l.ok, Failures: append([]time.Time(nil), l.failures...), Bodies: bodies, FirstErr: l.firstErr}
}

// Window is the span from the first failure to the last: how long the
// service was unreachable, when the failures came in one stretch.
func (r Result) Window() time.Duration {
	if len(r.Failures) == 0 {
		return 0
	}
	first, last := r.Failures[0], r.Failures[0]
	for _, f := range r.Failures {
		if f.Before(first) {
			first = f
		}
		if f.After(last) {
			last = f
		}
	}
	return last.Sub(first)
}
