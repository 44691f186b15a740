package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/test/criproxy"
)

const (
	contentWrite = "/containerd.services.content.v1.Content/Write"
	imageUpdate  = "/containerd.services.images.v1.Images/Update"
)

// A pull goes through containerd's transfer service: berth never writes a
// blob into the content store itself, and the image comes out as CRI's
// own (managed label, repo@digest name, unpacked into overlayfs).
func TestPullByTransferService(t *testing.T) {
	reg := testRegistries(t)
	proxy := newRuntimeProxy(t, false)
	ref := slowRegistry(t, reg.mirror, 256<<20) + "/berth/fresh:v1" // a name of this test's own
	t.Cleanup(func() { removeImage(t, ref) })
	s := newStack(t)
	s.write("image " + quote(ref) + " {}\n")

	r := runBerth(t, nil, "--address", proxy.Address, "--log-level", "debug", "apply", "--auto-approve", s.dir)
	if r.code != 0 || !strings.Contains(r.stdout, "image "+ref+": pulled, 3 blobs") {
		t.Fatalf("apply: %s", r)
	}
	if strings.Contains(r.stderr, "no transfer service") {
		t.Errorf("fell back on a runtime with the transfer service:\n%s", r.stderr)
	}
	if n := proxy.Calls("/containerd.services.transfer.v1.Transfer/Transfer"); n != 1 {
		t.Errorf("%d Transfer calls, want 1", n)
	}
	if n := proxy.Calls(contentWrite); n != 0 {
		t.Errorf("berth wrote into the content store %d times: the layers went through it", n)
	}
	if n := proxy.Calls(imageUpdate); n != 0 {
		t.Errorf("%d image updates after the pull, want 0: the stack's mark goes with the pull", n)
	}
	checkPulledImage(t, ref, s.name)
	checkPrunable(t, s, ref)
}

// On a runtime without the transfer service, berth pulls through the
// containerd client as before, says so at debug level, and the image is
// the same.
func TestPullWithoutTransferService(t *testing.T) {
	reg := testRegistries(t)
	proxy := newRuntimeProxy(t, true)
	ref := slowRegistry(t, reg.mirror, 256<<20) + "/berth/fresh:v1"
	t.Cleanup(func() { removeImage(t, ref) })
	s := newStack(t)
	s.write("image " + quote(ref) + " {}\n")

	r := runBerth(t, nil, "--address", proxy.Address, "--log-level", "debug", "apply", "--auto-approve", s.dir)
	if r.code != 0 || !strings.Contains(r.stdout, "image "+ref+": pulled, 3 blobs") {
		t.Fatalf("apply: %s", r)
	}
	if !strings.Contains(r.stderr, "the runtime has no transfer service; pulling through the containerd client") {
		t.Errorf("the fallback is not in the debug log:\n%s", r.stderr)
	}
	if n := proxy.Refused(); n == 0 {
		t.Errorf("berth never asked for the transfer service")
	}
	checkPulledImage(t, ref, s.name)
	checkPrunable(t, s, ref)
}

// checkPulledImage checks ref as CRI names its own pulls, marked as
// stack's, through containerd itself (not through berth or the proxy).
func checkPulledImage(t *testing.T, ref, stack string) {
	t.Helper()
	cl, err := containerd.New(strings.TrimPrefix(address, "unix://"), containerd.WithDefaultNamespace("k8s.io"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	img, err := cl.ImageService().Get(ctx, ref)
	if err != nil {
		t.Fatalf("image %s: %v", ref, err)
	}
	if v := img.Labels["io.cri-containerd.image"]; v != "managed" {
		t.Errorf("label io.cri-containerd.image = %q, want managed", v)
	}
	if v := img.Labels[spec.LabelStack]; v != stack {
		t.Errorf("label %s = %q, want %q", spec.LabelStack, v, stack)
	}
	repo, _, _ := strings.Cut(ref, ":v1")
	byDigest := repo + "@" + img.Target.Digest.String()
	if other, err := cl.ImageService().Get(ctx, byDigest); err != nil || other.Target.Digest != img.Target.Digest {
		t.Errorf("digest name %s: %v", byDigest, err)
	} else if v, ok := other.Labels[spec.LabelStack]; ok {
		// The stack declared the tag: a marked digest name would be pruned.
		t.Errorf("digest name %s carries %s = %q", byDigest, spec.LabelStack, v)
	}
	// CRI adds a sha256:<config> name only to images it does not see as
	// its own.
	all, err := cl.ImageService().List(ctx, "target.digest=="+img.Target.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range all {
		if strings.HasPrefix(other.Name, "sha256:") {
			t.Errorf("CRI named the image %s: it did not take the pull for its own", other.Name)
		}
	}
	unpacked, err := containerd.NewImage(cl, img).IsUnpacked(ctx, "overlayfs")
	if err != nil || !unpacked {
		t.Errorf("unpacked into overlayfs: %v, %v", unpacked, err)
	}
	if st := imageStatus(t, ref); st == nil || !contains(st.RepoDigests, byDigest) {
		t.Errorf("CRI's image status: %+v, want repo digest %s", st, byDigest)
	}
}

// checkPrunable checks that the stack's mark finds what it pulled: with
// the block, --prune-images has nothing to do; without it, ref goes.
func checkPrunable(t *testing.T, s *stack, ref string) {
	t.Helper()
	if p := s.berth("plan", "--prune-images", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan --prune-images with the image declared: %s", p)
	}
	s.write("")
	r := s.mustBerth("apply", "--auto-approve", "--prune-images", s.dir)
	if !strings.Contains(r.stdout, "# image."+ref+" will be removed") {
		t.Fatalf("apply --prune-images without the block: %s", r)
	}
	if img := imageStatus(t, ref); img != nil {
		t.Errorf("after pruning, %s is still there: %+v", ref, img)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// newRuntimeProxy is a counting proxy in front of the test's runtime.
func newRuntimeProxy(t *testing.T, hide bool) *criproxy.Proxy {
	t.Helper()
	p, err := criproxy.Start(address)
	if err != nil {
		t.Fatal(err)
	}
	p.Hide = hide
	t.Cleanup(p.Close)
	return p
}

// A registry that stops sending in the middle of a pull: after
// --pull-progress-timeout of silence the pull is cancelled, the apply
// fails saying why, the runtime lets go of the download, and nothing is
// named; the image is still to pull on the next plan.
func TestPullStallIsCancelled(t *testing.T) {
	reg := testRegistries(t)
	addr, gaveUp := stalledRegistry(t, reg.mirror)
	ref := addr + "/berth/fresh:v1" // a name of this test's own
	t.Cleanup(func() { removeImage(t, ref) })
	s := newStack(t)
	s.write("image " + quote(ref) + " {}\n")

	before := leaseIDs(t)
	r := runBerth(t, nil, "--pull-progress-timeout", "2s", "apply", "--auto-approve", s.dir)
	if r.code != 1 || !strings.Contains(r.stderr, "no progress for 2s: the registry stopped sending") {
		t.Fatalf("apply from a stalled registry: %s", r)
	}
	select {
	case <-gaveUp:
	case <-time.After(30 * time.Second):
		t.Error("the runtime kept the stalled download open after the pull was cancelled")
	}
	// A lease left behind would keep what the pull fetched for a day
	// (and make the next test's pull find its blobs).
	for id := range leaseIDs(t) {
		if !before[id] {
			t.Errorf("the cancelled pull left lease %s", id)
		}
	}
	if img := imageStatus(t, ref); img != nil {
		t.Errorf("a cancelled pull left the image named: %+v", img)
	}
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 2 || !strings.Contains(p.stdout, "will be pulled") {
		t.Errorf("plan after the cancelled pull: %s", p)
	}
}

// leaseIDs lists the runtime's leases in CRI's namespace.
func leaseIDs(t *testing.T) map[string]bool {
	t.Helper()
	cl, err := containerd.New(strings.TrimPrefix(address, "unix://"), containerd.WithDefaultNamespace("k8s.io"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ls, err := cl.LeasesService().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, l := range ls {
		ids[l.ID] = true
	}
	return ids
}

// stalledRegistry serves the mirror registry through a proxy that answers
// every blob's GET with its headers and then no byte more, until the
// client goes; gaveUp is closed once one such client has gone.
func stalledRegistry(t *testing.T, upstream string) (string, <-chan struct{}) {
	t.Helper()
	target, _ := url.Parse("http://" + upstream)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gaveUp := make(chan struct{})
	var once sync.Once
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodGet && strings.Contains(r.Request.URL.Path, "/blobs/") {
			r.Body = &stalledBody{ctx: r.Request.Context(), body: r.Body, gone: func() { once.Do(func() { close(gaveUp) }) }}
		}
		return nil
	}
	return serveProxy(t, proxy), gaveUp
}

// stalledBody sends nothing until its request's client has gone.
type stalledBody struct {
	ctx  context.Context
	body io.ReadCloser
	gone func()
}

func (b *stalledBody) Read([]byte) (int, error) {
	<-b.ctx.Done()
	b.gone()
	return 0, b.ctx.Err()
}

func (b *stalledBody) Close() error { return b.body.Close() }
