package planner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// A watcher hears of an exit before CRI's lists show it; the plan counts
// it as exited when nothing of the container can be left running.
func TestReportedExits(t *testing.T) {
	const cfg = `
pod "own" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "host" {
  host_pid = true
  container "main" { image = "docker.io/library/busybox:1.36" }
}`
	at := time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		name   string
		pod    string
		exit   planner.ReportedExit
		listed int32 // the exit code CRI's lists show already; 0: running
		streak int
		want   string // the plan's one change and the start of its last reason; "" for none
	}{
		{name: "its own PID namespace: exited on the report", pod: "own", exit: planner.ReportedExit{Code: 1, At: at},
			want: `pod.own.container.main restart: exited with code 1; restart = "always"`},
		{name: "an OOM kill says so", pod: "own", exit: planner.ReportedExit{Code: 137, At: at, OOM: true},
			want: `pod.own.container.main restart: exited with code 137 (OOMKilled); restart = "always"`},
		{name: "the backoff counts from the reported exit", pod: "own", exit: planner.ReportedExit{Code: 1, At: time.Now()}, streak: 1,
			want: "pod.own.container.main defer: crash backoff"},
		{name: "the lists caught up: theirs counts", pod: "own", exit: planner.ReportedExit{Code: 1, At: at}, listed: 3,
			want: `pod.own.container.main restart: exited with code 3; restart = "always"`},
		{name: "the host's PID namespace: the lists decide", pod: "host", exit: planner.ReportedExit{Code: 1, At: at}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New(image)
			c := spectest.Load(t, cfg)
			converge(t, rt, c)
			id := containerID(t, rt, tc.pod, "main")
			if tc.listed != 0 {
				rt.Exit(id, tc.listed)
			}
			w := &planner.WatchState{Now: time.Now(), Backoff: planner.DefaultBackoff, Exits: map[string]planner.ReportedExit{id: tc.exit},
				Streaks: map[spec.Address]int{spec.ContainerAddress(tc.pod, "main"): tc.streak}}
			snap, err := planner.Observe(context.Background(), rt, c, planner.Options{Watch: w, Offline: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for ch := range planner.Diff(c, snap, planner.Options{Watch: w}).Changes() {
				if ch.Container != nil && ch.Action != planner.NoOp {
					why := ch.Container.Reasons[len(ch.Container.Reasons)-1].Text // a deferral's comes last
					got = append(got, ch.Address.String()+" "+string(ch.Action)+": "+why)
				}
			}
			if len(got) > 1 || tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) == 0 || !strings.HasPrefix(got[0], tc.want)) {
				t.Errorf("changes %q, want %q", got, tc.want)
			}
		})
	}
}
