package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

// pullReporter prints pull progress: on a terminal, a line per image every
// half second while it downloads; elsewhere only one line per image when it
// is done, so logs stay short.
type pullReporter struct {
	w    io.Writer
	live bool

	mu   sync.Mutex
	last map[string]time.Time
}

// liveInterval spaces a pull's progress lines on a terminal.
const liveInterval = 500 * time.Millisecond

func newPullReporter(w io.Writer, live bool) *pullReporter {
	return &pullReporter{w: w, live: live, last: map[string]time.Time{}}
}

func (r *pullReporter) report(p runtime.PullProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now, elapsed := time.Now(), p.Elapsed
	rate := ""
	if s := elapsed.Seconds(); s > 0 && p.Bytes > 0 {
		rate = ", " + units.HumanSize(float64(p.Bytes)/s) + "/s"
	}
	switch {
	case p.Finished:
		fmt.Fprintf(r.w, "image %s: pulled, %d blobs, %s in %s%s\n", p.Ref, p.Layers, units.HumanSize(float64(p.Total)), elapsed.Round(10*time.Millisecond), rate)
	case r.live && now.Sub(r.last[p.Ref]) >= liveInterval:
		r.last[p.Ref] = now
		fmt.Fprintf(r.w, "image %s: pulling, %d/%d blobs, %s of %s%s\n", p.Ref, p.Done, p.Layers,
			units.HumanSize(float64(p.Bytes)), units.HumanSize(float64(p.Total)), rate)
	}
}

var progressVerbs = map[planner.Action][2]string{
	planner.Create:  {"Creating", "Creation"},
	planner.Destroy: {"Destroying", "Destruction"},
	planner.Replace: {"Replacing", "Replacement"},
	planner.NoOp:    {"Updating containers", "Update"},
	planner.Update:  {"Updating", "Update"},
}

// stillInterval spaces the "Still creating..." lines of a step under way.
var stillInterval = 10 * time.Second

// progressPrinter prints apply's events as they come and, every
// stillInterval, a line for each step still under way, as Terraform does:
// a stop that waits out a 2-minute grace, or a long pull, is not silence.
type progressPrinter struct {
	w io.Writer

	mu    sync.Mutex
	steps map[spec.Address]*stepUnderWay
	order []spec.Address
	stop  chan struct{}
	done  sync.WaitGroup
}

type stepUnderWay struct {
	action planner.Action
	start  time.Time
	// grace is set once the step is stopping containers: up to how long.
	grace    time.Duration
	stopping bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w, steps: map[spec.Address]*stepUnderWay{}, stop: make(chan struct{})}
	p.done.Add(1)
	go p.tick()
	return p
}

// close stops the ticker; no line is printed after it returns.
func (p *progressPrinter) close() {
	close(p.stop)
	p.done.Wait()
}

func (p *progressPrinter) tick() {
	defer p.done.Done()
	t := time.NewTicker(stillInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.still(now)
		}
	}
}

// still prints a line for each step under way at now, but for those that
// began within the last half interval: their first line says so already.
func (p *progressPrinter) still(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, addr := range p.order {
		st := p.steps[addr]
		if now.Sub(st.start) < stillInterval/2 {
			continue
		}
		elapsed := now.Sub(st.start).Round(time.Second)
		switch {
		case st.stopping:
			fmt.Fprintf(p.w, "%s: Still stopping... [%s elapsed, stop_timeout %s]\n", addr, elapsed, st.grace)
		case addr.Kind == spec.KindImage && st.action == planner.Create:
			fmt.Fprintf(p.w, "%s: Still pulling... [%s elapsed]\n", addr, elapsed)
		default:
			fmt.Fprintf(p.w, "%s: Still %s... [%s elapsed]\n", addr, strings.ToLower(progressVerbs[st.action][0]), elapsed)
		}
	}
}

// event prints one apply event and keeps track of the steps under way.
func (p *progressPrinter) event(ev apply.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	verbs := progressVerbs[ev.Action]
	elapsed := ev.Elapsed.Round(100 * time.Millisecond)
	switch ev.Status {
	case apply.Started:
		if p.steps[ev.Address] == nil {
			p.order = append(p.order, ev.Address)
		}
		p.steps[ev.Address] = &stepUnderWay{action: ev.Action, start: time.Now()}
		fmt.Fprintf(p.w, "%s: %s...\n", ev.Address, verbs[0])
	case apply.Done:
		p.finished(ev.Address)
		detail := ""
		if ev.Detail != "" {
			detail = " [" + ev.Detail + "]"
		}
		fmt.Fprintf(p.w, "%s: %s complete after %s%s\n", ev.Address, verbs[1], elapsed, detail)
	case apply.Failed:
		p.finished(ev.Address)
		fmt.Fprintf(p.w, "%s: %s failed after %s (the error is below)\n", ev.Address, verbs[1], elapsed)
	case apply.Skipped:
		p.finished(ev.Address)
		fmt.Fprintf(p.w, "%s: Skipped, because %s\n", ev.Address, ev.Detail)
	case apply.Waiting:
		fmt.Fprintf(p.w, "%s: Waiting for %s to be ready...\n", ev.Address, ev.Detail)
	case apply.Stopping:
		st := p.steps[ev.Address]
		if st == nil && ev.Address.Kind == spec.KindContainer { // a container's stop, within its pod's step
			st = p.steps[spec.PodAddress(ev.Address.Name)]
		}
		if st != nil {
			st.stopping, st.grace = true, max(st.grace, ev.Grace)
		}
		fmt.Fprintf(p.w, "%s: Stopping %s...\n", ev.Address, ev.Detail)
	}
}

func (p *progressPrinter) finished(addr spec.Address) {
	delete(p.steps, addr)
	p.order = slices.DeleteFunc(p.order, func(a spec.Address) bool { return a == addr })
}
