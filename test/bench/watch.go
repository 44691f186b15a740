package main

// The watch benchmark (-watch): how soon berth watch acts on a saved file
// and on a crashed container, against the same watcher blind to events
// (berth watch --only-resync, converging on its resync alone), and what a
// watcher costs while nothing happens.
//
// Two stacks of the same pods, each kept by a real berth watch process:
//
//   - event:  berth watch DIR, the defaults (fsnotify with a 300ms
//     debounce, the runtime's event stream, a resync every minute)
//   - resync: berth watch --only-resync --resync P DIR (-watch-resync)
//
// Both run for the whole benchmark. First both sit idle, converged, for
// -watch-idle, and their CPU time and RSS are read from /proc. Then, in
// -watch-runs pairs (which side goes first alternates), each side has one
// edited file and one crashed container:
//
//   - file save: a pod's file is written to a hidden temporary file and
//     renamed over the old one, as editors save, with a new value of an
//     environment variable. Timed from the rename until the raw CRI API
//     lists a RUNNING container of that pod, not the old one, whose spec
//     annotation carries the new value.
//   - crash: SIGTERM, sent from the host, to the process of a container
//     whose shell exits with 1 on it. Timed from the kill until a RUNNING
//     container of that pod, not the old one, is listed. (Until 2026-12-01
//     the kill was an ExecSync "kill 1" timed from the call, which counted
//     the exec's own setup: 40-90 ms with 500 pods.) Every run crashes a
//     pod of its own, so that every restart measured is a container's
//     first, which the watcher makes at once (later ones back off).
//
// Observation is by polling ListContainers every 10ms with a raw CRI
// client (raw.go), none of berth's code. The watchers' log lines are
// time-stamped as they arrive on their stderr pipes, to split a latency
// into detection (the watcher's "decision" line) and the work after it.
// A resync-only run starts at a uniformly random phase of the resync
// period (a random wait in [0, P) before the change), so that its latency
// averages half a period plus the work, not whatever phase the run's
// rhythm would fall on.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The watchers compared, in the order of even pairs; the served one, the
// event-driven watcher with its endpoints open and a git source, is
// measured idle only, against the event-driven one, for what the service
// features cost, and so is the control: a second event-driven watcher,
// whose difference from the first is the noise floor of that comparison.
const (
	modeEvent   = "event"
	modeResync  = "resync"
	modeServed  = "served"
	modeControl = "control"
)

// watchModes is every watcher the benchmark runs, in the report's order.
var watchModes = []string{modeEvent, modeResync, modeServed, modeControl}

var modeTitles = map[string]string{
	modeEvent:   "event-driven",
	modeResync:  "resync-only",
	modeServed:  "served+git",
	modeControl: "event-driven (control)",
}

// scrapes is how many times the benchmark scrapes the served watcher's
// /metrics after the idle window, for the CPU one scrape costs it.
const scrapes = 20

// Pods and containers of the watch stacks. labelPodName is berth's pod
// label, spelled out as labelStack is.
const (
	labelPodName = "berth.io/pod"
	watchEnvVar  = "BENCH_EDIT"
	editPods     = 3
	// pollEvery is how often the raw client lists a pod's containers
	// while it waits for the new one.
	pollEvery = 10 * time.Millisecond
	// oldDownWait is how long after the new container runs the old one's
	// end is waited for in CRI's lists.
	oldDownWait = 2 * time.Second
	// quietFor is how long a watcher must have logged nothing before a
	// measurement starts: the rounds of the one before are over.
	quietFor = time.Second
)

// crashCommand exits with 1 on SIGTERM: a kill makes it crash. (A plain
// sleep, PID 1 of its own PID namespace, would ignore the signal.)
var crashCommand = []string{"sh", "-c", "trap 'exit 1' TERM; sleep 3600 & wait"}

type watchBench struct {
	o       options
	rt      *raw
	address string             // the runtime's socket
	ctrd    *containerd.Client // for the raw restarts' events, made on first use
	modes   []string           // the watchers run: watchModes, or the event-driven one alone
	stacks  map[string]*watchStack
	// pods is the pod count of each stack: editPods edited ones,
	// -watch-runs crashed ones, and idle ones up to -watch-pods.
	pods, idlePods int
}

// watchStack is one stack and the watcher that keeps it.
type watchStack struct {
	mode  string
	b     *berth
	flags []string // berth watch's flags, before DIR
	proc  *watchProc
	// git: the directory is a repository the watcher fetches (--git),
	// not an argument.
	git bool
}

// watchSample is one measured reaction.
type watchSample struct {
	total   time.Duration // the change until the new container is RUNNING in CRI
	decided time.Duration // the change until the watcher's decision line; 0 if none was seen
	oldDown time.Duration // the change until the old container was listed not running, polled once the new one started (0: not within oldDownWait of it)
	trigger string        // what the round that decided says it was for
	action  string        // the decision's action (replace, restart; wait would be a backoff)
	newID   string        // the new container
	runtime runtimeTimes  // the same change by containerd's clock
}

type watchPair struct {
	eventFirst  bool
	file, crash map[string]*watchSample // by mode
	pods        [2]string               // the pods edited and crashed
	// raw is the crash baseline's restart of an idle pod of the event
	// stack (rawRestart), rawSave the file save's replace of another
	// (rawReplace); nil when there are too few idle pods for them.
	raw, rawSave *watchSample
}

// idleUse is one watcher's cost over the idle window.
type idleUse struct {
	window           time.Duration
	statCPU, runCPU  time.Duration // utime+stime (/proc/PID/stat); the threads' run time (schedstat)
	rssMax           int64         // kB: the most VmRSS sampled
	samples, lines   int           // /proc samples taken; log lines the watcher wrote in the window
	convergingRounds int           // rounds in the window that changed something (should be 0)
}

func runWatch(o options) (err error) {
	if o.watchRuns < 1 || o.watchPods < 1 || o.watchIdle <= 0 || o.watchResync <= 0 {
		return errors.New("-watch-runs and -watch-pods must be at least 1, -watch-idle and -watch-resync above zero")
	}
	if workloads[o.workload] == nil {
		return fmt.Errorf("-workload %q: use sleep or trap", o.workload)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e, err := openEnv(ctx)
	if err != nil {
		return err
	}
	defer e.rt.close()
	tmp, runID, err := scratch("watch-")
	if err != nil {
		return err
	}
	e.rt.runID = runID                        // the sweep's second selector; nothing carries it
	e.rt.logRoot = filepath.Join(tmp, "logs") // the raw restarts' logs, removed with tmp
	wb := &watchBench{o: o, rt: e.rt, address: e.address, modes: watchModes, stacks: map[string]*watchStack{}}
	if o.watchAlone {
		wb.modes = []string{modeEvent}
	}
	wb.pods = max(o.watchPods, editPods+o.watchRuns)
	wb.idlePods = wb.pods - editPods - o.watchRuns
	for _, mode := range wb.modes {
		stack := "bench-watch-" + runID + "-" + mode
		s := &watchStack{mode: mode, b: &berth{bin: e.bin, stack: stack, dir: filepath.Join(tmp, stack), lockDir: filepath.Join(tmp, "locks")}}
		switch mode {
		case modeResync:
			s.flags = []string{"--only-resync", "--resync", o.watchResync.String()}
		case modeServed:
			// The repository is served over HTTP from this process, as a
			// forge serves it: the server side of each fetch is not the
			// watcher's cost.
			s.flags = []string{"--listen", "127.0.0.1:0", "--interval", "1m"}
			s.git = true
		}
		wb.stacks[mode] = s
	}
	defer func() {
		err = errors.Join(err, wb.cleanup())
		os.RemoveAll(tmp)
	}()

	rep := &watchReport{opts: o, facts: e.facts, started: time.Now(), wb: wb}
	for _, mode := range wb.modes {
		if err := wb.start(ctx, wb.stacks[mode]); err != nil {
			return err
		}
	}
	if rep.idle, err = wb.idle(ctx); err != nil {
		return err
	}
	if served := wb.stacks[modeServed]; served != nil {
		if rep.syncCPU, err = syncCost(ctx, served.proc, wb.stacks[modeEvent].proc, syncs); err != nil {
			return fmt.Errorf("sync the served watcher: %w", err)
		}
		if rep.scrapeCPU, err = scrapeCost(ctx, served.proc, scrapes); err != nil {
			return fmt.Errorf("scrape the served watcher: %w", err)
		}
	}
	for i := range o.watchRuns {
		p, err := wb.runPair(ctx, i)
		if err != nil {
			return fmt.Errorf("pair %d: %w", i+1, err)
		}
		rep.pairs = append(rep.pairs, p)
	}
	// The comparison means something only if the resync-only watcher
	// never acted on an event.
	if rs := wb.stacks[modeResync]; rs != nil {
		if t := rs.proc.eventTriggers(); len(t) > 0 {
			return fmt.Errorf("berth watch --only-resync ran rounds for events: %s", strings.Join(t, "; "))
		}
	}
	rep.finished = time.Now()
	return emit(o.markdown, rep.text, rep.markdown)
}

// ---------------------------------------------------------------- stacks

// writeConfig writes the stack's files: the berth block, a file per
// edited pod (the one a run saves anew), the crashed pods, the idle ones.
func (wb *watchBench) writeConfig(s *watchStack) error {
	if err := os.MkdirAll(s.b.dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{"main.hcl": fmt.Sprintf("berth {\n  stack = %q\n}\n", s.b.stack)}
	for k := range editPods {
		files[editFile(k)] = podHCL(editPod(k), workloads[wb.o.workload], "0")
	}
	var crash, idle strings.Builder
	for i := range wb.o.watchRuns {
		crash.WriteString(podHCL(crashPod(i), crashCommand, ""))
	}
	for j := range wb.idlePods {
		idle.WriteString(podHCL(idlePod(j), workloads[wb.o.workload], ""))
	}
	files["crash.hcl"], files["idle.hcl"] = crash.String(), idle.String()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(s.b.dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func editPod(k int) string  { return fmt.Sprintf("edit-%d", k) }
func editFile(k int) string { return editPod(k) + ".hcl" }
func crashPod(i int) string { return fmt.Sprintf("crash-%d", i) }
func idlePod(j int) string  { return fmt.Sprintf("idle-%03d", j) }

// podHCL is a pod of one container "main"; env, if set, is the value of
// the variable the file-save runs change.
func podHCL(name string, command []string, env string) string {
	quoted := make([]string, len(command))
	for i, arg := range command {
		quoted[i] = strconv.Quote(arg) // Go and HCL quote these strings alike
	}
	envLine := ""
	if env != "" {
		envLine = fmt.Sprintf("    env          = { %s = %q }\n", watchEnvVar, env)
	}
	return fmt.Sprintf(`
pod %q {
  container "main" {
    image        = %q
    command      = [%s]
    stop_timeout = %q
%s  }
}
`, name, image, strings.Join(quoted, ", "), grace.String(), envLine)
}

// start writes the stack, starts its watcher and waits until the watcher
// has applied it: every pod runs one container, and the watcher is quiet.
func (wb *watchBench) start(ctx context.Context, s *watchStack) error {
	if err := wb.writeConfig(s); err != nil {
		return err
	}
	args := append([]string{"watch"}, s.flags...)
	if s.git {
		if err := commitAll(s.b.dir); err != nil {
			return err
		}
		url, err := serveRepo(ctx, s.b.dir)
		if err != nil {
			return err
		}
		args = append(args, "--git", url)
	} else {
		args = append(args, s.b.dir)
	}
	var env []string
	if s.git {
		env = append(env, "BERTH_WEBHOOK_SECRET="+webhookSecret) // for syncCost
	}
	p, err := startWatch(s.b, args, env...)
	if err != nil {
		return err
	}
	s.proc = p
	began := time.Now()
	deadline := began.Add(3 * time.Minute)
	sel := map[string]string{labelStack: s.b.stack}
	for {
		err := wb.rt.expectRunning(ctx, sel, wb.pods)
		if err == nil {
			break
		}
		if perr := p.alive(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("berth watch of %s has not applied the stack in 3m: %w\n--- stderr\n%s", s.b.stack, err, tail(p.text()))
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "  %s watcher: pid %d, %d pods running after %s (berth %s)\n", modeTitles[s.mode], p.pid(), wb.pods, fmtDur(time.Since(began)), strings.Join(args, " "))
	return p.quiet(ctx, 2*time.Second)
}

// cleanup stops the watchers (SIGTERM), destroys the stacks with berth,
// then sweeps through CRI whatever is left (cleanup in main.go). Each
// step has a context of its own, not the run's, which may be cancelled
// (Ctrl-C): the destroy's grows with the stack (500 pods on the CNI
// network have taken over 3 minutes on a slow day), and the sweep's is
// not spent by a destroy that ran out of time, so that a run never
// leaves its pods to the next.
func (wb *watchBench) cleanup() error {
	var err error
	if wb.ctrd != nil {
		wb.ctrd.Close()
	}
	for _, s := range wb.stacks {
		if s.proc != nil {
			err = errors.Join(err, s.proc.stop())
		}
	}
	for _, mode := range watchModes {
		s := wb.stacks[mode]
		if s == nil {
			continue
		}
		if readable(filepath.Join(s.b.dir, "main.hcl")) {
			ctx, cancel := context.WithTimeout(context.Background(), destroyTime(wb.pods))
			if _, derr := s.b.mustRun(ctx, 0, "destroy", "--auto-approve", "--stack", s.b.stack, s.b.dir); derr != nil {
				err = errors.Join(err, fmt.Errorf("berth destroy: %w", derr))
			}
			cancel()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		if cerr := cleanup(ctx, wb.rt, s.b); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup of %s: %w", s.b.stack, cerr))
		}
		cancel()
	}
	return err
}

// destroyTime bounds the cleanup's destroy of a stack of pods: 3 minutes,
// and half a second a pod.
func destroyTime(pods int) time.Duration {
	return 3*time.Minute + time.Duration(pods)*time.Second/2
}

// ---------------------------------------------------------------- idle

// idle waits until both watchers are quiet, then samples their CPU time
// and memory once a second for -watch-idle, both at once, so that both
// see the same runtime (others' containers' events reach the event
// watcher's stream too, and are filtered there).
func (wb *watchBench) idle(ctx context.Context) (map[string]*idleUse, error) {
	for _, s := range wb.stacks {
		if err := s.proc.quiet(ctx, 5*time.Second); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "  idle: sampling the watchers for %s\n", wb.o.watchIdle)
	type reading struct {
		stat, run time.Duration
		lines     int
	}
	read := func() map[string]reading {
		r := map[string]reading{}
		for mode, s := range wb.stacks {
			r[mode] = reading{statCPU(s.proc.pid()), procCPU(s.proc.pid()), s.proc.count()}
		}
		return r
	}
	use := map[string]*idleUse{}
	for _, mode := range wb.modes {
		use[mode] = &idleUse{}
	}

	sample := func() error {
		for mode, s := range wb.stacks {
			if err := s.proc.alive(); err != nil {
				return err
			}
			rss, _ := procStatusKB(s.proc.pid(), "VmRSS")
			use[mode].rssMax = max(use[mode].rssMax, rss)
			use[mode].samples++
		}
		return nil
	}
	start, before := time.Now(), read()
	if err := sample(); err != nil {
		return nil, err
	}
	for time.Since(start) < wb.o.watchIdle {
		if err := sleep(ctx, min(time.Second, wb.o.watchIdle-time.Since(start))); err != nil {
			return nil, err
		}
		if err := sample(); err != nil {
			return nil, err
		}
	}
	after, window := read(), time.Since(start)
	for mode, s := range wb.stacks {
		u := use[mode]
		u.window = window
		u.statCPU, u.runCPU = after[mode].stat-before[mode].stat, after[mode].run-before[mode].run
		u.lines = after[mode].lines - before[mode].lines
		u.convergingRounds = s.proc.countSince(start, "msg=converging")
		fmt.Fprintf(os.Stderr, "  idle %-12s CPU %s (stat) %s (schedstat), VmRSS max %d kB, %d log lines\n", modeTitles[mode], fmtDur(u.statCPU), fmtDur(u.runCPU), u.rssMax, u.lines)
	}
	return use, nil
}

// ---------------------------------------------------------------- latency

// runPair measures both watchers on a file save, then on a crash. Even
// pairs start with the event-driven watcher, odd ones with the other.
func (wb *watchBench) runPair(ctx context.Context, i int) (*watchPair, error) {
	p := &watchPair{eventFirst: i%2 == 0, file: map[string]*watchSample{}, crash: map[string]*watchSample{}}
	order := []string{modeEvent}
	if wb.stacks[modeResync] != nil {
		order = append(order, modeResync)
		if !p.eventFirst {
			order[0], order[1] = order[1], order[0]
		}
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "  pair %d/%d: %s\n", i+1, wb.o.watchRuns, fmt.Sprintf(format, args...))
	}
	show := func(what string, mode string, s *watchSample) {
		logf("%-5s %-12s %s (decision after %s, %s; old container exited after %s)", what, modeTitles[mode], fmtDur(s.total), fmtDur(s.decided), s.trigger, fmtDur(s.runtime.exited))
	}
	k := i % editPods
	p.pods = [2]string{editPod(k), crashPod(i)}
	// baseline measures with a raw client on idle pod j, if the stack has
	// it, into *into; around runs it before the watchers in even pairs and
	// after them in odd ones.
	baseline := func(what string, j int, measure func(context.Context, *watchStack, string) (*watchSample, error), into **watchSample) error {
		if j >= wb.idlePods {
			return nil
		}
		s, err := measure(ctx, wb.stacks[modeEvent], idlePod(j))
		if err != nil {
			return fmt.Errorf("raw %s: %w", what, err)
		}
		*into = s
		logf("%-5s raw CRI     %s (the exit event after %s)", what, fmtDur(s.total), fmtDur(s.decided))
		return nil
	}
	around := func(base, watchers func() error) error {
		if !p.eventFirst {
			if err := base(); err != nil {
				return err
			}
		}
		if err := watchers(); err != nil {
			return err
		}
		if p.eventFirst {
			return base()
		}
		return nil
	}
	// watchers measures each watcher in turn, into into.
	watchers := func(what string, measure func(*watchStack) (*watchSample, error), into map[string]*watchSample) func() error {
		return func() error {
			for _, mode := range order {
				s, err := measure(wb.stacks[mode])
				if err != nil {
					return fmt.Errorf("%s, %s: %w", modeTitles[mode], what, err)
				}
				into[mode] = s
				show(what, mode, s)
			}
			return nil
		}
	}
	value := fmt.Sprintf("run%d-%s", i+1, randomHex(3))
	saves := watchers("file", func(s *watchStack) (*watchSample, error) { return wb.edit(ctx, s, k, value) }, p.file)
	if err := around(func() error { return baseline("file", wb.o.watchRuns+i, wb.rawReplace, &p.rawSave) }, saves); err != nil {
		return nil, err
	}
	crashes := watchers("crash", func(s *watchStack) (*watchSample, error) { return wb.crash(ctx, s, crashPod(i)) }, p.crash)
	if err := around(func() error { return baseline("crash", i, wb.rawRestart, &p.raw) }, crashes); err != nil {
		return nil, err
	}
	return p, nil
}

// prepare waits until the watcher is quiet and, for the resync-only one,
// a random part of its period.
func (wb *watchBench) prepare(ctx context.Context, s *watchStack) error {
	if err := s.proc.quiet(ctx, quietFor); err != nil {
		return err
	}
	if s.mode == modeResync {
		return sleep(ctx, rand.N(wb.o.watchResync))
	}
	return nil
}

// edit saves edit-K's file anew, as an editor does (a temporary file
// renamed over it), with value in the environment, and times the change.
func (wb *watchBench) edit(ctx context.Context, s *watchStack, k int, value string) (*watchSample, error) {
	if err := wb.prepare(ctx, s); err != nil {
		return nil, err
	}
	pod := editPod(k)
	old, err := wb.runningContainer(ctx, s, pod)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.b.dir, editFile(k))
	tmp := filepath.Join(s.b.dir, "."+editFile(k)+".tmp") // hidden: the watcher ignores it
	if err := os.WriteFile(tmp, []byte(podHCL(pod, workloads[wb.o.workload], value)), 0o644); err != nil {
		return nil, err
	}
	events, err := wb.recordEvents(ctx, old.Id)
	if err != nil {
		return nil, err
	}
	defer events.cancel() // on the errors before the sample is done; stop cancels it too
	t0 := time.Now()
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	sample, err := wb.await(ctx, s, pod, old.Id, t0, events.started, func(c *cri.Container) bool { return specEnv(c)[watchEnvVar] == value })
	return withRuntimeTimes(sample, err, events, t0, old.Id)
}

// withRuntimeTimes ends a sample's event log and adds what it saw.
func withRuntimeTimes(sample *watchSample, err error, events *eventLog, t0 time.Time, old string) (*watchSample, error) {
	next := ""
	if sample != nil {
		next = sample.newID
	}
	times, eerr := events.stop(t0, old, next)
	if err != nil {
		return nil, err
	}
	if eerr != nil {
		return nil, eerr
	}
	sample.runtime = times
	return sample, nil
}

// crash makes the pod's container exit with 1 and times its restart.
func (wb *watchBench) crash(ctx context.Context, s *watchStack, pod string) (*watchSample, error) {
	old, _, pid, err := wb.target(ctx, s, pod)
	if err != nil {
		return nil, err
	}
	events, err := wb.recordEvents(ctx, old.Id)
	if err != nil {
		return nil, err
	}
	defer events.cancel() // on the errors before the sample is done; stop cancels it too
	t0, err := terminate(old.Id, pid)
	if err != nil {
		return nil, err
	}
	sample, err := wb.await(ctx, s, pod, old.Id, t0, events.started, func(*cri.Container) bool { return true })
	return withRuntimeTimes(sample, err, events, t0, old.Id)
}

// target waits until the watcher is quiet (prepare), then reads the
// pod's one running container: its status and the host PID of its
// process.
func (wb *watchBench) target(ctx context.Context, s *watchStack, pod string) (*cri.Container, *cri.ContainerStatus, int, error) {
	if err := wb.prepare(ctx, s); err != nil {
		return nil, nil, 0, err
	}
	ctr, err := wb.runningContainer(ctx, s, pod)
	if err != nil {
		return nil, nil, 0, err
	}
	st, pid, err := wb.verboseStatus(ctx, ctr.Id)
	if err != nil {
		return nil, nil, 0, err
	}
	return ctr, st, pid, nil
}

// verboseStatus is a container's status with the host PID of its
// process, which the runtime's verbose status carries.
func (wb *watchBench) verboseStatus(ctx context.Context, id string) (*cri.ContainerStatus, int, error) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := wb.rt.rs.ContainerStatus(sctx, &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return nil, 0, fmt.Errorf("status of container %s: %w", id, err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid <= 1 {
		return nil, 0, fmt.Errorf("the runtime does not say the PID of container %s (%v)", id, err)
	}
	return st.Status, info.Pid, nil
}

// terminate sends SIGTERM to a container's process, which crashCommand
// and the idle pods' commands exit on; it returns when it was sent.
func terminate(id string, pid int) (time.Time, error) {
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return t0, fmt.Errorf("kill the process of container %s (pid %d): %w", id, pid, err)
	}
	return t0, nil
}

// runningContainer is the pod's one container, which must run.
func (wb *watchBench) runningContainer(ctx context.Context, s *watchStack, pod string) (*cri.Container, error) {
	if err := s.proc.alive(); err != nil {
		return nil, err
	}
	ctrs, err := wb.podContainers(ctx, s, pod)
	if err != nil {
		return nil, err
	}
	if len(ctrs) != 1 || ctrs[0].State != cri.ContainerState_CONTAINER_RUNNING {
		states := make([]string, len(ctrs))
		for i, c := range ctrs {
			states[i] = c.State.String()
		}
		return nil, fmt.Errorf("pod %s of %s: want one running container, have [%s]", pod, s.b.stack, strings.Join(states, " "))
	}
	return ctrs[0], nil
}

func (wb *watchBench) podContainers(ctx context.Context, s *watchStack, pod string) ([]*cri.Container, error) {
	res, err := wb.rt.rs.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{
		LabelSelector: map[string]string{labelStack: s.b.stack, labelPodName: pod}}})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return res.Containers, nil
}

// await polls the pod's containers from t0 until one that is not old runs
// and satisfies ok, then reads the watcher's decision from its log.
func (wb *watchBench) await(ctx context.Context, s *watchStack, pod, old string, t0 time.Time, started <-chan struct{}, ok func(*cri.Container) bool) (*watchSample, error) {
	limit := time.Minute + 2*wb.o.watchResync
	sample := &watchSample{}
	if err := wb.awaitStart(ctx, s, pod, t0, limit, started); err != nil {
		return nil, err
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ctrs, err := wb.podContainers(ctx, s, pod)
		if err != nil {
			return nil, err
		}
		now := time.Since(t0)
		oldRuns := false
		for _, c := range ctrs {
			switch {
			case c.Id == old:
				oldRuns = c.State == cri.ContainerState_CONTAINER_RUNNING
			case c.State == cri.ContainerState_CONTAINER_RUNNING && ok(c) && sample.total == 0:
				sample.total = now // when it was first seen running, not the last poll before the old one's exit showed
				sample.newID = c.Id
			}
		}
		if !oldRuns && sample.oldDown == 0 {
			sample.oldDown = now
		}
		// berth may start the new container before CRI's lists show the
		// old one down: both are waited for, the old one's for a while.
		if sample.total > 0 && (sample.oldDown > 0 || now > sample.total+oldDownWait) {
			break
		}
		if now > limit {
			return nil, fmt.Errorf("pod %s of %s: no new running container after %s\n--- watcher's stderr\n%s", pod, s.b.stack, limit, tail(s.proc.text()))
		}
		if err := s.proc.alive(); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	resource := "resource=pod." + pod + ".container.main "
	if at, line, trigger, found := s.proc.decision(t0, resource); found {
		sample.decided, sample.trigger, sample.action = at.Sub(t0), trigger, logField(line, "action")
	} else {
		sample.trigger = "no decision line"
	}
	return sample, nil
}

// awaitStart waits until containerd says a new task started (the
// sample's event log), before await polls the lists: 500 containers make
// each list call a few milliseconds of containerd's CPU, and polling
// them every pollEvery while berth's create and start ran slowed those
// by a fifth (2026-12-03), which the raw baselines, polled only after
// their calls, did not pay.
func (wb *watchBench) awaitStart(ctx context.Context, s *watchStack, pod string, t0 time.Time, limit time.Duration, started <-chan struct{}) error {
	alive := time.NewTicker(250 * time.Millisecond)
	defer alive.Stop()
	for {
		select {
		case <-started:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-alive.C:
			if err := s.proc.alive(); err != nil {
				return err
			}
			if time.Since(t0) > limit {
				return fmt.Errorf("pod %s of %s: no new container started after %s\n--- watcher's stderr\n%s", pod, s.b.stack, limit, tail(s.proc.text()))
			}
		}
	}
}

// specEnv is the environment berth recorded in the container's spec
// annotation (berth.io/spec, a JSON record of what was declared).
func specEnv(c *cri.Container) map[string]string {
	var rec struct {
		Env map[string]string `json:"env"`
	}
	_ = json.Unmarshal([]byte(c.Annotations["berth.io/spec"]), &rec) // no record, no env
	return rec.Env
}

// ---------------------------------------------------------------- the watcher process

// watchProc is a running berth watch, its stderr kept line by line with
// the time each line arrived.
type watchProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	lines  []timedLine
}

type timedLine struct {
	at   time.Time
	text string
}

func startWatch(b *berth, args []string, env ...string) (*watchProc, error) {
	p := &watchProc{exited: make(chan struct{})}
	p.cmd = exec.Command(b.bin, args...)
	p.cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "BERTH_LOCK_DIR="+b.lockDir), env...) // BERTH_ADDRESS passes through
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("berth %s: %w", strings.Join(args, " "), err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, timedLine{time.Now(), sc.Text()})
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *watchProc) pid() int { return p.cmd.Process.Pid }

// alive fails, with what the watcher logged, if it has exited.
func (p *watchProc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("berth %s exited: %s\n--- stderr\n%s", strings.Join(p.cmd.Args[1:], " "), p.cmd.ProcessState, tail(p.text()))
	default:
		return nil
	}
}

// stop sends SIGTERM, as a service manager would, and kills the watcher
// if it does not exit in 15s.
func (p *watchProc) stop() error {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("berth watch (pid %d) did not stop on SIGTERM; killed", p.pid())
		}
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		// A terminal's Ctrl-C reaches it too; that is a clean stop.
		if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
			return fmt.Errorf("berth watch (pid %d): %s\n%s", p.pid(), st, tail(p.text()))
		}
	}
	return nil
}

func (p *watchProc) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s strings.Builder
	for _, l := range p.lines {
		s.WriteString(l.text + "\n")
	}
	return s.String()
}

func (p *watchProc) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// countSince counts the lines from t on that contain s.
func (p *watchProc) countSince(t time.Time, s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if !l.at.Before(t) && strings.Contains(l.text, s) {
			n++
		}
	}
	return n
}

// errors counts the watcher's error lines (a round that failed logs one)
// and returns the first.
func (p *watchProc) errors() (n int, first string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.Contains(l.text, "level=ERROR") {
			if n++; n == 1 {
				first = l.text
			}
		}
	}
	return n, first
}

// quiet waits until the watcher has logged nothing for d (its rounds are
// over), for up to two minutes.
func (p *watchProc) quiet(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := p.alive(); err != nil {
			return err
		}
		p.mu.Lock()
		last := time.Time{}
		if n := len(p.lines); n > 0 {
			last = p.lines[n-1].at
		}
		p.mu.Unlock()
		wait := d - time.Since(last)
		if wait <= 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("berth watch (pid %d) has not been quiet for %s in 2m\n--- stderr\n%s", p.pid(), d, tail(p.text()))
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// decision finds the first decision line about resource logged from t0
// on, and the trigger of the round it belongs to (the converging line
// before it).
func (p *watchProc) decision(t0 time.Time, resource string) (time.Time, string, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	trigger := ""
	for _, l := range p.lines {
		if strings.Contains(l.text, "msg=converging ") {
			trigger = logField(l.text, "trigger")
		}
		if !l.at.Before(t0) && strings.Contains(l.text, "msg=decision ") && strings.Contains(l.text, resource) {
			return l.at, l.text, trigger, true
		}
	}
	return time.Time{}, "", "", false
}

// eventTriggers lists the rounds run for file or runtime events.
func (p *watchProc) eventTriggers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		if t := logField(l.text, "trigger"); t == "files changed" || strings.HasPrefix(t, "runtime:") {
			out = append(out, l.text)
		}
	}
	return out
}

// logFieldRE matches key=value of slog's text format, the value bare or
// quoted.
var logFieldRE = regexp.MustCompile(`(?:^| )([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logField is the value of key in a slog text line, or "".
func logField(line, key string) string {
	for _, m := range logFieldRE.FindAllStringSubmatch(line, -1) {
		if m[1] != key {
			continue
		}
		if v, err := strconv.Unquote(m[2]); err == nil {
			return v
		}
		return m[2]
	}
	return ""
}

// ---------------------------------------------------------------- /proc

// procStatusKB reads a "Key: N kB" line of /proc/PID/status.
func procStatusKB(pid int, key string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
