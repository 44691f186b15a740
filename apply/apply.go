// Package apply converges a stack: its Engine takes the stack lock,
// observes, diffs, checks the host, lets the caller review the plan, and
// executes it. berth plan, apply, destroy and every watch round go
// through it.
//
// Execute carries a plan out in a fixed order: first the pods the configuration dropped are
// destroyed; then, one dependency level at a time, every pod of the level
// is converged in parallel (bounded by Options.Parallelism). For one pod:
// images are pulled, a replaced pod's old sandbox is stopped and removed,
// the sandbox is run, init containers run to completion one after another,
// and then the other containers are created and started. A pod whose
// dependency failed is skipped, and so are its own dependents.
package apply

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/hostsfile"
	"github.com/berth-dev/berth/internal/tmpfs"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/criconfig"
	"github.com/berth-dev/berth/spec"
)

// Runtime is what apply needs from the container runtime.
type Runtime interface {
	Pull(ctx context.Context, ref string, opts runtime.PullOptions) error
	RunSandbox(ctx context.Context, cfg *cri.PodSandboxConfig, handler string) (string, error)
	StopSandbox(ctx context.Context, id string) error
	RemoveSandbox(ctx context.Context, id string) error
	CreateContainer(ctx context.Context, podID string, cfg *cri.ContainerConfig, pod *cri.PodSandboxConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	UpdateResources(ctx context.Context, id string, r *cri.LinuxContainerResources) error
	RemoveContainer(ctx context.Context, id string) error
	ContainerStatus(ctx context.Context, id string) (*cri.ContainerStatus, error)
	SandboxStatus(ctx context.Context, id string) (*cri.PodSandboxStatus, error)
	ImportImage(ctx context.Context, path, ref, platform string) error
	PinImage(ctx context.Context, ref string, pin bool) error
	LabelImage(ctx context.Context, ref, key, value string) error
	DeleteImageName(ctx context.Context, name string) error
	// CNI says which network configuration the runtime uses now.
	CNI(ctx context.Context) (runtime.CNI, error)
	// KillTask ends a container's task behind the CRI's back, for a start
	// cut short that left one running under a container CRI calls exited.
	KillTask(ctx context.Context, id string) error
	// TaskExit says when a container's task has exited, which comes before
	// StopContainer returns (runtime.Client.TaskExit).
	TaskExit(ctx context.Context, id string) (<-chan error, error)
}

// Options tune an apply.
type Options struct {
	Parallelism int
	// Revision, when set, labels what this apply makes with the commit its
	// configuration comes from (spec.LabelRevision).
	Revision string
	// LogRoot is where pod log directories are made; default criconfig.DefaultLogRoot.
	LogRoot string
	// TmpfsRoot is where containers' tmpfs mounts are made; default tmpfs.DefaultRoot.
	TmpfsRoot string
	// Pull says how pulls reach registries (credentials) and where their
	// progress goes; its CertsDir is the plan's, its Platform is ignored.
	Pull runtime.PullOptions
	// Report receives progress events; it is called from several goroutines
	// but never concurrently.
	Report func(Event)
	// WaitReady, when set, is called before a pod is created or replaced
	// for each pod it depends on, and must return once that pod is ready
	// (its readiness probes passed), or an error that skips the dependent.
	// Each dependency is waited for once per apply.
	WaitReady func(ctx context.Context, dep *spec.Pod) error
	// AwaitReady, for a start-first replace, returns once the new sandbox
	// of pod is ready to take the old one's place (its readiness probes
	// passed, its containers ran for min_ready), or an error that keeps
	// the old one. Nil takes the new pod as ready once its containers
	// started.
	AwaitReady func(ctx context.Context, pod *spec.Pod, sandboxID string) error
	// Serving, when set, marks which sandbox of a pod takes new
	// connections through forwards ("" removes the mark): a start-first
	// replace marks the old one, then switches to the new one.
	Serving func(pod, sandboxID string) error
}

// Status is where a step is.
type Status string

// The statuses an Event reports.
const (
	Started Status = "started"
	Done    Status = "done"
	Failed  Status = "failed"
	Skipped Status = "skipped"
	// Waiting says a pod waits for a dependency's readiness probes.
	Waiting Status = "waiting"
	// Stopping says running containers get their grace to stop; Detail
	// says how long at most.
	Stopping Status = "stopping"
)

// Event reports progress of one pod or container step.
type Event struct {
	Address spec.Address
	Action  planner.Action
	Status  Status
	Detail  string
	Err     error
	Elapsed time.Duration
	// Grace is, for Stopping, the longest a stop may wait before it kills.
	Grace time.Duration
}

// Result is the outcome of every pod step.
type Result struct {
	Steps []Event
}

// Err joins the errors of failed steps, or returns nil.
func (r *Result) Err() error {
	var errs []error
	for _, s := range r.Steps {
		// A skip is an error of its own only when it has a cause of its
		// own (a dependency not ready); others follow a failure.
		if s.Status == Failed || (s.Status == Skipped && s.Err != nil) {
			errs = append(errs, fmt.Errorf("%s: %w", s.Address, s.Err))
		}
	}
	return errors.Join(errs...)
}

type executor struct {
	rt    Runtime
	stack string
	opts  Options
	pulls singleflight.Group

	mu     sync.Mutex
	result Result
	failed map[string]bool // pod names that failed or were skipped
	// removed holds the outcome of removing replaced pods' old sandboxes
	// ahead of a network change.
	removed map[string]error
	// notes are what pods' steps did to recover from interrupted runs.
	notes map[string][]string
	// network is the configuration new sandboxes are made on, recorded in
	// each for its teardown.
	network []byte
	// desired are the plan's pods by name, and ready their readiness as
	// dependents waited for it.
	desired map[string]*spec.Pod
	ready   map[string]*readyWait
}

// Execute runs the plan. It returns when every step has finished, failed or
// been skipped; the caller should check Result.Err.
func Execute(ctx context.Context, plan *planner.Plan, rt Runtime, opts Options) *Result {
	if opts.Parallelism < 1 {
		opts.Parallelism = spec.DefaultParallelism
	}
	if opts.LogRoot == "" {
		opts.LogRoot = criconfig.DefaultLogRoot
	}
	if opts.TmpfsRoot == "" {
		opts.TmpfsRoot = tmpfs.DefaultRoot
	}
	opts.Pull.CertsDir = plan.CertsDir // where the plan found the mirrors it writes
	x := &executor{rt: rt, stack: plan.Stack, opts: opts, failed: map[string]bool{}, removed: map[string]error{}, notes: map[string][]string{},
		desired: map[string]*spec.Pod{}, ready: map[string]*readyWait{}, network: plan.PodNetwork}
	for _, pc := range plan.Pods {
		if pc.Desired != nil {
			x.desired[pc.Name] = pc.Desired
		}
	}

	var destroys, afterward []*planner.PodChange
	var levels [][]*planner.PodChange
	for _, pc := range plan.Pods {
		if pc.Action == planner.Destroy && x.servesUntilReplaced(pc) {
			afterward = append(afterward, pc)
			continue
		}
		if pc.Action == planner.Destroy {
			destroys = append(destroys, pc)
			continue
		}
		if !podHasWork(pc) {
			continue
		}
		for len(levels) <= pc.Level {
			levels = append(levels, nil)
		}
		levels[pc.Level] = append(levels[pc.Level], pc)
	}

	// The runtime tears a pod's network down with the configuration of the
	// moment, and sets new pods up with it: so the pods that go (destroyed,
	// or replaced) leave before the network files change, and the pods that
	// come are created after.
	var mirrors, netWrites, netRemovals []*planner.FileChange
	for _, fc := range plan.Files {
		switch {
		case fc.Kind != "network":
			mirrors = append(mirrors, fc)
		case fc.Action == planner.Destroy:
			netRemovals = append(netRemovals, fc)
		default:
			netWrites = append(netWrites, fc)
		}
	}
	var replaced []*planner.PodChange
	for _, level := range levels {
		for _, pc := range level {
			if pc.Action == planner.Replace {
				replaced = append(replaced, pc)
			}
		}
	}
	x.writeFiles(mirrors) // first: the pulls below may need them
	x.ensureImages(ctx, plan.Images)
	destroys = x.teardownOnTheirNetworks(ctx, plan, destroys, replaced)
	x.parallel(ctx, destroys, x.destroyPod)
	if failed := x.failedOf(destroys); len(failed) > 0 && len(netRemovals) > 0 {
		// A pod made on the runtime's own network before the stack's file
		// came, by a berth that did not record it, cannot be torn down while
		// the file is there: remove the file, then try again.
		x.writeFiles(netRemovals)
		netRemovals = nil
		x.retry(ctx, failed, x.destroyPod, "retried after removing the stack's network file, which it was not made on")
	}
	if len(netWrites) > 0 || len(netRemovals) > 0 {
		var g errgroup.Group
		g.SetLimit(x.opts.Parallelism)
		for _, pc := range replaced {
			x.mu.Lock()
			_, done := x.removed[pc.Name]
			x.mu.Unlock()
			if !done {
				g.Go(func() error { x.removeOld(ctx, pc); return nil })
			}
		}
		_ = g.Wait()
		x.writeFiles(netRemovals)
		x.writeFiles(netWrites)
		if plan.CNIConfDir != "" {
			x.awaitNetwork(ctx, plan.CNIConfDir) // new pods go on the new network
		}
	}
	for _, level := range levels {
		x.parallel(ctx, level, x.convergePod)
	}
	var going []*planner.PodChange
	for _, pc := range afterward {
		if x.failedOf([]*planner.PodChange{pc}) != nil {
			x.finish(pc, Event{Address: pc.Address, Action: pc.Action, Status: Skipped,
				Detail: "kept: it still serves, and the pod's new sandbox did not converge"})
			continue
		}
		going = append(going, pc)
	}
	x.parallel(ctx, going, x.destroyPod)
	return &x.result
}

// servesUntilReplaced says pc removes the older sandbox of a start-first
// pod that an interrupted replace left beside the new one: the old one
// may still serve, so it goes once the new one's containers run, as the
// replace would have had it, not before.
func (x *executor) servesUntilReplaced(pc *planner.PodChange) bool {
	desired := x.desired[pc.Name]
	return pc.Actual != nil && pc.SandboxID != pc.Actual.Sandbox.Id && desired != nil && desired.UpdateOrder == spec.StartFirst
}

// removeOld removes a replaced pod's old sandbox ahead of its level, and
// remembers the outcome for the pod's own step, which reports it.
func (x *executor) removeOld(ctx context.Context, pc *planner.PodChange) {
	err := x.removeSandbox(ctx, pc)
	x.mu.Lock()
	x.removed[pc.Name] = err
	x.mu.Unlock()
}

func podHasWork(pc *planner.PodChange) bool {
	if pc.Action.Changes() {
		return true
	}
	return pc.Action == planner.NoOp && slices.ContainsFunc(pc.Containers, func(cc *planner.ContainerChange) bool { return cc.Action.Changes() })
}

// parallel runs step for each pod change, at most Parallelism at a time,
// and records each outcome. A failed step does not stop the others.
func (x *executor) parallel(ctx context.Context, pods []*planner.PodChange, step func(context.Context, *planner.PodChange) (string, error)) {
	var g errgroup.Group
	g.SetLimit(x.opts.Parallelism)
	for _, pc := range pods {
		if dep := x.failedDependency(pc); dep != "" {
			x.finish(pc, Event{Address: pc.Address, Action: pc.Action, Status: Skipped, Detail: fmt.Sprintf("%s, which it depends on, did not converge", spec.PodAddress(dep))})
			continue
		}
		g.Go(func() error {
			if dep, err := x.waitDependencies(ctx, pc); err != nil {
				x.finish(pc, Event{Address: pc.Address, Action: pc.Action, Status: Skipped, Err: err,
					Detail: fmt.Sprintf("%s, which it depends on, is not ready: %v", spec.PodAddress(dep), err)})
				return nil
			}
			start := time.Now()
			x.report(Event{Address: pc.Address, Action: pc.Action, Status: Started})
			detail, err := step(ctx, pc)
			x.mu.Lock()
			if notes := x.notes[pc.Name]; len(notes) > 0 {
				detail = strings.TrimPrefix(detail+"; "+strings.Join(notes, "; "), "; ")
			}
			x.mu.Unlock()
			ev := Event{Address: pc.Address, Action: pc.Action, Status: Done, Detail: detail, Elapsed: time.Since(start)}
			if err != nil {
				ev.Status, ev.Err = Failed, err
			}
			x.finish(pc, ev)
			return nil
		})
	}
	_ = g.Wait() // steps never return errors; failures are recorded
}

// waitDependencies waits, before a pod starts, for the readiness of the
// dependencies the plan says it waits for; it returns the first that is
// not ready and why.
func (x *executor) waitDependencies(ctx context.Context, pc *planner.PodChange) (string, error) {
	if x.opts.WaitReady == nil {
		return "", nil
	}
	for _, dep := range pc.WaitFor {
		d := x.desired[dep]
		if d == nil {
			continue
		}
		x.mu.Lock()
		w := x.ready[dep]
		if w == nil {
			w = &readyWait{}
			x.ready[dep] = w
		}
		x.mu.Unlock()
		x.report(Event{Address: pc.Address, Action: pc.Action, Status: Waiting, Detail: spec.PodAddress(dep).String()})
		w.once.Do(func() { w.err = x.opts.WaitReady(ctx, d) })
		if w.err != nil {
			return dep, w.err
		}
	}
	return "", nil
}

// readyWait is one dependency's readiness, waited for once.
type readyWait struct {
	once sync.Once
	err  error
}

func (x *executor) failedDependency(pc *planner.PodChange) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if pc.Action == planner.Destroy {
		return ""
	}
	for _, dep := range pc.DependsOn {
		if x.failed[dep] {
			return dep
		}
	}
	return ""
}

func (x *executor) finish(pc *planner.PodChange, ev Event) {
	x.mu.Lock()
	if ev.Status == Failed || ev.Status == Skipped {
		x.failed[pc.Name] = true
	}
	x.result.Steps = append(x.result.Steps, ev)
	x.mu.Unlock()
	x.report(ev)
}

// failedOf are the pods among pcs whose step failed.
func (x *executor) failedOf(pcs []*planner.PodChange) []*planner.PodChange {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []*planner.PodChange
	for _, pc := range pcs {
		if x.failed[pc.Name] {
			out = append(out, pc)
		}
	}
	return out
}

// retry runs step again for pods whose step failed, replacing their
// failed outcome by the new one, and notes why.
func (x *executor) retry(ctx context.Context, pcs []*planner.PodChange, step func(context.Context, *planner.PodChange) (string, error), why string) {
	x.mu.Lock()
	again := map[spec.Address]bool{}
	for _, pc := range pcs {
		again[pc.Address] = true
		delete(x.failed, pc.Name)
		x.notes[pc.Name] = append(x.notes[pc.Name], why)
	}
	x.result.Steps = slices.DeleteFunc(x.result.Steps, func(ev Event) bool { return again[ev.Address] })
	x.mu.Unlock()
	x.parallel(ctx, pcs, step)
}

func (x *executor) report(ev Event) {
	if x.opts.Report == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.opts.Report(ev)
}

// ensureImages pulls or imports the image blocks' images and sets their
// pinned label.
func (x *executor) ensureImages(ctx context.Context, imgs []*planner.ImageChange) {
	for _, ic := range imgs {
		if !ic.Action.Changes() {
			continue
		}
		start := time.Now()
		x.report(Event{Address: ic.Address, Action: ic.Action, Status: Started})
		err := x.ensureImage(ctx, ic)
		ev := Event{Address: ic.Address, Action: ic.Action, Status: Done, Elapsed: time.Since(start)}
		if err != nil {
			ev.Status, ev.Err = Failed, err
		}
		x.mu.Lock()
		x.result.Steps = append(x.result.Steps, ev)
		x.mu.Unlock()
		x.report(ev)
	}
}

func (x *executor) ensureImage(ctx context.Context, ic *planner.ImageChange) error {
	if ic.Action == planner.Destroy {
		return x.rt.DeleteImageName(ctx, ic.Ref)
	}
	// The stack's mark, so that --prune-images finds the image again. A
	// pull stores it with the image, a write fewer on the pull's way.
	marked := false
	if ic.Action == planner.Create {
		if ic.Import != "" {
			if err := x.rt.ImportImage(ctx, ic.Import, ic.Ref, ic.Platform); err != nil {
				return err
			}
		} else {
			// Image steps run before any pod's, so no pod's pull of the
			// same image can be under way: this one is not shared.
			opts := x.opts.Pull
			opts.Platform = ic.Platform
			opts.Labels = map[string]string{spec.LabelStack: x.stack}
			if err := x.rt.Pull(ctx, ic.Ref, opts); err != nil {
				return err
			}
			marked = true
		}
	}
	if ic.Pin != nil {
		if err := x.rt.PinImage(ctx, ic.Ref, *ic.Pin); err != nil {
			return err
		}
	}
	if marked {
		return nil
	}
	return x.rt.LabelImage(ctx, ic.Ref, spec.LabelStack, x.stack)
}

// pull fetches an image once per apply, however many pods wait for it.
func (x *executor) pull(ctx context.Context, ref, platform string) error {
	_, err, _ := x.pulls.Do(ref, func() (any, error) {
		opts := x.opts.Pull
		opts.Platform = platform
		return nil, x.rt.Pull(ctx, ref, opts)
	})
	return err
}

// writeFiles writes or removes the stack's host files.
func (x *executor) writeFiles(files []*planner.FileChange) {
	for _, fc := range files {
		var err error
		switch fc.Action {
		case planner.Create, planner.Update:
			err = hostsfile.Write(fc.Path, fc.Content)
		case planner.Destroy:
			if fc.Kind == "network" {
				// The conf dir itself is the runtime's: only the file goes.
				if err = os.Remove(fc.Path); errors.Is(err, os.ErrNotExist) {
					err = nil
				}
			} else {
				err = hostsfile.Remove(fc.Path)
			}
		default:
			continue
		}
		ev := Event{Address: fc.Address, Action: fc.Action, Status: Done, Detail: fc.Path}
		if err != nil {
			ev.Status, ev.Err = Failed, err
		}
		x.mu.Lock()
		x.result.Steps = append(x.result.Steps, ev)
		x.mu.Unlock()
		x.report(ev)
	}
}

// destroyPod stops every container with its own grace, then the sandbox.
func (x *executor) destroyPod(ctx context.Context, pc *planner.PodChange) (string, error) {
	if err := x.removeSandbox(ctx, pc); err != nil {
		return "", err
	}
	return "", nil
}

func (x *executor) removeSandbox(ctx context.Context, pc *planner.PodChange) error {
	// StopPodSandbox kills containers without grace, so stop them first,
	// in parallel: two VMs in one pod should not take twice their grace.
	var g errgroup.Group
	if pc.Actual != nil {
		containers := slices.Collect(maps.Values(pc.Actual.Containers))
		if pc.Actual.Sandbox.Id != pc.SandboxID {
			// A duplicate: the older sandbox of an interrupted replace may
			// still serve, with a VM in it that needs its grace.
			containers = pc.Actual.DuplicateContainers[pc.SandboxID]
		}
		var longest time.Duration
		running := 0
		for _, oc := range containers {
			grace := stopGrace(pc, oc)
			if oc.Container.State == cri.ContainerState_CONTAINER_RUNNING {
				running++
				longest = max(longest, grace)
			}
			g.Go(func() error {
				err := x.rt.StopContainer(ctx, oc.Container.Id, grace)
				x.awaitListedExit(ctx, oc) // the sandbox's removal removes it
				return err
			})
		}
		if running > 0 {
			// A stop may take its whole grace: say so before waiting it out.
			x.report(Event{Address: pc.Address, Action: pc.Action, Status: Stopping, Detail: stoppingDetail(running, longest), Grace: longest})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := x.rt.StopSandbox(ctx, pc.SandboxID); err != nil {
		return err
	}
	err := x.rt.RemoveSandbox(ctx, pc.SandboxID)
	if errors.Is(err, runtime.ErrStillRunning) && pc.Actual != nil && pc.Actual.Sandbox.Id == pc.SandboxID {
		// As in removeContainer: a stop returned before CRI handled an
		// exit. Their exits are handled in turn: wait for each.
		for _, oc := range pc.Actual.Containers {
			x.awaitExitHandled(ctx, oc.Container.Id)
		}
		for _, c := range pc.Actual.Stale {
			x.awaitExitHandled(ctx, c.Id)
		}
		err = x.rt.RemoveSandbox(ctx, pc.SandboxID)
	}
	if isOrphanTask(err) && pc.Actual != nil && pc.Actual.Sandbox.Id == pc.SandboxID {
		// As in removeContainer: end the tasks a cut-short start left.
		var killErr error
		for _, oc := range pc.Actual.Containers {
			killErr = errors.Join(killErr, x.rt.KillTask(ctx, oc.Container.Id))
		}
		for _, c := range pc.Actual.Stale {
			killErr = errors.Join(killErr, x.rt.KillTask(ctx, c.Id))
		}
		x.note(pc, "ended a container task that a cut-short start left running")
		if err = killErr; err == nil {
			err = x.rt.RemoveSandbox(ctx, pc.SandboxID)
		}
	}
	if err != nil {
		return err
	}
	if pc.Actual == nil {
		return nil
	}
	if pc.SandboxID == pc.Actual.Sandbox.Id {
		return x.releaseHostDirs(pc.Actual.Sandbox.Metadata)
	}
	for _, dup := range pc.Actual.Duplicates {
		if dup.Id == pc.SandboxID {
			return x.releaseHostDirs(dup.Metadata) // its tmpfs mounts hold memory
		}
	}
	return nil
}

// releaseHostDirs removes what a removed sandbox had on the host: its
// tmpfs mounts and its log directory (and the stack's, once empty).
func (x *executor) releaseHostDirs(md *cri.PodSandboxMetadata) error {
	if md == nil {
		return nil
	}
	// The runtime's word for these names builds paths that are removed:
	// anything but a plain name (a sandbox berth did not make, with its
	// labels) leaves the host alone.
	if !pathComponent(md.Name) || !pathComponent(md.Uid) || md.Namespace != "" && !pathComponent(md.Namespace) {
		return fmt.Errorf("the runtime reports the sandbox's metadata as %q/%q/%q, which berth does not make; its host directories are left alone", md.Namespace, md.Name, md.Uid)
	}
	if err := tmpfs.Release(x.opts.TmpfsRoot, tmpfs.PodDir(x.opts.TmpfsRoot, x.stack, md.Name, md.Uid)); err != nil {
		return err
	}
	dir := criconfig.LogDir(x.opts.LogRoot, x.stack, &spec.Pod{Name: md.Name, Namespace: md.Namespace}, md.Uid)
	_ = os.RemoveAll(dir)
	_ = os.Remove(filepath.Dir(dir)) // the stack's directory, once its last pod is gone
	return nil
}

// pathComponent says name is one directory name: not empty, no slash, not
// "." or "..".
func pathComponent(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// stoppingDetail says what a stop may wait for.
func stoppingDetail(running int, grace time.Duration) string {
	if running > 1 {
		return fmt.Sprintf("%d containers, up to %s before they are killed", running, grace)
	}
	return fmt.Sprintf("its container, up to %s before it is killed", grace)
}

// stopGrace finds the grace the plan chose for an observed container.
func stopGrace(pc *planner.PodChange, oc *planner.ObservedContainer) time.Duration {
	for _, cc := range pc.Containers {
		if cc.ContainerID == oc.Container.Id {
			return time.Duration(cc.StopTimeout)
		}
	}
	if oc.Record != nil && oc.Record.StopTimeout > 0 {
		return time.Duration(oc.Record.StopTimeout)
	}
	return spec.DefaultStopTimeout
}

// convergePod carries out a create, a replace, or container-level changes.
func (x *executor) convergePod(ctx context.Context, pc *planner.PodChange) (string, error) {
	if err := x.pullImages(ctx, pc); err != nil {
		return "", err
	}
	switch pc.Action {
	case planner.Replace:
		if pc.StartFirst {
			return x.replaceStartFirst(ctx, pc)
		}
		x.mu.Lock()
		err, done := x.removed[pc.Name]
		x.mu.Unlock()
		if !done {
			err = x.removeSandbox(ctx, pc)
		}
		if err != nil {
			return "", fmt.Errorf("remove the old sandbox: %w", err)
		}
		fallthrough
	case planner.Create:
		podID, err := x.createPod(ctx, pc, nil)
		return "sandbox " + shortID(podID), err
	}
	err := x.updateContainers(ctx, pc)
	if errors.Is(err, runtime.ErrSandboxGone) && pc.Desired != nil {
		// The runtime lists the sandbox, but its task is gone (a destroy
		// killed halfway): nothing starts in it again, so the pod is made
		// anew, once.
		x.note(pc, "replaced the pod: %v", err)
		if err := x.removeSandbox(ctx, pc); err != nil {
			return "", fmt.Errorf("remove the broken sandbox: %w", err)
		}
		podID, err := x.createPod(ctx, pc, nil)
		return "sandbox " + shortID(podID), err
	}
	return "", err
}

// ownSandbox looks for sandbox id, which holds the name berth needs, and
// reports whether the runtime shows it and whether it is pod's of this
// stack. The create that holds the name may still be under way (its
// client died, the request did not), so it is waited for a while.
func (x *executor) ownSandbox(ctx context.Context, id, pod string) (found, own bool) {
	return x.whenThere(ctx, func() (bool, error) {
		st, err := x.rt.SandboxStatus(ctx, id)
		return err == nil && st.Labels[spec.LabelStack] == x.stack && st.Labels[spec.LabelPod] == pod, err
	})
}

// ownContainer is ownSandbox for a container of pod.
func (x *executor) ownContainer(ctx context.Context, id, pod, name string) (found, own bool) {
	return x.whenThere(ctx, func() (bool, error) {
		st, err := x.rt.ContainerStatus(ctx, id)
		return err == nil && st.Labels[spec.LabelStack] == x.stack && st.Labels[spec.LabelPod] == pod && st.Labels[spec.LabelContainer] == name, err
	})
}

// reservedWait bounds the wait for a create still under way.
const reservedWait = 5 * time.Second

// whenThere polls check while the object it looks at is not found, up to
// reservedWait; it reports whether the object was found, and check's
// verdict on it.
func (x *executor) whenThere(ctx context.Context, check func() (bool, error)) (found, ok bool) {
	deadline := time.Now().Add(reservedWait)
	interval := 50 * time.Millisecond
	for {
		ok, err := check()
		if !errdefs.IsNotFound(err) {
			return true, ok
		}
		if time.Now().After(deadline) {
			return false, false
		}
		select {
		case <-ctx.Done():
			return false, false
		case <-time.After(interval):
		}
		interval = min(interval*2, time.Second)
	}
}

// note records what a pod's step did beyond its plan to recover from an
// interrupted run; the step's event carries it.
func (x *executor) note(pc *planner.PodChange, format string, args ...any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.notes[pc.Name] = append(x.notes[pc.Name], fmt.Sprintf(format, args...))
}

func (x *executor) pullImages(ctx context.Context, pc *planner.PodChange) error {
	for _, cc := range pc.Containers {
		if !cc.Pull || !cc.Action.Changes() || cc.Action == planner.Destroy || cc.Action == planner.Stop {
			continue
		}
		if err := x.pull(ctx, cc.Image, ""); err != nil {
			return err
		}
	}
	return nil
}

// createPod makes the pod's sandbox and starts its containers, and returns
// the sandbox's ID, also when a container failed (the sandbox is there).
// A pod made beside its old sandbox (a start-first replace) takes another
// UID than the old one has, also when their specs hash the same, so the
// two never share a name, a log directory or tmpfs mounts.
func (x *executor) createPod(ctx context.Context, pc *planner.PodChange, beside *cri.PodSandbox) (string, error) {
	uid, attempt := podUID(x.stack, pc.Desired), uint32(0)
	if md := beside.GetMetadata(); md != nil && md.Uid == uid {
		attempt = md.Attempt + 1
		uid = podUIDAttempt(x.stack, pc.Desired, attempt)
	}
	logDir := criconfig.LogDir(x.opts.LogRoot, x.stack, pc.Desired, uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return "", fmt.Errorf("create the pod's log directory: %w", err)
	}
	podCfg := criconfig.Sandbox(x.stack, pc.Desired, uid, logDir)
	podCfg.Metadata.Attempt = attempt
	x.mu.Lock()
	if x.network != nil {
		podCfg.Annotations[spec.AnnotationNetwork] = string(x.network)
	}
	x.mu.Unlock()
	if x.opts.Revision != "" {
		podCfg.Labels[spec.LabelRevision] = x.opts.Revision
	}
	podID, err := x.rt.RunSandbox(ctx, podCfg, pc.Desired.Runtime)
	if reserved, ok := errors.AsType[*runtime.NameReservedError](err); ok {
		switch found, own := x.ownSandbox(ctx, reserved.ID, pc.Name); {
		case own:
			// An interrupted run's RunPodSandbox finished after berth
			// looked: that sandbox is this pod's, half made. It goes, and
			// the pod is made again, once.
			x.note(pc, "removed sandbox %s, left half made by an interrupted run", shortID(reserved.ID))
			if err := errors.Join(x.rt.StopSandbox(ctx, reserved.ID), x.rt.RemoveSandbox(ctx, reserved.ID)); err != nil {
				return "", err
			}
			podID, err = x.rt.RunSandbox(ctx, podCfg, pc.Desired.Runtime)
		case !found:
			// The name is held by nothing the runtime shows (a reservation
			// an interrupted run left behind): the pod takes a fresh name.
			x.note(pc, "the runtime holds the sandbox's name for %s, which it does not show; made the pod under another name", shortID(reserved.ID))
			podCfg.Metadata.Attempt++
			podID, err = x.rt.RunSandbox(ctx, podCfg, pc.Desired.Runtime)
		}
	}
	if err != nil {
		return "", err
	}
	for _, cc := range pc.Containers { // init containers first, in order
		if cc.Desired != nil && cc.Desired.Init {
			if err := x.startContainer(ctx, podID, podCfg, pc, cc); err != nil {
				return podID, err
			}
		}
	}
	for _, cc := range pc.Containers {
		if cc.Desired != nil && !cc.Desired.Init { // a container going has no spec
			if err := x.startContainer(ctx, podID, podCfg, pc, cc); err != nil {
				return podID, err
			}
		}
	}
	return podID, nil
}

// updateContainers applies container-level changes in a pod that stays.
func (x *executor) updateContainers(ctx context.Context, pc *planner.PodChange) error {
	sb := pc.Actual.Sandbox
	podCfg := criconfig.Sandbox(x.stack, pc.Desired, sb.Metadata.Uid, criconfig.LogDir(x.opts.LogRoot, x.stack, pc.Desired, sb.Metadata.Uid))
	// Init containers first: the others may rely on what they prepare.
	ordered := slices.Clone(pc.Containers)
	slices.SortStableFunc(ordered, func(a, b *planner.ContainerChange) int {
		return cmp.Compare(btoi(!a.Init), btoi(!b.Init))
	})
	initsDone := false
	for _, cc := range ordered {
		if cc.Action.Starts() && !initsDone {
			if err := x.awaitRunningInits(ctx, pc); err != nil {
				return err
			}
			initsDone = true
		}
		if cc.Action == planner.Update {
			if err := x.rt.UpdateResources(ctx, cc.ContainerID, criconfig.Resources(cc.Desired.Resources)); err != nil {
				return err
			}
			continue
		}
		if cc.Action == planner.Stop {
			if err := x.rt.StopContainer(ctx, cc.ContainerID, time.Duration(cc.StopTimeout)); err != nil {
				return err
			}
			continue
		}
		if old := succeeded(pc, cc); old != nil {
			if err := x.succeed(ctx, sb.Id, podCfg, pc, cc, old); err != nil {
				return err
			}
			continue
		}
		if cc.Action == planner.Destroy || cc.Action == planner.Replace || cc.Action == planner.Restart {
			if oc := pc.Actual.Containers[cc.Name]; oc != nil && oc.Container.Id == cc.ContainerID {
				if oc.Container.State == cri.ContainerState_CONTAINER_RUNNING {
					x.report(Event{Address: cc.Address, Action: cc.Action, Status: Stopping, Detail: stoppingDetail(1, time.Duration(cc.StopTimeout)), Grace: time.Duration(cc.StopTimeout)})
				}
				x.awaitListedExit(ctx, oc)
			}
			if err := x.removeContainer(ctx, cc.ContainerID, time.Duration(cc.StopTimeout)); err != nil {
				return err
			}
			if err := tmpfs.Release(x.opts.TmpfsRoot, x.tmpfsDir(podCfg, cc.Name)); err != nil {
				return err
			}
		}
		if cc.Action.Starts() {
			if err := x.startContainer(ctx, sb.Id, podCfg, pc, cc); err != nil {
				return err
			}
		}
	}
	return nil
}

// awaitRunningInits waits for the pod's init containers that an earlier,
// interrupted apply started and that still run: the containers about to
// start may rely on what they prepare.
func (x *executor) awaitRunningInits(ctx context.Context, pc *planner.PodChange) error {
	for _, cc := range pc.Containers {
		oc := pc.Actual.Containers[cc.Name]
		if !cc.Init || cc.Action != planner.NoOp || oc == nil || oc.Container.State != cri.ContainerState_CONTAINER_RUNNING {
			continue
		}
		x.note(pc, "waited for init container %s, which an earlier apply started", cc.Name)
		st, err := x.waitExit(ctx, oc.Container.Id)
		if err != nil {
			return fmt.Errorf("init container %s: %w", cc.Name, err)
		}
		if st.ExitCode != 0 {
			return fmt.Errorf("init container %s exited with code %d%s; the pod's other containers were not started", cc.Name, st.ExitCode, messageSuffix(st))
		}
	}
	return nil
}

// succeeded is the container that a restart or replace starts the next
// attempt of before removing it, when that may be: the new attempt has a
// name of its own, and nothing of the old one runs by the time it starts:
// it exited, or it is stopped first and ran in a PID namespace of its own
// (the kernel ends every process in it before its init's exit is told).
// nil when the change goes the plain way: stop, remove, then start.
func succeeded(pc *planner.PodChange, cc *planner.ContainerChange) *planner.ObservedContainer {
	old := pc.Actual.Containers[cc.Name]
	if cc.Action != planner.Restart && cc.Action != planner.Replace || old == nil || old.Container.Id != cc.ContainerID || old.Attempt() == cc.Attempt {
		return nil
	}
	ownPID := pc.Actual.Record != nil && !pc.Actual.Record.HostPID
	if old.Exited() || ownPID && old.Container.State == cri.ContainerState_CONTAINER_RUNNING {
		return old
	}
	return nil
}

// succeed starts the next attempt of a container as soon as the old one
// no longer runs, then removes the old one. Both CRI's stop and its
// removal wait for the runtime to have handled the exit, and the removal
// deletes the old attempt's files, which the new one need not wait for
// (with 500 pods, 100-250 ms and 30-50 ms): the wait is containerd's own
// for the task. An apply cut short before the removal leaves an older
// attempt, which the next plan removes.
func (x *executor) succeed(ctx context.Context, podID string, podCfg *cri.PodSandboxConfig, pc *planner.PodChange, cc *planner.ContainerChange, old *planner.ObservedContainer) error {
	grace := time.Duration(cc.StopTimeout)
	var stop *stopping
	if !old.Exited() {
		x.report(Event{Address: cc.Address, Action: cc.Action, Status: Stopping, Detail: stoppingDetail(1, grace), Grace: grace})
		stop = x.stop(ctx, cc.ContainerID, grace)
		if err := stop.awaitTask(); err != nil {
			return err
		}
	}
	err := x.startContainer(ctx, podID, podCfg, pc, cc)
	if stop != nil {
		err = errors.Join(err, stop.await())
	}
	if err != nil {
		return err
	}
	x.awaitListedExit(ctx, old)
	if err := x.removeContainer(ctx, cc.ContainerID, grace); err != nil {
		return err
	}
	return tmpfs.Release(x.opts.TmpfsRoot, tmpfs.AttemptDir(x.tmpfsDir(podCfg, cc.Name), old.Attempt()))
}

// awaitListedExit waits, for reportedExitWait at most, until CRI shows
// the exit of a container whose exit the plan took from the runtime's
// report: until CRI has handled it, CRI refuses to remove the container
// ("still running") while its stop finds no task to stop. Past the wait,
// the removal says what is wrong.
func (x *executor) awaitListedExit(ctx context.Context, oc *planner.ObservedContainer) {
	if oc.ExitReported {
		x.awaitExitHandled(ctx, oc.Container.Id)
	}
}

// awaitExitHandled waits, for reportedExitWait at most, until CRI lists a
// container exited.
func (x *executor) awaitExitHandled(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, reportedExitWait)
	defer cancel()
	_, _ = x.waitExit(ctx, id)
}

// stopping is a container's stop under way in the background.
type stopping struct {
	exited  <-chan error // the task exited (nil), as containerd tells it
	stopped chan error   // the stop returned, with its error
	err     error
	done    bool
}

// stop starts stopping a container. containerd tells the task's exit
// before the CRI's stop returns; if it cannot, the stop's return stands
// for the exit. The wait lasts as long as the stop may (its grace, and
// the runtime's time to answer), not a call's usual deadline.
func (x *executor) stop(ctx context.Context, id string, grace time.Duration) *stopping {
	waitCtx, cancel := context.WithTimeout(ctx, grace+runtime.DefaultTimeout)
	s := &stopping{stopped: make(chan error, 1)}
	if exited, err := x.rt.TaskExit(waitCtx, id); err == nil {
		s.exited = exited
	}
	go func() {
		defer cancel()
		s.stopped <- x.rt.StopContainer(ctx, id, grace)
	}()
	return s
}

// awaitTask returns once the container's task has exited, or its stop
// has failed.
func (s *stopping) awaitTask() error {
	select {
	case err := <-s.exited: // a nil channel, when containerd could not say, never is
		if err == nil {
			return nil
		}
		return s.await()
	case s.err = <-s.stopped:
		s.done = true
		return s.err
	}
}

// await returns once the stop has returned, with its error.
func (s *stopping) await() error {
	if !s.done {
		s.err, s.done = <-s.stopped, true
	}
	return s.err
}

// removeContainer stops a container with its grace and removes it. A
// container still "starting" (its previous apply died mid-start) is waited
// for, up to startingWait, since the runtime refuses to touch it until then.
// One whose stop returned before CRI handled its exit is removed once CRI
// lists the exit.
func (x *executor) removeContainer(ctx context.Context, id string, grace time.Duration) error {
	deadline := time.Now().Add(startingWait)
	interval := 100 * time.Millisecond
	for {
		err := x.rt.StopContainer(ctx, id, grace)
		if err == nil {
			err = x.rt.RemoveContainer(ctx, id)
		}
		if errors.Is(err, runtime.ErrStillRunning) {
			x.awaitExitHandled(ctx, id)
			err = x.rt.RemoveContainer(ctx, id)
		}
		if isOrphanTask(err) {
			// A start cut short left its task running under a container
			// the CRI calls exited: end the task, then remove, once.
			if err = x.rt.KillTask(ctx, id); err == nil {
				err = x.rt.RemoveContainer(ctx, id)
			}
			return err
		}
		if !errors.Is(err, runtime.ErrStarting) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*2, 2*time.Second)
	}
}

// isOrphanTask says the runtime refused a removal because containerd still
// runs a task under the container.
func isOrphanTask(err error) bool {
	return errdefs.IsFailedPrecondition(err) && strings.Contains(err.Error(), "running task")
}

// startingWait bounds how long removeContainer waits for a start to finish.
const startingWait = time.Minute

// reportedExitWait bounds the wait for CRI to show an exit the runtime
// reported (with 500 pods it lags by 100-250 ms).
const reportedExitWait = 10 * time.Second

// startContainer creates and starts a container; an init container is
// waited for until it exits, and must exit 0.
func (x *executor) startContainer(ctx context.Context, podID string, podCfg *cri.PodSandboxConfig, pc *planner.PodChange, cc *planner.ContainerChange) error {
	for _, m := range cc.Desired.Mounts {
		if !m.Create {
			continue
		}
		if _, err := os.Stat(m.HostPath); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(m.HostPath, 0o755); err != nil {
				return fmt.Errorf("container %s: create the source of mount %s: %w", cc.Name, m.ContainerPath, err)
			}
		}
	}
	host := criconfig.Host{DevicePresent: deviceExists, TmpfsDirs: map[string]string{}}
	for i, t := range cc.Desired.Tmpfs {
		dir, err := tmpfs.Mount(x.tmpfsDir(podCfg, cc.Name), cc.Attempt, i, t.Size)
		if err != nil {
			return fmt.Errorf("container %s: %w", cc.Name, err)
		}
		host.TmpfsDirs[t.Path] = dir
	}
	cfg := criconfig.Container(x.stack, pc.Desired, cc.Desired, cc.Attempt, host)
	if x.opts.Revision != "" {
		cfg.Labels[spec.LabelRevision] = x.opts.Revision
	}
	if cc.AttemptBase > 0 {
		cfg.Labels[spec.LabelAttemptBase] = strconv.FormatUint(uint64(cc.AttemptBase), 10)
	}
	id, err := x.rt.CreateContainer(ctx, podID, cfg, podCfg)
	if reserved, ok := errors.AsType[*runtime.NameReservedError](err); ok {
		switch found, own := x.ownContainer(ctx, reserved.ID, pc.Name, cc.Name); {
		case own:
			// The same for a container: made by an interrupted run after
			// berth looked, and never started.
			x.note(pc, "removed container %s, left by an interrupted run", shortID(reserved.ID))
			if err := x.removeContainer(ctx, reserved.ID, time.Duration(cc.StopTimeout)); err != nil {
				return err
			}
			id, err = x.rt.CreateContainer(ctx, podID, cfg, podCfg)
		case !found:
			x.note(pc, "the runtime holds container %s's name for %s, which it does not show; made it as the next attempt", cc.Name, shortID(reserved.ID))
			cfg.Metadata.Attempt++
			id, err = x.rt.CreateContainer(ctx, podID, cfg, podCfg)
		}
	}
	if err != nil {
		_ = tmpfs.Release(x.opts.TmpfsRoot, x.tmpfsDir(podCfg, cc.Name))
		return err
	}
	if err := x.rt.StartContainer(ctx, id); err != nil {
		return fmt.Errorf("container %s: %w", cc.Name, err)
	}
	if !cc.Desired.Init {
		return nil
	}
	st, err := x.waitExit(ctx, id)
	if err != nil {
		return fmt.Errorf("init container %s: %w", cc.Name, err)
	}
	if st.ExitCode != 0 {
		return fmt.Errorf("init container %s exited with code %d%s; the pod's other containers were not started", cc.Name, st.ExitCode, messageSuffix(st))
	}
	return nil
}

// waitExit polls until a container exits. CRI has no per-container wait, so
// the interval grows from 50ms to 1s to stay cheap on long init steps.
func (x *executor) waitExit(ctx context.Context, id string) (*cri.ContainerStatus, error) {
	interval := 50 * time.Millisecond
	for {
		st, err := x.rt.ContainerStatus(ctx, id)
		if err != nil {
			return nil, err
		}
		if st.State == cri.ContainerState_CONTAINER_EXITED {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*2, time.Second)
	}
}

func messageSuffix(st *cri.ContainerStatus) string {
	if st.Message != "" {
		return ": " + st.Message
	}
	if st.Reason != "" && st.Reason != "Error" {
		return " (" + st.Reason + ")"
	}
	return ""
}

// podUID identifies one incarnation of a pod: the same stack, pod and
// spec give the same UID, so the runtime's name reservation catches a
// sandbox an interrupted run is still creating (a random UID would let a
// rerun make a second one beside it). A changed spec is a new UID, so a
// replaced pod's old sandbox never holds its successor's name.
func podUID(stack string, p *spec.Pod) string {
	sum := sha256.Sum256([]byte(stack + "\x00" + p.Name + "\x00" + p.Hash()))
	return hex.EncodeToString(sum[:16])
}

// podUIDAttempt is podUID for the attempt-th incarnation of the same spec
// beside an older one.
func podUIDAttempt(stack string, p *spec.Pod, attempt uint32) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", stack, p.Name, p.Hash(), attempt))
	return hex.EncodeToString(sum[:16])
}

func shortID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tmpfsDir is where a container's tmpfs mounts live on the host.
func (x *executor) tmpfsDir(podCfg *cri.PodSandboxConfig, container string) string {
	md := podCfg.Metadata
	return tmpfs.ContainerDir(x.opts.TmpfsRoot, x.stack, md.Name, md.Uid, container)
}

// deviceExists reports whether a host device node exists.
func deviceExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
