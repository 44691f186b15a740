package gitsource

import (
	"context"
	"testing"
)

// BenchmarkSyncUnchanged is the cost of a fetch that finds nothing new,
// the watcher's idle case.
func BenchmarkSyncUnchanged(b *testing.B) {
	up := newUpstream(b)
	up.commit(map[string]string{"main.hcl": "pod \"a\" {}\n"})
	src := &Source{URL: "file://" + up.dir, Dir: b.TempDir()}
	if _, err := src.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := src.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
