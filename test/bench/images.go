package main

// The image benchmark (-images): berth pulling an image through containerd,
// and importing it from an OCI archive, against ctr doing the same.
//
// The image is made once per run: one layer of random, incompressible bytes
// that no other image shares, wrapped by hack/ociimage into an OCI archive,
// pushed to the plain-HTTP mirror registry of hack/registry.sh from a scratch
// containerd namespace that is removed again, blobs and all. Before every
// timed side, nothing of it is in the runtime (no name, no blob, no
// snapshot), so every side downloads or imports all of it and unpacks it
// into overlayfs; the registry's access log confirms that every pull
// fetched the layer.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// criNamespace is where the CRI plugin, berth and the baseline keep
	// their images.
	criNamespace = "k8s.io"
	// imageSnapshotter is what berth unpacks into (the CRI plugin's
	// snapshotter) and ctr's default; both sides are checked to have
	// unpacked there.
	imageSnapshotter = "overlayfs"
)

// imageBench holds the run's test image and the tools that move it.
type imageBench struct {
	o      options
	b      *berth
	ctr    string // the ctr binary
	sock   string // containerd's socket, a plain path
	mirror string // host:port of the plain-HTTP registry
	runID  string
	tmp    string
	cl     *containerd.Client

	// The image: an OCI archive whose index names it importRef, pushed to
	// the mirror as pullRef. Both names are unique to the run, and so is
	// every digest.
	archive, layerFile   string
	pullRef, importRef   string
	scratchNS            string
	manifest, cfg, layer digest.Digest
	chainID              string // the snapshot that unpacking makes
	size, layerSize      int64  // bytes: manifest + config + layer; the layer alone
	// pullDir and importDir are berth's configurations: one image block
	// each. They share a base name, so a stack name.
	pullDir, importDir string

	// registryLog is the mirror's log, when readable: every pull must
	// show one more complete GET of the layer in it. blobDir is containerd's
	// content directory, when it is where hack/runtime.sh puts it: no
	// blob of the image may be on disk before a side.
	registryLog, blobDir string
}

// imagePair is one pair: pull and import, berth and ctr each.
type imagePair struct {
	berthFirst             bool
	berthPull, ctrPull     time.Duration
	berthImport, ctrImport time.Duration
	// localPull and localImport are the reference: ctr --local.
	localPull, localImport time.Duration
	// berthServe, ctrServe and localServe are how long the registry took
	// to send the layer to each pull, from its log; zero if unknown.
	berthServe, ctrServe, localServe time.Duration
	pullLead, importLead             time.Duration // berth's start until its image step began
	pullStep, importStep             time.Duration // berth's image step, from "Creating..." to "Creation complete"
}

func runImages(o options) (err error) {
	if o.pairs < 1 || o.imageMB < 1 {
		return errors.New("-pairs and -image-mb must be at least 1")
	}
	mirror := os.Getenv("BERTH_REGISTRY_MIRROR")
	if mirror == "" {
		return errors.New("BERTH_REGISTRY_MIRROR is not set: hack/registry.sh up, then source /tmp/berth-registry/env")
	}
	ctrBin, err := findCtr()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e, err := openEnv(ctx)
	if err != nil {
		return err
	}
	defer e.rt.close()
	bin, address := e.bin, e.address
	sock := strings.TrimPrefix(address, "unix://")
	cl, err := containerd.New(sock, containerd.WithDefaultNamespace(criNamespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", sock, err)
	}
	defer cl.Close()

	tmp, runID, err := scratch("images-")
	if err != nil {
		return err
	}
	stack := "bench-" + runID
	ib := &imageBench{
		o: o, ctr: ctrBin, sock: sock, mirror: mirror, runID: runID, tmp: tmp, cl: cl,
		archive:   filepath.Join(tmp, "image.oci.tar"),
		layerFile: filepath.Join(tmp, "layer.tar.gz"),
		pullRef:   fmt.Sprintf("%s/berth/bench-%s:v1", mirror, runID),
		importRef: fmt.Sprintf("docker.io/berth/bench-import-%s:v1", runID),
		scratchNS: "berth-bench-" + runID,
		// Stack names come from the directories' base name.
		pullDir:   filepath.Join(tmp, "pull", stack),
		importDir: filepath.Join(tmp, "import", stack),
	}
	// berth's lock file goes to the temporary directory, and with it.
	ib.b = &berth{bin: bin, stack: stack, dir: ib.pullDir, lockDir: filepath.Join(tmp, "locks")}
	if d := os.Getenv("BERTH_REGISTRY_DIR"); d != "" {
		if f := filepath.Join(d, "mirror", "registry.log"); readable(f) {
			ib.registryLog = f
		}
	}
	if d := os.Getenv("BERTH_RUNTIME_DIR"); d != "" {
		if dir := filepath.Join(d, "root", "io.containerd.content.v1.content", "blobs", "sha256"); readable(dir) {
			ib.blobDir = dir
		}
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if cerr := ib.cleanup(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		os.RemoveAll(tmp)
	}()

	started := time.Now()
	if err := ib.build(ctx); err != nil {
		return fmt.Errorf("build the test image: %w", err)
	}
	if err := ib.writeConfigs(); err != nil {
		return err
	}
	rep := &imageReport{opts: o, facts: e.facts, started: started, ib: ib}
	rep.ctrVersion = ib.ctrVersion(ctx)
	fmt.Fprintf(os.Stderr, "bench: %d image pairs, %s (%s, %.1f MB), stack %s\n", o.pairs, ib.pullRef, ib.manifest, mb(ib.size), stack)
	for i := range o.pairs {
		p, err := ib.runPair(ctx, i)
		if err != nil {
			return fmt.Errorf("pair %d: %w", i+1, err)
		}
		rep.pairs = append(rep.pairs, p)
	}
	rep.finished = time.Now()
	return emit(o.markdown, rep.text, rep.markdown)
}

// findCtr is containerd's ctr from hack/runtime.sh's cache, or BERTH_CTR.
func findCtr() (string, error) {
	if p := os.Getenv("BERTH_CTR"); p != "" {
		return p, nil
	}
	cache := os.Getenv("BERTH_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "berth")
	}
	p := filepath.Join(cache, "bin", "ctr")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("ctr: %w (hack/runtime.sh install puts it there; or set BERTH_CTR)", err)
	}
	return p, nil
}

func readable(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// ---------------------------------------------------------------- the image

// build makes the test image and pushes it to the mirror.
func (ib *imageBench) build(ctx context.Context) error {
	t0 := time.Now()
	if err := writeRandomLayer(ib.layerFile, int64(ib.o.imageMB)<<20); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, "run", "./hack/ociimage", "-layer", ib.layerFile, "-name", ib.importRef, "-o", ib.archive, "--", "true")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go run ./hack/ociimage: %w\n%s", err, out)
	}
	if err := os.Remove(ib.layerFile); err != nil {
		return err
	}
	if err := ib.readArchive(); err != nil {
		return fmt.Errorf("%s: %w", ib.archive, err)
	}
	// Push from a scratch namespace, as hack/registry.sh's push_fresh does,
	// then remove it, so that no blob of the image is left in containerd.
	name := strings.TrimSuffix(ib.importRef, ":v1")
	if _, err := ib.runCtr(ctx, ib.scratchNS, "images", "import", "--no-unpack", "--base-name", name, ib.archive); err != nil {
		return err
	}
	if _, err := ib.runCtr(ctx, ib.scratchNS, "images", "push", "--plain-http", ib.pullRef, ib.importRef); err != nil {
		return err
	}
	if err := ib.dropScratch(ctx); err != nil {
		return err
	}
	if err := ib.expectAbsent(ctx); err != nil {
		return fmt.Errorf("after the push: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: built and pushed the test image in %s\n", fmtDur(time.Since(t0)))
	return nil
}

// writeRandomLayer writes a gzipped tar of one file of n random bytes.
// Random bytes do not compress: the layer is as big as the file.
func writeRandomLayer(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: "noise", Mode: 0o644, Size: n, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, rand.Reader, n); err != nil {
		return err
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return err
	}
	return f.Close()
}

// moduleRoot is the berth repository, where hack/ociimage lives.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m (run the benchmark inside the berth repository): %w", err)
	}
	root := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(root, "hack", "ociimage")); err != nil {
		return "", fmt.Errorf("not the berth repository: %w", err)
	}
	return root, nil
}

// readArchive notes the digests and sizes of the archive's image: its
// index's manifest, the config, the one layer, and the snapshot (chain ID)
// that unpacking the layer makes.
func (ib *imageBench) readArchive() error {
	f, err := os.Open(ib.archive)
	if err != nil {
		return err
	}
	defer f.Close()
	files := map[string][]byte{} // index.json and the small blobs
	sizes := map[string]int64{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(h.Name, "./")
		sizes[name] = h.Size
		if h.Size < 1<<20 && h.Typeflag == tar.TypeReg {
			if files[name], err = io.ReadAll(tr); err != nil {
				return err
			}
		}
	}
	var index ocispec.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		return fmt.Errorf("index.json: want one manifest (%v)", err)
	}
	blob := func(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }
	ib.manifest = index.Manifests[0].Digest
	var man ocispec.Manifest
	if err := json.Unmarshal(files[blob(ib.manifest)], &man); err != nil || len(man.Layers) != 1 {
		return fmt.Errorf("manifest: want one layer (%v)", err)
	}
	ib.cfg, ib.layer, ib.layerSize = man.Config.Digest, man.Layers[0].Digest, man.Layers[0].Size
	var cfg ocispec.Image
	if err := json.Unmarshal(files[blob(ib.cfg)], &cfg); err != nil || len(cfg.RootFS.DiffIDs) != 1 {
		return fmt.Errorf("config: want one diff ID (%v)", err)
	}
	ib.chainID = cfg.RootFS.DiffIDs[0].String() // the chain ID of a single layer
	ib.size = sizes[blob(ib.manifest)] + sizes[blob(ib.cfg)] + sizes[blob(ib.layer)]
	if sizes[blob(ib.layer)] != ib.layerSize {
		return fmt.Errorf("layer blob: %d bytes, the manifest says %d", sizes[blob(ib.layer)], ib.layerSize)
	}
	return nil
}

// writeConfigs writes berth's two configurations: only an image block
// each; the stack name is the directory's.
func (ib *imageBench) writeConfigs() error {
	for dir, body := range map[string]string{
		ib.pullDir:   fmt.Sprintf("image %q {}\n", ib.pullRef),
		ib.importDir: fmt.Sprintf("image %q {\n  source = %q\n}\n", ib.importRef, ib.archive),
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------- ctr

type cmdResult struct {
	wall           time.Duration
	stdout, stderr string
}

// runCtr runs ctr in namespace ns, timing the whole process. On Ctrl-C it
// is interrupted, as a user's Ctrl-C would.
func (ib *imageBench) runCtr(ctx context.Context, ns string, args ...string) (*cmdResult, error) {
	full := append([]string{"--address", ib.sock, "--connect-timeout", "5s"}, args...)
	if ns != "" {
		full = append([]string{"--namespace", ns}, full...)
	}
	cmd := exec.CommandContext(ctx, ib.ctr, full...)
	cmd.Env = append(os.Environ(), "CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := &cmdResult{wall: time.Since(start), stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		shown := strings.Join(args, " ")
		if ns != "" {
			shown = "-n " + ns + " " + shown
		}
		return nil, fmt.Errorf("ctr %s: %w\n--- stdout\n%s--- stderr\n%s", shown, err, tail(r.stdout), tail(r.stderr))
	}
	return r, nil
}

func (ib *imageBench) ctrVersion(ctx context.Context) string {
	r, err := ib.runCtr(ctx, "", "--version")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(r.stdout)
}

// ---------------------------------------------------------------- checks

// names are the k8s.io images that name the test image, whatever their
// names: the tag, berth's repo@digest, and the sha256:<config> name the
// CRI plugin adds to images it sees. The digest is unique to the run, so
// these are the run's alone.
func (ib *imageBench) names(ctx context.Context, ns string) ([]string, error) {
	imgs, err := ib.cl.ImageService().List(namespaces.WithNamespace(ctx, ns), "target.digest=="+ib.manifest.String())
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	slices.Sort(names)
	return names, nil
}

// expectPresent checks a side's result: ref names the image, every blob is
// in the content store, and the layer is unpacked (committed) in overlayfs.
func (ib *imageBench) expectPresent(ctx context.Context, ref string) error {
	img, err := ib.cl.ImageService().Get(ctx, ref)
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	if img.Target.Digest != ib.manifest {
		return fmt.Errorf("image %s is %s, want %s", ref, img.Target.Digest, ib.manifest)
	}
	for _, d := range []digest.Digest{ib.manifest, ib.cfg, ib.layer} {
		if _, err := ib.cl.ContentStore().Info(ctx, d); err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	info, err := ib.cl.SnapshotService(imageSnapshotter).Stat(ctx, ib.chainID)
	if err != nil {
		return fmt.Errorf("not unpacked into %s: snapshot %s: %w", imageSnapshotter, ib.chainID, err)
	}
	if info.Kind != snapshots.KindCommitted {
		return fmt.Errorf("snapshot %s is %s, want committed", ib.chainID, info.Kind)
	}
	return nil
}

// expectAbsent checks that nothing of the image is in the runtime: no
// name, no blob (in k8s.io, nor on disk when its directory is known), no
// snapshot.
func (ib *imageBench) expectAbsent(ctx context.Context) error {
	var problems []string
	names, err := ib.names(ctx, criNamespace)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		problems = append(problems, "names "+strings.Join(names, ", "))
	}
	for _, d := range []digest.Digest{ib.manifest, ib.cfg, ib.layer} {
		_, err := ib.cl.ContentStore().Info(ctx, d)
		if err == nil {
			problems = append(problems, "blob "+d.String())
		} else if !errdefs.IsNotFound(err) {
			return err
		}
		if ib.blobDir != "" {
			if _, err := os.Stat(filepath.Join(ib.blobDir, d.Encoded())); err == nil {
				problems = append(problems, "blob file "+d.Encoded())
			}
		}
	}
	_, err = ib.cl.SnapshotService(imageSnapshotter).Stat(ctx, ib.chainID)
	if err == nil {
		problems = append(problems, "snapshot "+ib.chainID)
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("the test image is still in the runtime: %s", strings.Join(problems, "; "))
	}
	return nil
}

// servedLayer counts the mirror's complete GETs of the layer, from its log
// (distribution logs msg="response completed" with the request's URI,
// status and duration), and returns the duration of the last one: how
// long the registry took to send the layer, which is as fast as the client
// takes it. n is -1 when the log cannot be read.
func (ib *imageBench) servedLayer() (n int, last time.Duration) {
	if ib.registryLog == "" {
		return -1, 0
	}
	raw, err := os.ReadFile(ib.registryLog)
	if err != nil {
		return -1, 0
	}
	repo := strings.TrimPrefix(strings.TrimSuffix(ib.pullRef, ":v1"), ib.mirror+"/")
	uri := fmt.Sprintf(`http.request.uri="/v2/%s/blobs/%s"`, repo, ib.layer)
	for line := range strings.Lines(string(raw)) {
		if !strings.Contains(line, `msg="response completed"`) || !strings.Contains(line, uri) ||
			!strings.Contains(line, "http.request.method=GET ") || !strings.Contains(line, "http.response.status=200 ") {
			continue
		}
		n++
		if m := responseDuration.FindStringSubmatch(line); m != nil {
			last, _ = time.ParseDuration(m[1])
		}
	}
	return n, last
}

var responseDuration = regexp.MustCompile(`http\.response\.duration="?([0-9.]+[a-zµμ]+)"?`)

// expectFetched waits briefly for the log line of a pull's layer GET (the
// registry writes it when the response is done, which may be after the
// client has it all), fails if there is none, and returns how long the
// registry took to send the layer (zero when its log cannot be read).
func (ib *imageBench) expectFetched(before int) (time.Duration, error) {
	if before < 0 {
		return 0, nil
	}
	for range 40 {
		if n, d := ib.servedLayer(); n > before {
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("the mirror's log (%s) shows no new GET of the layer %s: the pull did not download it", ib.registryLog, ib.layer)
}

// ---------------------------------------------------------------- removal

// remove takes the image out of k8s.io: every name of it, with ctr's
// synchronous removal (which runs containerd's garbage collection), until
// no name, blob or snapshot is left. A name can appear late (the CRI
// plugin adds one when it sees the image), hence the rounds.
func (ib *imageBench) remove(ctx context.Context) error {
	var last error
	for attempt := range 20 {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		names, err := ib.names(ctx, criNamespace)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			if _, err := ib.runCtr(ctx, criNamespace, append([]string{"images", "rm", "--sync"}, names...)...); err != nil {
				last = err
				continue
			}
		} else if attempt > 0 {
			// Nothing named it, but something is left: an interrupted
			// pull's lease or ingest, or a collection that has not run.
			ib.dropLeftovers(ctx, criNamespace)
			if err := ib.collect(ctx); err != nil {
				last = err
				continue
			}
		}
		if last = ib.expectAbsent(ctx); last == nil {
			return nil
		}
	}
	return last
}

// collect runs containerd's garbage collection now, by deleting a lease of
// its own synchronously (ctr's images rm --sync does the same).
func (ib *imageBench) collect(ctx context.Context) error {
	ls := ib.cl.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID())
	if err != nil {
		return err
	}
	return ls.Delete(ctx, l, leases.SynchronousDelete)
}

// dropLeftovers deletes what an interrupted pull or import can leave
// holding the image: leases that hold one of its blobs or its snapshot,
// and unfinished writes (ingests) of its blobs. Both are the run's own:
// the digests are unique to it.
func (ib *imageBench) dropLeftovers(ctx context.Context, ns string) {
	nctx := namespaces.WithNamespace(ctx, ns)
	ours := map[string]bool{ib.manifest.String(): true, ib.cfg.String(): true, ib.layer.String(): true, ib.chainID: true}
	ls := ib.cl.LeasesService()
	if all, err := ls.List(nctx); err == nil {
		for _, l := range all {
			res, err := ls.ListResources(nctx, l)
			if err != nil {
				continue
			}
			for _, r := range res {
				if ours[r.ID] {
					_ = ls.Delete(nctx, l)
					break
				}
			}
		}
	}
	cs := ib.cl.ContentStore()
	if sts, err := cs.ListStatuses(nctx); err == nil {
		for _, st := range sts {
			if ours[st.Expected.String()] {
				_ = cs.Abort(nctx, st.Ref)
			}
		}
	}
}

// dropScratch removes the scratch namespace the image was pushed from,
// with its image (synchronously, so its blobs go too). An interrupted
// import or push can leave blobs there without a name, held by the
// transfer's lease or waiting for a collection, and containerd refuses to
// remove a namespace that has any: drop those and collect, in rounds.
func (ib *imageBench) dropScratch(ctx context.Context) error {
	nctx := namespaces.WithNamespace(ctx, ib.scratchNS)
	var last error
	for attempt := range 30 {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		nss, err := ib.cl.NamespaceService().List(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(nss, ib.scratchNS) {
			return nil
		}
		imgs, err := ib.cl.ImageService().List(nctx)
		if err != nil {
			return err
		}
		var names []string
		for _, img := range imgs {
			names = append(names, img.Name)
		}
		if len(names) > 0 {
			if _, err := ib.runCtr(ctx, ib.scratchNS, append([]string{"images", "rm", "--sync"}, names...)...); err != nil {
				last = err
				continue
			}
		}
		ib.dropLeftovers(ctx, ib.scratchNS)
		if err := ib.collect(ctx); err != nil {
			last = err
			continue
		}
		if _, last = ib.runCtr(ctx, "", "namespaces", "rm", ib.scratchNS); last == nil {
			return ib.collect(ctx)
		}
	}
	return last
}

// cleanup removes whatever the run left in containerd: the scratch
// namespace, and the image in k8s.io under any name. berth's lock file and
// the archive go with the temporary directory. The repository in the
// mirror registry stays (distribution frees blobs only in its offline
// garbage collection).
func (ib *imageBench) cleanup(ctx context.Context) error {
	err := ib.dropScratch(ctx)
	if ib.manifest != "" {
		err = errors.Join(err, ib.remove(ctx))
	}
	return err
}

// ---------------------------------------------------------------- pairs

// runPair runs the pull pair, then the import pair, each followed by its
// reference: ctr --local, the containerd client's own pull or import in
// ctr's process, as berth imports in its own (and pulls, on a runtime
// without the transfer service). Odd pairs run berth first,
// even pairs ctr; the reference always runs last. Each side starts with
// nothing of the image in the runtime and leaves nothing behind.
func (ib *imageBench) runPair(ctx context.Context, i int) (*imagePair, error) {
	p := &imagePair{berthFirst: i%2 == 0}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "  pair %d/%d: %s\n", i+1, ib.o.pairs, fmt.Sprintf(format, args...))
	}
	berthSide := func(dir, ref, what string, wall, lead, step *time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			before, _ := ib.servedLayer()
			res, err := ib.berthApply(ctx, dir, ref)
			if err != nil {
				return fmt.Errorf("berth %s: %w", what, err)
			}
			*wall, *lead, *step = res.wall, res.lead, res.step()
			served := ""
			if what == "pull" {
				if p.berthServe, err = ib.expectFetched(before); err != nil {
					return err
				}
				served = ", layer sent in " + fmtDur(p.berthServe)
			}
			logf("berth %-14s %s (image step %s, first after %s%s)", what, fmtDur(res.wall), fmtDur(res.step()), fmtDur(res.lead), served)
			return nil
		}
	}
	ctrSide := func(what string, local bool, wall, serve *time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			args, ref := []string{"images", "pull", "--plain-http", ib.pullRef}, ib.pullRef
			if what == "import" {
				args, ref = []string{"images", "import", "--base-name", strings.TrimSuffix(ib.importRef, ":v1"), ib.archive}, ib.importRef
			}
			label := what
			if local {
				args = slices.Insert(args, 2, "--local")
				label += " --local"
			}
			before, _ := ib.servedLayer()
			res, err := ib.runCtr(ctx, criNamespace, args...)
			if err != nil {
				return err
			}
			if err := ib.expectPresent(ctx, ref); err != nil {
				return fmt.Errorf("after ctr %s: %w", label, err)
			}
			*wall = res.wall
			served := ""
			if serve != nil {
				if *serve, err = ib.expectFetched(before); err != nil {
					return err
				}
				served = " (layer sent in " + fmtDur(*serve) + ")"
			}
			logf("ctr   %-14s %s%s", label, fmtDur(res.wall), served)
			return nil
		}
	}
	steps := [][3]func(context.Context) error{
		{
			berthSide(ib.pullDir, ib.pullRef, "pull", &p.berthPull, &p.pullLead, &p.pullStep),
			ctrSide("pull", false, &p.ctrPull, &p.ctrServe),
			ctrSide("pull", true, &p.localPull, &p.localServe),
		},
		{
			berthSide(ib.importDir, ib.importRef, "import", &p.berthImport, &p.importLead, &p.importStep),
			ctrSide("import", false, &p.ctrImport, nil),
			ctrSide("import", true, &p.localImport, nil),
		},
	}
	for _, sides := range steps {
		if !p.berthFirst {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			if err := ib.expectAbsent(ctx); err != nil {
				return nil, fmt.Errorf("before a side: %w", err)
			}
			if err := side(ctx); err != nil {
				return nil, err
			}
			if err := ib.remove(ctx); err != nil {
				return nil, fmt.Errorf("remove the image: %w", err)
			}
		}
	}
	return p, nil
}

// berthApply applies dir (one image block) and checks the image is there.
func (ib *imageBench) berthApply(ctx context.Context, dir, ref string) (*result, error) {
	b := *ib.b
	b.dir = dir
	res, err := b.mustRun(ctx, 0, "apply", "--auto-approve", dir)
	if err != nil {
		return nil, err
	}
	if err := ib.expectPresent(ctx, ref); err != nil {
		return nil, fmt.Errorf("after berth apply: %w", err)
	}
	return res, nil
}

// step is berth's image step: from its "Creating..." line to its
// "Creation complete" line, or zero when either is missing.
func (r *result) step() time.Duration {
	if r.lead == 0 || r.done == 0 {
		return 0
	}
	return r.done - r.lead
}

func mb(bytes int64) float64 { return float64(bytes) / 1e6 }

// shortDigest is the first 12 hex digits of a digest.
func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
