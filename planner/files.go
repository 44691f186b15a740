package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/berth-dev/berth/internal/hostsfile"
	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/spec"
)

// MaxConflist is the largest CNI configuration berth reads.
const MaxConflist = 1 << 20

// FileChange is the decision for one file berth manages on the host: a
// mirror's hosts.toml.
type FileChange struct {
	// Kind is "mirror" (a hosts.toml) or "network" (a CNI conflist).
	Kind    string       `json:"kind"`
	Address spec.Address `json:"address"`
	Action  Action       `json:"action"`
	Reasons []Reason     `json:"reasons,omitempty"`
	Path    string       `json:"path"`
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
		fc := &FileChange{Kind: "mirror", Address: spec.Address{Kind: spec.KindMirror, Name: m.Host}, Path: hostsfile.Path(snap.CertsDir, m.Host), Content: want, Action: NoOp}
		have := snap.Mirrors[m.Host]
		switch {
		case have == nil:
			fc.Action = Create
			fc.Diff = unified(fc.Path, nil, want)
		case have.Linked:
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: %s is a symbolic link; berth does not write through links, --adopt or not. Make it a directory, or remove the mirror block.", fc.Address, filepath.Dir(fc.Path)))
			continue
		case have.Stack != "" && have.Stack != stack:
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: %s belongs to stack %q; berth never changes another stack's files. Remove the mirror from one of the stacks.", fc.Address, fc.Path, have.Stack))
			continue
		case have.Stack == "" && !opts.Adopt:
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: %s exists and berth did not write it. Rerun with --adopt to let this stack take it over (the plan shows what changes), or remove the mirror block.", fc.Address, fc.Path))
			continue
		case !bytes.Equal(have.Content, want):
			fc.Action = Update
			fc.Reasons = []Reason{because(ReasonFileDiffers, "the file differs from the mirror block")}
			if have.Stack == "" {
				fc.Reasons = []Reason{because(ReasonAdopted, "adopted: berth did not write this file (--adopt)")}
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
		plan.Files = append(plan.Files, &FileChange{Kind: "mirror", Address: spec.Address{Kind: spec.KindMirror, Name: host}, Action: Destroy, Path: f.Path,
			Reasons: []Reason{removed(opts)}, Diff: unified(f.Path, f.Content, nil)})
	}
}

func unified(path string, before, after []byte) string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(before)), B: difflib.SplitLines(string(after)),
		FromFile: path, ToFile: path, Context: 3,
	})
	return d
}

// NetworkFile is a CNI configuration found in the runtime's conf dir.
type NetworkFile struct {
	Path    string
	Name    string // the network's name in the file
	Content []byte
	// Stack is the stack that wrote it; "" when berth did not.
	Stack string
}

// ObserveNetworks reads the CNI configurations of the runtime's conf dir.
func ObserveNetworks(snap *Snapshot, confDir string) error {
	snap.CNIConfDir = confDir
	snap.Networks = nil
	if confDir == "" {
		return nil
	}
	entries, err := os.ReadDir(confDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read networks in %s: %w", confDir, err)
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".conflist" && ext != ".conf" && ext != ".json") {
			continue
		}
		path := filepath.Join(confDir, e.Name())
		content, err := safefile.Read(path, MaxConflist, safefile.Options{NoFollow: true})
		if errors.Is(err, safefile.ErrNotRegular) {
			content = nil // a link or FIFO: not a file berth wrote, and not followed
		} else if err != nil {
			return err
		}
		var marker map[string]any
		_ = json.Unmarshal(content, &marker)
		stack, _ := marker[spec.NetworkStackKey].(string)
		name, _ := marker["name"].(string)
		snap.Networks = append(snap.Networks, &NetworkFile{Path: path, Name: name, Content: content, Stack: stack})
	}
	sort.Slice(snap.Networks, func(i, j int) bool { return snap.Networks[i].Path < snap.Networks[j].Path })
	return nil
}

// NetworkPath is where a stack's network is written: early in lexical
// order, since the runtime gives pods the first network of its conf dir.
func NetworkPath(confDir, stack string) string {
	return filepath.Join(confDir, "10-berth-"+stack+".conflist")
}

// diffNetworks decides the stack's CNI conflist, like diffMirrors does
// hosts.toml files, and what happens to the pods already running on the
// network it changes.
func diffNetworks(cfg *spec.Config, snap *Snapshot, opts Options, plan *Plan) {
	stack := snap.Stack
	if len(cfg.Networks) > 0 && snap.CNIConfDir == "" {
		plan.Errors = append(plan.Errors, "a network is declared, but the runtime's CNI conf dir is unknown. Set cni_conf_dir in the berth block.")
		return
	}
	changed := false
	path := ""
	if len(cfg.Networks) > 0 {
		n := cfg.Networks[0]
		path = NetworkPath(snap.CNIConfDir, stack)
		want, err := n.Conflist(stack)
		if err != nil {
			plan.Errors = append(plan.Errors, fmt.Sprintf("network.%s: %v", n.Name, err))
			return
		}
		fc := &FileChange{Kind: "network", Address: spec.Address{Kind: spec.KindNetwork, Name: n.Name}, Path: path, Content: want, Action: NoOp}
		var have *NetworkFile
		for _, f := range snap.Networks {
			if f.Path == path {
				have = f
			}
		}
		switch {
		case have == nil:
			fc.Action, fc.Diff = Create, unified(path, nil, want)
		case have.Stack != stack && !opts.Adopt:
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: %s exists and this stack did not write it. Rerun with --adopt to take it over, or rename the stack.", fc.Address, path))
			return
		case !bytes.Equal(have.Content, want):
			fc.Action, fc.Diff = Update, unified(path, have.Content, want)
			fc.Reasons = []Reason{because(ReasonFileDiffers, "the file differs from the network block")}
			if bridge, subnet := bridgeOf(have.Content); bridge != "" && subnet != "" {
				if nb, ns := bridgeOf(want); nb == bridge && ns != subnet {
					plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s: the bridge %s keeps the address it has on %s, and the bridge plugin refuses pods of %s on it: give the network a new bridge name, or delete the bridge (ip link delete %s) once no pod uses it",
						fc.Address, bridge, subnet, ns, bridge))
				}
			}
		}
		changed = fc.Action != NoOp
		plan.Files = append(plan.Files, fc)
		if len(snap.Networks) > 0 && snap.Networks[0].Path < path && snap.Networks[0].Path != path {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s sorts after %s, and the runtime gives pods the first network of %s: pods will not get network %q until that file goes or sorts later",
				filepath.Base(path), filepath.Base(snap.Networks[0].Path), snap.CNIConfDir, n.Name))
		}
	}
	for _, f := range snap.Networks {
		if f.Stack == stack && f.Path != path {
			changed = true
			plan.Files = append(plan.Files, &FileChange{Kind: "network", Address: spec.Address{Kind: spec.KindNetwork, Name: f.Name},
				Action: Destroy, Path: f.Path, Reasons: []Reason{removed(opts)}, Diff: unified(f.Path, f.Content, nil)})
		}
	}
	switch {
	case changed:
		networkChanged(plan, opts, func(*PodChange) bool { return true })
	case snap.PodNetwork != nil:
		// The network changed before this plan, and a pod made on the old
		// one was not replaced (the change was applied without
		// --replace-on-network-change, or the replace was cut short): it
		// is still on the old network, and the plan says so.
		networkChanged(plan, opts, func(pc *PodChange) bool {
			made := SandboxNetwork(pc.Actual.Sandbox)
			return made != nil && !bytes.Equal(made, snap.PodNetwork)
		})
	}
}

// bridgeOf is the bridge and first subnet of a conflist's bridge plugin,
// or "" when it has none.
func bridgeOf(conf []byte) (bridge, subnet string) {
	var doc struct {
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPAM   struct {
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(conf, &doc) != nil {
		return "", ""
	}
	for _, p := range doc.Plugins {
		if p.Type == "bridge" && len(p.IPAM.Ranges) > 0 && len(p.IPAM.Ranges[0]) > 0 {
			return p.Bridge, p.IPAM.Ranges[0][0].Subnet
		}
	}
	return "", ""
}

// networkChanged deals with the running pods of a stack whose network
// changes (those onOld says are on another network than the new one):
// they keep the old one until replaced, which the user may ask for.
func networkChanged(plan *Plan, opts Options, onOld func(*PodChange) bool) {
	var keep []string
	for _, pc := range plan.Pods {
		if pc.Action != NoOp || pc.Actual == nil || !onOld(pc) {
			continue
		}
		if !opts.ReplaceOnNetworkChange {
			keep = append(keep, pc.Address.String())
			continue
		}
		pc.Action, pc.Reasons = Replace, []Reason{because(ReasonNetworkChanged, "the pod network changed (--replace-on-network-change)")}
		pc.Containers = nil
		for _, c := range pc.Desired.Containers {
			pc.Containers = append(pc.Containers, &ContainerChange{Address: spec.ContainerAddress(pc.Name, c.Name), Name: c.Name,
				Action: Create, Init: c.Init, Image: c.Image, Desired: c, StopTimeout: spec.Duration(c.StopTimeout)})
		}
	}
	if len(keep) > 0 {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s keep their current network until they are replaced; rerun with --replace-on-network-change to replace them now. "+
			"(The runtime tears a pod's network down with the configuration of the moment, so removing such a pod later can fail.)", strings.Join(keep, ", ")))
	}
}
