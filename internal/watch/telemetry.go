package watch

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/singleflight"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// Telemetry is what a watcher shows monitoring: its metrics, in a
// registry of their own, and its state, for /metrics, /healthz, /readyz
// and /status (see Handler). The watcher updates it; readers never wait
// for a round.
type Telemetry struct {
	Registry *prometheus.Registry

	rounds       *prometheus.CounterVec
	roundSeconds prometheus.Histogram
	lastSuccess  prometheus.Gauge
	actions      *prometheus.CounterVec
	restarts     prometheus.Counter
	probes       *prometheus.CounterVec
	heldBack     prometheus.Gauge
	reconnects   prometheus.Counter
	configErrors prometheus.Counter
	syncErrors   prometheus.Counter
	info         *prometheus.GaugeVec
	revision     *prometheus.GaugeVec

	mu    sync.Mutex
	state WatcherState
	rt    Runtime      // the runtime while connected, for /healthz and /status
	cfg   *spec.Config // the configuration in force, for /status
	// hookSecret signs POST /hooks/git, which sends on syncNow.
	hookSecret []byte
	syncNow    chan<- struct{}

	// reads shares one runtime read among the /healthz or /status
	// requests that come while it runs: however many clients poll, the
	// runtime answers one of each at a time.
	reads singleflight.Group
}

// WatcherState is the watcher's own state, as /status and /readyz give it.
type WatcherState struct {
	Stack   string    `json:"stack"`
	Dir     string    `json:"dir"`
	Started time.Time `json:"started"`
	// ConfigValid says the newest configuration loaded; ConfigError is
	// what was wrong with it when it did not (its first diagnostic).
	ConfigValid bool   `json:"config_valid"`
	ConfigError string `json:"config_error,omitempty"`
	// LastRound is the round that finished last; LastSuccess when a round
	// last converged or applied without a failure.
	LastRound   *RoundState `json:"last_round,omitempty"`
	LastSuccess time.Time   `json:"last_success,omitzero"`
	// HeldBack are the changes a plan decided and holds back for now:
	// crash backoff, readiness.
	HeldBack []HeldChange `json:"held_back"`
	// RoundRunning is when the round under way began, if one is.
	RoundRunning time.Time `json:"round_running_since,omitzero"`
	// Revision is the commit the configuration in force comes from, and
	// NewestRevision the newest one fetched (another while it is invalid),
	// with a git source.
	Revision       string `json:"revision,omitempty"`
	NewestRevision string `json:"newest_revision,omitempty"`
	// FailedRevision is a commit whose round failed, and why: refused
	// until the next commit, the last good one back in force.
	FailedRevision string `json:"failed_revision,omitempty"`
	FailedError    string `json:"failed_error,omitempty"`
}

// RoundState is one finished round.
type RoundState struct {
	At      time.Time `json:"at"`
	Trigger string    `json:"trigger"`
	// Result is converged (nothing to do), applied, failed or refused (the
	// plan had errors).
	Result  string  `json:"result"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// HeldChange is one deferred change.
type HeldChange struct {
	Resource string    `json:"resource"`
	Reason   string    `json:"reason"`
	Until    time.Time `json:"until,omitzero"`
}

// Round results.
const (
	resultConverged = "converged"
	resultApplied   = "applied"
	resultFailed    = "failed"
	resultRefused   = "refused"
)

// NewTelemetry makes the metrics, registered with the Go and process
// collectors.
func NewTelemetry() *Telemetry {
	t := &Telemetry{Registry: prometheus.NewRegistry()}
	t.rounds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_watch_rounds_total",
		Help: "Rounds run, by what triggered them and their result (converged, applied, failed, refused)."}, []string{"trigger", "result"})
	t.roundSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_watch_round_duration_seconds",
		Help: "How long rounds took: load, observe, plan, execute.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}})
	t.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_watch_last_success_timestamp_seconds",
		Help: "When a round last converged or applied without a failure (Unix time)."})
	t.actions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_watch_actions_total",
		Help: "Actions executed, by action and kind of resource."}, []string{"action", "kind"})
	t.restarts = prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_watch_container_restarts_total",
		Help: "Containers restarted after they exited or failed a probe."})
	t.probes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_watch_probe_results_total",
		Help: "Probe verdicts that changed what berth does (ready, not_ready, failed past the threshold), by probe kind."}, []string{"kind", "result"})
	t.heldBack = prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_watch_held_back_changes",
		Help: "Changes decided and held back for now (crash backoff, readiness)."})
	t.reconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_watch_runtime_reconnects_total",
		Help: "Times the watcher tried again to connect to the runtime's event stream after losing it."})
	t.configErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_watch_config_errors_total",
		Help: "Times a new configuration was invalid (the last good one stayed in force)."})
	t.syncErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_watch_git_fetch_errors_total",
		Help: "Fetches of the configuration's repository that failed (the revision in force stayed)."})
	t.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_watch_info",
		Help: "The watcher's stack and berth's version; always 1."}, []string{"stack", "version"})
	t.revision = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_watch_revision_info",
		Help: "The commit the configuration in force comes from, with a git source; always 1."}, []string{"revision"})
	t.Registry.MustRegister(t.rounds, t.roundSeconds, t.lastSuccess, t.actions, t.restarts, t.probes, t.heldBack,
		t.reconnects, t.configErrors, t.syncErrors, t.info, t.revision,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return t
}

// The watcher's updates. A nil Telemetry takes them all and does nothing,
// so the watcher calls them unconditionally.

func (t *Telemetry) started(stack, dir, version string, now time.Time) {
	if t == nil {
		return
	}
	t.info.WithLabelValues(stack, version).Set(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state.Stack, t.state.Dir, t.state.Started, t.state.ConfigValid = stack, dir, now, true
	t.state.HeldBack = []HeldChange{}
}

func (t *Telemetry) connected(rt Runtime) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rt = rt
}

func (t *Telemetry) roundStarted(now time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state.RoundRunning = now
}

// roundDone records a finished round; trigger is the round's reason, of
// which the metric keeps the kind ("runtime: ..." is "runtime").
func (t *Telemetry) roundDone(trigger, result string, took time.Duration, err error, now time.Time) {
	if t == nil {
		return
	}
	kind := triggerKind(trigger)
	t.rounds.WithLabelValues(kind, result).Inc()
	t.roundSeconds.Observe(took.Seconds())
	rs := &RoundState{At: now, Trigger: trigger, Result: result, Seconds: took.Seconds()}
	if err != nil {
		rs.Error = err.Error()
	}
	if result == resultConverged || result == resultApplied {
		t.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state.LastRound, t.state.RoundRunning = rs, time.Time{}
	if result == resultConverged || result == resultApplied {
		t.state.LastSuccess = now
	}
}

// triggerKind is the label a round's trigger counts under: its first words,
// without the resource or event it names.
func triggerKind(trigger string) string {
	switch {
	case strings.HasPrefix(trigger, "runtime:"):
		return "runtime"
	case strings.HasPrefix(trigger, "git:"):
		return "git" // not the commit: a series per commit would grow for ever
	case strings.HasPrefix(trigger, "readiness of "):
		return "readiness"
	case strings.Contains(trigger, " probe of "):
		return "probe"
	}
	return strings.ReplaceAll(trigger, " ", "_") // start, follow-up, files_changed, resync, ...
}

func (t *Telemetry) configChanged(valid bool, firstError string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !valid && t.state.ConfigValid {
		t.configErrors.Inc()
	}
	t.state.ConfigValid, t.state.ConfigError = valid, firstError
}

// acted counts what a plan's execution did.
func (t *Telemetry) acted(plan *planner.Plan, res *apply.Result) {
	if t == nil {
		return
	}
	done := map[string]bool{}
	for _, s := range res.Steps {
		if s.Status == apply.Done {
			done[s.Address.String()] = true
		}
	}
	for c := range plan.Changes() {
		if !c.Action.Changes() {
			continue
		}
		owner := c.Address.String()
		if c.Container != nil {
			owner = c.Pod.Address.String()
		}
		if !done[owner] {
			continue
		}
		t.actions.WithLabelValues(string(c.Action), string(c.Address.Kind)).Inc()
		if c.Container != nil && c.Action == planner.Restart {
			t.restarts.Inc()
		}
	}
}

func (t *Telemetry) held(changes []HeldChange) {
	if t == nil {
		return
	}
	t.heldBack.Set(float64(len(changes)))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state.HeldBack = changes
}

func (t *Telemetry) probe(kind, result string) {
	if t == nil {
		return
	}
	t.probes.WithLabelValues(kind, result).Inc()
}

func (t *Telemetry) failedRevision(rev string, err error) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state.FailedRevision, t.state.FailedError = rev, ""
	if err != nil {
		t.state.FailedError = err.Error()
	}
}

func (t *Telemetry) syncFailed() {
	if t == nil {
		return
	}
	t.syncErrors.Inc()
}

func (t *Telemetry) reconnected() {
	if t == nil {
		return
	}
	t.reconnects.Inc()
}

// snapshot is the state now, and the runtime while connected.
func (t *Telemetry) snapshot() (WatcherState, Runtime) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.state
	st.HeldBack = slices.Clone(t.state.HeldBack)
	return st, t.rt
}

// maxRound is how long a round may run before a watchdog counts the
// watcher as stuck: the longest stop grace berth's examples use is 2m,
// and a round may stop several containers in a row.
const maxRound = 15 * time.Minute

// Alive says whether the watcher is not stuck: no round under way, or one
// under way for less than maxRound (or, if longer, than limit).
func (t *Telemetry) Alive(now time.Time, limit time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	since := t.state.RoundRunning
	return since.IsZero() || now.Sub(since) < max(maxRound, limit)
}
