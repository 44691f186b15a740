package planner_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// A watcher's observations decode each record once: a listed object's
// record is the one decoded before, a new object's is its own, and
// either is what an observation without the cache decodes.
func TestRecordCache(t *testing.T) {
	const base = `
pod "kept" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "changed" {
  container "main" {
    image = "docker.io/library/busybox:1.36"
    env   = { V = "%s" }
  }
}`
	rt := fake.New(image)
	cfg := spectest.Load(t, fmt.Sprintf(base, "1"))
	converge(t, rt, cfg)
	cache := &planner.RecordCache{}
	observe := func(cfg *spec.Config, records *planner.RecordCache) *planner.Snapshot {
		t.Helper()
		snap, err := planner.Observe(context.Background(), rt, cfg, planner.Options{Offline: true, Records: records})
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	first := observe(cfg, cache)

	next := spectest.Load(t, fmt.Sprintf(base, "2"))
	converge(t, rt, next) // replaces changed's container: a new ID
	second, fresh := observe(next, cache), observe(next, nil)

	for _, tc := range []struct {
		pod  string
		same bool // the record is the first observation's own
	}{
		{pod: "kept", same: true},
		{pod: "changed", same: false},
	} {
		t.Run(tc.pod, func(t *testing.T) {
			was, is, want := first.Pods[tc.pod].Containers["main"].Record, second.Pods[tc.pod].Containers["main"].Record, fresh.Pods[tc.pod].Containers["main"].Record
			if is == nil || !reflect.DeepEqual(is, want) {
				t.Fatalf("cached record %+v, want %+v", is, want)
			}
			if (is == was) != tc.same {
				t.Errorf("record reused: %t, want %t", is == was, tc.same)
			}
			if !reflect.DeepEqual(second.Pods[tc.pod].Record, fresh.Pods[tc.pod].Record) || second.Pods[tc.pod].Record == nil {
				t.Errorf("pod record %+v, want %+v", second.Pods[tc.pod].Record, fresh.Pods[tc.pod].Record)
			}
			if tc.same && second.Pods[tc.pod].Record != first.Pods[tc.pod].Record {
				t.Error("the pod record of a sandbox listed again was decoded anew")
			}
		})
	}
}
