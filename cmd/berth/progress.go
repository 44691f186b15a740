package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/go-units"

	"github.com/berth-dev/berth/runtime"
)

// pullReporter prints pull progress: on a terminal, a line per image every
// half second while it downloads; elsewhere only one line per image when it
// is done, so logs stay short.
type pullReporter struct {
	w    io.Writer
	live bool

	mu    sync.Mutex
	start map[string]time.Time
	last  map[string]time.Time
}

// liveInterval spaces a pull's progress lines on a terminal.
const liveInterval = 500 * time.Millisecond

func newPullReporter(w io.Writer, live bool) *pullReporter {
	return &pullReporter{w: w, live: live, start: map[string]time.Time{}, last: map[string]time.Time{}}
}

func (r *pullReporter) report(p runtime.PullProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if _, ok := r.start[p.Ref]; !ok {
		r.start[p.Ref] = now
	}
	elapsed := now.Sub(r.start[p.Ref])
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
