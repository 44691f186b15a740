package planner_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec/spectest"
)

// gatedRegistry is a runtime that reads the pinned images only once a
// registry request is out, so an observation that asks the registries
// after its other reads waits in vain; its pinned-images read can fail.
type gatedRegistry struct {
	*fake.Runtime
	asking    sync.Once
	asked     chan struct{}
	pinnedErr error
	ended     chan error // the registry requests' context errors, once they end
}

func newGatedRegistry(pinnedErr error) *gatedRegistry {
	return &gatedRegistry{Runtime: fake.New(), asked: make(chan struct{}), pinnedErr: pinnedErr, ended: make(chan error, 8)}
}

func (g *gatedRegistry) PinnedImages(ctx context.Context) (map[string]bool, error) {
	select {
	case <-g.asked:
	case <-time.After(5 * time.Second):
		return nil, errors.New("no registry request out while reading the pins")
	}
	if g.pinnedErr != nil {
		return nil, g.pinnedErr
	}
	return g.Runtime.PinnedImages(ctx)
}

func (g *gatedRegistry) RemoteDigest(ctx context.Context, ref, certsDir string, creds runtime.Credentials) (string, error) {
	g.asking.Do(func() { close(g.asked) })
	if g.pinnedErr == nil {
		return g.Runtime.RemoteDigest(ctx, ref, certsDir, creds)
	}
	select { // a failed observation must end the request
	case <-ctx.Done():
		g.ended <- ctx.Err()
		return "", ctx.Err()
	case <-time.After(5 * time.Second):
		err := errors.New("not ended 5s on")
		g.ended <- err
		return "", err
	}
}

// The registry requests go out beside the observation's other reads, not
// after them; an observation that fails meanwhile ends them.
func TestObserveAsksRegistriesAlongside(t *testing.T) {
	const src = `berth { stack = "web" }
image "docker.io/library/alpine:3.20" {}
pod "a" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}`
	cfg := spectest.Load(t, src)
	t.Run("answers", func(t *testing.T) {
		rt := newGatedRegistry(nil)
		rt.Remote["docker.io/library/alpine:3.20"] = "sha256:a"
		snap, err := planner.Observe(context.Background(), rt, cfg, planner.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.RemoteDigests["docker.io/library/alpine:3.20"]; got != "sha256:a" {
			t.Errorf("alpine's remote digest %q, want sha256:a (unpullable: %v)", got, snap.Unpullable)
		}
		if _, ok := snap.Unpullable["docker.io/library/busybox:1.36"]; !ok {
			t.Errorf("busybox, missing here and there, not unpullable: %v", snap.Unpullable)
		}
	})
	t.Run("failed observation", func(t *testing.T) {
		rt := newGatedRegistry(errors.New("pins unreadable"))
		if _, err := planner.Observe(context.Background(), rt, cfg, planner.Options{}); err == nil || err.Error() != "pins unreadable" {
			t.Fatalf("observation error %v, want pins unreadable", err)
		}
		select { // Observe returned, so the requests have ended already
		case err := <-rt.ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("registry request ended with %v, want canceled", err)
			}
		default:
			t.Error("registry request still out after the observation failed")
		}
	})
}
