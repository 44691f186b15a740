package watch

import (
	"context"
	"slices"
	"sync"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/probe"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

// knownIDs are the sandboxes and containers of the stack at the last
// observation: the runtime's events about anything else are not ours.
type knownIDs struct {
	mu  sync.Mutex
	ids map[string]string // ID -> resource address
	// sandboxes are the IDs of ids that are sandboxes, not containers.
	sandboxes map[string]bool
	// stale: a round has made objects since the last observation, so an
	// event about an ID not yet known may be about one of them.
	stale bool
	// exits are the containers and sandboxes whose exit the runtime has
	// reported and its lists have not yet shown, with when it came: a
	// busy runtime sends the event before its own state follows.
	exits map[string]reportedExit
	// ooms are the containers the runtime reported an OOM kill in, which
	// comes before their exit.
	ooms map[string]bool
	// ownPID are the containers that run in a PID namespace of their own,
	// whose reported exit a plan takes without waiting for the lists.
	ownPID map[string]bool
	// pods are the containers' pods, by container ID.
	pods map[string]string
}

type reportedExit struct {
	heard time.Time
	// taken: a plan counted it, so no round need look for it again.
	taken bool
	planner.ReportedExit
}

// exitLag bounds how long an exit the lists do not show is looked for.
const exitLag = 10 * time.Second

func newKnownIDs() knownIDs {
	return knownIDs{ids: map[string]string{}, sandboxes: map[string]bool{}, exits: map[string]reportedExit{},
		ooms: map[string]bool{}, ownPID: map[string]bool{}, pods: map[string]string{}}
}

func (k *knownIDs) set(snap *planner.Snapshot) {
	// Sized up front: growing maps of 500 pods is most of the work here.
	n := 0
	for _, p := range snap.Pods {
		n += len(p.Containers)
	}
	ids, sandboxes := make(map[string]string, len(snap.Pods)+n), make(map[string]bool, len(snap.Pods))
	ownPID, pods := make(map[string]bool, n), make(map[string]string, n)
	running := make(map[string]bool, len(snap.Pods)+n) // by what the lists say
	taken := make(map[string]bool, n)                  // exits the plan took from the report
	for _, p := range snap.Pods {
		ids[p.Sandbox.Id], sandboxes[p.Sandbox.Id] = spec.PodAddress(p.Name).String(), true
		running[p.Sandbox.Id] = p.Sandbox.State == cri.PodSandboxState_SANDBOX_READY
		for _, c := range p.Containers {
			ids[c.Container.Id] = spec.ContainerAddress(p.Name, c.Name).String()
			running[c.Container.Id] = c.Container.State == cri.ContainerState_CONTAINER_RUNNING || c.ExitReported
			taken[c.Container.Id] = c.ExitReported
			ownPID[c.Container.Id] = p.Record != nil && !p.Record.HostPID
			pods[c.Container.Id] = p.Name
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ids, k.sandboxes, k.ownPID, k.pods, k.stale = ids, sandboxes, ownPID, pods, false
	for id, e := range k.exits {
		switch {
		case !running[id] || time.Since(e.heard) > exitLag:
			delete(k.exits, id) // the lists show it, or never will
		case taken[id]:
			// Kept for the plans until the lists show it (a restart held
			// back by its backoff is planned again), but nothing to look
			// for again.
			e.taken = true
			k.exits[id] = e
		}
	}
	for id := range k.ooms {
		if !running[id] {
			delete(k.ooms, id)
		}
	}
}

// exited notes the exit of a container or sandbox the runtime reported.
func (k *knownIDs) exited(ev runtime.Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.exits[ev.ID]; !ok {
		k.exits[ev.ID] = reportedExit{heard: time.Now(), ReportedExit: planner.ReportedExit{Code: ev.ExitCode, At: ev.ExitedAt, OOM: k.ooms[ev.ID]}}
	}
}

// oomKilled notes an OOM kill the runtime reported in a container.
func (k *knownIDs) oomKilled(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ooms[id] = true
	if e, ok := k.exits[id]; ok {
		e.OOM = true
		k.exits[id] = e
	}
}

// reported are the containers' exits not yet in the lists, for a plan.
func (k *knownIDs) reported() map[string]planner.ReportedExit {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]planner.ReportedExit{}
	for id, e := range k.exits {
		if !k.sandboxes[id] {
			out[id] = e.ReportedExit
		}
	}
	return out
}

// podOf is the pod of the container id, or "" for an ID the last
// observation did not list as a container.
func (k *knownIDs) podOf(id string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pods[id]
}

// needsListed says whether a round must wait for the lists to show id's
// exit: a sandbox's, and a container's that shares the host's PID
// namespace (see planner.ReportedExit).
func (k *knownIDs) needsListed(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.ownPID[id]
}

// awaitingExits says an exit was reported that neither the last
// observation's lists showed nor its plan took from the report.
func (k *knownIDs) awaitingExits() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.exits {
		if !e.taken {
			return true
		}
	}
	return false
}

// markStale says a round is about to make objects the observation did not
// see.
func (k *knownIDs) markStale() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stale = true
}

func (k *knownIDs) isStale() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stale
}

func (k *knownIDs) add(id, addr string, sandbox bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ids[id] = addr
	if sandbox {
		k.sandboxes[id] = true
	}
}

func (k *knownIDs) isSandbox(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sandboxes[id]
}

func (k *knownIDs) lookup(id string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	addr, ok := k.ids[id]
	return addr, ok
}

// burst is one burst of the runtime's events about the stack.
type burst struct {
	why string // what happened first
	// exited are the pods of the containers whose exits were all the
	// burst told, when a plan can take each from the report (knownIDs.
	// needsListed): only those pods need listing again. Nil when the
	// burst told more, or of more than maxExitedPods pods.
	exited []string
}

// maxExitedPods bounds the pods a round lists one by one.
const maxExitedPods = 8

// runtimeEvents streams the runtime's events about the stack, each burst
// gathered into one message naming what happened. When the stream breaks
// (the runtime stopped) it reconnects with backoff, and says so; a
// reconnection is itself a reason for a round, since anything may have
// changed meanwhile.
func (w *watcher) runtimeEvents(ctx context.Context) <-chan burst {
	out := make(chan burst)
	go func() {
		wait := time.Second
		lost := false
		for ctx.Err() == nil {
			evs, errs := w.rt.Events(ctx)
			first := true
			var pending burst
			onlyExits := true  // the pending burst told only exits of known pods
			var exits []string // the pending burst's exits the lists must show
			var settle <-chan time.Time
		stream:
			for {
				select {
				case ev, ok := <-evs:
					if !ok {
						break stream
					}
					if first {
						first = false
						wait = time.Second
					}
					addr, ours := w.known.lookup(ev.ID)
					if !ours && w.known.isStale() {
						// A container made by the round under way can exit
						// before the next observation knows it.
						addr, ours = w.owner(ctx, ev.ID)
					}
					if !ours {
						continue
					}
					if ev.OOM {
						w.known.oomKilled(ev.ID)
					}
					// Only an exit the plan can take from the report lets the
					// round list just its pod.
					taken := false
					if ev.Exited {
						w.known.exited(ev)
						if taken = !w.known.needsListed(ev.ID); !taken {
							exits = append(exits, ev.ID)
						}
					}
					switch pod := w.known.podOf(ev.ID); {
					case !taken || pod == "":
						onlyExits = false
					case !slices.Contains(pending.exited, pod):
						pending.exited = append(pending.exited, pod)
					}
					if pending.why == "" {
						pending.why = ev.Topic + " " + addr
						settle = time.After(eventSettle)
					}
				case <-settle:
					w.awaitExits(ctx, exits)
					if !onlyExits || len(pending.exited) > maxExitedPods {
						pending.exited = nil
					}
					if !send(ctx, out, pending) {
						return
					}
					pending, settle, exits, onlyExits = burst{}, nil, nil, true
				case <-ctx.Done():
					return
				}
			}
			err := <-errs
			if ctx.Err() != nil {
				return
			}
			if lost {
				w.log.Debug("runtime event stream still down", "error", err.Error(), "retry_in", wait.String())
			} else {
				w.log.Warn("runtime event stream lost; reconnecting", "error", err.Error(), "retry_in", wait.String())
			}
			lost = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, retryMax)
			// Whether the stream is back is seen by the round this sends:
			// it plans only if the runtime answers.
			w.tel.reconnected()
			if !send(ctx, out, burst{why: "reconnect"}) {
				return
			}
		}
	}()
	return out
}

// awaitExits waits, for exitWait at most, until the runtime's state shows
// the exits its events reported: a busy runtime sends the event before
// its own state follows (at 500 pods, by 100-250 ms), and a round that
// looked before would see the container running still. Only the exits a
// plan cannot take from the report are waited for (knownIDs.needsListed).
func (w *watcher) awaitExits(ctx context.Context, ids []string) {
	deadline := time.Now().Add(exitWait)
	for _, id := range ids {
		for w.stillRunning(ctx, id) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(exitPoll):
			}
		}
	}
}

// stillRunning says the runtime lists id, one of the stack's containers
// or sandboxes, as running; an error says no, for the round to find out.
func (w *watcher) stillRunning(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if w.known.isSandbox(id) {
		st, err := w.rt.SandboxStatus(ctx, id)
		return err == nil && st.State == cri.PodSandboxState_SANDBOX_READY
	}
	st, err := w.rt.ContainerStatus(ctx, id)
	return err == nil && st.State == cri.ContainerState_CONTAINER_RUNNING
}

// statusTimeout bounds one status call of the event stream's helpers.
const statusTimeout = 5 * time.Second

// owner asks the runtime whether id is a container or sandbox of the
// stack, and remembers it if so.
func (w *watcher) owner(ctx context.Context, id string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	var addr string
	sandbox := false
	if st, err := w.rt.ContainerStatus(ctx, id); err == nil {
		if st.Labels[spec.LabelStack] == w.stack {
			addr = spec.ContainerAddress(st.Labels[spec.LabelPod], st.Labels[spec.LabelContainer]).String()
		}
	} else if sb, err := w.rt.SandboxStatus(ctx, id); err == nil && sb.Labels[spec.LabelStack] == w.stack {
		addr, sandbox = spec.PodAddress(sb.Labels[spec.LabelPod]).String(), true
	}
	if addr == "" {
		return "", false
	}
	w.known.add(id, addr, sandbox)
	return addr, true
}

func send[T any](ctx context.Context, ch chan<- T, msg T) bool {
	select {
	case ch <- msg:
		return true
	case <-ctx.Done():
		return false
	}
}

// syncProbes gives every running container that declares probes a worker,
// and takes workers away from containers that are gone.
func (w *watcher) syncProbes(ctx context.Context, cfg *spec.Config, snap *planner.Snapshot) {
	var want []probe.Container
	live := make(map[string]bool, len(snap.Pods))
	for _, p := range cfg.Pods {
		op := snap.Pods[p.Name]
		if op == nil {
			continue
		}
		live[op.Sandbox.Id] = true
		for _, c := range p.Containers {
			oc := op.Containers[c.Name]
			if len(c.Probes) == 0 || oc == nil || oc.Container.State != cri.ContainerState_CONTAINER_RUNNING {
				continue
			}
			want = append(want, probe.Container{Pod: p.Name, Name: c.Name, StartedAt: time.Unix(0, oc.Container.CreatedAt), Probes: c.Probes,
				Target: probe.Target{ContainerID: oc.Container.Id, Host: w.podIP(ctx, p, op.Sandbox.Id)}})
		}
	}
	for id := range w.podIPs {
		if !live[id] {
			delete(w.podIPs, id)
		}
	}
	w.probes.Sync(ctx, want)
}

// podIP is the address tcp and http checks dial: the pod's IP, asked of
// the runtime once per sandbox, or loopback on the host's network.
func (w *watcher) podIP(ctx context.Context, p *spec.Pod, sandboxID string) string {
	if p.HostNetwork {
		return "127.0.0.1"
	}
	if ip, ok := w.podIPs[sandboxID]; ok {
		return ip
	}
	st, err := w.rt.SandboxStatus(ctx, sandboxID)
	if err != nil {
		return ""
	}
	ip := st.GetNetwork().GetIp()
	w.podIPs[sandboxID] = ip
	return ip
}
