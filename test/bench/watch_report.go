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
	lines := []string{
		fmt.Sprintf("date: %s (run took %s)", f.date, r.finished.Sub(r.started).Round(time.Second)),
		fmt.Sprintf("host: nproc %d, %s, Linux %s", f.nproc, f.cpu, f.kernel),
		fmt.Sprintf("runtime: %s", f.runtime),
		fmt.Sprintf("berth: %s (source %s); benchmark built with %s", f.berthBin, f.berthRev, f.goVersion),
		fmt.Sprintf("stacks: %s, %d pods of one container each (%s): %d edited (edit-K, a file each, %s), %d crashed (crash-I, %s), %d idle (%s); stop_timeout %s",
			strings.Join(stackNames(wb), ", "), wb.pods, image,
			editPods, quote(workloads[o.workload]), o.watchRuns, quote(crashCommand), wb.idlePods, quote(workloads[o.workload]), grace),
		fmt.Sprintf("event-driven: `berth watch DIR` (fsnotify: a save settles after %s quiet, a longer burst after the debounce, %s; the runtime's event stream; resync 1m)", 25*time.Millisecond, 300*time.Millisecond),
	}
	if wb.stacks[modeResync] != nil {
		lines = append(lines,
			fmt.Sprintf("resync-only: `berth watch --only-resync --resync %s DIR` (no fsnotify, no event stream)", o.watchResync),
			"idle only, stacks of the same pods: served+git, `berth watch --listen 127.0.0.1:0 --interval 1m --git URL` (the stack's files committed to a repository that git http-backend serves from the benchmark's process; no fsnotify), and a control, `berth watch DIR` as event-driven")
	} else {
		lines = append(lines, "the event-driven watcher alone (-watch-alone): no resync-only, served or control stack")
	}
	return append(lines,
		"file save: the pod's file written to a hidden temporary file and renamed over it, with a new value of env "+watchEnvVar+"; timed from the rename until raw CRI lists a RUNNING container of the pod, not the old one, whose berth.io/spec annotation has the new value",
		"crash: SIGTERM sent from the host to the container's process (its PID from CRI's verbose status; the shell exits with 1); timed from the kill until raw CRI lists a RUNNING container of the pod, not the old one; each run crashes another pod, so every restart is that container's first (no backoff)",
		fmt.Sprintf("raw CRI replace (the file save's baseline, each pair, before berth's save in even pairs and after in odd ones): the event-driven watcher paused, another idle pod's container stopped with StopContainer (timeout %s) and, on containerd's /tasks/exit event for it (before the stop returns; berth acts on it too), the next attempt created and started in its sandbox as below, the old one removed; timed from the stop call: the replace a save comes to, without noticing the file, loading or planning", grace),
		"raw CRI restart (the crash's baseline, each pair, before berth's crash in even pairs and after in odd ones): the event-driven watcher paused (SIGSTOP), an idle pod of its stack crashed the same way, and on containerd's /tasks/exit event for it a raw client creates and starts the next attempt in the same sandbox (the old one's labels, annotations and image, the runtime's default seccomp profile), then removes the old one; timed the same way",
		fmt.Sprintf("pairs: %d, the event-driven watcher first in odd pairs, the resync-only one in even ones; before each change the watcher has logged nothing for %s, and a resync-only run waits a random part of its period (uniform phase); CRI polled every %s once containerd told that the new container's task started (polled from the change, the lists of 500 containers slowed the runtime's create and start by a fifth, on berth's side only)", o.watchRuns, quietFor, pollEvery))
}

// stackNames are the benchmark's stacks, in the report's order.
func stackNames(wb *watchBench) []string {
	var names []string
	for _, mode := range wb.modes {
		names = append(names, wb.stacks[mode].b.stack)
	}
	return names
}

// latencyModes are the watchers the pairs time: the event-driven one and,
// unless it ran alone, the resync-only one.
func (r *watchReport) latencyModes() []string {
	if r.wb.stacks[modeResync] == nil {
		return []string{modeEvent}
	}
	return []string{modeEvent, modeResync}
}

// pairTable has a row per pair and one of medians: each case's latency
// on each watcher and, with two, their ratio.
func (r *watchReport) pairTable() [][]string {
	modes := r.latencyModes()
	compared := len(modes) == 2
	head := []string{"pair", "first"}
	for _, c := range latencyCases {
		for _, mode := range modes {
			head = append(head, c.title+": "+modeTitles[mode])
		}
		if compared {
			head = append(head, "event / resync")
		}
	}
	rows := [][]string{head}
	cols := make([][][]time.Duration, len(latencyCases)) // by case, then mode
	ratios := make([][]float64, len(latencyCases))
	for j := range cols {
		cols[j] = make([][]time.Duration, len(modes))
	}
	for i, p := range r.pairs {
		first := modeTitles[modeEvent]
		if compared && !p.eventFirst {
			first = modeTitles[modeResync]
		}
		row := []string{fmt.Sprint(i + 1), first}
		for j, c := range latencyCases {
			for m, mode := range modes {
				d := c.of(p)[mode].total
				row = append(row, fmtDur(d))
				cols[j][m] = append(cols[j][m], d)
			}
			if compared {
				x := ratio(c.of(p)[modeEvent].total, c.of(p)[modeResync].total)
				row = append(row, fmtRatio(x))
				ratios[j] = append(ratios[j], x)
			}
		}
		rows = append(rows, row)
	}
	// The mean too: a resync-only latency is spread evenly over a whole
	// period, and its mean is what "half a period" is about.
	med, mean := []string{"median", ""}, []string{"mean", ""}
	for j := range latencyCases {
		for m := range modes {
			med, mean = append(med, fmtDur(median(cols[j][m]))), append(mean, fmtDur(meanOf(cols[j][m])))
		}
		if compared {
			med, mean = append(med, fmtRatio(median(ratios[j]))), append(mean, "")
		}
	}
	return append(rows, med, mean)
}

// rawTable sets the event-driven watcher's file saves and crash restarts
// beside the raw baselines' of the same pair; nil when neither ran.
func (r *watchReport) rawTable() [][]string {
	rows := [][]string{{"pair", "save: event-driven", "save: raw CRI replace", "event-driven / raw", "crash: event-driven", "crash: raw CRI restart on the event", "event-driven / raw"}}
	type column struct {
		berth, raw []time.Duration
		ratios     []float64
	}
	var save, crash column
	cells := func(c *column, b, x *watchSample) []string {
		if b == nil || x == nil {
			return []string{"-", "-", "-"}
		}
		q := ratio(b.total, x.total)
		c.berth, c.raw, c.ratios = append(c.berth, b.total), append(c.raw, x.total), append(c.ratios, q)
		return []string{fmtDur(b.total), fmtDur(x.total), fmtRatio(q)}
	}
	for i, p := range r.pairs {
		if p.raw == nil && p.rawSave == nil {
			continue
		}
		row := append([]string{fmt.Sprint(i + 1)}, cells(&save, p.file[modeEvent], p.rawSave)...)
		rows = append(rows, append(row, cells(&crash, p.crash[modeEvent], p.raw)...))
	}
	if len(rows) == 1 {
		return nil
	}
	med := []string{"median"}
	for _, c := range []column{save, crash} {
		if len(c.ratios) == 0 {
			med = append(med, "-", "-", "-")
			continue
		}
		med = append(med, fmtDur(median(c.berth)), fmtDur(median(c.raw)), fmtRatio(median(c.ratios)))
	}
	return append(rows, med)
}

// phaseTable splits each case's latency, in medians: until the watcher
// decided, until containerd told the old container's exit, until the new
// one was listed running.
func (r *watchReport) phaseTable() [][]string {
	rows := [][]string{{"case", "watcher", "decision logged", "old container exited", "new container RUNNING", "decision's round (runs)"}}
	for _, c := range latencyCases {
		for _, mode := range r.latencyModes() {
			var decided, down, total []time.Duration
			triggers := map[string]int{}
			for _, p := range r.pairs {
				s := c.of(p)[mode]
				decided, down, total = append(decided, s.decided), append(down, s.runtime.exited), append(total, s.total)
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

// runtimeTable splits the event-driven watcher's reactions, and the raw
// baseline's, by containerd's own event times (medians, each column on
// its own, over the samples whose three events were seen): the old
// container's exit, the next one's creation (the end of CreateContainer)
// and its task's start (the end of StartContainer's work in the runtime).
func (r *watchReport) runtimeTable() [][]string {
	rows := [][]string{{"case", "watcher", "old container exited", "exit → next created", "created → started", "started → listed RUNNING", "samples"}}
	row := func(title, who string, samples []*watchSample) {
		var exited, created, started, listed []time.Duration
		for _, s := range samples {
			if s == nil || !s.runtime.complete() {
				continue
			}
			t := s.runtime
			exited, created = append(exited, t.exited), append(created, t.created-t.exited)
			started, listed = append(started, t.started-t.created), append(listed, s.total-t.started)
		}
		if len(exited) == 0 {
			return
		}
		rows = append(rows, []string{title, who, fmtDur(median(exited)), fmtDur(median(created)), fmtDur(median(started)), fmtDur(median(listed)), fmt.Sprint(len(exited))})
	}
	for _, c := range latencyCases {
		for _, mode := range r.latencyModes() {
			var samples []*watchSample
			for _, p := range r.pairs {
				samples = append(samples, c.of(p)[mode])
			}
			row(c.title, modeTitles[mode], samples)
		}
	}
	var raw, rawSave []*watchSample
	for _, p := range r.pairs {
		raw, rawSave = append(raw, p.raw), append(rawSave, p.rawSave)
	}
	row("file save", "raw CRI replace", rawSave)
	row("crash", "raw CRI restart", raw)
	if len(rows) == 1 {
		return nil
	}
	return rows
}

// stepMedians are medians of two steps by containerd's clock: the exit
// until the next container was created, and created until started.
type stepMedians struct{ create, start time.Duration }

// crashSplit is those of the event-driven watcher's crashes and of the
// raw baseline's, over the pairs that have both.
func (r *watchReport) crashSplit() (berth, raw stepMedians, ok bool) {
	var bc, bs, xc, xs []time.Duration
	for _, p := range r.pairs {
		b := p.crash[modeEvent]
		if p.raw == nil || b == nil || !b.runtime.complete() || !p.raw.runtime.complete() {
			continue
		}
		bc, bs = append(bc, b.runtime.created-b.runtime.exited), append(bs, b.runtime.started-b.runtime.created)
		xc, xs = append(xc, p.raw.runtime.created-p.raw.runtime.exited), append(xs, p.raw.runtime.started-p.raw.runtime.created)
	}
	if len(bc) == 0 {
		return berth, raw, false
	}
	return stepMedians{median(bc), median(bs)}, stepMedians{median(xc), median(xs)}, true
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
	for _, mode := range r.wb.modes {
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
	u := r.idle[modeEvent]
	var lines []string
	if rs := r.idle[modeResync]; rs != nil {
		lines = append(lines,
			"event / resync is the event-driven latency over the resync-only one in the same pair; the median row's ratio is the median of those per-pair ratios, not a ratio of medians",
			fmt.Sprintf("a resync-only latency is the wait for the next resync, spread evenly over [0, %s) by the random phase, plus the same work after the decision: its mean should come near %s plus that work", r.opts.watchResync, r.opts.watchResync/2),
			fmt.Sprintf("idle rounds: the resync-only watcher ran about %d resync rounds in the window (one per %s: read the files, 3 list calls, plan; logged at debug level only), the event-driven one %d or %d (resync 1m); the event-driven watcher also receives every event of the shared runtime, others' tests included, and drops those of other stacks",
				int(rs.window/r.opts.watchResync), r.opts.watchResync, int(u.window/time.Minute), int(u.window/time.Minute)+1))
	}
	if b, x, ok := r.crashSplit(); ok {
		lines = append(lines, fmt.Sprintf("by containerd's clock, a crash: from the exit until the next container was created took %s for the event-driven watcher and %s for the raw baseline, which creates at once: the watcher's own part before its create is about %s; from created to started, the runtime's work for either, %s and %s (%s)",
			fmtDur(b.create), fmtDur(x.create), fmtDur(b.create-x.create), fmtDur(b.start), fmtDur(x.start), fmtRatio(ratio(b.start, x.start))))
	}
	return append(lines,
		"by containerd's clock: the timestamps containerd gave its /tasks/exit (the old container), /containers/create (the next one, at the end of CreateContainer) and /tasks/start (its task, at the end of StartContainer's work) events, from a subscription the benchmark holds through each sample; counted from the change, then from the step before",
		"decision logged: the change until the watcher's `msg=decision` line for the container arrived on its stderr (time-stamped by the benchmark as it read it); old container exited: containerd's /tasks/exit for it (by containerd's clock, below); the column after names the trigger of the round that decided",
		fmt.Sprintf("idle: all watchers sampled at once, once a second (%d samples), after %s without a log line; CPU from /proc/PID/stat (10ms ticks) and the sum of its threads' run times (/proc/PID/task/*/schedstat, ns); share and per hour from schedstat; VmRSS (/proc/PID/status) the most of the samples",
			u.samples, 5*time.Second),
	)
}

// targetTable judges the event-driven watcher against the issue's
// targets, which are set for scalePods pods.
func (r *watchReport) targetTable() [][]string {
	u := r.idle[modeEvent]
	share := float64(u.runCPU) / float64(u.window)
	var save, crash []time.Duration
	for _, p := range r.pairs {
		save, crash = append(save, p.file[modeEvent].total), append(crash, p.crash[modeEvent].total)
	}
	at := fmt.Sprintf(" (%d pods; set for %d)", r.wb.pods, scalePods)
	errs, first := r.wb.stacks[modeEvent].proc.errors()
	errText := fmt.Sprint(errs)
	if errs > 0 {
		errText += ", the first: " + truncate(first, 300)
	}
	return [][]string{
		{"target", "measured", "limit", "result"},
		{"idle CPU", fmt.Sprintf("%.3f%% of one core", 100*share) + at, fmt.Sprintf("≤ %.1f%%", 100*maxWatchIdleShare), verdict(share <= maxWatchIdleShare)},
		{"idle VmRSS", fmtMiB(u.rssMax) + at, "≤ " + fmtMiB(maxWatchRSS), verdict(u.rssMax <= maxWatchRSS)},
		{"crash → running", fmtDur(median(crash)) + " median" + at, "≤ " + fmtDur(maxCrashLatency), verdict(median(crash) <= maxCrashLatency)},
		{"file save → running", fmtDur(median(save)) + " median" + at, "≤ " + fmtDur(maxSaveLatency), verdict(median(save) <= maxSaveLatency)},
		{"errors the watcher logged (a failed round logs one)", errText, "0", verdict(errs == 0)},
	}
}

func (r *watchReport) text(w io.Writer) {
	title := "berth watch benchmark: event-driven against resync-only"
	if r.wb.stacks[modeResync] == nil {
		title = "berth watch benchmark: the event-driven watcher alone"
	}
	fmt.Fprintln(w, title)
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w)
	writeTab(w, r.pairTable())
	fmt.Fprintln(w)
	writeTab(w, r.phaseTable())
	fmt.Fprintln(w)
	if t := r.rawTable(); t != nil {
		writeTab(w, t)
		fmt.Fprintln(w)
	}
	if t := r.runtimeTable(); t != nil {
		writeTab(w, t)
		fmt.Fprintln(w)
	}
	writeTab(w, r.idleTable())
	fmt.Fprintln(w)
	writeTab(w, r.targetTable())
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
	alone := ""
	if o.watchAlone {
		alone = " -watch-alone"
	}
	fmt.Fprintf(w, "### %s: -watch%s -watch-runs %d -watch-pods %d -watch-idle %s -watch-resync %s -workload %s\n\n", r.facts.date, alone, o.watchRuns, o.watchPods, o.watchIdle, o.watchResync, o.workload)
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "- "+l)
	}
	fmt.Fprintln(w, "\nLatency, the change until the new container is RUNNING:")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.pairTable())
	fmt.Fprintln(w, "\nWhere the time goes (medians from the change):")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.phaseTable())
	if t := r.rawTable(); t != nil {
		fmt.Fprintln(w, "\nAgainst the raw baselines (medians of the per-pair ratios):")
		fmt.Fprintln(w)
		writeMarkdownTable(w, t)
	}
	if t := r.runtimeTable(); t != nil {
		fmt.Fprintln(w, "\nBy containerd's clock (its events' timestamps; medians, each column on its own):")
		fmt.Fprintln(w)
		writeMarkdownTable(w, t)
	}
	fmt.Fprintf(w, "\nIdle, %d pods converged per stack:\n\n", r.wb.pods)
	writeMarkdownTable(w, r.idleTable())
	fmt.Fprintln(w, "\nThe event-driven watcher against the targets:")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.targetTable())
	fmt.Fprintln(w)
	if c := r.servedCost(); c != "" {
		fmt.Fprintln(w, "- "+c)
	}
	for _, l := range r.notes() {
		fmt.Fprintln(w, "- "+l)
	}
}

// truncate shortens s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
