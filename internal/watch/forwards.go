package watch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/forward"
	"github.com/berth-dev/berth/spec"
)

// forwards holds the configuration's forward blocks open, one listener
// each, so that one address in use does not keep the others closed. The
// forwarder finds a replaced pod again by itself; a forward whose
// listener failed is tried again at the next round.
type forwards struct {
	finder forward.Finder
	path   forward.Path
	log    *slog.Logger

	mu      sync.Mutex
	running map[forward.Target]context.CancelFunc
	wg      sync.WaitGroup
}

func newForwards(f forward.Finder, path forward.Path, log *slog.Logger) *forwards {
	if path == "" {
		path = forward.DefaultPath()
	}
	return &forwards{finder: f, path: path, log: log, running: map[forward.Target]context.CancelFunc{}}
}

// sync opens the forwards cfg declares and closes the others; marks is
// the stack's serving marks directory.
func (fs *forwards) sync(ctx context.Context, cfg *spec.Config, marks string) {
	want := map[forward.Target]bool{}
	for _, t := range forward.Targets(cfg, marks) {
		want[t] = true
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for t, cancel := range fs.running {
		if !want[t] {
			cancel()
			delete(fs.running, t)
			fs.log.Info("forward closed", "resource", t.Address, "listen", t.Listen)
		}
	}
	for t := range want {
		if _, ok := fs.running[t]; ok {
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		fs.running[t] = cancel
		fs.wg.Go(func() {
			var err error
			// A forward changed in place (another port or pod, the same
			// address) starts while the old one's listener is still being
			// closed: the address is busy for a moment, not for good.
			for wait := time.Now().Add(addressFreedWithin); ; {
				err = forward.Serve(fctx, fs.finder, []forward.Target{t}, fs.path, fs.log, func() {
					fs.log.Info("forwarding", "resource", t.Address, "listen", t.Listen, "pod", t.Pod, "port", t.Port, "via", string(fs.path))
				})
				if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(wait) || fctx.Err() != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				fs.log.Error("forward failed; retrying at the next round", "resource", t.Address, "error", err.Error())
				fs.mu.Lock()
				delete(fs.running, t)
				fs.mu.Unlock()
				cancel()
			}
		})
	}
}

// addressFreedWithin is how long a forward waits for its address while
// another forward of the stack gives it up.
const addressFreedWithin = 2 * time.Second

// stop closes every forward and waits for their connections to end.
func (fs *forwards) stop() {
	fs.mu.Lock()
	for t, cancel := range fs.running {
		cancel()
		delete(fs.running, t)
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}
