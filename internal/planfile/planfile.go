// Package planfile saves a plan for a later `berth apply PLANFILE`.
//
// A plan file holds no secrets: not the configuration's values, only keyed
// digests of every decision (planner.Digests), the paths to reload the
// configuration, and the rendered plan for people to read. Applying it
// reloads the configuration, plans again, and refuses to go on when any
// decision's digest no longer matches, naming what moved.
package planfile

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/google/renameio/v2"

	"github.com/berth-dev/berth/internal/render"
)

// FormatVersion is bumped when a plan file of an older berth can no longer
// be applied.
const FormatVersion = 2

// File is the content of a plan file.
type File struct {
	FormatVersion          int      `json:"format_version"`
	Dir                    string   `json:"dir"`
	Stack                  string   `json:"stack"`
	Address                string   `json:"address"`
	VarFiles               []string `json:"var_files,omitempty"`
	AllowReplace           bool     `json:"allow_replace,omitempty"`
	Adopt                  bool     `json:"adopt,omitempty"`
	PruneImages            bool     `json:"prune_images,omitempty"`
	ReplaceOnNetworkChange bool     `json:"replace_on_network_change,omitempty"`
	// Key keys Digests, which summarise each decision (planner.Digests).
	Key     string            `json:"key"`
	Digests map[string]string `json:"digests"`
	Plan    render.JSONPlan   `json:"plan"`
}

// NewKey makes the key of a new plan file's digests.
func NewKey() string {
	return rand.Text()
}

// Write saves f atomically and durably: a reader never sees half a plan.
func Write(path string, f *File) error {
	f.FormatVersion = FormatVersion
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	// 0600: a plan names the stack's resources and paths; durable before
	// it is renamed into place.
	return renameio.WriteFile(path, append(b, '\n'), 0o600)
}

// ErrNotPlan means the file is not a berth plan file.
var ErrNotPlan = errors.New("not a berth plan file")

// Read loads a plan file.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil || f.FormatVersion == 0 {
		return nil, fmt.Errorf("%s: %w (make one with berth plan --out FILE)", path, ErrNotPlan)
	}
	if f.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%s: plan file format %d, this berth reads format %d; make a new plan", path, f.FormatVersion, FormatVersion)
	}
	return &f, nil
}
