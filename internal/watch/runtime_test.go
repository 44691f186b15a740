package watch

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
)

// An OOM kill is reported apart from the exit it causes, in either order;
// the exit a plan is given says so either way. A sandbox's exit is not
// given to plans.
func TestReportedExitsCarryOOMKills(t *testing.T) {
	at := time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC)
	exit := func(id string) runtime.Event {
		return runtime.Event{Topic: "/tasks/exit", ID: id, Exited: true, ExitCode: 137, ExitedAt: at}
	}
	k := newKnownIDs()
	k.add("sb", "pod.a", true)
	k.oomKilled("first")
	k.exited(exit("first"))
	k.exited(exit("then"))
	k.oomKilled("then")
	k.exited(exit("plain"))
	k.exited(exit("sb"))
	want := map[string]planner.ReportedExit{
		"first": {Code: 137, At: at, OOM: true},
		"then":  {Code: 137, At: at, OOM: true},
		"plain": {Code: 137, At: at},
	}
	got := k.reported()
	if len(got) != len(want) {
		t.Fatalf("reported %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %+v, want %+v", id, got[id], w)
		}
	}
}
