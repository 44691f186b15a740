// Package watch keeps a stack converged: it applies, then re-plans and
// applies again whenever the configuration's files change, the runtime
// reports that something of the stack exited or went away, a probe gives a
// verdict, a crash backoff runs out, or the periodic resync comes round.
//
// Every round re-reads the whole directory and re-plans from a fresh
// observation; no round acts on a single event. Rounds hold the stack lock,
// so a manual apply waits for the round under way and the next round sees
// what it did.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/internal/forward"
	"github.com/berth-dev/berth/internal/gitsource"
	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/notify"
	"github.com/berth-dev/berth/internal/probe"
	"github.com/berth-dev/berth/internal/serving"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/criconfig"
	"github.com/berth-dev/berth/spec"
)

// Options configure a watcher.
type Options struct {
	// Dir is the configuration directory; Load reads all of one. With a
	// Source, the directory is the source's newest revision instead.
	Dir  string
	Load func(dir string) (*spec.Config, hcl.Diagnostics)
	// Source, when set, is a git repository the configuration comes from:
	// synced at start, every SourceInterval and on SyncNow; a round runs
	// for each new commit. Objects made carry its commit (berth.io/revision).
	Source         Source
	SourceInterval time.Duration
	SourceTimeout  time.Duration
	SyncNow        <-chan struct{}
	// Address is the runtime's socket; LockDir holds the stack locks.
	Address string
	LockDir string
	// Resync is the period of the safety-net round.
	Resync time.Duration
	// Debounce gathers a burst of file events into one round.
	Debounce    time.Duration
	Backoff     planner.Backoff
	Parallelism int
	// Forward is how forwards reach their pods.
	Forward forward.Path
	// Reload forces a round that re-reads everything (SIGHUP).
	Reload <-chan struct{}
	Log    *slog.Logger
	// Command names the watcher in the lock file, for whoever waits.
	Command string
	// OnlyResync starts neither the file watch nor the runtime's event
	// stream: rounds come from the resync, probes, backoffs and reloads
	// only. The benchmark compares the two (berth watch --only-resync).
	OnlyResync bool
	// LogRoot and TmpfsRoot are where pods' logs and tmpfs mounts go;
	// empty for apply's defaults.
	LogRoot, TmpfsRoot string
	// Dial connects to the runtime at Address; nil dials containerd with
	// RuntimeTimeout bounding each call.
	Dial           func(ctx context.Context, address string) (Runtime, error)
	RuntimeTimeout time.Duration
	// PullProgressTimeout cancels a pull that reports no progress for
	// this long, so that a stuck registry cannot hold a round (and the
	// stack's lock) for ever; 0 waits for ever.
	PullProgressTimeout time.Duration
	// Telemetry, when set, receives the watcher's metrics and state (see
	// Telemetry.Handler); Version is berth's, for its info metric.
	Telemetry *Telemetry
	Version   string
	// Notify, when set, receives the events worth telling someone: a round
	// that fails, the next that succeeds, a container that starts
	// crash-looping. It must not block (notify.Notifier.Send does not).
	Notify func(notify.Event)
	// KeepState makes the watcher keep its state for berth status in the
	// lock dir (StatePath), written after every round and removed at the
	// end; Listen is the address its endpoints serve on, for status to say.
	KeepState bool
	Listen    string
	// Started, when set, is called once the first round has finished,
	// whatever its result: the watcher is up (systemd's READY=1).
	Started func()
}

// Source is where configuration comes from when not from Dir.
type Source interface {
	Sync(ctx context.Context) (gitsource.Revision, error)
}

// Runtime is what a watcher needs of the runtime: what the engine
// converges with, the event stream, and what probes and forwards use.
type Runtime interface {
	apply.EngineRuntime
	probe.Execer
	forward.Finder
	Events(ctx context.Context) (<-chan runtime.Event, <-chan error)
	SandboxStatus(ctx context.Context, id string) (*cri.PodSandboxStatus, error)
	Close() error
}

// dialContainerd is the Dial of a real watcher.
func dialContainerd(timeout time.Duration) func(context.Context, string) (Runtime, error) {
	return func(ctx context.Context, address string) (Runtime, error) {
		rt, err := runtime.DialTimeout(ctx, address, timeout)
		if err != nil {
			return nil, err // no typed nil in the interface
		}
		return rt, nil
	}
}

// Defaults for the options left zero.
const (
	DefaultResync   = time.Minute
	DefaultDebounce = 300 * time.Millisecond
	// eventSettle gathers the runtime events that come at once (a pod's
	// containers killed together) into one round. It is short: a crash's
	// restart waits on it, and events that come later (a sandbox's exit
	// after its containers') find the next round, which the runtime's
	// own state, not their order, decides.
	eventSettle = 5 * time.Millisecond
	// exitWait bounds the wait for the runtime's state to show an exit
	// its events reported, asked every exitPoll; past it, the round runs
	// and the watcher looks again (exitRelook).
	exitWait = 2 * time.Second
	exitPoll = 20 * time.Millisecond
	// exitRelook is how soon a round looks again for an exit the runtime
	// reported before its lists showed it.
	exitRelook = 100 * time.Millisecond
	// maxFollowUps bounds the rounds that run back to back because each
	// changed something.
	maxFollowUps = 5
	// retryMax caps the wait between rounds that fail on the runtime.
	retryMax = 30 * time.Second
	// DefaultSourceInterval is how often a git source is fetched.
	DefaultSourceInterval = time.Minute
	// DefaultSourceTimeout bounds one fetch of a git source, the first
	// clone included: a server that hangs must not hold the source back
	// for ever.
	DefaultSourceTimeout = 2 * time.Minute
)

// watcher is the state of one Run.
type watcher struct {
	opts Options
	log  *slog.Logger
	rt   Runtime

	good     *spec.Config // the last configuration that loaded
	badDiags string       // the diagnostics last logged, so each is logged once
	// dir is the configuration directory: Dir, or the source's newest
	// revision, whose commit is rev; goodRev is the commit of good.
	dir, rev, goodRev string
	syncErr           string // the source's error last logged
	// fetched delivers a fetch's outcome to the loop, which never waits on
	// the remote; fetching says one runs, refetch that another is wanted
	// once it is done (a webhook came meanwhile).
	fetched           chan fetchResult
	fetching, refetch bool
	// reread says the configuration may have changed since it was last
	// read: files changed, a resync, SIGHUP, a new commit, a retry. A
	// round for a runtime event or a probe uses it as last read.
	reread bool

	engine *apply.Engine
	// last is the last round's observation, which a round answering
	// exits only lists again for the exited containers' pods; nil after a
	// round that failed before it observed.
	last *planner.Snapshot
	// records are the spec records of the last round's observation,
	// decoded once for every round that lists them again.
	records planner.RecordCache
	// streaks are each container's restarts in a row; failed are the
	// liveness and startup probes past their threshold, by container ID,
	// until a plan has acted on them.
	streaks  map[spec.Address]int
	failed   map[string]*planner.ProbeFailure
	probes   *probe.Manager
	verdicts chan probe.Verdict
	forwards *forwards
	known    knownIDs
	podIPs   map[string]string       // by sandbox ID
	heldLog  map[spec.Address]string // what was last said about each deferred change

	wake    *time.Timer // the earliest held restart's due time
	failing int         // rounds in a row that failed on the runtime
	tel     *Telemetry  // nil without --listen
	// ready is each readiness-probed container's last verdict.
	ready     map[string]bool
	statePath string // the state file, or ""
	// lastResult is the result of the last round that finished.
	lastResult string
	// stack is the watcher's stack, fixed at start.
	stack string
	// crashTold are the containers whose crash loop was notified.
	crashTold map[spec.Address]bool
	// With a source: lastGood is the configuration of the last round that
	// converged, from commit lastGoodRev; badRev is a commit whose round
	// failed, refused until the next commit.
	lastGood            *spec.Config
	lastGoodRev, badRev string
}

// Run applies the configuration and keeps it applied until ctx ends. It
// returns nil when ctx ends; workloads are left running.
func Run(ctx context.Context, opts Options) error {
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Dial == nil {
		opts.Dial = dialContainerd(opts.RuntimeTimeout)
	}
	if opts.Backoff == (planner.Backoff{}) {
		opts.Backoff = planner.DefaultBackoff
	}
	if opts.SourceTimeout <= 0 {
		opts.SourceTimeout = DefaultSourceTimeout
	}
	w := &watcher{opts: opts, log: opts.Log, streaks: map[spec.Address]int{}, failed: map[string]*planner.ProbeFailure{}, ready: map[string]bool{}, crashTold: map[spec.Address]bool{},
		verdicts: make(chan probe.Verdict, 16), known: newKnownIDs(), podIPs: map[string]string{}, heldLog: map[spec.Address]string{},
		fetched: make(chan fetchResult, 1)}

	w.dir = opts.Dir
	if opts.Source != nil {
		sctx, cancel := context.WithTimeout(ctx, opts.SourceTimeout)
		rev, err := opts.Source.Sync(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("the configuration's repository: %w", err)
		}
		w.dir, w.rev = rev.Dir, rev.Commit
	}
	cfg, diags := opts.Load(w.dir)
	if diags.HasErrors() {
		w.logDiagnostics(diags)
		if w.rev != "" {
			return fmt.Errorf("the configuration of commit %s is invalid; fix it, then start watch again", w.rev)
		}
		return fmt.Errorf("the configuration in %s is invalid; fix it, then start watch again", opts.Dir)
	}
	w.good, w.goodRev, w.stack = cfg, w.rev, cfg.Berth.Stack
	w.log = opts.Log.With("stack", cfg.Berth.Stack)
	w.tel = opts.Telemetry
	w.tel.started(cfg.Berth.Stack, opts.Dir, opts.Version, time.Now())
	w.tel.loaded(cfg, w.goodRev, w.rev)

	// One watcher per stack: a second one would fight the first.
	only, err := lock.Acquire(ctx, lock.Path(opts.LockDir, cfg.Berth.Stack, opts.Address)+".watch", opts.Command, 100*time.Millisecond, nil)
	if err != nil {
		if errors.Is(err, lock.ErrTimeout) {
			return fmt.Errorf("another berth watch keeps stack %q converged (%v); stop it first", cfg.Berth.Stack, err)
		}
		return err
	}
	defer only.Release()
	if opts.KeepState && w.tel != nil {
		w.statePath = StatePath(opts.LockDir, cfg.Berth.Stack, opts.Address)
		defer os.Remove(w.statePath) // the watcher is gone: status must not say otherwise
	}

	if w.rt, err = w.dial(ctx); err != nil {
		w.log.Info("stopped before the runtime answered") // ctx ended while it was away
		return nil
	}
	defer w.rt.Close()
	w.tel.connected(w.rt)
	defer w.tel.connected(nil)
	w.engine = &apply.Engine{Runtime: w.rt, Address: opts.Address, LockDir: opts.LockDir, Holder: opts.Command,
		LockWaiting: func(h lock.Holder) { w.log.Info("waiting for the stack lock", "holder", h.String()) }}
	w.probes = probe.NewManager(w.rt, func(v probe.Verdict) {
		select {
		case w.verdicts <- v:
		case <-ctx.Done():
		}
	})
	defer w.probes.Stop()
	w.forwards = newForwards(w.rt, opts.Forward, w.log)
	defer w.forwards.stop()

	// Nil channels never fire: without them only the other triggers do.
	var files <-chan struct{}
	var events <-chan burst
	var syncs <-chan time.Time
	if !opts.OnlyResync {
		if opts.Source == nil {
			if files, err = watchFiles(ctx, opts.Dir, fileSettle, opts.Debounce, w.log); err != nil {
				return err
			}
		}
		events = w.runtimeEvents(ctx)
	}
	// With a source fetched as often as the resync comes round (the
	// defaults), each resync fetches too, beside its round: one wake-up
	// of the process serves both.
	fetchOnResync := false
	if opts.Source != nil {
		interval := opts.SourceInterval
		if interval <= 0 {
			interval = DefaultSourceInterval
		}
		if fetchOnResync = interval == opts.Resync; !fetchOnResync {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			syncs = tick.C
		}
	}
	resync := time.NewTicker(opts.Resync)
	defer resync.Stop()
	w.wake = time.NewTimer(time.Hour)
	w.wake.Stop()

	attrs := []any{"dir", w.dir, "address", opts.Address, "resync", opts.Resync.String()}
	if w.rev != "" {
		attrs = append(attrs, "revision", w.rev)
	}
	if opts.OnlyResync {
		attrs = append(attrs, "only_resync", true)
	}
	w.log.Info("watching", attrs...)
	next := w.round(ctx, "start", nil)
	if opts.Started != nil {
		opts.Started()
	}
	followUps, relookWait := 0, exitRelook
	for {
		var retry <-chan time.Time
		switch {
		case next == 0 && followUps < maxFollowUps:
			followUps++
			next = w.round(ctx, "follow-up", nil)
			continue
		case next == 0:
			// Every round changes something: let the runtime breathe.
			next = time.Second
			fallthrough
		case next > 0:
			retry = time.After(next)
		}
		followUps = 0
		// An exit the runtime reported and its lists did not show yet:
		// look again soon rather than at the next resync.
		var relook <-chan time.Time
		if w.known.awaitingExits() {
			relook = time.After(relookWait)
			relookWait = min(2*relookWait, time.Second) // a runtime that lags long is not asked 10 times a second
		} else {
			relookWait = exitRelook
		}
		var why string
		var exited []string
		select {
		case <-ctx.Done():
			w.log.Info("stopped; workloads keep running")
			return nil
		case <-files:
			why, w.reread = "files changed", true
		case b := <-events:
			why, exited = "runtime: "+b.why, b.exited
		case v := <-w.verdicts:
			why = w.onVerdict(v)
		case <-opts.Reload:
			why, w.reread = "reload requested", true
		case <-resync.C:
			why, w.reread = "resync", true
			if fetchOnResync {
				w.fetch(ctx)
			}
		case <-w.wake.C:
			why = "backoff over"
		case <-syncs:
			w.fetch(ctx)
		case <-opts.SyncNow:
			w.fetch(ctx)
		case r := <-w.fetched:
			why = w.synced(ctx, r)
		case <-retry:
			why, w.reread = "retry", true
		case <-relook:
			why = "runtime: an exit the runtime's lists did not show yet"
		}
		if why != "" {
			next = w.round(ctx, why, exited)
		}
	}
}

// dial connects to the runtime, retrying with backoff while it is away.
func (w *watcher) dial(ctx context.Context) (Runtime, error) {
	wait := time.Second
	for {
		rt, err := w.opts.Dial(ctx, w.opts.Address)
		if err == nil {
			return rt, nil
		}
		w.log.Warn("runtime unreachable; retrying", "address", w.opts.Address, "error", err.Error(), "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMax)
	}
}

// round is one pass of the engine: load, lock, observe, decide with what
// the watcher knows (crash streaks, probe results), execute. It returns
// when to come back without an event: 0 at once (the round changed
// things, and the next one observes them), a positive wait after a failure,
// or -1 for "when something happens". exited are the pods of containers
// whose exits alone made the round (see burst): unless the last round
// changed things since it observed, only those pods are listed again.
func (w *watcher) round(ctx context.Context, why string, exited []string) (next time.Duration) {
	// A bug must not end the watcher: what runs keeps running, and the
	// next round starts from a fresh observation.
	start := time.Now()
	w.tel.roundStarted(start)
	result, roundErr := "", error(nil)
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("round failed: internal error; please report it", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			next = w.retryLater()
			result, roundErr = resultFailed, fmt.Errorf("internal error: %v", r)
		}
		if result != "" {
			w.tel.roundDone(why, result, time.Since(start), roundErr, time.Now())
			w.saveState()
			w.notifyRound(result, roundErr)
		}
	}()
	cfg := w.good
	opts := planner.Options{RuntimeSocket: strings.TrimPrefix(w.opts.Address, "unix://"), Watch: w.state(start), Records: &w.records}
	partial := len(exited) > 0 && !w.known.isStale()
	if w.reread {
		if !partial {
			// The runtime is read while the files load: the stack's name
			// cannot change under a watcher, and reads that the new
			// files make unfit (another certs_dir) the plan makes again.
			opts.Reads = planner.StartReads(ctx, w.rt, cfg.Berth.Stack, cfg.Berth.CertsDir)
		}
		cfg, w.reread = w.load(), false
	}
	if partial {
		opts.Reads = planner.StartPodReads(ctx, w.rt, w.last, exited, cfg.Berth.CertsDir, opts.Watch.Exits)
	}
	pulls := runtime.PullOptions{Credentials: criconfig.HostCredentials(cfg.Registries),
		Progress: func(p runtime.PullProgress) {
			if p.Finished {
				w.log.Info("pulled", "image", p.Ref, "bytes", p.Total)
			}
		}, Log: w.log, ProgressTimeout: w.opts.PullProgressTimeout}
	review := func(d *apply.Decision) error {
		w.last = d.Snapshot
		w.observed(ctx, cfg, d.Snapshot)
		if d.Plan.HasChanges() {
			w.known.markStale() // events about what this round makes come before the next look
		}
		w.reportDeferred(d.Plan)
		for _, msg := range d.Plan.Warnings {
			w.log.Debug("plan warning", "warning", msg)
		}
		for _, msg := range d.Plan.Errors {
			w.log.Error("plan refused; nothing changed", "reason", msg)
		}
		if d.Plan.HasChanges() && len(d.Plan.Errors) == 0 {
			attrs := []any{"trigger", why}
			if d.Snapshot.Partial() {
				// Said, so that a decision tells what it rests on.
				attrs = append(attrs, "listed_afresh", strings.Join(exited, ","))
			}
			w.log.Info("converging", attrs...)
			logDecisions(w.log, d.Plan)
		}
		return nil
	}
	d, res, err := w.engine.Converge(ctx, cfg, opts, review, apply.Options{Parallelism: w.opts.Parallelism, Pull: pulls, Report: w.logStep,
		LogRoot: w.opts.LogRoot, TmpfsRoot: w.opts.TmpfsRoot, Revision: w.goodRev, AwaitReady: w.awaitReady})
	switch {
	case ctx.Err() != nil:
		return -1
	case errors.Is(err, apply.ErrNothingToDo):
		w.failing = 0
		result = resultConverged
		if len(d.Plan.Errors) > 0 {
			result, roundErr = resultRefused, errors.New(strings.Join(d.Plan.Errors, "; "))
			return w.rollBack(roundErr, -1)
		}
		w.log.Debug("converged", "trigger", why, "took", time.Since(start).Round(time.Millisecond).String())
		w.lastGood, w.lastGoodRev = cfg, w.goodRev
		return -1
	case d == nil:
		w.last = nil
		w.log.Warn("round failed before changing anything; retrying", "error", err.Error())
		result, roundErr = resultFailed, err
		return w.retryLater()
	}
	w.acted(d.Plan, res)
	w.tel.acted(d.Plan, res)
	if err := res.Err(); err != nil {
		result, roundErr = resultFailed, err
		return w.rollBack(err, w.retryLater())
	}
	result = resultApplied
	w.failing = 0
	w.lastGood, w.lastGoodRev = cfg, w.goodRev
	return 0
}

// rollBack, with a git source, answers a round that failed on a new
// commit: that commit is refused until the next one, and the last commit
// whose round converged is put back in force, at once. Otherwise (no
// source, or the commit that failed is the last good one) it returns next.
func (w *watcher) rollBack(err error, next time.Duration) time.Duration {
	if w.opts.Source == nil || w.lastGood == nil || w.goodRev == w.lastGoodRev {
		return next
	}
	w.log.Error("the round of a new commit failed; the last good commit is put back", "revision", w.goodRev, "revision_in_force", w.lastGoodRev, "error", err.Error())
	w.badRev = w.goodRev
	w.good, w.goodRev = w.lastGood, w.lastGoodRev
	w.tel.failedRevision(w.badRev, err)
	w.tel.loaded(w.good, w.goodRev, w.rev)
	return 0
}

// state is what the watcher knows that the runtime does not tell, for
// the plan to decide on.
func (w *watcher) state(now time.Time) *planner.WatchState {
	st := &planner.WatchState{Now: now, Backoff: w.opts.Backoff, Streaks: w.streaks, Probes: map[string]planner.ProbeResult{},
		Exits: w.known.reported()}
	for id, ready := range w.probes.Readiness() {
		st.Probes[id] = planner.ProbeResult{Ready: ready}
	}
	for id, f := range w.failed {
		r := st.Probes[id]
		r.Failed = f
		st.Probes[id] = r
	}
	return st
}

// observed updates what follows the runtime's state: the IDs its events
// name, the probes, the forwards, and the probe failures of containers
// that are gone.
func (w *watcher) observed(ctx context.Context, cfg *spec.Config, snap *planner.Snapshot) {
	if w.failing > 0 {
		w.log.Info("runtime reachable again")
		w.failing = 0
	}
	w.known.set(snap)
	for id := range w.failed {
		if _, ok := w.known.lookup(id); !ok {
			delete(w.failed, id)
		}
	}
	w.syncProbes(ctx, cfg, snap)
	w.forwards.sync(ctx, cfg, serving.Dir(w.opts.LockDir, cfg.Berth.Stack, w.opts.Address))
}

// acted notes what a plan's execution did: the restart streaks of the
// containers it restarted, and the probe failures it acted on.
func (w *watcher) acted(plan *planner.Plan, res *apply.Result) {
	ok := map[spec.Address]bool{}
	for _, s := range res.Steps {
		ok[s.Address] = s.Status == apply.Done
	}
	for c := range plan.Changes() {
		if c.Container == nil || !ok[c.Pod.Address] {
			continue
		}
		switch c.Action {
		case planner.Restart:
			w.streaks[c.Address] = c.Container.Streak
			delete(w.failed, c.Container.ContainerID)
			if c.Container.Streak <= 1 { // the backoff forgot earlier crashes
				delete(w.crashTold, c.Address)
			}
		case planner.Stop:
			delete(w.failed, c.Container.ContainerID)
		}
	}
}

// retryLater is the wait before the next attempt after a failed round:
// 1s doubling to 30s.
func (w *watcher) retryLater() time.Duration {
	w.failing++
	return min(time.Second<<min(w.failing-1, 5), retryMax)
}

// load re-reads the configuration, keeping the last good one when the
// files are invalid.
func (w *watcher) load() *spec.Config {
	if w.rev != "" && w.rev == w.badRev {
		return w.good // its round failed: refused until the next commit
	}
	cfg, diags := w.opts.Load(w.dir)
	if diags.HasErrors() {
		w.tel.configChanged(false, w.firstError(diags))
		w.tel.fetched(w.rev)
		if text := diags.Error(); text != w.badDiags {
			w.badDiags = text
			w.logDiagnostics(diags)
			attrs := []any{"dir", w.dir}
			if w.rev != "" {
				attrs = append(attrs, "revision", w.rev, "revision_in_force", w.goodRev)
			}
			w.log.Error("configuration invalid; nothing changes until it is fixed, the last good one stays in force", attrs...)
		}
		return w.good
	}
	if w.badDiags != "" {
		w.log.Info("configuration valid again", "dir", w.opts.Dir)
		w.badDiags = ""
	}
	if cfg.Berth.Stack != w.good.Berth.Stack {
		w.log.Error("the stack name changed; restart watch to switch stacks, the old name stays in force", "was", w.good.Berth.Stack, "now", cfg.Berth.Stack)
		return w.good
	}
	w.good, w.goodRev = cfg, w.rev
	w.tel.configChanged(true, "")
	w.tel.loaded(cfg, w.goodRev, w.rev)
	return cfg
}

// notifyRound tells of the first failing round of a streak, and of the
// round that ends it.
func (w *watcher) notifyRound(result string, err error) {
	failed := result == resultFailed || result == resultRefused
	was := w.lastResult == resultFailed || w.lastResult == resultRefused
	w.lastResult = result
	switch {
	case failed && !was:
		msg := "the round " + result
		if err != nil {
			msg = err.Error()
		}
		w.notify(notify.Event{Kind: notify.RoundFailed, Message: truncate(msg, 4000)})
	case !failed && was:
		w.notify(notify.Event{Kind: notify.Recovered, Message: "the stack converged again"})
	}
}

func (w *watcher) notify(ev notify.Event) {
	if w.opts.Notify == nil {
		return
	}
	ev.Stack, ev.Revision, ev.Time = w.good.Berth.Stack, w.goodRev, time.Now()
	w.opts.Notify(ev)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// saveState writes the state file for berth status, when there is one;
// a failure is logged, never fatal.
func (w *watcher) saveState() {
	if w.statePath == "" {
		return
	}
	st, _ := w.tel.snapshot()
	rep := WatcherReport{WatcherState: st}
	rep.Ready, rep.NotReady = ready(st)
	file := &StateFile{PID: os.Getpid(), Listen: w.opts.Listen, Written: time.Now(), WatcherReport: rep, Readiness: maps.Clone(w.ready)}
	if err := writeState(w.statePath, file); err != nil {
		w.log.Warn("cannot write the state file for berth status", "path", w.statePath, "error", err.Error())
	}
}

// awaitReady waits for a start-first replace's new pod, as apply does.
// The round waits with it: the old pod serves meanwhile.
func (w *watcher) awaitReady(ctx context.Context, pod *spec.Pod, sandboxID string) error {
	return probe.AwaitSandbox(ctx, w.rt, w.stack, pod, sandboxID)
}

// fetchResult is the outcome of one fetch of the source.
type fetchResult struct {
	rev gitsource.Revision
	err error
}

// fetch starts a fetch of the source, within its timeout, unless one
// runs; then another follows it, for whatever made this one wanted may
// have come after it began.
func (w *watcher) fetch(ctx context.Context) {
	if w.fetching {
		w.refetch = true
		return
	}
	w.fetching = true
	go func() {
		sctx, cancel := context.WithTimeout(ctx, w.opts.SourceTimeout)
		defer cancel()
		rev, err := w.opts.Source.Sync(sctx)
		w.fetched <- fetchResult{rev, err}
	}()
}

// synced takes a fetch's outcome and says why a round should follow: a
// new commit. A fetch that fails is logged once, until one succeeds.
func (w *watcher) synced(ctx context.Context, r fetchResult) string {
	w.fetching = false
	if w.refetch {
		w.refetch = false
		w.fetch(ctx)
	}
	rev, err := r.rev, r.err
	if err != nil {
		if msg := err.Error(); msg != w.syncErr {
			w.syncErr = msg
			w.log.Error("cannot fetch the configuration's repository; the revision in force stays", "error", msg, "revision_in_force", w.goodRev)
		}
		w.tel.syncFailed()
		return ""
	}
	if w.syncErr != "" {
		w.log.Info("the configuration's repository answers again")
		w.syncErr = ""
	}
	if rev.Commit == w.rev {
		return ""
	}
	w.log.Info("new commit", "revision", rev.Commit, "was", w.rev)
	w.dir, w.rev, w.reread = rev.Dir, rev.Commit, true
	w.tel.failedRevision("", nil)
	return "git: commit " + rev.Commit[:min(12, len(rev.Commit))]
}

// firstError is a configuration's first error, as /status and /readyz say
// it: where, and what (its diagnostics never hold a sensitive value).
func (w *watcher) firstError(diags hcl.Diagnostics) string {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if d.Subject != nil {
			msg = fmt.Sprintf("%s:%d: %s", w.where(d.Subject.Filename), d.Subject.Start.Line, msg)
		}
		return msg
	}
	return ""
}

func (w *watcher) logDiagnostics(diags hcl.Diagnostics) {
	for _, d := range diags {
		attrs := []any{"summary", d.Summary, "detail", d.Detail}
		if d.Subject != nil {
			attrs = append(attrs, "at", fmt.Sprintf("%s:%d", w.where(d.Subject.Filename), d.Subject.Start.Line))
		}
		if d.Severity == hcl.DiagError {
			w.log.Error("invalid configuration", attrs...)
		} else {
			w.log.Warn("configuration warning", attrs...)
		}
	}
}

// where names a configuration file for messages: with a git source, by its
// path in the repository (under --path), not in the exported tree.
func (w *watcher) where(file string) string {
	if w.rev == "" {
		return file
	}
	if rel, err := filepath.Rel(w.dir, file); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return file
}

// reportDeferred logs each deferred change when what is said of it
// changes, and sets the wake-up for the earliest deferred restart.
func (w *watcher) reportDeferred(plan *planner.Plan) {
	w.wake.Stop()
	var earliest time.Time
	seen := map[spec.Address]bool{}
	held := []HeldChange{}
	for c := range plan.Changes() {
		if c.Action != planner.Defer {
			continue
		}
		seen[c.Address] = true
		hc := HeldChange{Resource: c.Address.String(), Reason: planner.Reasons(c.Reasons)}
		if c.Container != nil {
			hc.Until = c.Container.Until
		}
		held = append(held, hc)
		if text := planner.Reasons(c.Reasons); w.heldLog[c.Address] != text {
			if !w.crashTold[c.Address] && slices.ContainsFunc(c.Reasons, func(r planner.Reason) bool { return r.Code == planner.ReasonCrashBackoff }) {
				w.crashTold[c.Address] = true // once a streak: until a restart starts a new one
				w.notify(notify.Event{Kind: notify.CrashLoop, Resource: c.Address.String(), Message: text})
			}
			w.heldLog[c.Address] = text
			logDecision(w.log, c)
		}
		if c.Container != nil && !c.Container.Until.IsZero() && (earliest.IsZero() || c.Container.Until.Before(earliest)) {
			earliest = c.Container.Until
		}
	}
	for addr := range w.heldLog {
		if !seen[addr] {
			delete(w.heldLog, addr)
		}
	}
	if !earliest.IsZero() {
		w.wake.Reset(time.Until(earliest))
	}
	w.tel.held(held)
}

// logDecisions writes one line per change that acts now: a pod's
// container changes only when the pod itself stays.
func logDecisions(log *slog.Logger, plan *planner.Plan) {
	for c := range plan.Changes() {
		if !c.Action.Changes() || c.Container != nil && c.Pod.Action != planner.NoOp {
			continue
		}
		logDecision(log, c)
	}
}

// logDecision is the line a decision gets: resource, action, reason and
// its code, as plan --json gives them.
func logDecision(log *slog.Logger, c planner.Change) {
	var codes []string
	for _, r := range c.Reasons {
		codes = append(codes, string(r.Code))
	}
	log.Info("decision", "resource", c.Address, "action", string(c.Action), "reason", planner.Reasons(c.Reasons), "reason_code", strings.Join(codes, ","))
}

func (w *watcher) logStep(ev apply.Event) {
	if ev.Action == planner.NoOp {
		ev.Action = "converge" // the pod stays; some of its containers changed
	}
	switch ev.Status {
	case apply.Done:
		w.log.Info("done", "resource", ev.Address, "action", string(ev.Action), "detail", ev.Detail, "took", ev.Elapsed.Round(time.Millisecond).String())
	case apply.Failed:
		w.log.Error("failed", "resource", ev.Address, "action", string(ev.Action), "error", errString(ev.Err))
	case apply.Stopping:
		w.log.Info("stopping", "resource", ev.Address, "detail", ev.Detail)
	case apply.Waiting:
		w.log.Info("waiting to be ready", "resource", ev.Address, "for", ev.Detail)
	case apply.Skipped:
		w.log.Warn("skipped", "resource", ev.Address, "action", string(ev.Action), "reason", errString(ev.Err))
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// onVerdict notes a probe's verdict and says why a round should follow:
// a failed liveness or startup probe is acted on by the next plan, which
// restarts the container (or stops it, under restart = "never").
func (w *watcher) onVerdict(v probe.Verdict) string {
	addr := spec.ContainerAddress(v.Pod, v.Container)
	if !v.Failed {
		state := "ready"
		if !v.Ready {
			state = "not ready"
		}
		w.tel.probe(string(v.Kind), strings.ReplaceAll(state, " ", "_"))
		w.ready[addr.String()] = v.Ready
		w.saveState()
		w.log.Info("readiness", "resource", addr, "state", state, "detail", v.Detail)
		return "readiness of " + addr.String()
	}
	w.tel.probe(string(v.Kind), "failed")
	w.failed[v.ContainerID] = &planner.ProbeFailure{Kind: v.Kind, Failures: v.Failures, Detail: v.Detail}
	return fmt.Sprintf("%s probe of %s failed", v.Kind, addr)
}
