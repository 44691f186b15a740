package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// pairResult is one berth/baseline pair.
type pairResult struct {
	berthFirst                     bool
	berthApply, rawApply, seqApply time.Duration
	berthDestroy, rawDestroy       time.Duration
	// applyLead and destroyLead are how long berth ran before it printed
	// its first pod step: process start, configuration, dial, lock,
	// observe, diff and the plan's text. The rest is the pod work.
	applyLead, destroyLead time.Duration
	// applyRSS and destroyRSS are berth's peak memory in those commands,
	// in KiB.
	applyRSS, destroyRSS int64
	// The CPU each side's apply and destroy used, its own and the
	// machine's: where a ratio's difference went.
	applyCPU, rawApplyCPU, destroyCPU, rawDestroyCPU stepCPU
	// settle is how long the runtime took, after the apply, to fall under
	// 5% of a CPU (settled false: it had not after a minute, or its PID is
	// unknown).
	settle  time.Duration
	settled bool
	// waits are how long each timed apply and destroy waited for the
	// runtime to settle from the step before.
	waits []time.Duration
	// plans are the wall times of the no-op plans; lists those of the
	// baseline's list calls, made in between them.
	plans, lists []time.Duration
	// calls are the CRI calls of the last no-op plan (N pods present), and
	// emptyCalls those of a plan against the empty stack: together they
	// show whether planning costs grow with the pod count.
	calls, emptyCalls map[string]int
	// maxListCalls is the most List* calls any no-op plan of the pair made.
	maxListCalls int
}

type pairRun struct {
	o    options
	b    *berth
	rt   *raw
	i    int
	res  *pairResult
	logf func(format string, args ...any)
}

// runPair runs berth and the baseline at the same concurrency once each,
// then the sequential baseline. Odd pairs run berth first and even pairs
// the baseline, so that neither side always goes first: drift within a
// pair, or an after-effect of the step before, falls on both alike. Each
// side starts from an empty runtime and leaves it empty again.
func runPair(ctx context.Context, o options, b *berth, rt *raw, i int) (*pairResult, error) {
	r := &pairRun{o: o, b: b, rt: rt, i: i, res: &pairResult{berthFirst: i%2 == 0}}
	r.logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "  pair %d/%d: %s\n", i+1, o.pairs, fmt.Sprintf(format, args...))
	}
	sides := []func(context.Context) error{r.berth, r.baseline}
	if !r.res.berthFirst {
		sides[0], sides[1] = sides[1], sides[0]
	}
	if o.sequential {
		sides = append(sides, r.sequential)
	}
	for _, side := range sides {
		if err := side(ctx); err != nil {
			return nil, err
		}
	}
	return r.res, nil
}

// berth applies, plans without changes, and destroys with the real binary.
func (r *pairRun) berth(ctx context.Context) error {
	p, b, rt := r.res, r.b, r.rt
	sel := map[string]string{labelStack: b.stack}

	// A plan of the empty stack first, for its call count.
	var err error
	if p.emptyCalls, err = b.countedPlan(ctx, 2); err != nil {
		return fmt.Errorf("plan of the empty stack: %w", err)
	}
	var res *result

	r.quiet(ctx, "berth apply")
	meter := meterStep()
	if res, err = b.mustRun(ctx, 0, "apply", "--auto-approve", b.dir); err != nil {
		return err
	}
	p.berthApply, p.applyLead, p.applyRSS = res.wall, res.lead, res.maxRSS
	p.applyCPU = meter(res.cpu)
	if err := rt.expectRunning(ctx, sel, r.o.pods); err != nil {
		return fmt.Errorf("after berth apply: %w", err)
	}
	r.logf("berth apply           %s (first pod step after %s, peak RSS %s, %s)", fmtDur(p.berthApply), fmtDur(p.applyLead), fmtMiB(p.applyRSS), p.applyCPU)

	// No-op plans, each followed by the baseline's list calls on the same
	// pods, so that both see the same runtime state and the same noise;
	// once the runtime is done with the starts.
	waited, settled := settle(ctx, time.Minute)
	p.settle, p.settled = waited, settled
	for range r.o.planRuns {
		res, err := b.mustRun(ctx, 0, "plan", "--detailed-exitcode", b.dir)
		if err != nil {
			return fmt.Errorf("no-op plan: %w", err)
		}
		p.plans = append(p.plans, res.wall)

		d, err := rt.lists(ctx, sel)
		if err != nil {
			return err
		}
		p.lists = append(p.lists, d)
	}
	// The calls, counted by a proxy on a plan of its own: the proxy's hop
	// stays out of the timed plans.
	if p.calls, err = b.countedPlan(ctx, 0); err != nil {
		return fmt.Errorf("no-op plan: %w", err)
	}
	p.maxListCalls = listCalls(p.calls)
	r.logf("no-op plan (median)   %s, %s", fmtDur(median(p.plans)), formatCalls(p.calls))

	r.quiet(ctx, "berth destroy")
	meter = meterStep()
	if res, err = b.mustRun(ctx, 0, "destroy", "--auto-approve", b.dir); err != nil {
		return err
	}
	p.berthDestroy, p.destroyLead, p.destroyRSS = res.wall, res.lead, res.maxRSS
	p.destroyCPU = meter(res.cpu)
	if err := rt.expectNone(ctx, sel); err != nil {
		return fmt.Errorf("after berth destroy: %w", err)
	}
	r.logf("berth destroy         %s (first pod step after %s, %s)", fmtDur(p.berthDestroy), fmtDur(p.destroyLead), p.destroyCPU)
	return nil
}

// quiet waits, before a timed step, until the runtime and the machine are
// done with the step before: a destroy's shims exit and containerd
// removes its snapshots for seconds after the last call returns, and
// 500 new containers keep both CPUs busy a while after their start. The
// step that came next paid for that, and which step came next depended on
// the pair's order and on whether the plans had run in between.
func (r *pairRun) quiet(ctx context.Context, step string) {
	waited, settled := settle(ctx, time.Minute)
	r.res.waits = append(r.res.waits, waited)
	if !settled {
		r.logf("%s: the runtime had not settled after %s; timed anyway", step, fmtDur(waited))
	}
}

// baseline applies and destroys with raw CRI calls at berth's concurrency.
func (r *pairRun) baseline(ctx context.Context) error {
	p, o, rt := r.res, r.o, r.rt
	round := fmt.Sprintf("%d-c", r.i+1)
	r.quiet(ctx, "baseline apply")
	meter, self := meterStep(), selfCPU()
	pods, d, err := rt.apply(ctx, round, o.pods, o.concurrency, workloads[o.workload])
	if err != nil {
		return fmt.Errorf("baseline apply: %w", err)
	}
	p.rawApply, p.rawApplyCPU = d, meter(selfCPU()-self)
	sel := map[string]string{labelRun: rt.runID, labelRound: round}
	if err := rt.expectRunning(ctx, sel, o.pods); err != nil {
		return fmt.Errorf("after baseline apply: %w", err)
	}
	r.logf("baseline apply  c=%-2d  %s (%s)", o.concurrency, fmtDur(p.rawApply), p.rawApplyCPU)
	r.quiet(ctx, "baseline destroy")
	meter, self = meterStep(), selfCPU()
	if p.rawDestroy, err = rt.destroy(ctx, pods, grace, o.concurrency); err != nil {
		return fmt.Errorf("baseline destroy: %w", err)
	}
	p.rawDestroyCPU = meter(selfCPU() - self)
	if err := rt.expectNone(ctx, sel); err != nil {
		return fmt.Errorf("after baseline destroy: %w", err)
	}
	r.logf("baseline destroy c=%-2d %s (%s)", o.concurrency, fmtDur(p.rawDestroy), p.rawDestroyCPU)
	return nil
}

// sequential is the baseline at concurrency 1, apply only. Its cleanup is
// not timed and kills without grace, so it does not drag the run out.
func (r *pairRun) sequential(ctx context.Context) error {
	p, o, rt := r.res, r.o, r.rt
	round := fmt.Sprintf("%d-s", r.i+1)
	var err error
	if _, p.seqApply, err = rt.apply(ctx, round, o.pods, 1, workloads[o.workload]); err != nil {
		return fmt.Errorf("sequential baseline apply: %w", err)
	}
	r.logf("baseline apply  c=1   %s", fmtDur(p.seqApply))
	if err := rt.sweep(ctx, map[string]string{labelRun: rt.runID}); err != nil {
		return fmt.Errorf("sequential baseline cleanup: %w", err)
	}
	return os.RemoveAll(filepath.Join(rt.logRoot, round))
}
