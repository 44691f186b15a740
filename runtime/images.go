package runtime

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/spec"
)

// criNamespace is the containerd namespace the CRI plugin keeps its images in.
const criNamespace = "k8s.io"

// PinnedLabel is the containerd image label that keeps the CRI plugin's
// image garbage collection away from an image.
const PinnedLabel = "io.cri-containerd.pinned"

// snapshotter is the CRI plugin's default snapshotter; images must be
// unpacked there before a container can use them.
const snapshotter = "overlayfs"

// containerdClient reaches containerd's own API on the same socket, for
// what CRI cannot do: import an archive, label an image, stream events. It
// is dialled on first use, so plans never pay for it, and dialled again
// after a failure, so a watcher outlives a runtime restart.
type containerdClient struct {
	mu sync.Mutex
	c  *containerd.Client
}

func (c *Client) containerd() (*containerd.Client, error) {
	c.ctrd.mu.Lock()
	defer c.ctrd.mu.Unlock()
	if c.ctrd.c == nil {
		cl, err := containerd.New(strings.TrimPrefix(c.address, "unix://"), containerd.WithDefaultNamespace(criNamespace),
			containerd.WithExtraDialOpts([]grpc.DialOption{grpc.WithChainUnaryInterceptor(c.bounded)}))
		if err != nil {
			return nil, err
		}
		c.ctrd.c = cl
	}
	return c.ctrd.c, nil
}

// ImportImage imports an OCI or docker archive (optionally gzipped) as ref,
// for one platform ("" for the host's), and unpacks it for the CRI plugin.
func (c *Client) ImportImage(ctx context.Context, path, ref, platform string) error {
	cl, err := c.containerd()
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	f, err := safefile.Open(path, safefile.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := maybeGunzip(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	match := platforms.Default()
	if platform != "" {
		p, err := platforms.Parse(platform)
		if err != nil {
			return err
		}
		match = platforms.Only(p)
	}
	// An archive names its images itself, and containerd creates those
	// names, overwriting same-named images. Remember what was there, so
	// that only ref is left changed.
	ctx, release, err := ownLease(ctx, cl)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	defer release()
	is := cl.ImageService()
	before, err := is.List(ctx)
	if err != nil {
		return err
	}
	imgs, err := cl.Import(ctx, r, containerd.WithImportPlatform(match))
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	defer restoreNames(ctx, is, before, imgs, ref)
	if len(imgs) == 0 {
		return fmt.Errorf("import %s: the archive holds no image for %s", path, platforms.Format(platforms.DefaultSpec()))
	}
	// The archive names its image as it likes; the block names it ref.
	// Labelled as CRI labels its own images; without it the CRI plugin
	// adds a name of its own, which would keep the image when a prune
	// removes ref.
	img := images.Image{Name: ref, Target: imgs[0].Target, Labels: map[string]string{criManagedLabel: "managed"}}
	if old, err := is.Get(ctx, ref); err == nil {
		maps.Copy(img.Labels, old.Labels) // keep a pin
		_, err = is.Update(ctx, img, "target", "labels."+criManagedLabel)
		if err != nil {
			return fmt.Errorf("name the imported image %s: %w", ref, err)
		}
	} else if _, err := is.Create(ctx, img); err != nil {
		return fmt.Errorf("name the imported image %s: %w", ref, err)
	}
	if err := containerd.NewImageWithPlatform(cl, img, match).Unpack(ctx, snapshotter); err != nil {
		return fmt.Errorf("unpack %s: %w", ref, err)
	}
	return nil
}

// ownLease puts ctx under a lease of berth's own, which keeps what a pull
// or an import writes from the garbage collector until an image names it.
// containerd ends the lease it would make with the call's context, which
// a cancelled call (a stalled pull, Ctrl-C) has lost, and that lease
// would keep what was written for 24 hours. release ends berth's on any
// outcome, within the runtime timeout.
func ownLease(ctx context.Context, cl *containerd.Client) (context.Context, func(), error) {
	ctx, done, err := cl.WithLease(ctx)
	if err != nil {
		return ctx, nil, fmt.Errorf("lease: %w", err)
	}
	return ctx, func() { _ = done(context.WithoutCancel(ctx)) }, nil
}

// restoreNames undoes an import's side effects on names other than ref:
// new ones are deleted, overwritten ones get their old target back. It
// runs even when the import was interrupted (Ctrl-C during the unpack):
// those names belong to someone else, so each call has the runtime
// timeout alone.
func restoreNames(ctx context.Context, is images.Store, before, imported []images.Image, ref string) {
	ctx = context.WithoutCancel(ctx)
	old := map[string]images.Image{}
	for _, img := range before {
		old[img.Name] = img
	}
	for _, img := range imported {
		if img.Name == ref {
			continue
		}
		prev, existed := old[img.Name]
		switch {
		case !existed:
			_ = is.Delete(ctx, img.Name)
		case prev.Target.Digest != img.Target.Digest:
			_, _ = is.Update(ctx, prev, "target")
		}
	}
}

// PinnedImages lists, by name, the images that carry the pinned label.
// (CRI reports pinning per image ID, across all of its names; a stack pins
// the names it declares.)
func (c *Client) PinnedImages(ctx context.Context) (map[string]bool, error) {
	cl, err := c.containerd()
	if err != nil {
		return nil, fmt.Errorf("connect to containerd: %w", err)
	}
	imgs, err := cl.ImageService().List(ctx, fmt.Sprintf("labels.%q==pinned", PinnedLabel))
	if err != nil {
		return nil, fmt.Errorf("list pinned images: %w", err)
	}
	out := map[string]bool{}
	for _, img := range imgs {
		out[img.Name] = true
	}
	return out, nil
}

// PinImage sets or clears the pinned label of ref.
func (c *Client) PinImage(ctx context.Context, ref string, pin bool) error {
	value := ""
	if pin {
		value = "pinned"
	}
	return c.LabelImage(ctx, ref, PinnedLabel, value)
}

// LabelImage sets a label on the image named ref; "" removes it.
func (c *Client) LabelImage(ctx context.Context, ref, key, value string) error {
	cl, err := c.containerd()
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	is := cl.ImageService()
	img, err := is.Get(ctx, ref)
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	if img.Labels == nil {
		img.Labels = map[string]string{}
	}
	if value == "" {
		delete(img.Labels, key)
	} else {
		img.Labels[key] = value
	}
	if _, err := is.Update(ctx, img, "labels."+key); err != nil {
		return fmt.Errorf("label %s: %w", ref, err)
	}
	return nil
}

// ImagesLabelled lists the names of the images whose label key is value.
func (c *Client) ImagesLabelled(ctx context.Context, key, value string) ([]string, error) {
	cl, err := c.containerd()
	if err != nil {
		return nil, fmt.Errorf("connect to containerd: %w", err)
	}
	imgs, err := cl.ImageService().List(ctx, fmt.Sprintf("labels.%q==%q", key, value))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	names := make([]string, 0, len(imgs))
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	return names, nil
}

// DeleteImageName removes one name of an image. Other names of the same
// image, and containers using it, are not affected. When no other name
// wants the image, its ID and digest names go too, and the runtime frees
// its content before this returns. Gone already is deleted.
func (c *Client) DeleteImageName(ctx context.Context, name string) error {
	cl, err := c.containerd()
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	is := cl.ImageService()
	img, err := is.Get(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", name, err)
	}
	all, err := is.List(ctx, fmt.Sprintf("target.digest==%s", img.Target.Digest))
	if err != nil {
		return fmt.Errorf("list the names of %s: %w", name, err)
	}
	companion, _ := digestName(name, img.Target.Digest)
	going, last := namesGoing(name, companion, all)
	for i, n := range going {
		var opts []images.DeleteOpt
		if last && i == len(going)-1 {
			opts = append(opts, images.SynchronousDelete()) // as ctr images rm --sync
		}
		if err := is.Delete(ctx, n, opts...); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete image %s: %w", n, err)
		}
	}
	return nil
}

// namesGoing is what deleting name, one of all the names of an image,
// takes with it, and whether that is every name. A pull names the image
// by its ID too ("sha256:...", the CRI plugin), and by companion
// (repo@digest, CRI's pulls and berth's): those go once nothing else
// wants the image, or they would keep its content for ever. A digest
// name a stack declared, or another repository's, is a name of its own.
func namesGoing(name, companion string, all []images.Image) ([]string, bool) {
	going := []string{name}
	for _, other := range all {
		switch {
		case other.Name == name:
		case strings.HasPrefix(other.Name, "sha256:"),
			other.Name == companion && other.Labels[spec.LabelStack] == "":
			going = append(going, other.Name)
		default:
			return []string{name}, false // another name still wants the image
		}
	}
	return going, true
}

// maybeGunzip reads through gzip when the stream starts with its magic.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// Credentials returns the username and secret for a registry host, or
// empty strings; containerd's resolver asks it per host.
type Credentials func(host string) (string, string, error)

// RemoteDigest asks ref's registry which manifest its tag names now,
// resolving hosts exactly as the runtime does: through the hosts.toml
// files of certsDir (mirrors, CAs), with creds for registries that need
// them.
func (c *Client) RemoteDigest(ctx context.Context, ref, certsDir string, creds Credentials) (string, error) {
	opts := config.HostOptions{Credentials: creds}
	if certsDir != "" {
		opts.HostDir = config.HostDirFromRoot(certsDir)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout) // a registry that never answers must not hang the plan
	defer cancel()
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, opts)})
	_, desc, err := resolver.Resolve(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	return desc.Digest.String(), nil
}
