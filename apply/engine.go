package apply

import (
	"context"
	"errors"
	"time"

	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/preflight"
	"github.com/berth-dev/berth/internal/serving"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// EngineRuntime is what converging needs: observing and executing.
type EngineRuntime interface {
	planner.HostObserver
	Runtime
}

// Engine converges one runtime's stacks. berth plan, apply, destroy and
// every round of berth watch go through it, in the same steps: lock,
// observe, diff (pure), check the host, review, execute.
type Engine struct {
	Runtime EngineRuntime
	// Address names the runtime in the lock's path.
	Address string
	// LockDir holds the stack locks; Holder names this process in them.
	LockDir string
	Holder  string
	// LockTimeout bounds the wait for the lock; 0 waits as long as ctx.
	LockTimeout time.Duration
	// LockWaiting is told who holds the lock, once, when it must wait.
	LockWaiting func(lock.Holder)
	// Host reads the machine for the host checks; nil reads the real one.
	// Network checks it leaves nil are those of the observed runtime.
	Host *preflight.Host
}

// Decision is a plan and the snapshot it was made from.
type Decision struct {
	Plan     *planner.Plan
	Snapshot *planner.Snapshot
}

// Plan observes the stack and decides, without the lock and without
// changing anything: what berth plan shows.
func (e *Engine) Plan(ctx context.Context, cfg *spec.Config, opts planner.Options) (*Decision, error) {
	snap, err := planner.Observe(ctx, e.Runtime, cfg, opts)
	if err != nil {
		return nil, err
	}
	plan := planner.Diff(cfg, snap, opts)
	if !snap.Covers(plan) { // it reaches past the pods listed afresh
		opts.Reads = nil
		return e.Plan(ctx, cfg, opts)
	}
	pf := preflight.Check(plan, e.host(ctx, snap))
	plan.Errors = append(plan.Errors, pf.Errors...)
	plan.Warnings = append(plan.Warnings, pf.Warnings...)
	plan.Notes = append(plan.Notes, pf.Notes...)
	return &Decision{Plan: plan, Snapshot: snap}, nil
}

// host is the host the checks read, with the observed runtime's network.
func (e *Engine) host(ctx context.Context, snap *planner.Snapshot) preflight.Host {
	h := preflight.DefaultHost()
	if e.Host != nil {
		h = *e.Host
	}
	confDir, binDirs := snap.CNIConfDir, snap.CNIBinDirs
	if h.PodNetwork == nil {
		h.PodNetwork = func() (string, bool, error) {
			if len(binDirs) == 0 && confDir == "" {
				return "", false, snap.CNIErr
			}
			return preflight.PodNetwork(confDir)
		}
	}
	if h.ValidateNetwork == nil {
		h.ValidateNetwork = func(conflist []byte) error { return preflight.ValidateNetwork(ctx, conflist, binDirs) }
	}
	return h
}

// Review sees a decision before it is carried out: it renders it, checks
// it against a saved plan, asks for confirmation, or notes what a watcher
// needs. An error stops the converge with nothing changed.
type Review func(*Decision) error

// ErrNothingToDo is what Converge returns when the plan changes nothing or
// cannot be applied (its Errors say why); nothing was executed.
var ErrNothingToDo = errors.New("nothing to do")

// Converge takes the stack lock, decides, lets review see the decision,
// and executes the plan unless it has errors or no changes. The result is
// nil when nothing was executed.
func (e *Engine) Converge(ctx context.Context, cfg *spec.Config, opts planner.Options, review Review, exec Options) (*Decision, *Result, error) {
	lk, err := lock.Acquire(ctx, lock.Path(e.LockDir, cfg.Berth.Stack, e.Address), e.Holder, e.LockTimeout, e.LockWaiting)
	if err != nil {
		return nil, nil, err
	}
	defer lk.Release()

	d, err := e.Plan(ctx, cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	if review != nil {
		if err := review(d); err != nil {
			return d, nil, err
		}
	}
	if len(d.Plan.Errors) > 0 || !d.Plan.HasChanges() {
		return d, nil, ErrNothingToDo
	}
	if exec.Serving == nil && e.LockDir != "" {
		// Beside the lock: forwards of any process find the marks there.
		marks := serving.Dir(e.LockDir, cfg.Berth.Stack, e.Address)
		exec.Serving = func(pod, sandboxID string) error { return serving.Set(marks, pod, sandboxID) }
	}
	return d, Execute(ctx, d.Plan, e.Runtime, exec), nil
}
