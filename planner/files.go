package planner

import (
	"bytes"
	"fmt"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/berth-dev/berth/hostsfile"
	"github.com/berth-dev/berth/spec"
)

// FileChange is the decision for one file berth manages on the host: a
// mirror's hosts.toml.
type FileChange struct {
	Address string   `json:"address"`
	Action  Action   `json:"action"`
	Reasons []string `json:"reasons,omitempty"`
	Path    string   `json:"path"`
	// Diff is a unified diff from the file on disk to the file apply writes.
	Diff    string `json:"diff,omitempty"`
	Content []byte `json:"-"`
}

// ObserveMirrors reads the hosts.toml files of a certs directory into the
// snapshot. certsDir "" means the runtime has none: nothing to read.
func ObserveMirrors(snap *Snapshot, certsDir string) error {
	snap.CertsDir = certsDir
	snap.Mirrors = map[string]*hostsfile.File{}
	if certsDir == "" {
		return nil
	}
	files, err := hostsfile.Read(certsDir)
	if err != nil {
		return fmt.Errorf("read mirrors in %s: %w", certsDir, err)
	}
	snap.Mirrors = files
	return nil
}

// diffMirrors decides the hosts.toml files: a declared mirror's file is
// written when missing or different; a file of this stack whose mirror is
// gone is removed; a file berth did not write is never touched unless the
// user adopts it, and another stack's never.
func diffMirrors(cfg *spec.Config, snap *Snapshot, opts Options, plan *Plan) {
	stack := snap.Stack
	if len(cfg.Mirrors) > 0 && snap.CertsDir == "" {
		plan.Errors = append(plan.Errors, "mirrors are declared, but the runtime has no registry config_path, so they would be inert. "+
			"Enable it in containerd's config (version 3):\n\n    [plugins.\"io.containerd.cri.v1.images\".registry]\n      config_path = \"/etc/containerd/certs.d\"\n\n"+
			"restart containerd, and plan again; or set certs_dir in the berth block.")
		return
	}
	declared := map[string]bool{}
	for _, m := range cfg.Mirrors {
		declared[m.Host] = true
		want := hostsfile.Render(stack, m)
		fc := &FileChange{Address: "mirror." + m.Host, Path: hostsfile.Path(snap.CertsDir, m.Host), Content: want, Action: NoOp}
		have := snap.Mirrors[m.Host]
		switch {
		case have == nil:
			fc.Action = Create
			fc.Diff = unified(fc.Path, nil, want)
		case have.Stack != "" && have.Stack != stack:
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: %s belongs to stack %q; berth never changes another stack's files. Remove the mirror from one of the stacks.", fc.Address, fc.Path, have.Stack))
			continue
		case have.Stack == "" && !opts.Adopt:
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: %s exists and berth did not write it. Rerun with --adopt to let this stack take it over (the plan shows what changes), or remove the mirror block.", fc.Address, fc.Path))
			continue
		case !bytes.Equal(have.Content, want):
			fc.Action = Update
			fc.Reasons = []string{"the file differs from the mirror block"}
			if have.Stack == "" {
				fc.Reasons = []string{"adopted: berth did not write this file (--adopt)"}
			}
			fc.Diff = unified(fc.Path, have.Content, want)
		}
		plan.Files = append(plan.Files, fc)
	}
	for _, host := range sortedNames(snap.Mirrors) {
		f := snap.Mirrors[host]
		if f.Stack != stack || declared[host] {
			continue
		}
		plan.Files = append(plan.Files, &FileChange{Address: "mirror." + host, Action: Destroy, Path: f.Path,
			Reasons: []string{"not in the configuration"}, Diff: unified(f.Path, f.Content, nil)})
	}
}

func unified(path string, before, after []byte) string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(before)), B: difflib.SplitLines(string(after)),
		FromFile: path, ToFile: path, Context: 3,
	})
	return d
}
