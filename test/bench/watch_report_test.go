package main

import (
	"reflect"
	"testing"
	"time"
)

// The watch report's baseline and runtime tables: medians over the pairs
// that have the samples, incomplete event times left out, and no table
// at all when nothing was measured.
func TestWatchBaselineTables(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	sample := func(total, exited, created, started int) *watchSample {
		return &watchSample{total: ms(total), runtime: runtimeTimes{exited: ms(exited), created: ms(created), started: ms(started)}}
	}
	pair := func(save, crash, rawSave, raw *watchSample) *watchPair {
		return &watchPair{file: map[string]*watchSample{modeEvent: save}, crash: map[string]*watchSample{modeEvent: crash}, rawSave: rawSave, raw: raw}
	}
	tests := []struct {
		name         string
		pairs        []*watchPair
		raw, runtime [][]string
		split        bool
		berth, base  stepMedians
	}{
		{
			name:  "no baselines, no event times",
			pairs: []*watchPair{pair(sample(300, 0, 0, 0), sample(200, 0, 0, 0), nil, nil)},
		},
		{
			name: "two pairs, one without a save baseline and one crash without its events",
			pairs: []*watchPair{
				pair(sample(300, 100, 120, 280), sample(200, 10, 40, 190), sample(200, 20, 30, 190), sample(100, 10, 20, 90)),
				pair(sample(400, 100, 120, 380), sample(300, 10, 0, 0), nil, sample(150, 10, 20, 140)),
			},
			raw: [][]string{
				{"pair", "save: event-driven", "save: raw CRI replace", "event-driven / raw", "crash: event-driven", "crash: raw CRI restart on the event", "event-driven / raw"},
				{"1", "300.0ms", "200.0ms", "1.50×", "200.0ms", "100.0ms", "2.00×"},
				{"2", "-", "-", "-", "300.0ms", "150.0ms", "2.00×"},
				{"median", "300.0ms", "200.0ms", "1.50×", "250.0ms", "125.0ms", "2.00×"},
			},
			runtime: [][]string{
				{"case", "watcher", "old container exited", "exit → next created", "created → started", "started → listed RUNNING", "samples"},
				{"file save", "event-driven", "100.0ms", "20.0ms", "210.0ms", "20.0ms", "2"},
				{"crash", "event-driven", "10.0ms", "30.0ms", "150.0ms", "10.0ms", "1"},
				{"file save", "raw CRI replace", "20.0ms", "10.0ms", "160.0ms", "10.0ms", "1"},
				{"crash", "raw CRI restart", "10.0ms", "10.0ms", "95.0ms", "10.0ms", "2"},
			},
			split: true,
			berth: stepMedians{create: ms(30), start: ms(150)},
			base:  stepMedians{create: ms(10), start: ms(70)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &watchReport{wb: &watchBench{modes: []string{modeEvent}, stacks: map[string]*watchStack{modeEvent: {}}}, pairs: tt.pairs}
			if got := r.rawTable(); !reflect.DeepEqual(got, tt.raw) {
				t.Errorf("rawTable =\n%q\nwant\n%q", got, tt.raw)
			}
			if got := r.runtimeTable(); !reflect.DeepEqual(got, tt.runtime) {
				t.Errorf("runtimeTable =\n%q\nwant\n%q", got, tt.runtime)
			}
			berth, base, ok := r.crashSplit()
			if ok != tt.split || berth != tt.berth || base != tt.base {
				t.Errorf("crashSplit = %v %v %v, want %v %v %v", berth, base, ok, tt.berth, tt.base, tt.split)
			}
		})
	}
}
