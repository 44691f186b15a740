// Package fake is an in-memory container runtime for unit tests. It keeps
// sandboxes, containers and images the way the CRI reports them, counts
// calls, and can be told to fail a method or to make containers exit.
package fake

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/runtime"
)

// Runtime is a fake CRI runtime. The zero value is not usable; call New.
type Runtime struct {
	mu         sync.Mutex
	clock      int64
	nextID     int
	Sandboxes  map[string]*cri.PodSandbox
	Containers map[string]*cri.Container
	Images     map[string]*cri.Image
	// Configs keeps the config each container was created with.
	Configs map[string]*cri.ContainerConfig
	// SandboxConfigs keeps the config each sandbox was run with.
	SandboxConfigs map[string]*cri.PodSandboxConfig
	// ExitCodes makes a container of that name exit with the code as soon
	// as it starts (for init containers and crash tests).
	ExitCodes map[string]int32
	// Errors makes the named method fail with the error; Once, only its
	// next call.
	Errors map[string]error
	Once   map[string]error
	// Stops records the grace of each StopContainer call, by container ID.
	Stops map[string]time.Duration
	// IPs are the sandboxes' pod IPs, by sandbox ID; RunSandbox assigns them.
	IPs map[string]string
	// MadeOn is the network configuration each sandbox was set up with (the
	// first of CNIConfDir); as the real runtime, StopSandbox tears its
	// network down with the configuration of the moment and fails when
	// that is another.
	MadeOn map[string][]byte
	// OrphanTasks are containers whose task runs while CRI reports them
	// exited (a start cut short): removing them, or their sandbox, fails as
	// containerd's does, until KillTask.
	OrphanTasks map[string]bool
	// ConfigPath is the registry config_path, CNIConfDir and CNIBinDirs
	// the CNI directories the runtime reports (see host.go).
	ConfigPath string
	CNIConfDir string
	CNIBinDirs []string
	// Remote is what registries say tags name, by reference.
	Remote map[string]string
	// Exec decides the exit code of ExecSync (probes' exec checks).
	Exec func(id string, cmd []string) int32
	// StopLag is how long StopContainer of a running container takes to
	// return after its task exited, as a busy runtime's does; the log then
	// has "StopContainer returned ID" when it does.
	StopLag time.Duration
	// ExitHandleLag makes StopContainer of a running container end its
	// task and return at once while CRI lists the container running for
	// that long, as containerd does when its event loop is behind and
	// its stop, retried after the shim closed, finds no task: removing the
	// container, or its sandbox, is refused meanwhile.
	ExitHandleLag time.Duration
	// labelled are the images LabelImage labelled.
	labelled map[string]bool
	// streams are the open event streams (see stream.go).
	streams []*stream
	// started and finished are the containers' start and exit times (fake
	// clock ticks), by container ID.
	started, finished map[string]int64
	// exitWaits are TaskExit's waiters, by container ID.
	exitWaits map[string][]chan error
	// lagging are the containers whose task ExitLagging ended while their
	// state still says running.
	lagging map[string]bool
	calls   map[string]int
	log     []string
}

// New returns an empty fake runtime holding the given images.
func New(images ...string) *Runtime {
	r := &Runtime{
		Sandboxes: map[string]*cri.PodSandbox{}, Containers: map[string]*cri.Container{},
		Images: map[string]*cri.Image{}, Configs: map[string]*cri.ContainerConfig{},
		SandboxConfigs: map[string]*cri.PodSandboxConfig{}, ExitCodes: map[string]int32{},
		Errors: map[string]error{}, Once: map[string]error{}, Stops: map[string]time.Duration{}, IPs: map[string]string{}, MadeOn: map[string][]byte{}, OrphanTasks: map[string]bool{},
		started: map[string]int64{}, finished: map[string]int64{}, exitWaits: map[string][]chan error{}, calls: map[string]int{},
		Remote: map[string]string{}, labelled: map[string]bool{},
	}
	for _, ref := range images {
		r.Images[ref] = &cri.Image{Id: "sha256:" + ref, RepoTags: []string{ref}}
	}
	return r
}

// Calls returns the number of calls per method.
func (r *Runtime) Calls() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.calls)
}

// Log returns the mutating calls in order, as "Method name".
func (r *Runtime) Log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

// ResetCalls forgets counted calls and the log.
func (r *Runtime) ResetCalls() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls, r.log = map[string]int{}, nil
}

// enter counts a call and returns its injected error; the caller holds mu.
func (r *Runtime) enter(method, subject string) error {
	r.calls[method]++
	if subject != "" {
		r.log = append(r.log, method+" "+subject)
	}
	if err, ok := r.Once[method]; ok {
		delete(r.Once, method)
		return err
	}
	if err, ok := r.Errors[method+" "+subject]; ok && subject != "" {
		return err // an error for one subject only: "PullImage ref"
	}
	return r.Errors[method]
}

// tick is the fake's clock: the wall clock, but strictly increasing, so
// that objects made one after another sort as made.
func (r *Runtime) tick() int64 {
	r.clock = max(r.clock+1, time.Now().UnixNano())
	return r.clock
}

func (r *Runtime) id(prefix string) string {
	r.nextID++
	return fmt.Sprintf("%s%04d", prefix, r.nextID)
}

func notFound(what, id string) error {
	return fmt.Errorf("%s %q: %w", what, id, errdefs.ErrNotFound)
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ListSandboxes implements the planner's Observer.
func (r *Runtime) ListSandboxes(_ context.Context, sel map[string]string) ([]*cri.PodSandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("ListPodSandbox", ""); err != nil {
		return nil, err
	}
	var out []*cri.PodSandbox
	for _, sb := range r.Sandboxes {
		if matches(sb.Labels, sel) {
			out = append(out, proto.Clone(sb).(*cri.PodSandbox)) // a runtime's answer is the caller's own
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out, nil
}

// ListContainers implements the planner's Observer.
func (r *Runtime) ListContainers(_ context.Context, sel map[string]string) ([]*cri.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("ListContainers", ""); err != nil {
		return nil, err
	}
	var out []*cri.Container
	for _, c := range r.Containers {
		if matches(c.Labels, sel) {
			out = append(out, proto.Clone(c).(*cri.Container))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out, nil
}

// ListImages implements the planner's Observer.
func (r *Runtime) ListImages(context.Context) ([]*cri.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("ListImages", ""); err != nil {
		return nil, err
	}
	var out []*cri.Image
	for _, img := range r.Images {
		out = append(out, proto.Clone(img).(*cri.Image))
	}
	return out, nil
}

// ContainerStatus reports state and exit code.
func (r *Runtime) ContainerStatus(_ context.Context, id string) (*cri.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("ContainerStatus", ""); err != nil {
		return nil, err
	}
	c := r.Containers[id]
	if c == nil {
		return nil, notFound("container", id)
	}
	st := &cri.ContainerStatus{Id: id, Metadata: c.Metadata, State: c.State, Labels: c.Labels, Annotations: c.Annotations,
		CreatedAt: c.CreatedAt, StartedAt: r.started[id], FinishedAt: r.finished[id], Image: c.Image, ImageRef: c.ImageRef}
	if cfg := r.Configs[id]; cfg != nil {
		st.Mounts, st.LogPath = cfg.Mounts, cfg.LogPath
	}
	if cfg := r.Configs[id]; cfg != nil && cfg.Linux != nil && cfg.Linux.Resources != nil {
		st.Resources = &cri.ContainerResources{Linux: cfg.Linux.Resources}
	}
	if c.State == cri.ContainerState_CONTAINER_EXITED {
		st.ExitCode = r.ExitCodes[c.Metadata.Name]
		st.Reason = "Completed"
		if st.ExitCode != 0 {
			st.Reason = "Error"
		}
	}
	return st, nil
}

// SandboxStatus reports a sandbox's state and pod IP.
func (r *Runtime) SandboxStatus(_ context.Context, id string) (*cri.PodSandboxStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("PodSandboxStatus", ""); err != nil {
		return nil, err
	}
	sb := r.Sandboxes[id]
	if sb == nil {
		return nil, notFound("sandbox", id)
	}
	st := &cri.PodSandboxStatus{Id: id, Metadata: sb.Metadata, State: sb.State, CreatedAt: sb.CreatedAt,
		Labels: sb.Labels, Annotations: sb.Annotations, RuntimeHandler: sb.RuntimeHandler}
	if sb.State == cri.PodSandboxState_SANDBOX_READY {
		st.Network = &cri.PodSandboxNetworkStatus{Ip: r.IPs[id]}
	}
	return st, nil
}

// Pull adds the image.
func (r *Runtime) Pull(_ context.Context, ref string, opts runtime.PullOptions) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("PullImage", ref); err != nil {
		return err
	}
	r.Images[ref] = &cri.Image{Id: "sha256:" + ref, RepoTags: []string{ref}}
	if len(opts.Labels) > 0 {
		r.labelled[ref] = true // stored with the image, as containerd does
	}
	return nil
}

// ImportImage adds the image as if imported from path.
func (r *Runtime) ImportImage(_ context.Context, path, ref, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("ImportImage", ref+" "+path); err != nil {
		return err
	}
	r.Images[ref] = &cri.Image{Id: "sha256:" + ref, RepoTags: []string{ref}}
	return nil
}

// PinImage sets the image's pinned flag.
func (r *Runtime) PinImage(_ context.Context, ref string, pin bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("PinImage", ref); err != nil {
		return err
	}
	img := r.Images[ref]
	if img == nil {
		return notFound("image", ref)
	}
	img.Pinned = pin
	return nil
}

// LabelImage notes the image as labelled, whatever the label.
func (r *Runtime) LabelImage(_ context.Context, ref, _, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("LabelImage", ref); err != nil {
		return err
	}
	r.labelled[ref] = true
	return nil
}

// DeleteImageName removes the image.
func (r *Runtime) DeleteImageName(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("DeleteImageName", name); err != nil {
		return err
	}
	delete(r.Images, name)
	return nil
}

// RunSandbox creates a ready sandbox.
func (r *Runtime) RunSandbox(_ context.Context, cfg *cri.PodSandboxConfig, handler string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("RunPodSandbox", cfg.Metadata.Name); err != nil {
		return "", err
	}
	for id, sb := range r.Sandboxes {
		// As containerd, which names a sandbox by all four.
		if md := sb.Metadata; md.Name == cfg.Metadata.Name && md.Namespace == cfg.Metadata.Namespace && md.Uid == cfg.Metadata.Uid && md.Attempt == cfg.Metadata.Attempt {
			return "", runtime.NameReserved("sandbox", md.Name, id)
		}
	}
	id := r.id("sb")
	r.Sandboxes[id] = &cri.PodSandbox{Id: id, Metadata: cfg.Metadata, State: cri.PodSandboxState_SANDBOX_READY,
		CreatedAt: r.tick(), Labels: cfg.Labels, Annotations: cfg.Annotations, RuntimeHandler: handler}
	r.SandboxConfigs[id] = cfg
	r.IPs[id] = fmt.Sprintf("10.88.0.%d", len(r.IPs)+2)
	r.MadeOn[id] = firstNetwork(r.CNIConfDir)
	return id, nil
}

// StopSandbox stops the sandbox and its containers.
func (r *Runtime) StopSandbox(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("StopPodSandbox", id); err != nil {
		return err
	}
	sb := r.Sandboxes[id]
	if sb == nil {
		return nil // CRI: stopping a missing sandbox is not an error
	}
	if now := firstNetwork(r.CNIConfDir); sb.State == cri.PodSandboxState_SANDBOX_READY && !bytes.Equal(now, r.MadeOn[id]) {
		return fmt.Errorf("failed to destroy network for sandbox %q: plugin type=%q failed (delete): the sandbox was set up with another network", id, "portmap")
	}
	sb.State = cri.PodSandboxState_SANDBOX_NOTREADY
	for cid, c := range r.Containers {
		if c.PodSandboxId == id && !r.lagging[cid] { // as CRI, which lists a lagging one running
			c.State = cri.ContainerState_CONTAINER_EXITED
		}
	}
	return nil
}

// RemoveSandbox removes the sandbox and its containers.
func (r *Runtime) RemoveSandbox(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("RemovePodSandbox", id); err != nil {
		return err
	}
	for cid, c := range r.Containers {
		if c.PodSandboxId == id && r.OrphanTasks[cid] {
			return runningTask(cid)
		}
		if c.PodSandboxId == id && r.lagging[cid] {
			return fmt.Errorf("failed to remove container %q: %w", cid, stillRunning(cid))
		}
	}
	delete(r.Sandboxes, id)
	for cid, c := range r.Containers {
		if c.PodSandboxId == id {
			delete(r.Containers, cid)
		}
	}
	return nil
}

// CreateContainer creates a container in CREATED state.
func (r *Runtime) CreateContainer(_ context.Context, podID string, cfg *cri.ContainerConfig, _ *cri.PodSandboxConfig) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("CreateContainer", cfg.Metadata.Name); err != nil {
		return "", err
	}
	if r.Sandboxes[podID] == nil {
		return "", notFound("sandbox", podID)
	}
	id := r.id("c")
	r.Containers[id] = &cri.Container{Id: id, PodSandboxId: podID, Metadata: cfg.Metadata, Image: cfg.Image,
		State: cri.ContainerState_CONTAINER_CREATED, CreatedAt: r.tick(), Labels: cfg.Labels, Annotations: cfg.Annotations}
	if img := r.Images[cfg.Image.GetImage()]; img != nil {
		r.Containers[id].ImageRef = img.Id
	}
	r.Configs[id] = cfg
	return id, nil
}

// StartContainer runs a container; one named in ExitCodes exits at once.
func (r *Runtime) StartContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.Containers[id]
	name := id
	if c != nil {
		name = c.Metadata.Name
	}
	if err := r.enter("StartContainer", name); err != nil {
		return err
	}
	if c == nil {
		return notFound("container", id)
	}
	c.State = cri.ContainerState_CONTAINER_RUNNING
	r.started[id] = r.tick()
	if _, exits := r.ExitCodes[c.Metadata.Name]; exits {
		c.State = cri.ContainerState_CONTAINER_EXITED
		r.finished[id] = r.tick()
	}
	return nil
}

// StopContainer marks the container exited and records the grace; with
// StopLag, it returns that much later; with ExitHandleLag, at once, the
// container marked exited that much later.
func (r *Runtime) StopContainer(_ context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	if err := r.enter("StopContainer", id); err != nil {
		r.mu.Unlock()
		return err
	}
	r.Stops[id] = grace
	if r.lagging[id] {
		// As containerd's: the task is gone, so there is nothing to stop,
		// while the state still says running.
		r.mu.Unlock()
		return nil
	}
	var lag time.Duration
	switch c := r.Containers[id]; {
	case c == nil || c.State == cri.ContainerState_CONTAINER_EXITED:
	case r.ExitHandleLag > 0:
		r.taskExited(id)
		r.lagBehind(id, r.ExitHandleLag, func() { r.stopped(id) })
	default:
		r.stopped(id)
		lag = r.StopLag
	}
	r.mu.Unlock()
	if lag > 0 {
		time.Sleep(lag)
		r.mu.Lock()
		r.log = append(r.log, "StopContainer returned "+id)
		r.mu.Unlock()
	}
	return nil
}

// TaskExit says when the container is no longer running; at once for one
// that is not.
func (r *Runtime) TaskExit(_ context.Context, id string) (<-chan error, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("TaskExit", ""); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	if c := r.Containers[id]; c == nil || c.State == cri.ContainerState_CONTAINER_EXITED {
		done <- nil
		return done, nil
	}
	r.exitWaits[id] = append(r.exitWaits[id], done)
	return done, nil
}

// taskExited tells TaskExit's waiters; r.mu is held.
func (r *Runtime) taskExited(id string) {
	for _, w := range r.exitWaits[id] {
		w <- nil
	}
	delete(r.exitWaits, id)
}

// UpdateResources replaces the container's recorded resources.
func (r *Runtime) UpdateResources(_ context.Context, id string, res *cri.LinuxContainerResources) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("UpdateContainerResources", id); err != nil {
		return err
	}
	cfg := r.Configs[id]
	if cfg == nil {
		return notFound("container", id)
	}
	cfg.Linux.Resources = res
	return nil
}

// RemoveContainer deletes the container.
func (r *Runtime) RemoveContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("RemoveContainer", id); err != nil {
		return err
	}
	if r.OrphanTasks[id] {
		return runningTask(id)
	}
	if r.lagging[id] {
		return stillRunning(id)
	}
	r.taskExited(id)
	delete(r.Containers, id)
	return nil
}

// stillRunning is CRI's refusal to remove a container it lists running,
// as the client gives it.
func stillRunning(id string) error {
	return fmt.Errorf("%w: failed to set removing state for container %q: container is still running, to stop first", runtime.ErrStillRunning, id)
}

// runningTask is containerd's refusal to remove a container whose task runs.
func runningTask(id string) error {
	return fmt.Errorf("failed to delete containerd container %q: cannot delete running task %s: %w", id, id, errdefs.ErrFailedPrecondition)
}

// KillTask ends an orphan task (see OrphanTasks).
func (r *Runtime) KillTask(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("KillTask", id); err != nil {
		return err
	}
	delete(r.OrphanTasks, id)
	return nil
}

// Fail makes method fail with err from now on; nil lets it succeed again.
func (r *Runtime) Fail(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.Errors, method)
		return
	}
	r.Errors[method] = err
}

// Heal lets containers named name start and keep running again, after
// Exit or ExitCodes made them crash.
func (r *Runtime) Heal(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ExitCodes, name)
}

// Exit makes a running container exit with code, as a crash would; its
// restarts exit with it too, until Heal.
func (r *Runtime) Exit(id string, code int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exited(id, code)
	r.emit(runtime.Event{Topic: "/tasks/exit", ID: id, Exited: true, ExitCode: code, ExitedAt: time.Unix(0, r.finished[id])})
}

// ExitLagging is Exit as a busy runtime reports it: the event at once,
// the container's state lag later.
func (r *Runtime) ExitLagging(id string, code int32, lag time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emit(runtime.Event{Topic: "/tasks/exit", ID: id, Exited: true, ExitCode: code, ExitedAt: time.Unix(0, r.tick())})
	r.lagBehind(id, lag, func() { r.exited(id, code) })
}

// lagBehind marks a container lagging: its task is gone, while its state
// says running until, lag later, handled runs; r.mu is held.
func (r *Runtime) lagBehind(id string, lag time.Duration, handled func()) {
	if r.lagging == nil {
		r.lagging = map[string]bool{}
	}
	r.lagging[id] = true
	time.AfterFunc(lag, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.lagging, id)
		handled()
	})
}

// stopped records that a stopped container exited; r.mu is held.
func (r *Runtime) stopped(id string) {
	if c := r.Containers[id]; c != nil {
		c.State = cri.ContainerState_CONTAINER_EXITED
		r.finished[id] = r.tick()
		r.taskExited(id)
	}
}

// exited records that a container exited with code; r.mu is held. One
// removed meanwhile is gone, exit and all.
func (r *Runtime) exited(id string, code int32) {
	c := r.Containers[id]
	if c == nil {
		return
	}
	c.State = cri.ContainerState_CONTAINER_EXITED
	r.ExitCodes[c.Metadata.Name] = code
	r.finished[id] = r.tick()
	r.taskExited(id)
}
