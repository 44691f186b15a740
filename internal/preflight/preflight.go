// Package preflight checks the host before a plan is applied: that the
// devices, mount sources and CDI devices the containers about to start need
// are there. A problem found here fails the plan before anything changes,
// instead of failing the apply half way.
package preflight

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// DefaultCDISpecDirs are where CDI specs are looked up, as the runtime does.
var DefaultCDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// Host is what the checks read from the machine; tests replace it.
type Host struct {
	Stat        func(path string) (fs.FileInfo, error)
	CDISpecDirs []string
	// CgroupV2 says whether the host runs the unified cgroup hierarchy;
	// CRI can limit pids only there.
	CgroupV2 bool
	// PodNetwork reports the runtime's pod network file and whether it
	// maps host ports; nil skips the check. It is called only when a pod
	// with ports is about to be created.
	PodNetwork func() (file string, portmap bool, err error)
	// ValidateNetwork checks a conflist the plan would write (see the
	// function of that name); nil skips the check.
	ValidateNetwork func(conflist []byte) error
}

// DefaultHost reads the real machine.
func DefaultHost() Host {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return Host{Stat: os.Stat, CDISpecDirs: DefaultCDISpecDirs, CgroupV2: err == nil}
}

// Result lists what the checks found: errors fail the plan, warnings do
// not; notes say what apply will do on the host beside the runtime.
type Result struct {
	Errors   []string
	Warnings []string
	Notes    []string
}

// Check examines every container the plan creates, replaces or restarts.
func Check(plan *planner.Plan, h Host) Result {
	var r Result
	var cdiNames []string
	cdiUsers := map[string]string{}
	checkPorts(&r, plan, h)
	for _, fc := range plan.Files {
		if fc.Kind == "network" && (fc.Action == planner.Create || fc.Action == planner.Update) && h.ValidateNetwork != nil {
			if err := h.ValidateNetwork(fc.Content); err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", fc.Address, err))
			}
		}
	}
	for c := range plan.Changes() {
		cc := c.Container
		if cc == nil || cc.Desired == nil || !cc.Action.Starts() {
			continue
		}
		for _, d := range cc.Desired.Devices {
			checkDevice(&r, h, cc.Address.String(), d)
		}
		for _, m := range cc.Desired.Mounts {
			_, err := h.Stat(m.HostPath)
			switch {
			case err == nil:
			case !m.Create:
				r.Errors = append(r.Errors, fmt.Sprintf("%s: the source of mount %q, %s, does not exist (%v). Create it, or set create = true.", cc.Address, m.ContainerPath, m.HostPath, unwrap(err)))
			case errors.Is(err, fs.ErrNotExist) && !slices.Contains(r.Notes, creates(m.HostPath)):
				r.Notes = append(r.Notes, creates(m.HostPath))
			}
		}
		if cc.Desired.Resources.Pids > 0 && !h.CgroupV2 {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: resources.pids needs cgroup v2, and this host runs cgroup v1 (the runtime can pass a pids limit only as a unified cgroup setting). Remove pids, or boot the host with the unified hierarchy.", cc.Address))
		}
		for _, name := range cc.Desired.CDIDevices {
			if _, seen := cdiUsers[name]; !seen {
				cdiNames = append(cdiNames, name)
				cdiUsers[name] = cc.Address.String()
			}
		}
	}
	for _, ic := range plan.Images {
		if ic.Import == "" {
			continue
		}
		if _, err := h.Stat(ic.Import); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: the archive %s cannot be read (%v). Fix source, or remove it to pull instead.", ic.Address, ic.Import, unwrap(err)))
		}
	}
	if len(cdiNames) > 0 {
		checkCDI(&r, h, cdiNames, cdiUsers)
	}
	return r
}

// creates is the note for a mount source apply will make.
func creates(path string) string {
	return fmt.Sprintf("%s does not exist: apply creates it, an empty directory (mode 0755), for the mounts that set create = true", path)
}

// checkPorts makes sure the pod network can map the host ports of the pods
// about to be created.
func checkPorts(r *Result, plan *planner.Plan, h Host) {
	var users []string
	for _, pc := range plan.Pods {
		if (pc.Action == planner.Create || pc.Action == planner.Replace) && pc.Desired != nil && len(pc.Desired.Ports) > 0 {
			users = append(users, pc.Address.String())
		}
	}
	if len(users) == 0 || h.PodNetwork == nil {
		return
	}
	file, portmap, err := h.PodNetwork()
	switch {
	case err != nil:
		r.Errors = append(r.Errors, fmt.Sprintf("%s: host ports need the pod network, and it cannot be read: %v", strings.Join(users, ", "), err))
	case !portmap:
		r.Errors = append(r.Errors, fmt.Sprintf("%s: host ports need the portmap CNI plugin, and the runtime's pod network (%s) has none with the portMappings capability. Add {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}} to its plugins.", strings.Join(users, ", "), file))
	}
}

func checkDevice(r *Result, h Host, addr string, d spec.Device) {
	info, err := h.Stat(d.HostPath)
	switch {
	case err != nil && d.Optional:
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: optional device %s is missing on this host; the container starts without it", addr, d.HostPath))
	case err != nil:
		r.Errors = append(r.Errors, fmt.Sprintf("%s: device %s does not exist on this host. %s", addr, d.HostPath, deviceHint(d.HostPath)))
	case info.Mode()&fs.ModeDevice == 0:
		r.Errors = append(r.Errors, fmt.Sprintf("%s: %s is not a device node. Name a character or block device, or use a mount block for files.", addr, d.HostPath))
	}
}

// deviceHint says what usually makes a well-known device missing.
func deviceHint(path string) string {
	switch path {
	case "/dev/kvm":
		return "KVM is not available: enable virtualisation (VT-x or AMD-V) in the firmware, load kvm_intel or kvm_amd, or, on a virtual machine, turn on nested virtualisation. Set optional = true to start without it."
	case "/dev/net/tun":
		return "Load the tun module (modprobe tun). Set optional = true to start without it."
	}
	return "Check the device's driver, or set optional = true to start without it."
}

func checkCDI(r *Result, h Host, names []string, users map[string]string) {
	cache, err := cdi.NewCache(cdi.WithSpecDirs(h.CDISpecDirs...), cdi.WithAutoRefresh(false))
	if err != nil && cache == nil {
		r.Errors = append(r.Errors, fmt.Sprintf("reading CDI specs in %v: %v", h.CDISpecDirs, err))
		return
	}
	for _, name := range names {
		if cache.GetDevice(name) == nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: CDI device %q is not defined by any spec in %v. Generate the vendor's CDI spec (for NVIDIA: nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml) or fix the name.", users[name], name, h.CDISpecDirs))
		}
	}
}

func unwrap(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
