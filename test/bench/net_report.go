package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

type netReport struct {
	opts              options
	facts             facts
	started, finished time.Time
	nb                *netBench
	rounds            []*netRound
}

// netSummary holds one path's medians over the rounds.
type netSummary struct {
	mbps, connRate       float64 // medians of the per-round figures
	mbpsRatio, connRatio float64 // medians of per-round ratios to direct
	connP50              time.Duration
	bulk                 time.Duration
	bulkCPU, connsCPU    cpuUse // medians, field by field
}

func (r *netReport) summarize(path string) netSummary {
	var s netSummary
	var mbps, rate, mbpsR, rateR, busy, connBusy []float64
	var p50, bulk, fwd, ctrd, own, connFwd, connCtrd, connOwn []time.Duration
	for _, rd := range r.rounds {
		x, d := rd.samples[path], rd.samples[pathDirect]
		mbps, rate = append(mbps, r.nb.mbps(x.bulk)), append(rate, r.connRate(x.conns))
		mbpsR = append(mbpsR, r.nb.mbps(x.bulk)/r.nb.mbps(d.bulk))
		rateR = append(rateR, r.connRate(x.conns)/r.connRate(d.conns))
		p50, bulk = append(p50, x.connP50), append(bulk, x.bulk)
		fwd, ctrd, own, busy = append(fwd, x.bulkCPU.forward), append(ctrd, x.bulkCPU.containerd), append(own, x.bulkCPU.self), append(busy, x.bulkCPU.busy)
		connFwd, connCtrd, connOwn, connBusy = append(connFwd, x.connsCPU.forward), append(connCtrd, x.connsCPU.containerd), append(connOwn, x.connsCPU.self), append(connBusy, x.connsCPU.busy)
	}
	s.mbps, s.connRate, s.mbpsRatio, s.connRatio = median(mbps), median(rate), median(mbpsR), median(rateR)
	s.connP50, s.bulk = median(p50), median(bulk)
	s.bulkCPU = cpuUse{forward: median(fwd), containerd: median(ctrd), self: median(own), busy: median(busy)}
	s.connsCPU = cpuUse{forward: median(connFwd), containerd: median(connCtrd), self: median(connOwn), busy: median(connBusy)}
	return s
}

func (r *netReport) connRate(d time.Duration) float64 {
	return float64(r.opts.netConns) / d.Seconds()
}

// others are the paths compared with direct, in the report's order.
func (r *netReport) others() []string {
	var ps []string
	for _, p := range r.nb.paths {
		if p != pathDirect {
			ps = append(ps, p)
		}
	}
	return ps
}

func (r *netReport) factLines() []string {
	f, nb, o := r.facts, r.nb, r.opts
	quoted := make([]string, len(netSink))
	for i, a := range netSink {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	cri := fmt.Sprintf("forward --via cri: a second `berth forward --via cri` on %s (a copy of the configuration with another listen address), through containerd's streaming PortForward: a pair of SPDY streams per connection on a streaming connection berth keeps open (a PortForward call and an upgrade only when none is idle), containerd dialling localhost:%d in the pod's namespace and copying in user space", nb.addrs[pathCRI], netPort)
	if !o.netCRI {
		cri = "forward --via cri: not measured (-net-cri=false)"
	}
	return []string{
		fmt.Sprintf("date: %s (run took %s)", f.date, r.finished.Sub(r.started).Round(time.Second)),
		fmt.Sprintf("host: nproc %d, %s, Linux %s", f.nproc, f.cpu, f.kernel),
		fmt.Sprintf("runtime: %s", f.runtime),
		fmt.Sprintf("berth: %s (source %s); benchmark built with %s", f.berthBin, f.berthRev, f.goVersion),
		fmt.Sprintf("pod: stack %s, one pod of one container, %s [%s], IP %s; applied with berth apply, destroyed with berth destroy at the end", nb.b.stack, image, strings.Join(quoted, ", "), nb.podIP),
		fmt.Sprintf("host port: %s, a port block (host_ip 127.0.0.1) to the pod's %d: CNI portmap's DNAT, in the kernel", nb.addrs[pathHostPort], netPort),
		fmt.Sprintf("forward: `berth forward --via netns` on %s: per connection, a dial of 127.0.0.1:%d inside the pod's network namespace, then io.Copy both ways between the two TCP connections", nb.addrs[pathForward], netPort),
		fmt.Sprintf("direct: %s, the pod's IP (berth status --json), over the CNI bridge", nb.addrs[pathDirect]),
		cri,
		fmt.Sprintf("bulk: one connection per path and round; it sends the line \"%d\" and %d MiB (1 MiB writes of random bytes) and is timed from the dial until the pod's dd reports \"%d+0 records in\": every byte is in the pod; MB/s = %d MiB (%.1f MB) over that time", o.netMB, o.netMB, o.netMB, o.netMB, mb(int64(o.netMB)<<20)),
		fmt.Sprintf("connections: %d sequential round trips per path and round: dial, the line \"0\", dd's \"0+0 records\" report read back (through the pod's nc, sh and dd), close (with a reset, SO_LINGER 0, so the client leaves no TIME_WAIT on the host)", o.netConns),
		fmt.Sprintf("rounds: %d, the paths in the order %s in odd rounds and reversed in even ones; all bulk transfers of a round, then all its connection batches; figures are medians over the rounds, ratios medians of per-round ratios", o.pairs, strings.Join(nb.paths, ", ")),
	}
}

// roundTable has a row per round and one of medians: figure per path, and
// each other path's ratio to direct.
func (r *netReport) roundTable(unit string, figure func(*netSample) float64, summary func(netSummary) (float64, float64)) [][]string {
	head := []string{"round", "order"}
	for _, p := range r.nb.paths {
		head = append(head, pathTitles[p]+" "+unit)
	}
	for _, p := range r.others() {
		head = append(head, pathTitles[p]+" / direct")
	}
	rows := [][]string{head}
	for i, rd := range r.rounds {
		row := []string{fmt.Sprint(i + 1), strings.Join(rd.order, " ")}
		for _, p := range r.nb.paths {
			row = append(row, fmt.Sprintf("%.0f", figure(rd.samples[p])))
		}
		for _, p := range r.others() {
			row = append(row, fmtRatio(figure(rd.samples[p])/figure(rd.samples[pathDirect])))
		}
		rows = append(rows, row)
	}
	row := []string{"median", ""}
	for _, p := range r.nb.paths {
		v, _ := summary(r.summarize(p))
		row = append(row, fmt.Sprintf("%.0f", v))
	}
	for _, p := range r.others() {
		_, q := summary(r.summarize(p))
		row = append(row, fmtRatio(q))
	}
	return append(rows, row)
}

func (r *netReport) bulkTable() [][]string {
	return r.roundTable("MB/s", func(s *netSample) float64 { return r.nb.mbps(s.bulk) },
		func(s netSummary) (float64, float64) { return s.mbps, s.mbpsRatio })
}

func (r *netReport) connTable() [][]string {
	return r.roundTable("conn/s", func(s *netSample) float64 { return r.connRate(s.conns) },
		func(s netSummary) (float64, float64) { return s.connRate, s.connRatio })
}

// summaryTable has a row per path: its medians, and the CPU the bulk
// transfer and the connections took.
func (r *netReport) summaryTable() [][]string {
	rows := [][]string{{"path", "bulk MB/s", "/ direct", "conn/s", "/ direct", "conn p50",
		"bulk: berth forward CPU", "bulk: containerd CPU", "bulk: benchmark CPU", "bulk: machine busy",
		"conns: berth forward CPU", "conns: containerd CPU"}}
	for _, p := range r.nb.paths {
		s := r.summarize(p)
		fwd, cfwd := "-", "-"
		if p == pathForward || p == pathCRI {
			fwd = cpuShare(s.bulkCPU.forward, s.bulk)
			cfwd = fmt.Sprintf("%s (%.0f µs/conn)", fmtDur(s.connsCPU.forward), float64(s.connsCPU.forward)/float64(time.Microsecond)/float64(r.opts.netConns))
		}
		rows = append(rows, []string{pathTitles[p],
			fmt.Sprintf("%.0f", s.mbps), fmtRatio(s.mbpsRatio), fmt.Sprintf("%.0f", s.connRate), fmtRatio(s.connRatio), fmtDur(s.connP50),
			fwd, cpuShare(s.bulkCPU.containerd, s.bulk), cpuShare(s.bulkCPU.self, s.bulk),
			fmt.Sprintf("%.0f%% of %d CPUs", 100*s.bulkCPU.busy, r.facts.nproc),
			cfwd, fmtDur(s.connsCPU.containerd)})
	}
	return rows
}

// cpuShare is CPU time and what share of one CPU it is over wall.
func cpuShare(cpu, wall time.Duration) string {
	return fmt.Sprintf("%s (%.0f%%)", fmtDur(cpu), 100*float64(cpu)/float64(wall))
}

func (r *netReport) notes() []string {
	d := r.summarize(pathDirect)
	notes := []string{
		"MB/s are 10^6 bytes a second; X / direct is the path's throughput (or connection rate) over direct's in the same round: below 1× is slower",
		fmt.Sprintf("CPU: the run time of every thread (/proc/PID/task/*/schedstat) of the berth forward serving the path, of containerd (PID %d; it also serves others' tests, so noisy), and of this benchmark (the client of every path, the same work on each); machine busy from /proc/stat, every process on it", r.nb.containerdPID),
		fmt.Sprintf("direct: %d MiB in %s (median)", r.opts.netMB, fmtDur(d.bulk)),
	}
	if !r.opts.netCRI {
		notes = append(notes, "berth forward --via cri, the runtime's streaming PortForward, was not measured (-net-cri=false)")
	}
	return notes
}

func (r *netReport) text(w io.Writer) {
	fmt.Fprintln(w, "berth network benchmark: host port, forward, direct")
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "bulk transfer, %d MiB host to pod (MB/s)\n", r.opts.netMB)
	writeTab(w, r.bulkTable())
	fmt.Fprintln(w)
	fmt.Fprintf(w, "connections, %d sequential round trips (connections/s)\n", r.opts.netConns)
	writeTab(w, r.connTable())
	fmt.Fprintln(w)
	writeTab(w, r.summaryTable())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "  "+l)
	}
}

func (r *netReport) markdown(w io.Writer) {
	cri := ""
	if !r.opts.netCRI {
		cri = " -net-cri=false"
	}
	fmt.Fprintf(w, "### %s: -net -pairs %d -net-mb %d -net-conns %d%s\n\n", r.facts.date, r.opts.pairs, r.opts.netMB, r.opts.netConns, cri)
	for _, l := range r.factLines() {
		fmt.Fprintln(w, "- "+l)
	}
	fmt.Fprintf(w, "\nBulk transfer, %d MiB host to pod, MB/s:\n\n", r.opts.netMB)
	writeMarkdownTable(w, r.bulkTable())
	fmt.Fprintf(w, "\nConnections, %d sequential round trips, connections/s:\n\n", r.opts.netConns)
	writeMarkdownTable(w, r.connTable())
	fmt.Fprintln(w, "\nMedians per path:")
	fmt.Fprintln(w)
	writeMarkdownTable(w, r.summaryTable())
	fmt.Fprintln(w)
	for _, l := range r.notes() {
		fmt.Fprintln(w, "- "+l)
	}
}
