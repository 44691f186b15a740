package main

// The replace benchmark (-replace): how many new connections a replace of
// a served pod fails, with update_order = "start_first" against
// "stop_first", through berth forward and through a host port.
//
// One stack, applied with the real berth binary, holds one pod: busybox
// httpd behind a readiness probe, which starts serving a second after the
// container starts (as a real server loads before it listens) and stops
// at once on SIGTERM (the worst case for a drain). It has a host port on
// 127.0.0.1 (CNI portmap) and a forward that `berth forward` holds open.
// Each replace changes the pod's hostname, which replaces the pod, while
// a client loop per path opens a new connection every 20 ms for one GET;
// the loops run from before the apply until the new pod answers on both
// paths, and a while after. Rounds alternate which order goes first.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/connloop"
	"github.com/berth-dev/berth/test/servedpod"
)

// The orders compared, and the paths measured.
var (
	replaceOrders = []string{"start_first", "stop_first"}
	replacePaths  = []string{pathForward, pathHostPort}
)

// connEvery is the client loops' interval: a new connection each time.
const connEvery = 20 * time.Millisecond

// replaceSample is one replace, by path.
type replaceSample struct {
	order    string
	apply    time.Duration // the whole berth apply
	answered map[string]int
	failed   map[string]int
	window   map[string]time.Duration // first failure to last
}

func runReplace(o options) (err error) {
	if o.replaceRuns < 1 {
		return errors.New("-replace-runs must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := openEnv(ctx)
	if err != nil {
		return err
	}
	defer e.rt.close()
	tmp, runID, err := scratch("replace-")
	if err != nil {
		return err
	}
	stack := "bench-replace-" + runID
	b := &berth{bin: e.bin, stack: stack, dir: filepath.Join(tmp, stack), lockDir: lockDir(tmp)}
	e.rt.runID = runID
	var fwd *forwardProc
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if fwd != nil {
			err = errors.Join(err, fwd.stop())
		}
		if _, derr := b.mustRun(cctx, 0, "destroy", "--auto-approve", b.dir); derr != nil {
			err = errors.Join(err, fmt.Errorf("berth destroy: %w", derr))
		}
		err = errors.Join(err, cleanup(cctx, e.rt, b))
		os.RemoveAll(tmp)
	}()

	hostPort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	fwdPort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	urls := map[string]string{
		pathForward:  fmt.Sprintf("http://127.0.0.1:%d/", fwdPort),
		pathHostPort: fmt.Sprintf("http://127.0.0.1:%d/", hostPort),
	}
	write := func(order, page string) error {
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.dir, "main.hcl"), []byte(replaceConfig(stack, order, page, hostPort, fwdPort)), 0o644)
	}
	if err := write("start_first", "r0"); err != nil {
		return err
	}
	if _, err := b.mustRun(ctx, 0, "apply", "--auto-approve", b.dir); err != nil {
		return err
	}
	if fwd, err = startForward(ctx, b, "netns", b.dir, fmt.Sprintf("127.0.0.1:%d", fwdPort), func(ctx context.Context) error {
		_, err := connloop.Get(ctx, urls[pathForward])
		return err
	}); err != nil {
		return err
	}
	for _, u := range urls {
		if err := awaitPage(ctx, u, "r0"); err != nil {
			return err
		}
	}

	rep := &replaceReport{opts: o, facts: e.facts, started: time.Now()}
	fmt.Fprintf(os.Stderr, "bench: %d rounds of a replace with each order, stack %s\n", o.replaceRuns, stack)
	for round := range o.replaceRuns {
		orders := slices.Clone(replaceOrders)
		if round%2 == 1 {
			slices.Reverse(orders)
		}
		for _, order := range orders {
			page := fmt.Sprintf("r%d-%s", round+1, strings.ReplaceAll(order, "_", "-")) // a hostname
			s, err := replaceOnce(ctx, b, urls, order, page, write)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, order, err)
			}
			fmt.Fprintf(os.Stderr, "  round %d %-11s apply %s, failed: forward %d (of %d), host port %d (of %d) in %s\n", round+1, order, fmtDur(s.apply),
				s.failed[pathForward], s.failed[pathForward]+s.answered[pathForward], s.failed[pathHostPort], s.failed[pathHostPort]+s.answered[pathHostPort],
				fmtDur(s.window[pathHostPort]))
			rep.samples = append(rep.samples, s)
		}
	}
	rep.finished = time.Now()
	return emit(o.markdown, rep.text, rep.markdown)
}

// replaceOnce replaces the pod with the given order while the client
// loops run, and returns what they saw.
func replaceOnce(ctx context.Context, b *berth, urls map[string]string, order, page string, write func(order, page string) error) (*replaceSample, error) {
	lctx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	loops, waits := map[string]*connloop.Loop{}, []func(){}
	for _, path := range replacePaths {
		l, wait := connloop.Start(lctx, urls[path], connEvery)
		loops[path], waits = l, append(waits, wait)
	}
	time.Sleep(300 * time.Millisecond) // the old pod answering
	if err := write(order, page); err != nil {
		return nil, err
	}
	r, err := b.mustRun(ctx, 0, "apply", "--auto-approve", b.dir)
	if err != nil {
		return nil, err
	}
	if want := "(start first, then stop the old)"; (order == "start_first") != strings.Contains(r.stdout, want) {
		return nil, fmt.Errorf("the plan does not say the order:\n%s", tail(r.stdout))
	}
	for _, path := range replacePaths {
		if err := awaitPage(ctx, urls[path], page); err != nil {
			return nil, fmt.Errorf("%s: %w", pathTitles[path], err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	stopLoops()
	for _, wait := range waits {
		wait()
	}
	s := &replaceSample{order: order, apply: r.wall, answered: map[string]int{}, failed: map[string]int{}, window: map[string]time.Duration{}}
	for path, l := range loops {
		res := l.Result()
		s.answered[path], s.failed[path], s.window[path] = res.OK, len(res.Failures), res.Window()
	}
	return s, nil
}

// replaceConfig is the benchmark's stack: the served pod, a second from
// start to serving, with page as its hostname, so every replace is a new
// pod.
func replaceConfig(stack, order, page string, hostPort, fwdPort int) string {
	return fmt.Sprintf("berth { stack = %q }\n", stack) +
		servedpod.Pod{Order: order, Page: page, HostPort: hostPort, Listen: fmt.Sprintf("127.0.0.1:%d", fwdPort), StartDelay: time.Second}.HCL()
}

// awaitPage waits, up to 30 s, until url answers with page.
func awaitPage(ctx context.Context, url, page string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last string
	var lastErr error
	for time.Now().Before(deadline) {
		if last, lastErr = connloop.Get(ctx, url); lastErr == nil && last == page {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer %q in 30s (last: %q, %v)", url, page, last, lastErr)
}
