package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The services a containerd before 1.7 lacks: berth's pull needs both.
var transferServices = []string{"/containerd.services.transfer.v1.Transfer/", "/containerd.services.streaming.v1.Streaming/"}

const contentWrite = "/containerd.services.content.v1.Content/Write"

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

	r := runBerth(t, nil, "--address", proxy.address, "--log-level", "debug", "apply", "--auto-approve", s.dir)
	if r.code != 0 || !strings.Contains(r.stdout, "image "+ref+": pulled, 3 blobs") {
		t.Fatalf("apply: %s", r)
	}
	if strings.Contains(r.stderr, "no transfer service") {
		t.Errorf("fell back on a runtime with the transfer service:\n%s", r.stderr)
	}
	if n := proxy.calls("/containerd.services.transfer.v1.Transfer/Transfer"); n != 1 {
		t.Errorf("%d Transfer calls, want 1", n)
	}
	if n := proxy.calls(contentWrite); n != 0 {
		t.Errorf("berth wrote into the content store %d times: the layers went through it", n)
	}
	checkPulledImage(t, ref)
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

	r := runBerth(t, nil, "--address", proxy.address, "--log-level", "debug", "apply", "--auto-approve", s.dir)
	if r.code != 0 || !strings.Contains(r.stdout, "image "+ref+": pulled, 3 blobs") {
		t.Fatalf("apply: %s", r)
	}
	if !strings.Contains(r.stderr, "the runtime has no transfer service; pulling through the containerd client") {
		t.Errorf("the fallback is not in the debug log:\n%s", r.stderr)
	}
	if n := proxy.refused(); n == 0 {
		t.Errorf("berth never asked for the transfer service")
	}
	checkPulledImage(t, ref)
}

// checkPulledImage checks ref as CRI names its own pulls, through
// containerd itself (not through berth or the proxy).
func checkPulledImage(t *testing.T, ref string) {
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
	repo, _, _ := strings.Cut(ref, ":v1")
	byDigest := repo + "@" + img.Target.Digest.String()
	if other, err := cl.ImageService().Get(ctx, byDigest); err != nil || other.Target.Digest != img.Target.Digest {
		t.Errorf("digest name %s: %v", byDigest, err)
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runtimeProxy is a gRPC proxy in front of the runtime's socket that
// counts calls per method and, with hide, answers the transfer and
// streaming services as a containerd without them does.
type runtimeProxy struct {
	address  string
	upstream *grpc.ClientConn
	hide     bool

	mu      sync.Mutex
	counts  map[string]int
	refusal int
}

func newRuntimeProxy(t *testing.T, hide bool) *runtimeProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-proxy-") // short: a socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "containerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	p := &runtimeProxy{address: "unix://" + sock, upstream: upstream, hide: hide, counts: map[string]int{}}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(p.forward))
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Stop()
		upstream.Close()
	})
	return p
}

func (p *runtimeProxy) calls(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method]
}

func (p *runtimeProxy) refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusal
}

// forward relays one call, of any kind, to the runtime.
func (p *runtimeProxy) forward(_ any, in grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(in)
	p.mu.Lock()
	p.counts[method]++
	hidden := false
	for _, prefix := range transferServices {
		hidden = hidden || (p.hide && strings.HasPrefix(method, prefix))
	}
	if hidden {
		p.refusal++
	}
	p.mu.Unlock()
	if hidden {
		service := strings.Trim(method[:strings.LastIndex(method, "/")], "/")
		return status.Errorf(codes.Unimplemented, "unknown service %s", service)
	}

	md, _ := metadata.FromIncomingContext(in.Context())
	out := metadata.MD{}
	for k, v := range md {
		if !strings.HasPrefix(k, ":") && k != "content-type" && k != "user-agent" {
			out[k] = v
		}
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(in.Context(), out))
	defer cancel()
	up, err := p.upstream.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	// Requests: until the client half-closes; a client that goes away
	// cancels in's context, and with it the upstream call.
	go func() {
		for {
			var msg []byte
			if err := in.RecvMsg(&msg); err != nil {
				if errors.Is(err, io.EOF) {
					up.CloseSend()
				}
				return
			}
			if err := up.SendMsg(&msg); err != nil {
				return
			}
		}
	}()
	headerSent := false
	for {
		var msg []byte
		err := up.RecvMsg(&msg)
		if !headerSent {
			if h, herr := up.Header(); herr == nil {
				in.SendHeader(h)
			}
			headerSent = true
		}
		if err != nil {
			in.SetTrailer(up.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := in.SendMsg(&msg); err != nil {
			return err
		}
	}
}

// rawCodec passes messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
