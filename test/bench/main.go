// Command bench measures berth against a raw CRI baseline on a real
// containerd: apply and destroy of N one-container pods, and a no-op plan.
//
// Each pair runs berth and the baseline back to back, in the same process
// and on the same runtime, so that the machine's drift (these hosts are
// noisy, ±30-50%) hits both sides of a pair alike; which side goes first
// alternates from pair to pair. The figures reported are medians of
// per-pair ratios, not ratios of medians.
//
// berth is timed as a whole process run of the real binary (BERTH_BIN), as
// a user would run it. The baseline is a loop of the same CRI calls made
// with k8s.io/cri-api and grpc directly, not with berth's packages, so that
// a bug or a cost in berth cannot hide in the baseline too.
//
// With -images it measures images instead (images.go): berth pulling a
// fresh image of random data from the local mirror registry, and importing
// it from an OCI archive, against ctr pulling and importing the same.
//
// With -net it measures networks instead (net.go): bulk throughput and
// connection rate from the host into a pod's port through a host port,
// berth forward (both of its paths) and the pod's IP directly.
//
// With -watch it measures berth watch instead (watch.go): how soon it has
// a changed container running after a file is saved, and a crashed one
// running again, against a watcher that only resyncs; and its CPU and
// memory while idle.
//
// Usage (see BENCHMARKS.md):
//
//	make bench BENCH_ARGS="-pods 50 -pairs 5 -markdown /tmp/bench.md"
//	make bench BENCH_ARGS="-images -pairs 5"
//	make bench BENCH_ARGS="-net"
//	make bench BENCH_ARGS="-watch"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// The workload every pod runs. busybox:1.36 is imported by hack/runtime.sh,
// so neither side pulls.
const image = "docker.io/library/busybox:1.36"

// workloads are the container commands -workload chooses from. "sleep"
// is the workload: PID 1 of its own PID namespace, it ignores
// SIGTERM, so every stop waits out the grace, on both sides alike. The
// report says which happened. "trap" is a shell that exits on SIGTERM,
// for a destroy that measures the calls and never the grace.
var workloads = map[string][]string{
	"sleep": {"sleep", "3600"},
	"trap":  {"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"},
}

// grace is the stop_timeout berth's containers declare and the timeout the
// baseline passes to StopContainer: the same on both sides.
const grace = time.Second

type options struct {
	pods        int
	pairs       int
	planRuns    int
	concurrency int
	workload    string
	seccomp     bool
	// hostNetwork puts the pods on the host's network; sequential runs
	// the baseline at concurrency 1 too.
	hostNetwork bool
	sequential  bool
	// scale runs the pods benchmark at scalePods, on CNI and then on the
	// host's network, one pair each, without the sequential baseline.
	scale     bool
	scalePods int
	markdown  string
	// images runs the image benchmark instead, of an image of imageMB MiB.
	images  bool
	imageMB int
	// net runs the network benchmark instead: -pairs rounds of a netMB MiB
	// transfer and netConns connections per path; netCRI adds berth
	// forward's CRI path.
	net      bool
	netMB    int
	netConns int
	netCRI   bool
	// watch runs the watch benchmark instead: watchRuns pairs of a file
	// save and a crash, against a watcher that only resyncs every
	// watchResync, after watchIdle of both idle with watchPods pods each.
	watch       bool
	watchRuns   int
	watchPods   int
	watchIdle   time.Duration
	watchResync time.Duration
	// watchAlone runs the event-driven watcher only: for many pods, where
	// four stacks of them would not fit.
	watchAlone bool
	// replace runs the replace benchmark instead: replaceRuns rounds of a
	// start-first and a stop-first replace of a served pod.
	replace     bool
	replaceRuns int
}

func main() {
	var o options
	flag.IntVar(&o.pods, "pods", 50, "pods (of one container each) per apply")
	flag.IntVar(&o.pairs, "pairs", 5, "berth/baseline pairs")
	flag.IntVar(&o.planRuns, "plan-runs", 10, "no-op plans (and baseline list rounds) per pair")
	flag.IntVar(&o.concurrency, "concurrency", 4, "pods worked on at once, by berth (its parallelism) and by the baseline")
	flag.StringVar(&o.workload, "workload", "sleep", `container command: "sleep" (sleep 3600, the issue's workload) or "trap" (a shell that exits on SIGTERM)`)
	flag.BoolVar(&o.seccomp, "seccomp", true, "baseline containers ask for the runtime's default seccomp profile, as berth's do; false makes the baseline a plain loop without one")
	flag.BoolVar(&o.hostNetwork, "host-network", false, "pods on the host's network (host_network = true) instead of the runtime's CNI network")
	flag.BoolVar(&o.sequential, "sequential", true, "also run the baseline at concurrency 1, apply only")
	flag.BoolVar(&o.scale, "scale", false, "run the pods benchmark at -scale-pods pods, on CNI and then on the host's network, -pairs pairs each (default 1), -workload trap, without the sequential baseline")
	flag.IntVar(&o.scalePods, "scale-pods", 500, "pods of the -scale benchmark")
	flag.StringVar(&o.markdown, "markdown", "", "also write the results as a Markdown section to FILE")
	flag.BoolVar(&o.images, "images", false, "run only the image benchmark: berth's pull and import of a fresh image against ctr's (needs hack/registry.sh's mirror)")
	flag.IntVar(&o.imageMB, "image-mb", 48, "size of the image benchmark's random layer, in MiB")
	flag.BoolVar(&o.net, "net", false, "run only the network benchmark: host port, berth forward and the pod's IP; -pairs sets its rounds")
	flag.IntVar(&o.netMB, "net-mb", 1024, "MiB per bulk transfer of the network benchmark")
	flag.IntVar(&o.netConns, "net-conns", 500, "sequential connections per path and round of the network benchmark")
	flag.BoolVar(&o.netCRI, "net-cri", true, "the network benchmark also measures berth forward --via cri (the runtime's streaming PortForward)")
	flag.BoolVar(&o.watch, "watch", false, "run only the watch benchmark: berth watch's reaction to a file save and a crash, event-driven and resync-only, and its idle cost")
	flag.IntVar(&o.watchRuns, "watch-runs", 7, "pairs (event-driven and resync-only) of a file save and a crash in the watch benchmark")
	flag.IntVar(&o.watchPods, "watch-pods", 20, "pods per watched stack (at least 3 + -watch-runs)")
	flag.DurationVar(&o.watchIdle, "watch-idle", time.Minute, "how long both watchers sit idle while their CPU and memory are sampled")
	flag.DurationVar(&o.watchResync, "watch-resync", 5*time.Second, "--resync of the resync-only watcher")
	flag.BoolVar(&o.watchAlone, "watch-alone", false, "the watch benchmark runs the event-driven watcher only (no resync-only, served or control stack): for -watch-pods 500")
	flag.BoolVar(&o.replace, "replace", false, "run only the replace benchmark: connections a replace of a served pod fails, update_order = start_first against stop_first, through a forward and a host port")
	flag.IntVar(&o.replaceRuns, "replace-runs", 10, "rounds of the replace benchmark, each one replace per order")
	flag.Parse()
	runner := runPods
	chosen := 0
	for _, b := range []bool{o.images, o.net, o.watch, o.replace, o.scale} {
		if b {
			chosen++
		}
	}
	switch {
	case chosen > 1:
		fmt.Fprintln(os.Stderr, "bench: -images, -net, -watch, -replace and -scale each run only their own benchmark; choose one")
		os.Exit(2)
	case o.images:
		runner = runImages
	case o.net:
		runner = runNet
	case o.watch:
		runner = runWatch
	case o.replace:
		runner = runReplace
	case o.scale:
		runner = runScale
		if !flagSet("pairs") {
			o.pairs = 1
		}
		if !flagSet("workload") {
			o.workload = "trap" // destroys measure the calls, not the grace
		}
	}
	if err := runner(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runPods(o options) (err error) {
	if o.pods < 1 || o.pairs < 1 || o.planRuns < 1 || o.concurrency < 1 {
		return errors.New("-pods, -pairs, -plan-runs and -concurrency must be at least 1")
	}
	if workloads[o.workload] == nil {
		return fmt.Errorf("-workload %q: use sleep or trap", o.workload)
	}

	// Ctrl-C cancels ctx: the running step stops, and the deferred cleanup
	// below still removes everything, with a context of its own.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e, err := openEnv(ctx)
	if err != nil {
		return err
	}
	defer e.rt.close()
	bin, rt := e.bin, e.rt

	tmp, runID, err := scratch("")
	if err != nil {
		return err
	}
	b := &berth{bin: bin, stack: "bench-" + runID, dir: filepath.Join(tmp, "bench-"+runID), lockDir: lockDir(tmp)}
	rt.runID, rt.logRoot, rt.seccomp = runID, filepath.Join(tmp, "logs"), o.seccomp
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if cerr := cleanup(cctx, rt, b); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		os.RemoveAll(tmp)
	}()
	rt.hostNetwork = o.hostNetwork
	if err := b.writeConfig(o.pods, o.concurrency, workloads[o.workload], o.hostNetwork); err != nil {
		return err
	}

	rep := &report{opts: o, facts: e.facts, started: time.Now()}
	fmt.Fprintf(os.Stderr, "bench: %d pairs of %d pods, stack %s\n", o.pairs, o.pods, b.stack)
	for i := range o.pairs {
		p, err := runPair(ctx, o, b, rt, i)
		if err != nil {
			return fmt.Errorf("pair %d: %w", i+1, err)
		}
		rep.pairs = append(rep.pairs, p)
	}
	rep.finished = time.Now()
	return emit(o.markdown, rep.text, rep.markdown)
}

// flagSet says whether the command line set the flag.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// runScale runs the pods benchmark at scale, on the runtime's network and
// on the host's, and writes both reports (the Markdown one after the
// other).
func runScale(o options) error {
	o.pods, o.sequential = o.scalePods, false
	var sections []string
	for _, host := range []bool{false, true} {
		o.hostNetwork = host
		md := o.markdown
		if md != "" {
			md += fmt.Sprintf(".%t", host)
		}
		run := o
		run.markdown = md
		if err := runPods(run); err != nil {
			return err
		}
		sections = append(sections, md)
	}
	if o.markdown == "" {
		return nil
	}
	var all []byte
	for _, md := range sections {
		b, err := os.ReadFile(md)
		if err != nil {
			return err
		}
		all = append(append(all, b...), '\n')
		os.Remove(md)
	}
	return os.WriteFile(o.markdown, all, 0o644)
}

// cleanup removes whatever this run left: berth's pods (by its stack
// label) and the baseline's (by the run label), without grace, and berth's
// log directories for the stack. It does not rely on berth working.
func cleanup(ctx context.Context, rt *raw, b *berth) error {
	var err error
	// An interrupted berth or baseline leaves CRI calls that containerd
	// still finishes, and a container that is still starting cannot be
	// removed: sweep again until a sweep finds nothing to fail on.
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		err = errors.Join(
			rt.sweep(ctx, map[string]string{labelStack: b.stack}),
			rt.sweep(ctx, map[string]string{labelRun: rt.runID}),
		)
		if err == nil {
			break
		}
	}
	// berth makes pod log directories under this fixed root
	// (criconfig.DefaultLogRoot); an interrupted apply may leave some.
	err = errors.Join(err, os.RemoveAll(filepath.Join("/var/log/berth", b.stack)))
	// berth leaves its lock file behind by design; this stack is gone.
	locks, _ := filepath.Glob(filepath.Join(b.lockDir, b.stack+"-*.lock"))
	for _, l := range locks {
		err = errors.Join(err, os.Remove(l))
	}
	return err
}

// facts describe the machine the figures come from.
type facts struct {
	date, cpu, kernel, runtime, goVersion, berthBin, berthRev string
	nproc                                                     int
}

// env is what every benchmark starts from: berth's binary, the runtime's
// address, a raw CRI client, and the facts of the machine.
type env struct {
	bin, address string
	rt           *raw
	facts        facts
}

// scratch makes a run's scratch directory and an ID no one else uses,
// for its stack names and its baseline's labels, so that cleanup removes
// exactly what the run made.
func scratch(kind string) (dir, runID string, err error) {
	dir, err = os.MkdirTemp("", "berth-bench-"+kind)
	return dir, fmt.Sprintf("%d-%d", os.Getpid(), time.Now().Unix()%100000), err
}

// lockDir is BERTH_LOCK_DIR, or one in the run's scratch directory rather
// than a lock file per run left in /run/berth.
func lockDir(tmp string) string {
	if d := os.Getenv("BERTH_LOCK_DIR"); d != "" {
		return d
	}
	return filepath.Join(tmp, "locks")
}

// openEnv reads BERTH_BIN and BERTH_ADDRESS and dials the runtime.
func openEnv(ctx context.Context) (*env, error) {
	bin, address := os.Getenv("BERTH_BIN"), os.Getenv("BERTH_ADDRESS")
	if bin == "" || address == "" {
		return nil, errors.New("BERTH_BIN and BERTH_ADDRESS must be set (make bench sets both)")
	}
	rt, err := dialRaw(ctx, address)
	if err != nil {
		return nil, err
	}
	ver, err := rt.version(ctx)
	if err != nil {
		rt.close()
		return nil, err
	}
	return &env{bin: bin, address: address, rt: rt, facts: machineFacts(ver, address, bin)}, nil
}

// statsNote says how often the runtime reads its containers' CPU.
func statsNote(period string) string {
	if period == "" {
		return ""
	}
	return ", CPU stats read every " + period
}

func machineFacts(ver versionInfo, address, bin string) facts {
	f := facts{
		date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		nproc:     runtime.NumCPU(),
		runtime:   fmt.Sprintf("%s %s (CRI %s) at %s%s", ver.name, ver.version, ver.apiVersion, address, statsNote(ver.statsPeriod)),
		goVersion: runtime.Version(),
		berthBin:  bin,
		cpu:       "unknown",
		kernel:    "unknown",
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		f.kernel = strings.TrimSpace(string(raw))
	}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				f.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	f.berthRev = binaryRevision(bin)
	return f
}
