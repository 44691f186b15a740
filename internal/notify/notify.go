// Package notify posts a watcher's events (a round that fails, one that
// recovers, a container that starts crash-looping) as JSON to a URL: a
// chat webhook, an alert manager, a script. Delivery is in the background,
// retried with backoff, and never holds up a round: when the receiver is
// slow, the oldest events waiting are dropped, and that is logged.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Event is one notification.
type Event struct {
	// Kind is round_failed, recovered or crash_loop.
	Kind     string    `json:"event"`
	Stack    string    `json:"stack"`
	Resource string    `json:"resource,omitempty"`
	Message  string    `json:"message"`
	Revision string    `json:"revision,omitempty"`
	Time     time.Time `json:"time"`
}

// The kinds of events.
const (
	RoundFailed = "round_failed"
	Recovered   = "recovered"
	CrashLoop   = "crash_loop"
)

// Delivery settings.
const (
	queueSize   = 64
	attempts    = 5
	firstRetry  = time.Second
	postTimeout = 10 * time.Second
)

// Notifier delivers events to one URL.
type Notifier struct {
	url    string
	client *http.Client
	log    *slog.Logger
	queue  chan Event
	// retry is the wait before the second attempt; it doubles after.
	retry time.Duration
}

// New checks the URL (http or https) and returns a notifier; Run delivers.
func New(rawURL string, log *slog.Logger) (*Notifier, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--notify: give an http:// or https:// URL")
	}
	// A redirect is answered, not followed: Go's client would post the
	// event on to another host with the URL, token and all, in its
	// Referer, or turn the post into a bodyless GET that counts as
	// delivered.
	client := &http.Client{Timeout: postTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Notifier{url: rawURL, client: client, log: log.With("notify", u.Host),
		queue: make(chan Event, queueSize), retry: firstRetry}, nil
}

// Send queues an event without waiting; when the queue is full, the
// oldest event waiting makes room.
func (n *Notifier) Send(ev Event) {
	for {
		select {
		case n.queue <- ev:
			return
		default:
		}
		select {
		case old := <-n.queue:
			n.log.Warn("notification dropped: the receiver is too slow", "event", old.Kind)
		default:
		}
	}
}

// Run delivers queued events until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-n.queue:
			n.deliver(ctx, ev)
		}
	}
}

// deliver posts one event, trying again with backoff on a network error
// or a 5xx or 429 answer; the URL, which may hold a token, is never logged.
func (n *Notifier) deliver(ctx context.Context, ev Event) {
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	wait := n.retry
	for attempt := 1; ; attempt++ {
		status, err := n.post(ctx, body)
		if err == nil && status < 300 {
			return
		}
		final := attempt == attempts || (err == nil && status < 500 && status != http.StatusTooManyRequests)
		why := fmt.Sprintf("HTTP %d", status)
		if status >= 300 && status < 400 {
			why += ": the receiver redirects, and berth does not follow (give --notify the URL it redirects to)"
		}
		if err != nil {
			why = err.Error()
		}
		if final {
			n.log.Warn("notification not delivered", "event", ev.Kind, "attempts", attempt, "error", why)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (n *Notifier) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "berth-watch")
	resp, err := n.client.Do(req)
	if err != nil {
		if uerr, ok := err.(*url.Error); ok {
			err = uerr.Err // without the URL
		}
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
