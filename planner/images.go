package planner

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/spec"
)

// ImageChange is the decision for one image block.
type ImageChange struct {
	Address spec.Address `json:"address"`
	Ref     string       `json:"ref"`
	Action  Action       `json:"action"`
	Reasons []Reason     `json:"reasons,omitempty"`
	// Import is the archive to import; empty for a pull.
	Import   string `json:"import,omitempty"`
	Platform string `json:"platform,omitempty"`
	// Pin is the pinned state apply sets, when it changes.
	Pin *bool `json:"pin,omitempty"`
}

// ObserveArchives reads the manifest digest of every image block's OCI
// archive, so a plan can skip an import whose image is already there.
// Archives without an OCI index (docker archives) get no digest.
func ObserveArchives(snap *Snapshot, imgs []*spec.Image) {
	snap.ArchiveDigests = map[string]string{}
	for _, img := range imgs {
		if img.Source == "" {
			continue
		}
		if d, err := archiveDigest(img.Source); err == nil {
			snap.ArchiveDigests[img.Source] = d
		}
	}
}

// archiveDigest is the digest of the first manifest in an OCI archive's
// index.json.
func archiveDigest(path string) (string, error) {
	f, err := safefile.Open(path, safefile.Options{}) // a FIFO would hold the plan, and the stack's lock
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", errors.New("no index.json")
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(h.Name, "./") != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct {
				Digest string `json:"digest"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&index); err != nil || len(index.Manifests) == 0 {
			return "", fmt.Errorf("unreadable index.json: %v", err)
		}
		return index.Manifests[0].Digest, nil
	}
}

// diffImages decides the image blocks: pull or import what is missing (or,
// for an archive with pull = "always", what differs from the archive), and
// set the pinned label. Images the stack no longer declares are left alone,
// unless opts.PruneImages: then their names go.
func diffImages(cfg *spec.Config, snap *Snapshot, opts Options, plan *Plan) {
	for _, img := range cfg.Images {
		ic := &ImageChange{Address: spec.Address{Kind: spec.KindImage, Name: img.Ref}, Ref: img.Ref, Action: NoOp, Platform: img.Platform}
		present := snap.HasImage(img.Ref)
		switch {
		case img.Source != "":
			digest := snap.ArchiveDigests[img.Source]
			stale := img.Pull == spec.PullAlways && digest != "" && !snap.hasDigest(img.Ref, digest)
			if !present || stale {
				ic.Action, ic.Import = Create, img.Source
				ic.Reasons = []Reason{because(ReasonImageImport, "import %s", img.Source)}
				if stale {
					ic.Reasons = []Reason{because(ReasonImageImport, "the archive %s holds another image (%s)", img.Source, digest)}
				}
			}
		case !present && img.Pull == spec.PullNever:
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: the image is not present and pull = \"never\". Import it, give the block a source archive, or allow pulls.", ic.Address))
			continue
		case !present:
			ic.Action, ic.Reasons = Create, []Reason{because(ReasonImageMissing, "not present: pull it")}
		case img.Pull == spec.PullAlways:
			remote, local := snap.RemoteDigests[img.Ref], snap.localDigest(img.Ref)
			if remote != "" && local != "" && remote != local {
				ic.Action = Create
				ic.Reasons = []Reason{because(ReasonTagMoved, "the tag now names another image: %s -> %s", local, remote)}
			}
		}
		if ic.Action == Create {
			if plan.provided == nil {
				plan.provided = map[string]bool{}
			}
			plan.provided[img.Ref] = true
		}
		if img.Pin != snap.Pinned[img.Ref] || (ic.Action == Create && img.Pin) {
			pin := img.Pin
			ic.Pin = &pin
			if ic.Action == NoOp {
				ic.Action = Update
				ic.Reasons = []Reason{because(ReasonPinChanged, "pin = %v", pin)}
			}
		}
		plan.Images = append(plan.Images, ic)
	}
	if !opts.PruneImages {
		return
	}
	declared := map[string]bool{}
	for _, img := range cfg.Images {
		declared[img.Ref] = true
	}
	for _, name := range snap.StackImages {
		if !declared[name] {
			plan.Images = append(plan.Images, &ImageChange{Address: spec.Address{Kind: spec.KindImage, Name: name}, Ref: name, Action: Destroy,
				Reasons: []Reason{because(ReasonPruned, "no image block declares it any more (--prune-images)")}})
		}
	}
}
