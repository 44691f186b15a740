package planner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sync/errgroup"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/hostsfile"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/criconfig"
	"github.com/berth-dev/berth/spec"
)

// Observer is what planning needs from the runtime: a few list calls and,
// only for exited containers, their status.
type Observer interface {
	ListSandboxes(ctx context.Context, labels map[string]string) ([]*cri.PodSandbox, error)
	ListContainers(ctx context.Context, labels map[string]string) ([]*cri.Container, error)
	ListImages(ctx context.Context) ([]*cri.Image, error)
	ContainerStatus(ctx context.Context, id string) (*cri.ContainerStatus, error)
}

// Snapshot is the actual state of one stack, read from the runtime.
type Snapshot struct {
	Stack string
	// Pods by name. Each holds the newest sandbox labelled with that name.
	Pods map[string]*ObservedPod
	// Images holds every reference (tags, digests, IDs) the runtime has.
	Images map[string]bool
	// Pinned says, by name, which images carry the pinned label that keeps
	// the runtime's GC away. CRI tells it per image ID only, so the caller
	// fills it from containerd when image blocks need it.
	Pinned map[string]bool
	// StackImages are the images the stack's image blocks made, read only
	// when pruning.
	StackImages []string
	// ArchiveDigests are the manifest digests of image blocks' archives.
	ArchiveDigests map[string]string
	// RepoDigests are each image's "repo@digest" names, by image ID.
	RepoDigests map[string][]string
	// tagged maps each tag to its image ID.
	tagged map[string]string
	// RemoteDigests are what the registries say the pull = "always" tags
	// name now, by normalised reference; filled by the caller.
	RemoteDigests map[string]string
	// Unpullable are the images apply would pull, because the runtime
	// lacks them, that the registry did not give: why, by reference.
	Unpullable map[string]string
	// CNIConfDir is where the runtime reads pod networks; Networks are the
	// configurations found there, in lexical order.
	CNIConfDir string
	Networks   []*NetworkFile
	// CNIBinDirs are where the runtime finds CNI plugins; CNIErr is why the
	// runtime could not say, if it could not.
	CNIBinDirs []string
	CNIErr     error
	// PodNetwork is the configuration the runtime sets pods up and tears
	// them down with now (nil when unknown).
	PodNetwork []byte
	// Warnings are what observing could not find out, such as a registry
	// that did not answer.
	Warnings []string
	// CertsDir is where the runtime reads hosts.toml files; "" for none.
	CertsDir string
	// Mirrors are the hosts.toml files found there, by host.
	Mirrors map[string]*hostsfile.File

	// listed are the lists the snapshot was built from, kept for an
	// observation that lists only some pods afresh (StartPodReads); fresh
	// are those pods when this one was such (nil: it listed every pod).
	listed lists
	fresh  map[string]bool
}

// ObservedPod is a sandbox the stack owns, with its containers.
type ObservedPod struct {
	Name    string
	Sandbox *cri.PodSandbox
	// Record is the applied spec from the sandbox's annotation; nil when the
	// annotation is missing or unreadable.
	Record *spec.PodRecord
	Hash   string
	// Containers by name, newest attempt of each.
	Containers map[string]*ObservedContainer
	// Stale are older attempts of containers, left behind by restarts or
	// interrupted applies.
	Stale []*cri.Container
	// Duplicates are older sandboxes carrying the same pod name, and
	// DuplicateContainers their containers, by sandbox ID: they go with
	// their sandbox, each with the grace it was made with.
	Duplicates          []*cri.PodSandbox
	DuplicateContainers map[string][]*ObservedContainer
}

// ObservedContainer is a container the stack owns.
type ObservedContainer struct {
	Name      string
	Container *cri.Container
	Record    *spec.ContainerRecord
	Hash      string
	// ExitCode, Reason and the start and finish times are read only for
	// exited containers.
	ExitCode   int32
	Reason     string
	StartedAt  time.Time
	FinishedAt time.Time
	// Status is the detailed status, when Observe read it (see above).
	Status *cri.ContainerStatus
	// Resources are the live limits, read only when ResourcesKnown (see
	// Observe); otherwise the record's are current.
	Resources      *spec.ResourcesRecord
	ResourcesKnown bool
	// ExitReported: the container counts as exited on the runtime's
	// report of its exit, which its lists did not show yet (see
	// takeReportedExits); ExitCode and FinishedAt are the report's.
	ExitReported bool
}

// Attempt is the container's CRI attempt number.
func (c *ObservedContainer) Attempt() uint32 {
	return c.Container.GetMetadata().GetAttempt()
}

// AttemptBase is the attempt its configuration first ran as (see
// spec.LabelAttemptBase); 0 for a container made before berth said.
func (c *ObservedContainer) AttemptBase() uint32 {
	base, err := strconv.ParseUint(c.Container.Labels[spec.LabelAttemptBase], 10, 32)
	if err != nil || uint32(base) > c.Attempt() {
		return 0
	}
	return uint32(base)
}

// Restarts is how often the container was started again since its
// configuration last changed.
func (c *ObservedContainer) Restarts() uint32 {
	return c.Attempt() - c.AttemptBase()
}

// exitFrom reads an exited container's exit from its status.
func (c *ObservedContainer) exitFrom(st *cri.ContainerStatus) {
	c.Status, c.ExitCode, c.Reason = st, st.ExitCode, st.Reason
	c.StartedAt, c.FinishedAt = unixNano(st.StartedAt), unixNano(st.FinishedAt)
}

// Exited reports whether the container has stopped running.
func (c *ObservedContainer) Exited() bool {
	return c.Container.State == cri.ContainerState_CONTAINER_EXITED
}

// HostObserver is what a whole observation needs: the runtime's workloads,
// and where it reads registry and network configuration, which images it
// pins, and what registries say tags name now.
type HostObserver interface {
	Observer
	RegistryConfigPath(ctx context.Context) (string, error)
	CNI(ctx context.Context) (runtime.CNI, error)
	ImagesLabelled(ctx context.Context, key, value string) ([]string, error)
	PinnedImages(ctx context.Context) (map[string]bool, error)
	RemoteDigest(ctx context.Context, ref, certsDir string, creds runtime.Credentials) (string, error)
}

// Observe is the one observation of a stack that plans are made from: its
// workloads (ObserveWorkloads), the mirrors' hosts.toml files and the
// networks' conflists in the directories the runtime reads (or the berth
// block names), the image blocks' archives and pins, the stack's images
// when pruning, and what registries say the pull = "always" tags name now.
// Nothing after it reads the host or the runtime until apply.
func Observe(ctx context.Context, rt HostObserver, cfg *spec.Config, opts Options) (*Snapshot, error) {
	reads := opts.Reads
	if !reads.serve(cfg) {
		reads = StartReads(ctx, rt, cfg.Berth.Stack, cfg.Berth.CertsDir)
	}
	<-reads.listed
	if reads.listErr != nil {
		return nil, reads.listErr
	}
	snap, err := observeListed(ctx, rt, cfg, recordDecoder{opts.Records}, reads.lists)
	if err == nil {
		snap.fresh = reads.fresh
		err = takeReportedExits(ctx, rt, snap, opts.Watch, reads.statuses)
	}
	if err != nil {
		return nil, err
	}
	<-reads.done
	certsDir := cfg.Berth.CertsDir
	if certsDir == "" {
		if reads.configErr != nil {
			return nil, reads.configErr
		}
		certsDir = runtime.CertsDir(reads.configPath)
	}
	// A registry takes milliseconds to answer, about as long as the rest of
	// the observation: the requests go out now and are waited for last.
	answers := askRegistries(ctx, rt, cfg, snap, certsDir, opts)
	defer answers.wait()
	cni, cniErr := reads.cni, reads.cniErr
	if err := ObserveMirrors(snap, certsDir); err != nil {
		return nil, err
	}
	if opts.PruneImages {
		if snap.StackImages, err = rt.ImagesLabelled(ctx, spec.LabelStack, cfg.Berth.Stack); err != nil {
			return nil, err
		}
	}
	if len(cfg.Images) > 0 {
		ObserveArchives(snap, cfg.Images)
		if snap.Pinned, err = rt.PinnedImages(ctx); err != nil {
			return nil, err
		}
	}
	confDir := cni.ConfDir
	if cfg.Berth.CNIConfDir != "" {
		confDir = cfg.Berth.CNIConfDir
	}
	snap.CNIBinDirs, snap.CNIErr, snap.PodNetwork = cni.BinDirs, cniErr, cni.PodNetwork
	if err := ObserveNetworks(snap, confDir); err != nil {
		return nil, err
	}
	answers.into(snap)
	return snap, nil
}

// askRegistries asks the registries, one manifest request per image and
// several at once, through the same mirrors and credentials as a pull:
// what the tags of pull = "always" containers and image blocks name now,
// and whether the images apply would pull because the runtime lacks them
// exist. It decides what to ask from snap's images at once and asks in the
// background; registryAnswers.into waits and writes the answers. A tag that
// cannot be checked is a warning: the plan then keeps what runs; an image
// that cannot be pulled is one too, or an error under Options.StrictImages
// (see diffImages). Options.Offline asks nothing.
func askRegistries(ctx context.Context, rt HostObserver, cfg *spec.Config, snap *Snapshot, certsDir string, opts Options) *registryAnswers {
	a := &registryAnswers{always: map[string]bool{}, done: make(chan struct{})}
	if opts.Offline || opts.Destroy { // a destroy pulls nothing
		close(a.done)
		return a
	}
	missing := map[string]bool{}
	blocks := map[string]*spec.Image{}
	for _, img := range cfg.Images {
		blocks[img.Ref] = img
		switch {
		case img.Source != "" || img.Pull == spec.PullNever:
		case img.Pull == spec.PullAlways:
			a.always[img.Ref] = true
		case !snap.HasImage(img.Ref):
			missing[img.Ref] = true
		}
	}
	for _, p := range cfg.Pods {
		for _, c := range p.Containers {
			ref := NormalizeImage(c.Image)
			switch {
			case c.Pull == spec.PullAlways:
				a.always[ref] = true
			case c.Pull == spec.PullNever || snap.HasImage(c.Image):
			case blocks[ref] != nil && blocks[ref].Source != "": // imported, not pulled
			default:
				missing[ref] = true
			}
		}
	}
	union := maps.Clone(a.always)
	maps.Copy(union, missing)
	a.refs = slices.Sorted(maps.Keys(union))
	a.digests, a.errs = make([]string, len(a.refs)), make([]error, len(a.refs))
	creds := criconfig.HostCredentials(cfg.Registries)
	ctx, a.cancel = context.WithCancel(ctx)
	go func() {
		defer close(a.done)
		var g errgroup.Group
		g.SetLimit(registryLookups)
		for i, ref := range a.refs {
			g.Go(func() error {
				a.digests[i], a.errs[i] = rt.RemoteDigest(ctx, ref, certsDir, creds)
				return nil
			})
		}
		_ = g.Wait()
	}()
	return a
}

// registryAnswers are the registries' answers to askRegistries, in the
// order of refs, once done is closed.
type registryAnswers struct {
	refs    []string
	always  map[string]bool // the refs asked for what their tags name now
	digests []string
	errs    []error
	done    chan struct{}
	cancel  context.CancelFunc // nil when nothing was asked
}

// wait ends the requests still out, for an observation that failed
// meanwhile, and returns once none is.
func (a *registryAnswers) wait() {
	if a.cancel != nil {
		a.cancel()
	}
	<-a.done
}

// into waits for the answers and writes them into snap.
func (a *registryAnswers) into(snap *Snapshot) {
	<-a.done
	snap.RemoteDigests, snap.Unpullable = map[string]string{}, map[string]string{}
	for i, ref := range a.refs {
		switch {
		case a.errs[i] == nil:
			snap.RemoteDigests[ref] = a.digests[i]
		case a.always[ref]:
			snap.Warnings = append(snap.Warnings, fmt.Sprintf("cannot check whether %s names a newer image: %v", ref, a.errs[i]))
		default:
			snap.Unpullable[ref] = a.errs[i].Error()
		}
	}
}

// registryLookups bounds the registry requests a plan makes at once.
const registryLookups = 8

// Reads are the runtime reads every observation starts with: the stack's
// sandboxes and containers, the images, and where the runtime reads
// registry and network configuration. They need only the berth block, so
// a plan can start them while the rest of its configuration loads.
type Reads struct {
	stack, certsDir string
	// listed is closed once the lists are in, done once every read is.
	listed, done chan struct{}
	lists        lists
	listErr      error
	// fresh are the pods listed afresh when the others come from an
	// earlier observation (StartPodReads); nil when all were.
	fresh map[string]bool
	// statuses are the containers' statuses read beside the lists, for
	// the exits the runtime reported (StartPodReads), by container ID.
	statuses   map[string]statusRead
	configPath string
	configErr  error
	cni        runtime.CNI
	cniErr     error
}

// StartReads starts the reads for the stack whose berth block names
// certsDir ("" for the runtime's own), on the runtime that Observe is then
// given.
func StartReads(ctx context.Context, rt HostObserver, stack, certsDir string) *Reads {
	return startReads(ctx, rt, stack, certsDir, func(r *Reads) { r.lists, r.listErr = listWorkloads(ctx, rt, stack) })
}

// startReads starts the reads, with list filling in r's lists.
func startReads(ctx context.Context, rt HostObserver, stack, certsDir string, list func(r *Reads)) *Reads {
	r := &Reads{stack: stack, certsDir: certsDir, listed: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	if certsDir == "" {
		wg.Go(func() { r.configPath, r.configErr = rt.RegistryConfigPath(ctx) })
	}
	wg.Go(func() { r.cni, r.cniErr = rt.CNI(ctx) })
	wg.Go(func() {
		list(r)
		close(r.listed)
	})
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r
}

// Done is closed once every read is in.
func (r *Reads) Done() <-chan struct{} { return r.done }

// serve says whether the reads are those cfg's observation makes.
func (r *Reads) serve(cfg *spec.Config) bool {
	return r != nil && r.stack == cfg.Berth.Stack && r.certsDir == cfg.Berth.CertsDir
}

// ObserveWorkloads reads the stack's sandboxes, containers and the
// runtime's images in three list calls, plus one status call per container
// whose list entry does not tell enough: an exited one (for its exit code)
// and a running one whose resources differ from those it was created with
// (they may have been updated in place).
func ObserveWorkloads(ctx context.Context, rt Observer, cfg *spec.Config) (*Snapshot, error) {
	l, err := listWorkloads(ctx, rt, cfg.Berth.Stack)
	if err != nil {
		return nil, err
	}
	return observeListed(ctx, rt, cfg, recordDecoder{}, l)
}

// lists are a stack's sandboxes and containers and the runtime's images,
// as the runtime listed them.
type lists struct {
	stack      string
	sandboxes  []*cri.PodSandbox
	containers []*cri.Container
	images     []*cri.Image
}

// listWorkloads makes the three lists at once: with 500 pods each takes
// milliseconds, and the runtime answers them side by side. Each has its
// deadline; the first error in this order is the one told, so that a hung
// runtime is always reported at the same call.
func listWorkloads(ctx context.Context, rt Observer, stack string) (lists, error) {
	sel := map[string]string{spec.LabelStack: stack}
	l := lists{stack: stack}
	var (
		errs [3]error
		wg   sync.WaitGroup
	)
	wg.Go(func() { l.sandboxes, errs[0] = rt.ListSandboxes(ctx, sel) })
	wg.Go(func() { l.containers, errs[1] = rt.ListContainers(ctx, sel) })
	wg.Go(func() { l.images, errs[2] = rt.ListImages(ctx) })
	wg.Wait()
	return l, firstError(errs[:])
}

// firstError is the first of errs that is not nil.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// observeListed builds the snapshot of what the lists hold, reading the
// status of the containers whose list entry does not tell enough.
func observeListed(ctx context.Context, rt Observer, cfg *spec.Config, dec recordDecoder, l lists) (*Snapshot, error) {
	var snap *Snapshot
	dec.observe(func() { snap = build(l.stack, l.sandboxes, l.containers, l.images, dec) })
	snap.listed = l
	declared := make(map[string]*spec.Pod, len(cfg.Pods)) // cfg.Pod per pod would be quadratic
	for _, p := range cfg.Pods {
		declared[p.Name] = p
	}
	for _, p := range snap.Pods {
		for _, c := range p.Containers {
			if !c.Exited() && !resourcesMayDiffer(declared[p.Name], c) {
				continue
			}
			st, err := rt.ContainerStatus(ctx, c.Container.Id)
			if err != nil {
				if errdefs.IsNotFound(err) {
					continue // removed meanwhile; the plan sees what the list said
				}
				return nil, err
			}
			c.Status = st
			if c.Exited() {
				c.exitFrom(st)
			}
			c.Resources = resourcesFromStatus(st.GetResources().GetLinux())
			c.ResourcesKnown = st.GetResources().GetLinux() != nil || !c.Exited()
		}
	}
	return snap, nil
}

// unixNano reads a CRI timestamp; zero stays the zero time.
func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// resourcesMayDiffer reports whether a running container's recorded
// resources differ from the desired ones, so its live limits must be read.
func resourcesMayDiffer(p *spec.Pod, c *ObservedContainer) bool {
	if p == nil || c.Record == nil || c.Container.State != cri.ContainerState_CONTAINER_RUNNING {
		return false
	}
	want := p.Container(c.Name)
	return want != nil && !reflect.DeepEqual(want.ResourcesRecord(), c.Record.Resources)
}

// resourcesFromStatus reads the limits the runtime reports.
func resourcesFromStatus(r *cri.LinuxContainerResources) *spec.ResourcesRecord {
	if r == nil {
		return nil
	}
	out := &spec.ResourcesRecord{CPUShares: r.CpuShares, Cpuset: r.CpusetCpus, Memory: r.MemoryLimitInBytes}
	if r.CpuPeriod > 0 && r.CpuQuota > 0 {
		out.CPUs = float64(r.CpuQuota) / float64(r.CpuPeriod)
	}
	if v, err := strconv.ParseInt(r.Unified["pids.max"], 10, 64); err == nil {
		out.Pids = v
	}
	return out
}

// build groups listed objects into a Snapshot. It is separate from Observe
// so it can be tested without a runtime.
func build(stack string, sandboxes []*cri.PodSandbox, containers []*cri.Container, images []*cri.Image, dec recordDecoder) *Snapshot {
	snap := &Snapshot{Stack: stack, Pods: map[string]*ObservedPod{}, Images: map[string]bool{}, RepoDigests: map[string][]string{}, tagged: map[string]string{}}

	// Newest first, ready before not ready, so the first of a name wins.
	sort.Slice(sandboxes, func(i, j int) bool {
		ri := sandboxes[i].State == cri.PodSandboxState_SANDBOX_READY
		rj := sandboxes[j].State == cri.PodSandboxState_SANDBOX_READY
		if ri != rj {
			return ri
		}
		return sandboxes[i].CreatedAt > sandboxes[j].CreatedAt
	})
	byID := map[string]*ObservedPod{}
	dupOf := map[string]*ObservedPod{}
	for _, sb := range sandboxes {
		name := sb.Labels[spec.LabelPod]
		if name == "" {
			continue
		}
		if p := snap.Pods[name]; p != nil {
			p.Duplicates = append(p.Duplicates, sb)
			dupOf[sb.Id] = p
			continue
		}
		p := &ObservedPod{Name: name, Sandbox: sb, Hash: sb.Labels[spec.LabelSpecHash], Containers: map[string]*ObservedContainer{}}
		p.Record = dec.pod(sb.Id, sb.Annotations[spec.AnnotationSpec])
		snap.Pods[name] = p
		byID[sb.Id] = p
	}

	sort.Slice(containers, func(i, j int) bool {
		if a, b := containers[i].GetMetadata().GetAttempt(), containers[j].GetMetadata().GetAttempt(); a != b {
			return a > b
		}
		return containers[i].CreatedAt > containers[j].CreatedAt
	})
	for _, c := range containers {
		p := byID[c.PodSandboxId]
		name := c.Labels[spec.LabelContainer]
		if d := dupOf[c.PodSandboxId]; d != nil && name != "" {
			if d.DuplicateContainers == nil {
				d.DuplicateContainers = map[string][]*ObservedContainer{}
			}
			oc := &ObservedContainer{Name: name, Container: c, Hash: c.Labels[spec.LabelSpecHash], Record: dec.container(c.Id, c.Annotations[spec.AnnotationSpec])}
			d.DuplicateContainers[c.PodSandboxId] = append(d.DuplicateContainers[c.PodSandboxId], oc)
			continue
		}
		if p == nil || name == "" {
			continue
		}
		if p.Containers[name] != nil {
			p.Stale = append(p.Stale, c)
			continue
		}
		oc := &ObservedContainer{Name: name, Container: c, Hash: c.Labels[spec.LabelSpecHash]}
		oc.Record = dec.container(c.Id, c.Annotations[spec.AnnotationSpec])
		p.Containers[name] = oc
	}

	for _, img := range images {
		snap.Images[img.Id] = true
		for _, r := range img.RepoTags {
			snap.Images[r] = true
			snap.tagged[r] = img.Id
		}
		for _, r := range img.RepoDigests {
			snap.Images[r] = true
		}
		snap.RepoDigests[img.Id] = img.RepoDigests
	}
	return snap
}

// HasImage reports whether the runtime has the image ref, written as a user
// would (short names are normalised the way the runtime does).
func (s *Snapshot) HasImage(ref string) bool {
	return s.Images[ref] || s.Images[NormalizeImage(ref)]
}

// hasDigest reports whether ref's repository has an image with digest.
func (s *Snapshot) hasDigest(ref, digest string) bool {
	return s.Images[repository(ref)+"@"+digest]
}

// digestOf is the manifest digest under which the image with ID id is
// known in ref's repository, or "".
func (s *Snapshot) digestOf(id, ref string) string {
	prefix := repository(ref) + "@"
	for _, rd := range s.RepoDigests[id] {
		if strings.HasPrefix(rd, prefix) {
			return strings.TrimPrefix(rd, prefix)
		}
	}
	return ""
}

// ImageDigest is the manifest digest of the image with ID id: the one
// under ref's repository, else the image's only repo digest, else "" (an
// imported image has none).
func (s *Snapshot) ImageDigest(id, ref string) string {
	if d := s.digestOf(id, ref); d != "" {
		return d
	}
	if rds := s.RepoDigests[id]; len(rds) == 1 {
		if _, d, ok := strings.Cut(rds[0], "@"); ok {
			return d
		}
	}
	return ""
}

// localDigest is the manifest digest of the image that tag ref names now.
func (s *Snapshot) localDigest(ref string) string {
	return s.digestOf(s.tagged[NormalizeImage(ref)], ref)
}

// repository strips the tag from a reference.
func repository(ref string) string {
	repo := NormalizeImage(ref)
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo
}

// NormalizeImage expands a short image reference ("busybox") to the fully
// qualified form the runtime lists ("docker.io/library/busybox:latest"),
// or leaves one that does not parse as it is.
func NormalizeImage(ref string) string {
	norm, _ := spec.NormalizeImage(ref)
	return norm
}

// Fingerprint summarises the observed state. A saved plan records it, and
// applying the plan is refused when the runtime's state has moved since.
func (s *Snapshot) Fingerprint() string {
	var lines []string
	for _, p := range s.Pods {
		lines = append(lines, fmt.Sprintf("pod %s %s %s %s", p.Name, p.Sandbox.Id, p.Sandbox.State, p.Hash))
		for _, d := range p.Duplicates {
			lines = append(lines, fmt.Sprintf("dup %s %s", d.Id, d.State))
		}
		for _, c := range p.Containers {
			lines = append(lines, fmt.Sprintf("ctr %s %s %s %s %d", c.Name, c.Container.Id, c.Container.State, c.Hash, c.ExitCode))
		}
		for _, c := range p.Stale {
			lines = append(lines, fmt.Sprintf("stale %s %s", c.Id, c.State))
		}
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}
