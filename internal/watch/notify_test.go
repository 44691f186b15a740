package watch

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/notify"
)

// events collects what the watcher notifies.
type events struct {
	mu  sync.Mutex
	got []notify.Event
}

func (e *events) add(ev notify.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) kinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.got {
		out = append(out, ev.Kind+" "+ev.Resource)
	}
	return out
}

func TestWatchNotifies(t *testing.T) {
	h := newHarness(t, webPod)
	var ev events
	h.opts.Notify = ev.add
	h.rt.Errors["RunPodSandbox"] = errors.New("the runtime refuses")
	h.start()
	eventually(t, "a round_failed event", func() bool { return strings.Join(ev.kinds(), ",") == "round_failed " })
	if ev.got[0].Stack != "test" || !strings.Contains(ev.got[0].Message, "the runtime refuses") {
		t.Errorf("event %+v", ev.got[0])
	}

	// Failing again is the same streak: no second event. Then it heals.
	h.reload <- struct{}{}
	h.waitFor(2, map[string]string{"msg": "failed", "resource": "pod.web"})
	delete(h.rt.Errors, "RunPodSandbox")
	h.reload <- struct{}{}
	eventually(t, "a recovered event", func() bool { return strings.Join(ev.kinds(), ",") == "round_failed ,recovered " })

	// A crash loop: told once, however many rounds defer its restart.
	h.rt.Exit(h.container("web", "app").Id, 1)
	h.waitFor(1, map[string]string{"msg": "decision", "action": "defer", "reason_code": "exited,crash_backoff"})
	h.reload <- struct{}{}
	h.waitFor(1, map[string]string{"msg": "converged", "trigger": "reload requested"})
	if got := strings.Join(ev.kinds(), ","); got != "round_failed ,recovered ,crash_loop pod.web.container.app" {
		t.Errorf("events %s", got)
	}
}
