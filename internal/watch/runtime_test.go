package watch

import (
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

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

// An exit a plan took from the report stays for the plans that follow
// (a restart its backoff holds back is planned again), with nothing left
// to look for; once the lists show it, it goes.
func TestReportedExitsTakenByAPlan(t *testing.T) {
	k := newKnownIDs()
	k.exited(runtime.Event{Topic: "/tasks/exit", ID: "c1", Exited: true, ExitCode: 1})
	snap := func(state cri.ContainerState, reported bool) *planner.Snapshot {
		return &planner.Snapshot{Pods: map[string]*planner.ObservedPod{"a": {Name: "a", Sandbox: &cri.PodSandbox{Id: "sb"},
			Containers: map[string]*planner.ObservedContainer{"main": {Name: "main", ExitReported: reported,
				Container: &cri.Container{Id: "c1", State: state}}}}}}
	}
	if !k.awaitingExits() {
		t.Fatal("a reported exit is not looked for")
	}
	k.set(snap(cri.ContainerState_CONTAINER_EXITED, true)) // the overlay's view
	if _, ok := k.reported()["c1"]; !ok || k.awaitingExits() {
		t.Errorf("taken by a plan: reported %v, looked for %v; want kept, not looked for", ok, k.awaitingExits())
	}
	k.set(snap(cri.ContainerState_CONTAINER_EXITED, false)) // the lists caught up
	if _, ok := k.reported()["c1"]; ok {
		t.Error("an exit the lists show is still reported")
	}
}
