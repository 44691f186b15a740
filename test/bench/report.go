package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets of the issue. They are reported, never asserted: a missed
// target is a finding, not a failed run.
const (
	maxApplyRatio      = 1.05 // up to scalePods
	maxScaleApplyRatio = 1.10 // from scalePods on
	scalePods          = 500
	maxSeqRatio        = 0.80 // "clearly faster than the sequential loop": at least 20% less time
	maxDestroyRatio    = 1.05
	maxPlanLists       = 3
	maxPlanWall        = 100 * time.Millisecond
	maxApplyRSS        = 100 << 10 // KiB, at scalePods

	// berth watch with scalePods pods.
	maxWatchIdleShare = 0.005    // of one core
	maxWatchRSS       = 64 << 10 // KiB
	maxCrashLatency   = 300 * time.Millisecond
	maxSaveLatency    = 350 * time.Millisecond
)

type report struct {
	opts              options
	facts             facts
	started, finished time.Time
	pairs             []*pairResult
}

// summary is what the targets are judged on.
type summary struct {
	apply, seq, destroy float64 // medians of per-pair ratios berth/baseline
	plan, lists         time.Duration
	rawDestroy          time.Duration // median
	// applyLead and destroyLead are the medians of berth's fixed cost; the
	// work ratios compare what follows it with the baseline.
	applyLead, destroyLead time.Duration
	applyWork, destroyWork float64
	applyRSS, destroyRSS   int64 // KiB, the most of any pair
	planRuns               int
	// The medians of each side's CPU, its own and the machine's.
	applyCPU, rawApplyCPU, destroyCPU, rawDestroyCPU stepCPU
	listCalls, emptyCalls                            int // the most list calls seen with N pods and with none
}

func (r *report) summarize() summary {
	var s summary
	var apply, seq, destroy []float64
	var plans, lists, rawDestroy, applyLead, destroyLead []time.Duration
	var applyWork, destroyWork []float64
	cpu := make([][]stepCPU, 4)
	for _, p := range r.pairs {
		for i, u := range []stepCPU{p.applyCPU, p.rawApplyCPU, p.destroyCPU, p.rawDestroyCPU} {
			cpu[i] = append(cpu[i], u)
		}
		apply = append(apply, ratio(p.berthApply, p.rawApply))
		seq = append(seq, ratio(p.berthApply, p.seqApply))
		destroy = append(destroy, ratio(p.berthDestroy, p.rawDestroy))
		plans, lists = append(plans, p.plans...), append(lists, p.lists...)
		rawDestroy = append(rawDestroy, p.rawDestroy)
		applyLead, destroyLead = append(applyLead, p.applyLead), append(destroyLead, p.destroyLead)
		applyWork = append(applyWork, ratio(p.berthApply-p.applyLead, p.rawApply))
		destroyWork = append(destroyWork, ratio(p.berthDestroy-p.destroyLead, p.rawDestroy))
		s.listCalls = max(s.listCalls, p.maxListCalls)
		s.applyRSS, s.destroyRSS = max(s.applyRSS, p.applyRSS), max(s.destroyRSS, p.destroyRSS)
		s.emptyCalls = max(s.emptyCalls, listCalls(p.emptyCalls))
	}
	s.apply, s.seq, s.destroy = median(apply), median(seq), median(destroy)
	s.plan, s.lists, s.planRuns = median(plans), median(lists), len(plans)
	s.rawDestroy = median(rawDestroy)
	s.applyLead, s.destroyLead = median(applyLead), median(destroyLead)
	s.applyWork, s.destroyWork = median(applyWork), median(destroyWork)
	s.applyCPU, s.rawApplyCPU, s.destroyCPU, s.rawDestroyCPU = medianCPU(cpu[0]), medianCPU(cpu[1]), medianCPU(cpu[2]), medianCPU(cpu[3])
	return s
}

func (r *report) factLines() []string {
	o, f, s := r.opts, r.facts, r.summarize()
	// Whether a stop waits out the grace depends on the runtime's PID
	// namespaces, not only on the command, so it is judged from the
	// baseline's destroy times: had every stop waited the grace, a destroy
	// would take at least ceil(N/concurrency) graces. Both sides run the
	// same command in the same namespaces.
	floor := time.Duration((o.pods+o.concurrency-1)/o.concurrency) * grace
	stop := fmt.Sprintf("every stop waited out the %s grace (the baseline's destroy took %s, at least the ceil(N/%d)×grace = %s that takes)",
		grace, fmtDur(s.rawDestroy), o.concurrency, fmtDur(floor))
	if s.rawDestroy < floor {
		stop = fmt.Sprintf("containers ended on SIGTERM without waiting out the %s grace (the baseline's destroy took %s, less than the ceil(N/%d)×grace = %s it would take if they waited)",
			grace, fmtDur(s.rawDestroy), o.concurrency, fmtDur(floor))
	}
	seccomp := "the runtime's default seccomp profile, as berth asks for (-seccomp)"
	if !o.seccomp {
		seccomp = "no seccomp profile, while berth's ask for the runtime's default (-seccomp=false)"
	}
	return []string{
		fmt.Sprintf("date: %s (run took %s)", f.date, r.finished.Sub(r.started).Round(time.Second)),
		fmt.Sprintf("host: nproc %d, %s, Linux %s", f.nproc, f.cpu, f.kernel),
		fmt.Sprintf("runtime: %s", f.runtime),
		fmt.Sprintf("berth: %s (source %s); benchmark built with %s", f.berthBin, f.berthRev, f.goVersion),
		fmt.Sprintf("workload: N = %d pods × 1 container, %s %q, stop_timeout %s, %s", o.pods, image, strings.Join(workloads[o.workload], " "), grace, networkOf(o)),
		fmt.Sprintf("stops (-workload %s): %s", o.workload, stop),
		fmt.Sprintf("baseline containers: %s", seccomp),
		fmt.Sprintf("pairs: %d, berth first in odd pairs and the baseline first in even ones, the sequential baseline last; berth parallelism = baseline concurrency = %d; %d no-op plans per pair", o.pairs, o.concurrency, o.planRuns),
	}
}

func networkOf(o options) string {
	if o.hostNetwork {
		return "on the host's network (host_network = true; NODE network namespace for the baseline)"
	}
	return "on the runtime's CNI network"
}

// pairTable has one row per pair and a row of medians.
func (r *report) pairTable() [][]string {
	c := r.opts.concurrency
	rows := [][]string{{"pair", "first", "berth apply", fmt.Sprintf("raw c=%d", c), "ratio", "raw c=1", "ratio",
		"berth destroy", fmt.Sprintf("raw c=%d", c), "ratio", "no-op plan p50", "raw lists p50"}}
	var cols [5][]time.Duration
	var ratios [3][]float64
	for i, p := range r.pairs {
		a, s, d := ratio(p.berthApply, p.rawApply), ratio(p.berthApply, p.seqApply), ratio(p.berthDestroy, p.rawDestroy)
		first := "raw"
		if p.berthFirst {
			first = "berth"
		}
		seqCell, seqRatio := fmtDur(p.seqApply), fmtRatio(s)
		if p.seqApply == 0 {
			seqCell, seqRatio = "-", "-" // -sequential=false
		}
		rows = append(rows, []string{fmt.Sprint(i + 1), first,
			fmtDur(p.berthApply), fmtDur(p.rawApply), fmtRatio(a), seqCell, seqRatio,
			fmtDur(p.berthDestroy), fmtDur(p.rawDestroy), fmtRatio(d), fmtDur(median(p.plans)), fmtDur(median(p.lists))})
		for j, v := range []time.Duration{p.berthApply, p.rawApply, p.seqApply, p.berthDestroy, p.rawDestroy} {
			cols[j] = append(cols[j], v)
		}
		for j, v := range []float64{a, s, d} {
			ratios[j] = append(ratios[j], v)
		}
	}
	sum := r.summarize()
	seqCell, seqRatio := fmtDur(median(cols[2])), fmtRatio(median(ratios[1]))
	if !r.opts.sequential {
		seqCell, seqRatio = "-", "-"
	}
	rows = append(rows, []string{"median", "",
		fmtDur(median(cols[0])), fmtDur(median(cols[1])), fmtRatio(median(ratios[0])), seqCell, seqRatio,
		fmtDur(median(cols[3])), fmtDur(median(cols[4])), fmtRatio(median(ratios[2])), fmtDur(sum.plan), fmtDur(sum.lists)})
	return rows
}

// verdict is a target's result column.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// targetTable judges the summary against the targets.
func (r *report) targetTable() [][]string {
	s, c := r.summarize(), r.opts.concurrency
	applyLimit := maxApplyRatio
	if r.opts.pods >= scalePods {
		applyLimit = maxScaleApplyRatio
	}
	rows := [][]string{
		{"target", "measured", "limit", "result"},
		{fmt.Sprintf("apply: berth / raw loop c=%d", c), fmtRatio(s.apply) + " (median of per-pair ratios)", fmt.Sprintf("≤ %.2f", applyLimit), verdict(s.apply <= applyLimit)},
	}
	if r.opts.sequential {
		rows = append(rows, []string{"apply: berth / sequential raw loop", fmtRatio(s.seq) + " (median of per-pair ratios)", fmt.Sprintf("≤ %.2f (clearly faster)", maxSeqRatio), verdict(s.seq <= maxSeqRatio)})
	}
	rows = append(rows,
		[]string{fmt.Sprintf("destroy: berth / raw loop c=%d", c), fmtRatio(s.destroy) + " (median of per-pair ratios)", fmt.Sprintf("≤ %.2f", maxDestroyRatio), verdict(s.destroy <= maxDestroyRatio)},
		[]string{"no-op plan: list calls", fmt.Sprintf("%d with %d pods, %d with 0 (most of any run)", s.listCalls, r.opts.pods, s.emptyCalls), fmt.Sprintf("≤ %d", maxPlanLists), verdict(max(s.listCalls, s.emptyCalls) <= maxPlanLists)},
		[]string{"no-op plan: wall time", fmt.Sprintf("%s (median of %d runs)", fmtDur(s.plan), s.planRuns), "≤ " + fmtDur(maxPlanWall), verdict(s.plan <= maxPlanWall)},
	)
	rss := []string{"apply: berth's peak RSS", fmtMiB(s.applyRSS) + fmt.Sprintf(" (destroy %s; most of any pair)", fmtMiB(s.destroyRSS)), fmt.Sprintf("≤ %s at %d pods", fmtMiB(maxApplyRSS), scalePods), "-"}
	if r.opts.pods >= scalePods {
		rss[3] = verdict(s.applyRSS <= maxApplyRSS)
	}
	return append(rows, rss)
}

// settleNote says when the no-op plans ran.
func (r *report) settleNote() string {
	var waits []string
	for _, p := range r.pairs {
		w := fmtDur(p.settle)
		if !p.settled {
			w += " (not settled)"
		}
		waits = append(waits, w)
	}
	return "the no-op plans ran once the runtime was done with the apply (containerd under 5% of a CPU over a second, or two seconds in a row within a fifth of each other under half a CPU, and the whole machine under a tenth of a CPU or as steady), which took " + strings.Join(waits, ", ") + " (by pair)"
}

// quietNote says how each timed step began.
func (r *report) quietNote() string {
	var waits []time.Duration
	for _, p := range r.pairs {
		waits = append(waits, p.waits...)
	}
	if len(waits) == 0 {
		return "the timed steps did not wait for the runtime to settle (its PID is unknown)"
	}
	return fmt.Sprintf("every timed apply and destroy began once the runtime had settled from the step before, by the same rule: waits %s median, %s longest",
		fmtDur(median(waits)), fmtDur(slices.Max(waits)))
}

func (r *report) notes() []string {
	s := r.summarize()
	last := r.pairs[len(r.pairs)-1]
	return []string{
		fmt.Sprintf("CRI calls of a no-op plan with %d pods, counted by a proxy in front of the runtime (berth's own account agrees): %s", r.opts.pods, formatCalls(last.calls)),
		fmt.Sprintf("the same list calls in-process, on an open connection: %s (median of %d); the rest of the plan's %s is process start, configuration, dial, diff and output",
			fmtDur(s.lists), s.planRuns, fmtDur(s.plan)),
		fmt.Sprintf("berth's fixed cost, until it prints its first pod step (process start, configuration, dial, lock, observe, plan text): apply %s, destroy %s (medians); "+
			"the rest, its pod work, is %s (apply) and %s (destroy) of the baseline's time (medians of per-pair ratios)",
			fmtDur(s.applyLead), fmtDur(s.destroyLead), fmtRatio(s.applyWork), fmtRatio(s.destroyWork)),
		fmt.Sprintf("CPU (medians, own / containerd / machine; own: the berth process, or this benchmark's for the baseline; machine: every process, from /proc/stat): apply berth %s, baseline %s; destroy berth %s, baseline %s",
			s.applyCPU.triple(), s.rawApplyCPU.triple(), s.destroyCPU.triple(), s.rawDestroyCPU.triple()),
		"raw c=1 is the sequential baseline; its cleanup is not timed",
		r.settleNote(),
		r.quietNote(),
	}
}

func (r *report) text(w io.Writer) {
	fmt.Fprintln(w, "berth benchmark: berth vs a raw CRI loop")
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w)
	writeTab(w, r.pairTable())
	fmt.Fprintln(w)
	writeTab(w, r.targetTable())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "  "+l)
	}
}

func (r *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s: -pods %d -pairs %d -workload %s -seccomp=%t -host-network=%t -sequential=%t\n\n", r.facts.date, r.opts.pods, r.opts.pairs, r.opts.workload, r.opts.seccomp, r.opts.hostNetwork, r.opts.sequential)
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "- "+l)
	}
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.pairTable())
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.targetTable())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "- "+l)
	}
}

func writeTab(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

func writeMarkdownTable(w io.Writer, rows [][]string) {
	for i, row := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		if i == 0 {
			fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(row)))
		}
	}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// median of a sample; the mean of the middle two for an even count.
func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func fmtRatio(x float64) string { return fmt.Sprintf("%.2f×", x) }

func fmtDur(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// emit prints a report and, when markdown names a file, writes the report's
// Markdown section there.
func emit(markdown string, text, md func(io.Writer)) error {
	text(os.Stdout)
	if markdown == "" {
		return nil
	}
	f, err := os.Create(markdown)
	if err != nil {
		return err
	}
	md(f)
	return f.Close()
}

// medianCPU is the median of each part on its own.
func medianCPU(us []stepCPU) stepCPU {
	var own, containerd, machine []time.Duration
	for _, u := range us {
		own, containerd, machine = append(own, u.own), append(containerd, u.containerd), append(machine, u.machine)
	}
	return stepCPU{own: median(own), containerd: median(containerd), machine: median(machine)}
}
