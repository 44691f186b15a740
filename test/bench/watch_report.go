package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

type watchReport struct {
	opts              options
	facts             facts
	started, finished time.Time
	wb                *watchBench
	idle              map[string]*idleUse
	pairs             []*watchPair
	// scrapeCPU is what one /metrics scrape cost the served watcher, and
	// syncCPU one fetch of its unchanged repository.
	scrapeCPU, syncCPU time.Duration
}

// latencyCase picks one of a pair's two measurements.
type latencyCase struct {
	title string
	of    func(*watchPair) map[string]*watchSample
}

var latencyCases = []latencyCase{
	{"file save", func(p *watchPair) map[string]*watchSample { return p.file }},
	{"crash", func(p *watchPair) map[string]*watchSample { return p.crash }},
}

func (r *watchReport) factLines() []string {
	f, o, wb := r.facts, r.opts, r.wb
	quote := func(cmd []string) string { return fmt.Sprintf("%q", strings.Join(cmd, " ")) }
	return []string{
		fmt.Sprintf("date: %s (run took %s)", f.date, r.finished.Sub(r.started).Round(time.Second)),
		fmt.Sprintf("host: nproc %d, %s, Linux %s", f.nproc, f.cpu, f.kernel),
		fmt.Sprintf("runtime: %s", f.runtime),
		fmt.Sprintf("berth: %s (source %s); benchmark built with %s", f.berthBin, f.berthRev, f.goVersion),
		fmt.Sprintf("stacks: %s and %s, %d pods of one container each (%s): %d edited (edit-K, a file each, %s), %d crashed (crash-I, %s), %d idle (%s); stop_timeout %s",
			wb.stacks[modeEvent].b.stack, wb.stacks[modeResync].b.stack, wb.pods, image,
			editPods, quote(workloads[o.workload]), o.watchRuns, quote(crashCommand), wb.idlePods, quote(workloads[o.workload]), grace),
		fmt.Sprintf("event-driven: `berth watch DIR` (fsnotify, debounce %s; the runtime's event stream; resync 1m)", 300*time.Millisecond),
		fmt.Sprintf("resync-only: `berth watch --only-resync --resync %s DIR` (no fsnotify, no event stream)", o.watchResync),
		"idle only, stacks of the same pods: served+git, `berth watch --listen 127.0.0.1:0 --interval 1m --git URL` (the stack's files committed to a repository that git http-backend serves from the benchmark's process; no fsnotify), and a control, `berth watch DIR` as event-driven",
		"file save: the pod's file written to a hidden temporary file and renamed over it, with a new value of env " + watchEnvVar + "; timed from the rename until raw CRI lists a RUNNING container of the pod, not the old one, whose berth.io/spec annotation has the new value",
		"crash: CRI ExecSync `kill 1` (the shell exits with 1); timed from the call until raw CRI lists a RUNNING container of the pod, not the old one; each run crashes another pod, so every restart is that container's first (no backoff)",
		fmt.Sprintf("pairs: %d, the event-driven watcher first in odd pairs, the resync-only one in even ones; before each change the watcher has logged nothing for %s, and a resync-only run waits a random part of its period (uniform phase); CRI polled every %s", o.watchRuns, quietFor, pollEvery),
	}
}

// pairTable has a row per pair and one of medians: each case's latency
// on both watchers and their ratio.
func (r *watchReport) pairTable() [][]string {
	head := []string{"pair", "first"}
	for _, c := range latencyCases {
		head = append(head, c.title+": "+modeTitles[modeEvent], c.title+": "+modeTitles[modeResync], "event / resync")
	}
	rows := [][]string{head}
	cols := make([][]time.Duration, 2*len(latencyCases))
	ratios := make([][]float64, len(latencyCases))
	for i, p := range r.pairs {
		first := modeTitles[modeResync]
		if p.eventFirst {
			first = modeTitles[modeEvent]
		}
		row := []string{fmt.Sprint(i + 1), first}
		for j, c := range latencyCases {
			ev, rs := c.of(p)[modeEvent].total, c.of(p)[modeResync].total
			row = append(row, fmtDur(ev), fmtDur(rs), fmtRatio(ratio(ev, rs)))
			cols[2*j], cols[2*j+1] = append(cols[2*j], ev), append(cols[2*j+1], rs)
			ratios[j] = append(ratios[j], ratio(ev, rs))
		}
		rows = append(rows, row)
	}
	row := []string{"median", ""}
	for j := range latencyCases {
		row = append(row, fmtDur(median(cols[2*j])), fmtDur(median(cols[2*j+1])), fmtRatio(median(ratios[j])))
	}
	// The mean too: a resync-only latency is spread evenly over a whole
	// period, and its mean is what "half a period" is about.
	mean := []string{"mean", ""}
	for j := range latencyCases {
		mean = append(mean, fmtDur(meanOf(cols[2*j])), fmtDur(meanOf(cols[2*j+1])), "")
	}
	return append(rows, row, mean)
}

// phaseTable splits each case's latency, in medians: until the watcher
// decided, until the old container was down, until the new one ran.
func (r *watchReport) phaseTable() [][]string {
	rows := [][]string{{"case", "watcher", "decision logged", "old container down", "new container RUNNING", "decision's round (runs)"}}
	for _, c := range latencyCases {
		for _, mode := range []string{modeEvent, modeResync} {
			var decided, down, total []time.Duration
			triggers := map[string]int{}
			for _, p := range r.pairs {
				s := c.of(p)[mode]
				decided, down, total = append(decided, s.decided), append(down, s.oldDown), append(total, s.total)
				t := s.trigger
				if topic, ok := strings.CutPrefix(t, "runtime: "); ok {
					t = "runtime: " + strings.Fields(topic + " ?")[0] // the event's topic, not its container
				}
				if s.action != "" && s.action != "replace" && s.action != "restart" {
					t += ", action " + s.action
				}
				triggers[t]++
			}
			rows = append(rows, []string{c.title, modeTitles[mode], fmtDur(median(decided)), fmtDur(median(down)), fmtDur(median(total)), countList(triggers)})
		}
	}
	return rows
}

// countList is "a ×3, b ×1", most frequent first.
func countList(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// idleTable has a row per watcher: its CPU and memory over the idle window.
func (r *watchReport) idleTable() [][]string {
	rows := [][]string{{"watcher", "resync", "window", "CPU utime+stime", "CPU (schedstat)", "share of one CPU", "CPU per hour", "VmRSS max", "log lines", "rounds that changed something"}}
	for _, mode := range watchModes {
		u := r.idle[mode]
		if u == nil || u.window == 0 {
			continue
		}
		period := "1m"
		if mode == modeResync {
			period = r.opts.watchResync.String()
		}
		perHour := time.Duration(float64(u.runCPU) * float64(time.Hour) / float64(u.window))
		rows = append(rows, []string{modeTitles[mode], period, u.window.Round(100 * time.Millisecond).String(),
			fmtDur(u.statCPU), fmtDur(u.runCPU), fmt.Sprintf("%.3f%%", 100*float64(u.runCPU)/float64(u.window)),
			fmtDur(perHour), fmtMiB(u.rssMax), fmt.Sprint(u.lines), fmt.Sprint(u.convergingRounds)})
	}
	return rows
}

// servedCost compares the served watcher (--listen, and a git source
// fetched every minute) with the plain event-driven ones, idle: against
// the mean of the two, with the two's difference as the noise floor.
func (r *watchReport) servedCost() string {
	ev, ctl, sv := r.idle[modeEvent], r.idle[modeControl], r.idle[modeServed]
	for _, u := range []*idleUse{ev, ctl, sv} {
		if u == nil || u.window == 0 || u.runCPU == 0 || u.rssMax == 0 {
			return ""
		}
	}
	perMinute := func(u *idleUse) time.Duration {
		return time.Duration(float64(u.runCPU) * float64(time.Minute) / float64(u.window))
	}
	plain := (perMinute(ev) + perMinute(ctl)) / 2
	cpu := float64(perMinute(sv)) / float64(plain)
	noise := float64(perMinute(ctl)) / float64(perMinute(ev))
	rss := float64(sv.rssMax) / float64(max(ev.rssMax, ctl.rssMax))
	verdict := "within"
	if cpu > 1.05 {
		verdict = "over"
	}
	return fmt.Sprintf("service features, idle: the served+git watcher (--listen, --git over HTTP fetched every 1m) used %.2f× the CPU of the two plain event-driven watchers' mean (%s a minute against %s), %s the 5%% allowed; the two plain ones differ by %.2f× (%s and %s a minute: the noise floor); its memory %.2f× theirs. "+
		"One fetch of the unchanged repository cost it %s of CPU (mean of %d webhooks 250ms apart, the plain watcher's CPU in the same span taken off: a webhook's own request included), %.1f%% of a plain watcher's idle minute; "+
		"one /metrics scrape cost it %s (mean of %d; not part of the idle window), so a Prometheus scrape every 15s would add %s a minute",
		cpu, fmtDur(perMinute(sv)), fmtDur(plain), verdict, noise, fmtDur(perMinute(ev)), fmtDur(perMinute(ctl)), rss,
		fmtDur(r.syncCPU), syncs, 100*float64(r.syncCPU)/float64(max(plain, 1)),
		fmtDur(r.scrapeCPU), scrapes, fmtDur(4*r.scrapeCPU))
}

func meanOf(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range xs {
		sum += x
	}
	return sum / time.Duration(len(xs))
}

func fmtMiB(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

func (r *watchReport) notes() []string {
	u := r.idle[modeResync]
	rounds := int(u.window / r.opts.watchResync)
	return []string{
		"event / resync is the event-driven latency over the resync-only one in the same pair; the median row's ratio is the median of those per-pair ratios, not a ratio of medians",
		fmt.Sprintf("a resync-only latency is the wait for the next resync, spread evenly over [0, %s) by the random phase, plus the same work after the decision: its mean should come near %s plus that work", r.opts.watchResync, r.opts.watchResync/2),
		"decision logged: the change until the watcher's `msg=decision` line for the container arrived on its stderr (time-stamped by the benchmark as it read it); old container down: until CRI first listed the old container as not RUNNING; the column after names the trigger of the round that decided",
		fmt.Sprintf("idle: both watchers sampled at once, once a second (%d samples), after %s without a log line; CPU from /proc/PID/stat (10ms ticks) and the sum of its threads' run times (/proc/PID/task/*/schedstat, ns); share and per hour from schedstat; VmRSS (/proc/PID/status) the most of the samples",
			u.samples, 5*time.Second),
		fmt.Sprintf("idle rounds: the resync-only watcher ran about %d resync rounds in the window (one per %s: read the files, 3 list calls, plan; logged at debug level only), the event-driven one %d or %d (resync 1m); the event-driven watcher also receives every event of the shared runtime, others' tests included, and drops those of other stacks",
			rounds, r.opts.watchResync, int(u.window/time.Minute), int(u.window/time.Minute)+1),
	}
}

func (r *watchReport) text(w io.Writer) {
	fmt.Fprintln(w, "berth watch benchmark: event-driven against resync-only")
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w)
	writeTab(w, r.pairTable())
	fmt.Fprintln(w)
	writeTab(w, r.phaseTable())
	fmt.Fprintln(w)
	writeTab(w, r.idleTable())
	fmt.Fprintln(w)
	if c := r.servedCost(); c != "" {
		fmt.Fprintln(w, "  "+c)
	}
	for _, l := range r.notes() {
		fmt.Fprintln(w, "  "+l)
	}
}

func (r *watchReport) markdown(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "### %s: -watch -watch-runs %d -watch-pods %d -watch-idle %s -watch-resync %s -workload %s\n\n", r.facts.date, o.watchRuns, o.watchPods, o.watchIdle, o.watchResync, o.workload)
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "- "+l)
	}
	fmt.Fprintln(w, "\nLatency, the change until the new container is RUNNING:")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.pairTable())
	fmt.Fprintln(w, "\nWhere the time goes (medians from the change):")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.phaseTable())
	fmt.Fprintf(w, "\nIdle, %d pods converged per stack:\n\n", r.wb.pods)
	writeMarkdownTable(w, r.idleTable())
	fmt.Fprintln(w)
	if c := r.servedCost(); c != "" {
		fmt.Fprintln(w, "- "+c)
	}
	for _, l := range r.notes() {
		fmt.Fprintln(w, "- "+l)
	}
}
