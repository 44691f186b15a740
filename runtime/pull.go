package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/containerd/v2/core/transfer"
	transferimage "github.com/containerd/containerd/v2/core/transfer/image"
	"github.com/containerd/containerd/v2/core/transfer/registry"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// PullProgress is a snapshot of one pull's transfer.
type PullProgress struct {
	Ref string
	// Layers is how many blobs are known so far; Done of them are complete.
	Layers, Done int
	// Bytes of the known blobs' Total have arrived so far.
	Bytes, Total int64
	Finished     bool
	// Elapsed is the time since the pull began.
	Elapsed time.Duration
}

// PullOptions are how to reach the registry and whom to tell.
type PullOptions struct {
	Platform    string
	CertsDir    string
	Credentials Credentials
	// Progress, if set, is called every interval while the pull runs, and
	// once more when it finishes.
	Progress func(PullProgress)
	// Log, if set, hears which way the pull went (debug level).
	Log *slog.Logger
	// ProgressTimeout cancels a pull through the transfer service that
	// reports no progress for this long; 0 waits for ever. (The client's
	// pull, for runtimes without that service, cannot tell an unpack that
	// takes long from a stall, and is not bounded.)
	ProgressTimeout time.Duration
	// Labels go on the pulled image's name as it is stored (berth's stack
	// mark), so that no second write is needed for them. The repo@digest
	// name does not carry them.
	Labels map[string]string
}

func (o PullOptions) debug(msg string, args ...any) {
	if o.Log != nil {
		o.Log.Debug(msg, args...)
	}
}

// DefaultPullProgressTimeout is how long a pull may report no progress:
// as long as containerd's CRI plugin waits (image_pull_progress_timeout).
const DefaultPullProgressTimeout = 5 * time.Minute

// ErrPullStalled means a pull reported no progress for its
// ProgressTimeout and was cancelled.
var ErrPullStalled = errors.New("no progress")

// A stallTimer calls its function unless it hears of progress in time.
type stallTimer struct {
	mu      sync.Mutex
	d       time.Duration
	t       *time.Timer
	stopped bool
}

// startStallTimer calls fire after d without a call to alive; d <= 0
// never fires.
func startStallTimer(d time.Duration, fire func()) *stallTimer {
	s := &stallTimer{d: d}
	if d > 0 {
		s.t = time.AfterFunc(d, fire)
	}
	return s
}

func (s *stallTimer) alive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t != nil && !s.stopped {
		s.t.Reset(s.d)
	}
}

// stop ends the wait for good: a report that comes after it re-arms
// nothing.
func (s *stallTimer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.t != nil {
		s.t.Stop()
	}
}

// criManagedLabel marks images the CRI plugin considers its own.
const criManagedLabel = "io.cri-containerd.image"

const progressInterval = 200 * time.Millisecond

// Pull fetches ref, resolving hosts as the runtime does (the hosts.toml
// files of opts.CertsDir), unpacks it for the CRI plugin and names it the
// way CRI names its pulls (the tag and repo@digest, with CRI's managed
// label), so CRI sees it as its own.
//
// containerd's transfer service does the fetch and the unpack inside the
// daemon, so the layers do not travel through berth. A runtime without it
// (containerd before 1.7) gets the containerd client's pull, which fetches
// in berth's process and writes every blob into containerd.
func (c *Client) Pull(ctx context.Context, ref string, opts PullOptions) error {
	cl, err := c.containerd()
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	platform := platforms.DefaultSpec()
	if opts.Platform != "" {
		if platform, err = platforms.Parse(opts.Platform); err != nil {
			return fmt.Errorf("pull %s: platform %q: %w", ref, opts.Platform, err)
		}
	}
	ctx, release, err := ownLease(ctx, cl)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer release()
	err = pullByTransfer(ctx, cl, ref, platform, opts)
	if transferMissing(err) {
		opts.debug("the runtime has no transfer service; pulling through the containerd client", "image", ref, "error", err.Error())
		err = pullByClient(ctx, cl, ref, opts)
	}
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

// transferMissing tells a runtime that lacks the transfer (or streaming)
// service: gRPC answers an unknown service with Unimplemented. When the
// refusal of the streaming service comes before the client's first send,
// containerd's client returns that send's bare io.EOF instead (gRPC tells
// the status only to a receive): that counts as missing too. A transfer
// cut short otherwise goes through the client, which does the same work
// and tells its own error.
func transferMissing(err error) bool {
	return errdefs.IsNotImplemented(err) || err == io.EOF
}

// imageLabels are the labels a pulled image's name gets: CRI's and the
// caller's.
func (o PullOptions) imageLabels() map[string]string {
	labels := map[string]string{criManagedLabel: "managed"}
	maps.Copy(labels, o.Labels)
	return labels
}

// pullByTransfer has containerd's transfer service pull ref from its
// registry into the image store, unpacked for platform, and names it by
// digest too.
func pullByTransfer(ctx context.Context, cl *containerd.Client, ref string, platform ocispec.Platform, opts PullOptions) error {
	// Ends the goroutines that serve the credential and progress streams,
	// and the pull itself when it stalls.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The daemon reads the hosts.toml files itself, from the same path.
	regOpts := []registry.Opt{registry.WithHostDir(opts.CertsDir)}
	var creds *credentialRelay
	if opts.Credentials != nil {
		creds = &credentialRelay{get: opts.Credentials}
		regOpts = append(regOpts, registry.WithCredentials(creds))
	}
	src, err := registry.NewOCIRegistry(ctx, ref, regOpts...)
	if err != nil {
		return err
	}
	dst := transferimage.NewStore(ref,
		transferimage.WithPlatforms(platform),
		transferimage.WithUnpack(platform, snapshotter),
		transferimage.WithImageLabels(opts.imageLabels()))

	// The transfer service reports every 300 ms while bytes arrive or a
	// layer unpacks, and not at all while a registry or the daemon is
	// stuck: silence for ProgressTimeout ends the pull.
	stall := startStallTimer(opts.ProgressTimeout, func() { cancel(ErrPullStalled) })
	var tally pullTally
	observe := func(p transfer.Progress) {
		stall.alive()
		tally.observe(p)
	}
	began := time.Now()
	stop := reportEvery(opts.Progress, began, func() PullProgress { return tally.progress(ref) })
	err = cl.Transfer(ctx, src, dst, transfer.WithProgress(observe))
	stop()
	stall.stop()
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrPullStalled) {
			return fmt.Errorf("%w for %s: the registry stopped sending or the runtime stopped answering, so the pull was cancelled; try again, or wait longer with --pull-progress-timeout", ErrPullStalled, opts.ProgressTimeout)
		}
		if cerr := creds.failure(); cerr != nil {
			return fmt.Errorf("%w (and the credentials failed: %v)", err, cerr)
		}
		return err
	}

	img, err := cl.ImageService().Get(ctx, ref)
	if err != nil {
		return fmt.Errorf("the pulled image: %w", err)
	}
	pulled := containerd.NewImageWithPlatform(cl, img, platforms.Only(platform))
	// Three round trips to the daemon that need nothing of each other:
	// made at once, a pull waits for the slowest, not for their sum.
	var g errgroup.Group
	g.Go(func() error { return nameByDigest(ctx, cl.ImageService(), img) })
	g.Go(func() error {
		// The transfer service unpacks only for the platforms its own
		// configuration lists, and skips others with a warning in its
		// log; CRI needs the snapshot, so make sure.
		if unpacked, err := pulled.IsUnpacked(ctx, snapshotter); err != nil || !unpacked {
			opts.debug("the transfer service did not unpack the image; unpacking it here", "image", ref, "snapshotter", snapshotter)
			if err := pulled.Unpack(ctx, snapshotter); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
		}
		return nil
	})
	var size int64 = -1
	if opts.Progress != nil {
		// An image value of its own: the unpack's may be in use beside it.
		sized := containerd.NewImageWithPlatform(cl, img, platforms.Only(platform))
		g.Go(func() error { size = imageSize(ctx, sized); return nil })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	reportFinished(opts.Progress, began, ref, tally.blobs(), size)
	return nil
}

// credentialRelay answers the transfer service's credential requests from
// berth's Credentials. An error cannot travel back (containerd's client
// logs it and leaves the request unanswered, and the pull would wait
// forever), so it answers "none" and keeps the error for the pull's own.
type credentialRelay struct {
	get Credentials
	mu  sync.Mutex
	err error
}

func (r *credentialRelay) GetCredentials(_ context.Context, _, host string) (registry.Credentials, error) {
	user, secret, err := r.get(host)
	if err != nil {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		return registry.Credentials{Host: host}, nil
	}
	// No user with a secret is an identity token; the daemon's resolver
	// reads it the same way the client's does.
	return registry.Credentials{Host: host, Username: user, Secret: secret}, nil
}

func (r *credentialRelay) failure() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// pullTally sums the transfer service's progress events of one pull. The
// events name blobs by their ingest ref ("layer-sha256:..."); the others
// (status lines, the image itself) carry no blob.
type pullTally struct {
	mu    sync.Mutex
	state map[string]*blobTally
}

type blobTally struct {
	size, fetched int64
	complete      bool
}

func (t *pullTally) observe(p transfer.Progress) {
	switch p.Event {
	case "waiting", "downloading", "complete", "already exists", "extracting", "extracted":
	default:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == nil {
		t.state = map[string]*blobTally{}
	}
	b := t.state[p.Name]
	if b == nil {
		b = &blobTally{}
		t.state[p.Name] = b
	}
	if p.Total > 0 {
		b.size = p.Total
	} else if p.Desc != nil {
		b.size = p.Desc.Size
	}
	switch p.Event {
	case "downloading":
		b.fetched = max(b.fetched, p.Progress)
	case "complete", "already exists", "extracting", "extracted":
		// Unpacking reads a layer from the content store: it has arrived.
		b.fetched, b.complete = b.size, true
	}
}

func (t *pullTally) progress(ref string) PullProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := PullProgress{Ref: ref, Layers: len(t.state)}
	for _, b := range t.state {
		p.Bytes += b.fetched
		p.Total += b.size
		if b.complete {
			p.Done++
		}
	}
	return p
}

func (t *pullTally) blobs() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.state)
}

// reportEvery calls report with snapshot() every progressInterval until
// stop is called, for a pull that began then; stop returns once no call is
// running, so nothing is reported after it.
func reportEvery(report func(PullProgress), began time.Time, snapshot func() PullProgress) (stop func()) {
	if report == nil {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				p := snapshot()
				p.Elapsed = time.Since(began)
				report(p)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// reportFinished sends a pull's last report: every blob there, and the
// image's size for its platform (-1: unknown).
func reportFinished(report func(PullProgress), began time.Time, ref string, blobs int, size int64) {
	if report == nil {
		return
	}
	p := PullProgress{Ref: ref, Layers: blobs, Done: blobs, Finished: true, Elapsed: time.Since(began)}
	if size >= 0 {
		p.Bytes, p.Total = size, size
	}
	report(p)
}

// imageSize is img's size for its platform, or -1 when it cannot be read.
func imageSize(ctx context.Context, img containerd.Image) int64 {
	if n, err := img.Size(ctx); err == nil {
		return n
	}
	return -1
}

// pullByClient is the containerd client's own pull: berth's process
// fetches the blobs, writes them into containerd's content store and has
// them unpacked. For runtimes without the transfer service.
func pullByClient(ctx context.Context, cl *containerd.Client, ref string, opts PullOptions) error {
	hostOpts := config.HostOptions{Credentials: opts.Credentials}
	if opts.CertsDir != "" {
		hostOpts.HostDir = config.HostDirFromRoot(opts.CertsDir)
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, hostOpts)})

	// The blobs of this pull, to tell its transfers from others'.
	var mu sync.Mutex
	blobs := map[digest.Digest]bool{}
	track := images.HandlerFunc(func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		mu.Lock()
		blobs[desc.Digest] = true
		mu.Unlock()
		return nil, nil
	})
	remoteOpts := []containerd.RemoteOpt{containerd.WithResolver(resolver), containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(snapshotter), containerd.WithImageHandler(track),
		containerd.WithPullLabels(opts.imageLabels())}
	if opts.Platform != "" {
		remoteOpts = append(remoteOpts, containerd.WithPlatform(opts.Platform))
	}

	began := time.Now()
	stop := reportEvery(opts.Progress, began, func() PullProgress {
		mu.Lock()
		known := maps.Clone(blobs)
		mu.Unlock()
		return contentProgress(ctx, cl, ref, known)
	})
	img, err := cl.Pull(ctx, ref, remoteOpts...)
	stop()
	if err != nil {
		return err
	}
	mu.Lock()
	n := len(blobs)
	mu.Unlock()
	if opts.Progress != nil {
		reportFinished(opts.Progress, began, ref, n, imageSize(ctx, img))
	}
	return nameByDigest(ctx, cl.ImageService(), img.Metadata())
}

// contentProgress sums the in-flight writes of a pull's blobs into the
// content store.
func contentProgress(ctx context.Context, cl *containerd.Client, ref string, blobs map[digest.Digest]bool) PullProgress {
	p := PullProgress{Ref: ref, Layers: len(blobs)}
	active := 0
	if statuses, err := cl.ContentStore().ListStatuses(ctx); err == nil {
		for _, st := range statuses {
			// Ingest refs are "<kind>-<digest>" (remotes.MakeRefKey).
			_, d, _ := strings.Cut(st.Ref, "-")
			if !blobs[digest.Digest(d)] && !blobs[st.Expected] {
				continue
			}
			active++
			p.Bytes += st.Offset
			p.Total += st.Total
		}
	}
	p.Done = len(blobs) - active
	return p
}

// digestName is the repo@digest name CRI gives an image it pulls by name,
// and false for a name it would give none.
func digestName(name string, d digest.Digest) (string, bool) {
	if strings.HasPrefix(name, "sha256:") {
		return "", false // an image ID, which the parser takes for docker.io/library/sha256
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", false
	}
	return named.Name() + "@" + d.String(), true
}

// nameByDigest adds the repo@digest name CRI gives the images it pulls.
func nameByDigest(ctx context.Context, is images.Store, img images.Image) error {
	name, ok := digestName(img.Name, img.Target.Digest)
	if !ok {
		return nil
	}
	// CRI's label only: a caller's labels (berth's stack mark) name what
	// the caller declared, which is the tag.
	byDigest := images.Image{Name: name, Target: img.Target, Labels: map[string]string{criManagedLabel: "managed"}}
	if _, err := is.Create(ctx, byDigest); err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("name %s: %w", byDigest.Name, err)
	}
	return nil
}
