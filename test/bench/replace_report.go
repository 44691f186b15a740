package main

import (
	"fmt"
	"io"
	"time"
)

type replaceReport struct {
	opts              options
	facts             facts
	started, finished time.Time
	samples           []*replaceSample
}

// replaceSummary is one order's figures over its replaces.
type replaceSummary struct {
	replaces        int
	failed, offered map[string]int           // all replaces together, by path
	maxFailed       map[string]int           // the worst replace
	window          map[string]time.Duration // median of the replaces' failure windows
	apply           time.Duration            // median
}

func (r *replaceReport) summarize(order string) replaceSummary {
	s := replaceSummary{failed: map[string]int{}, offered: map[string]int{}, maxFailed: map[string]int{}, window: map[string]time.Duration{}}
	windows := map[string][]time.Duration{}
	var applies []time.Duration
	for _, x := range r.samples {
		if x.order != order {
			continue
		}
		s.replaces++
		applies = append(applies, x.apply)
		for _, p := range replacePaths {
			s.failed[p] += x.failed[p]
			s.offered[p] += x.failed[p] + x.answered[p]
			s.maxFailed[p] = max(s.maxFailed[p], x.failed[p])
			windows[p] = append(windows[p], x.window[p])
		}
	}
	for p, w := range windows {
		s.window[p] = median(w)
	}
	s.apply = median(applies)
	return s
}

func (r *replaceReport) factLines() []string {
	f := r.facts
	return []string{
		fmt.Sprintf("date: %s (run took %s)", f.date, r.finished.Sub(r.started).Round(time.Second)),
		fmt.Sprintf("host: nproc %d, %s, Linux %s", f.nproc, f.cpu, f.kernel),
		fmt.Sprintf("runtime: %s", f.runtime),
		fmt.Sprintf("berth: %s (source %s); benchmark built with %s", f.berthBin, f.berthRev, f.goVersion),
		fmt.Sprintf("workload: one pod, busybox httpd serving 1 s after its container starts, a readiness probe (http, every 100ms), stopping at once on SIGTERM; a host port on 127.0.0.1 and a berth forward (netns); a new hostname replaces it"),
		fmt.Sprintf("clients: per path, a new connection every %s for one GET, from before each apply until the new pod answers on both paths, plus 300ms on each side", connEvery),
		fmt.Sprintf("rounds: %d, each one replace per order, the order that goes first alternating", r.opts.replaceRuns),
	}
}

func (r *replaceReport) table() [][]string {
	rows := [][]string{{"update_order", "replaces", "forward: failed / per replace / worst", "host port: failed / per replace / worst", "host port window p50", "forward window p50", "apply p50"}}
	for _, order := range replaceOrders {
		s := r.summarize(order)
		cell := func(p string) string {
			return fmt.Sprintf("%d of %d / %.1f / %d", s.failed[p], s.offered[p], float64(s.failed[p])/float64(max(1, s.replaces)), s.maxFailed[p])
		}
		rows = append(rows, []string{order, fmt.Sprint(s.replaces), cell(pathForward), cell(pathHostPort),
			fmtDur(s.window[pathHostPort]), fmtDur(s.window[pathForward]), fmtDur(s.apply)})
	}
	return rows
}

func (r *replaceReport) notes() []string {
	start, stop := r.summarize("start_first"), r.summarize("stop_first")
	return []string{
		fmt.Sprintf("start_first failed %.1f connections a replace through the forward (stop_first %.1f) and %.1f through the host port (stop_first %.1f)",
			perReplace(start, pathForward), perReplace(stop, pathForward), perReplace(start, pathHostPort), perReplace(stop, pathHostPort)),
		"a window is the span from a replace's first failed connection to its last (0 when none failed); through the host port, start_first's is the runtime's teardown order: the old sandbox's port mapping holds until it is torn down, after its container has stopped",
	}
}

func perReplace(s replaceSummary, path string) float64 {
	return float64(s.failed[path]) / float64(max(1, s.replaces))
}

func (r *replaceReport) text(w io.Writer) {
	fmt.Fprintln(w, "berth replace benchmark: start_first against stop_first")
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w)
	writeTab(w, r.table())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "  "+l)
	}
}

func (r *replaceReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s: -replace -replace-runs %d\n\n", r.facts.date, r.opts.replaceRuns)
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "- "+l)
	}
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.table())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "- "+l)
	}
}
