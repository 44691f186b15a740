// Command ociimage wraps one gzipped layer tarball into a single-image OCI
// archive (oci-layout, index.json, blobs/sha256/...) that
// `ctr images import` and the containerd client's import accept.
//
// It exists so the test images can be built offline and byte-for-byte
// reproducibly: the JSON is written by encoding/json (no hand-made quoting),
// the archive entries are sorted and carry fixed owners and mtimes, and the
// manifest digest is printed so callers can tell whether an imported image
// is current.
//
// Usage:
//
//	ociimage -layer layer.tar.gz -name docker.io/library/busybox:1.36 -o out.tar -- sh
//
// Everything after the flags is the image config's Cmd. Standard library only.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
	defaultPath   = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Env        []string `json:"Env"`
		Cmd        []string `json:"Cmd"`
		WorkingDir string   `json:"WorkingDir,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tagOf returns the tag of a full reference ("docker.io/x/y:1.0" -> "1.0").
func tagOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

func main() {
	layerPath := flag.String("layer", "", "gzipped layer tarball")
	name := flag.String("name", "", "full image reference, e.g. docker.io/library/busybox:1.36")
	out := flag.String("o", "", "output OCI archive (.tar)")
	arch := flag.String("arch", runtime.GOARCH, "image architecture")
	flag.Parse()
	if *layerPath == "" || *name == "" || *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ociimage -layer L.tar.gz -name REF -o OUT.tar -- CMD...")
		os.Exit(2)
	}
	if err := run(*layerPath, *name, *out, *arch, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(layerPath, name, out, arch string, cmd []string) error {
	layer, err := os.ReadFile(layerPath)
	if err != nil {
		return err
	}
	// diff_id is the digest of the uncompressed layer.
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return fmt.Errorf("layer is not gzip: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return err
	}
	diffID := "sha256:" + hex.EncodeToString(h.Sum(nil))

	var cfg imageConfig
	cfg.Architecture, cfg.OS = arch, "linux"
	cfg.Config.Env = []string{defaultPath}
	cfg.Config.Cmd = cmd
	cfg.Config.WorkingDir = "/"
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{diffID}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}

	man := manifest{
		SchemaVersion: 2,
		MediaType:     mediaManifest,
		Config:        descriptor{MediaType: mediaConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))},
		Layers:        []descriptor{{MediaType: mediaLayerGz, Digest: digestOf(layer), Size: int64(len(layer))}},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return err
	}

	idx := index{
		SchemaVersion: 2,
		MediaType:     mediaIndex,
		Manifests: []descriptor{{
			MediaType: mediaManifest,
			Digest:    digestOf(manJSON),
			Size:      int64(len(manJSON)),
			Platform:  &platform{Architecture: arch, OS: "linux"},
			Annotations: map[string]string{
				// containerd prefers its own full-name annotation; the OCI one
				// holds only the tag, as the image-spec recommends.
				"io.containerd.image.name":          name,
				"org.opencontainers.image.ref.name": tagOf(name),
			},
		}},
	}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return err
	}

	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json": idxJSON,
	}
	for _, b := range [][]byte{layer, cfgJSON, manJSON} {
		files["blobs/sha256/"+strings.TrimPrefix(digestOf(b), "sha256:")] = b
	}
	if err := writeTar(out, files); err != nil {
		return err
	}
	fmt.Println(digestOf(manJSON))
	return nil
}

// writeTar writes files (plus their parent directories) in sorted order with
// fixed metadata, atomically via a temporary file.
func writeTar(out string, files map[string][]byte) error {
	names := []string{"blobs/", "blobs/sha256/"}
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	epoch := time.Unix(0, 0)
	for _, n := range names {
		hdr := &tar.Header{Name: n, ModTime: epoch, Mode: 0o644, Format: tar.FormatUSTAR}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(files[n]))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
