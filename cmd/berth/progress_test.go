package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/syncbuf"
	"github.com/berth-dev/berth/runtime"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// Steps under way get a "Still ..." line each interval, a stopping one
// with its grace; finished steps get none.
func TestProgressSaysStill(t *testing.T) {
	old := stillInterval
	stillInterval = 20 * time.Millisecond
	t.Cleanup(func() { stillInterval = old })

	var out syncbuf.Buffer
	p := newProgressPrinter(&out)
	web, db, img := spec.PodAddress("web"), spec.PodAddress("db"), spec.Address{Kind: spec.KindImage, Name: "docker.io/library/busybox:1.36"}
	p.event(apply.Event{Address: web, Action: planner.Replace, Status: apply.Started})
	p.event(apply.Event{Address: spec.ContainerAddress("web", "vm"), Action: planner.Replace, Status: apply.Stopping, Detail: "its container, up to 2m0s before it is killed", Grace: 2 * time.Minute})
	p.event(apply.Event{Address: db, Action: planner.Create, Status: apply.Started})
	p.event(apply.Event{Address: img, Action: planner.Create, Status: apply.Started})
	p.event(apply.Event{Address: db, Action: planner.Create, Status: apply.Done})
	// Wait for a round of lines, event-driven rather than timed.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "image.docker.io/library/busybox:1.36: Still pulling...") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.close()
	got := out.String()
	for _, want := range []string{
		`(?m)^pod\.web: Still stopping\.\.\. \[\d+s elapsed, stop_timeout 2m0s\]$`,
		`(?m)^image\.docker\.io/library/busybox:1\.36: Still pulling\.\.\. \[\d+s elapsed\]$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("no line matching %s in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "pod.db: Still") {
		t.Errorf("a finished step is still reported:\n%s", got)
	}
	n := len(out.String())
	time.Sleep(3 * stillInterval)
	if len(out.String()) != n {
		t.Error("lines were printed after close")
	}
}

// A step that began just before a tick gets no "Still" line yet: 500
// pods created in a row would otherwise each print "[0s elapsed]".
func TestProgressStillSkipsStepsJustBegun(t *testing.T) {
	var out syncbuf.Buffer
	p := newProgressPrinter(&out)
	defer p.close()
	old, young := spec.PodAddress("old"), spec.PodAddress("young")
	p.event(apply.Event{Address: old, Action: planner.Create, Status: apply.Started})
	p.event(apply.Event{Address: young, Action: planner.Create, Status: apply.Started})
	now := time.Now()
	p.mu.Lock()
	p.steps[old].start = now.Add(-stillInterval)
	p.steps[young].start = now.Add(-time.Millisecond)
	p.mu.Unlock()
	out.Reset()
	p.still(now)
	got := out.String()
	if !strings.Contains(got, "pod.old: Still creating... [10s elapsed]") || strings.Contains(got, "pod.young") {
		t.Errorf("still lines:\n%s", got)
	}
}

// A pull's lines tell the time since it began, as the runtime measured
// it: off a terminal the first line is the last, and still says how long
// the pull took.
func TestPullReporterTellsThePullsTime(t *testing.T) {
	for _, tt := range []struct {
		name    string
		live    bool
		reports []runtime.PullProgress
		want    []string
	}{
		{"off a terminal", false, []runtime.PullProgress{
			{Ref: "r", Layers: 3, Done: 1, Bytes: 1e6, Total: 4e6, Elapsed: 600 * time.Millisecond},
			{Ref: "r", Layers: 3, Done: 3, Bytes: 4e6, Total: 4e6, Elapsed: 1234 * time.Millisecond, Finished: true},
		}, []string{"image r: pulled, 3 blobs, 4MB in 1.23s, 3.241MB/s"}},
		{"a fast pull", false, []runtime.PullProgress{
			{Ref: "r", Layers: 2, Done: 2, Bytes: 1e6, Total: 1e6, Elapsed: 98 * time.Millisecond, Finished: true},
		}, []string{"image r: pulled, 2 blobs, 1MB in 100ms, 10.2MB/s"}},
		{"on a terminal", true, []runtime.PullProgress{
			{Ref: "r", Layers: 3, Done: 1, Bytes: 1e6, Total: 4e6, Elapsed: 500 * time.Millisecond},
			{Ref: "r", Layers: 3, Done: 3, Bytes: 4e6, Total: 4e6, Elapsed: time.Second, Finished: true},
		}, []string{"image r: pulling, 1/3 blobs, 1MB of 4MB, 2MB/s", "image r: pulled, 3 blobs, 4MB in 1s, 4MB/s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			r := newPullReporter(&out, tt.live)
			for _, p := range tt.reports {
				r.report(p)
			}
			if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
