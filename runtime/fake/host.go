package fake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/runtime"
)

// The host side of observation: where the runtime reads registry and
// network configuration, which images it pins and labels, and what
// registries answer. Tests set the fields; the zero values are a runtime
// with neither a registry config_path nor CNI, pinning nothing.

// RegistryConfigPath reports ConfigPath.
func (r *Runtime) RegistryConfigPath(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ConfigPath, r.enter("RegistryConfigPath", "")
}

// CNI reports CNIConfDir and CNIBinDirs, and as the pod network the first
// configuration file of CNIConfDir, as the real runtime loads it.
func (r *Runtime) CNI(context.Context) (runtime.CNI, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("CNI", ""); err != nil {
		return runtime.CNI{}, err
	}
	return runtime.CNI{ConfDir: r.CNIConfDir, BinDirs: r.CNIBinDirs, PodNetwork: firstNetwork(r.CNIConfDir)}, nil
}

func firstNetwork(dir string) []byte {
	if dir == "" {
		return nil
	}
	entries, _ := os.ReadDir(dir) // sorted by name
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".conflist", ".conf", ".json":
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
				return b
			}
		}
	}
	return nil
}

// ImagesLabelled lists the images LabelImage labelled, whatever the key.
func (r *Runtime) ImagesLabelled(context.Context, string, string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("ImagesLabelled", ""); err != nil {
		return nil, err
	}
	var out []string
	for ref := range r.labelled {
		out = append(out, ref)
	}
	return out, nil
}

// PinnedImages reports the images PinImage pinned.
func (r *Runtime) PinnedImages(context.Context) (map[string]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("PinnedImages", ""); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for ref, img := range r.Images {
		out[ref] = img.Pinned
	}
	return out, nil
}

// RemoteDigest answers from Remote; a reference it lacks is not found.
func (r *Runtime) RemoteDigest(_ context.Context, ref, _ string, _ runtime.Credentials) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enter("RemoteDigest", ref); err != nil {
		return "", err
	}
	d, ok := r.Remote[ref]
	if !ok {
		return "", fmt.Errorf("%s: %w", ref, errdefs.ErrNotFound)
	}
	return d, nil
}
