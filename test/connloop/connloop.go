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
		// A new connection for each request, as a new client makes.
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
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
	req, _ := http.NewRequest(http.MethodGet, l.URL, nil)
	resp, err := client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = &statusError{resp.Status}
		}
	}
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
	l.bodies[strings.TrimSpace(string(body))]++
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
