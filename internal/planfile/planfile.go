// Package planfile saves a plan for a later `berth apply PLANFILE`.
//
// A plan file holds no secrets: not the configuration's values, only keyed
// digests of every decision (planner.Digests), the paths to reload the
// configuration, and the rendered plan for people to read. Applying it
// reloads the configuration, plans again, and refuses to go on when any
// decision's digest no longer matches, naming what moved.
//
// The file is authenticated with the host key (internal/hostkey): one
// changed by hand, or made on another host, is refused before anything in
// it is used.
package planfile

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/berth-dev/berth/internal/hostkey"
	"github.com/berth-dev/berth/internal/render"
	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/spec"
)

// FormatVersion is bumped when a plan file of an older berth can no longer
// be applied. 4: the digests are keyed with the host key too.
const FormatVersion = 4

// MaxSize is the largest plan file Read accepts.
const MaxSize = 64 << 20

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
	// Key keys Digests, which summarise each decision (planner.Digests),
	// with the host key (DigestKey).
	Key     string            `json:"key"`
	Digests map[string]string `json:"digests"`
	Plan    render.JSONPlan   `json:"plan"`
	// MAC authenticates everything above with the host key.
	MAC string `json:"mac"`
}

// mac is the host key's MAC of f without its MAC field.
func (f File) mac(hostKey []byte) string {
	f.MAC = ""
	b, _ := json.Marshal(f) // plain data: encoding cannot fail
	return hex.EncodeToString(hostkey.Sum(hostKey, "berth plan file", b))
}

// NewKey makes a new plan file's own key for its digests.
func NewKey() string {
	return rand.Text()
}

// DigestKey is what keys a plan file's digests: its own key and the host
// key together. A digest of the registries' logins could otherwise be
// tried against guessed passwords by anyone who has the file, which holds
// its own key.
func DigestKey(hostKey []byte, fileKey string) []byte {
	return hostkey.Sum(hostKey, "berth plan digests", []byte(fileKey))
}

// Write saves f atomically and durably, authenticated with hostKey: a
// reader never sees half a plan.
func Write(path string, f *File, hostKey []byte) error {
	f.FormatVersion = FormatVersion
	f.MAC = f.mac(hostKey)
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

// Read loads a plan file made on this host (its MAC checks with hostKey)
// and checks its every field.
func Read(path string, hostKey []byte) (*File, error) {
	b, err := readRegular(path)
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
	if !hmac.Equal([]byte(f.MAC), []byte(f.mac(hostKey))) {
		return nil, fmt.Errorf("%s: the plan file was changed after berth wrote it, or was made on another host (its MAC does not match this host's key); make a new plan", path)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("%s: %w; make a new plan", path, err)
	}
	return &f, nil
}

// check validates the fields that steer apply: even an authentic file
// is read as if it were not.
func (f *File) check() error {
	switch {
	case !spec.ValidStackName(f.Stack):
		return fmt.Errorf("stack %q is not a valid stack name", f.Stack)
	case !filepath.IsAbs(f.Dir):
		return fmt.Errorf("configuration directory %q is not an absolute path", f.Dir)
	case f.Key == "" || len(f.Digests) == 0:
		return errors.New("it has no digests")
	case !strings.HasPrefix(f.Address, "unix://") && !strings.HasPrefix(f.Address, "/"):
		return fmt.Errorf("runtime address %q is not a unix socket", f.Address)
	}
	for _, vf := range f.VarFiles {
		if vf == "" || strings.ContainsRune(vf, 0) {
			return errors.New("it names an invalid variable file")
		}
	}
	return nil
}

// readRegular reads a plan file: a regular file of at most MaxSize
// bytes, never blocking on a FIFO.
func readRegular(path string) ([]byte, error) {
	b, err := safefile.Read(path, MaxSize, safefile.Options{})
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, fmt.Errorf("%s: %w (make one with berth plan --out FILE)", path, ErrNotPlan)
	case errors.Is(err, safefile.ErrTooLarge):
		return nil, fmt.Errorf("%w; make a new plan", err)
	}
	return b, err
}
