package runtime

import (
	"reflect"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestToEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 19, 30, 0, 5, time.UTC)
	for _, tc := range []struct {
		name  string
		event any
		want  Event
		ok    bool
	}{
		{"a container's own exit", &apievents.TaskExit{ContainerID: "c1", ID: "c1", ExitStatus: 137, ExitedAt: timestamppb.New(at)},
			Event{Topic: "/t", ID: "c1", Exited: true, ExitCode: 137, ExitedAt: at}, true},
		{"an exec'd process's exit says nothing", &apievents.TaskExit{ContainerID: "c1", ID: "exec-7"}, Event{}, false},
		{"an OOM", &apievents.TaskOOM{ContainerID: "c1"}, Event{Topic: "/t", ID: "c1", OOM: true}, true},
		{"a deletion", &apievents.ContainerDelete{ID: "c1"}, Event{Topic: "/t", ID: "c1"}, true},
		{"a sandbox's exit", &apievents.SandboxExit{SandboxID: "s1", ExitStatus: 2, ExitedAt: timestamppb.New(at)},
			Event{Topic: "/t", ID: "s1", Exited: true, ExitCode: 2, ExitedAt: at}, true},
		{"a type berth does not know", &apievents.TaskPaused{ContainerID: "c1"}, Event{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := typeurl.MarshalAny(tc.event)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := toEvent("/t", a)
			if !reflect.DeepEqual(got, tc.want) || ok != tc.ok {
				t.Errorf("toEvent = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := toEvent("/t", nil); ok {
		t.Error("an event without a body was taken")
	}
}
