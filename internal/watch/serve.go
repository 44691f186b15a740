package watch

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/internal/inspect"
	"github.com/berth-dev/berth/spec"
)

// healthTimeout bounds the runtime call behind /healthz and /status.
const healthTimeout = 5 * time.Second

// sharedRead is the context of a runtime read that other requests may
// wait on too: the first client leaving does not end it for the rest.
func sharedRead(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), healthTimeout)
}

// Handler serves the watcher's endpoints:
//
//	/metrics  Prometheus text format
//	/healthz  200 while the watcher is connected and the runtime answers
//	/readyz   200 when the newest configuration loaded and the last round converged
//	/status   JSON: berth status --json of the stack, and the watcher's state
func (t *Telemetry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", t.healthz)
	mux.HandleFunc("GET /readyz", t.readyz)
	mux.HandleFunc("GET /status", t.status)
	mux.HandleFunc("POST /hooks/git", t.hook)
	return mux
}

// maxHookBody bounds a webhook's body: forges send a few KiB.
const maxHookBody = 1 << 20

// SetHook makes POST /hooks/git fetch the repository at once when its
// body is signed with secret: HMAC-SHA256, hex, in X-Hub-Signature-256
// ("sha256=...", as GitHub and Forgejo send it) or X-Gitea-Signature.
// Without a hook, the endpoint answers 404.
func (t *Telemetry) SetHook(secret []byte, syncNow chan<- struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hookSecret, t.syncNow = secret, syncNow
}

func (t *Telemetry) hook(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	secret, syncNow := t.hookSecret, t.syncNow
	t.mu.Unlock()
	if syncNow == nil || len(secret) == 0 {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		http.Error(w, "the body is too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	sig := strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
	if sig == "" {
		sig = r.Header.Get("X-Gitea-Signature")
	}
	got, err := hex.DecodeString(sig)
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		http.Error(w, "the signature does not match the body (X-Hub-Signature-256 or X-Gitea-Signature, HMAC-SHA256 with the shared secret)", http.StatusUnauthorized)
		return
	}
	select {
	case syncNow <- struct{}{}:
	default: // a fetch is due already
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintln(w, "fetching")
}

func (t *Telemetry) healthz(w http.ResponseWriter, r *http.Request) {
	_, rt := t.snapshot()
	if rt == nil {
		http.Error(w, "not connected to the runtime yet", http.StatusServiceUnavailable)
		return
	}
	_, err, _ := t.reads.Do("healthz", func() (any, error) {
		ctx, cancel := sharedRead(r)
		defer cancel()
		return rt.CNI(ctx)
	})
	if err != nil {
		http.Error(w, "the runtime does not answer: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// ready says whether the watcher is ready, and if not, why.
func ready(st WatcherState) (bool, string) {
	switch {
	case !st.ConfigValid && st.NewestRevision != "":
		return false, fmt.Sprintf("the configuration of commit %s is invalid (commit %s stays in force): %s", st.NewestRevision, st.Revision, st.ConfigError)
	case !st.ConfigValid:
		return false, "the newest configuration is invalid: " + st.ConfigError
	case st.FailedRevision != "":
		return false, fmt.Sprintf("the round of commit %s failed (commit %s is back in force): %s", st.FailedRevision, st.Revision, st.FailedError)
	case st.LastRound == nil:
		return false, "no round has finished yet"
	case st.LastRound.Result != resultConverged && st.LastRound.Result != resultApplied:
		return false, fmt.Sprintf("the last round (%s) %s: %s", st.LastRound.Trigger, st.LastRound.Result, st.LastRound.Error)
	}
	return true, ""
}

func (t *Telemetry) readyz(w http.ResponseWriter, _ *http.Request) {
	st, _ := t.snapshot()
	if ok, why := ready(st); !ok {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// StatusReport is /status: the stack as berth status --json reads it, and
// the watcher's state.
type StatusReport struct {
	*inspect.Status
	Watcher WatcherReport `json:"watcher"`
}

// WatcherReport is the watcher's state with its readiness.
type WatcherReport struct {
	WatcherState
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	// RuntimeError is why the stack's status could not be read, if it could not.
	RuntimeError string `json:"runtime_error,omitempty"`
}

func (t *Telemetry) status(w http.ResponseWriter, r *http.Request) {
	st, rt := t.snapshot()
	t.mu.Lock()
	cfg := t.cfg
	t.mu.Unlock()
	rep := StatusReport{Status: &inspect.Status{Stack: st.Stack, Pods: []inspect.PodStatus{}}, Watcher: WatcherReport{WatcherState: st}}
	rep.Watcher.Ready, rep.Watcher.NotReady = ready(st)
	if rt != nil && cfg != nil {
		s, err, _ := t.reads.Do("status", func() (any, error) {
			ctx, cancel := sharedRead(r)
			defer cancel()
			return inspect.ReadStatus(ctx, rt, cfg, time.Now())
		})
		if err != nil {
			rep.Watcher.RuntimeError = err.Error()
		} else {
			rep.Status = s.(*inspect.Status)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

// fetched notes the newest commit, which did not load.
func (t *Telemetry) fetched(newest string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state.NewestRevision = newest
}

// loaded keeps the configuration in force, for /status, with its commit
// (applied) and the newest one fetched, when they come from git.
func (t *Telemetry) loaded(cfg *spec.Config, applied, newest string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg = cfg
	if applied != "" && applied != t.state.Revision {
		t.revision.Reset()
		t.revision.WithLabelValues(applied).Set(1)
	}
	t.state.Revision, t.state.NewestRevision = applied, newest
}
