package planner

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/spec"
)

// sensitiveHostPaths are host paths whose bind mount hands a container
// control over the host.
var sensitiveHostPaths = []string{"/", "/etc", "/var/run", "/run", "/var/lib/containerd", "/proc", "/sys", "/dev", "/boot", "/root"}

// warnPodRisk warns about a pod about to be (re)created with host access.
func warnPodRisk(plan *Plan, pc *PodChange) {
	p := pc.Desired
	if p.Privileged {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s is privileged: its privileged containers can take over the host", pc.Address))
	}
	var shared []string
	for name, on := range map[string]bool{"network": p.HostNetwork, "PID": p.HostPID, "IPC": p.HostIPC} {
		if on {
			shared = append(shared, name)
		}
	}
	if len(shared) > 0 {
		sort.Strings(shared)
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s shares the host's %s namespace%s", pc.Address, strings.Join(shared, ", "), plural(len(shared))))
	}
	for _, f := range p.Forwards {
		if host, _, err := net.SplitHostPort(f.Listen); err == nil {
			if ip, err := netip.ParseAddr(host); err == nil && !ip.IsLoopback() {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s listens on %s, not on loopback: whoever reaches this host on that address reaches the pod's port %d; listen on 127.0.0.1 unless that is meant", spec.ForwardAddress(p.Name, f.Name), f.Listen, f.Port))
			}
		}
	}
}

// warnContainerRisk warns about a container about to be (re)created with
// host access.
func warnContainerRisk(plan *Plan, cc *ContainerChange, socket string) {
	c := cc.Desired
	if c.Privileged {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s is privileged: it has every capability and device of the host", cc.Address))
	}
	for _, m := range c.Mounts {
		mode := "read-write"
		if m.ReadOnly {
			mode = "read-only"
		}
		switch {
		case socket != "" && within(socket, m.HostPath):
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s mounts %s (%s), which holds the container runtime's socket: it can control every container on this host", cc.Address, m.HostPath, mode))
		case isSensitive(m.HostPath):
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s mounts the host's %s (%s)", cc.Address, m.HostPath, mode))
		}
	}
}

func isSensitive(path string) bool {
	path = filepath.Clean(path)
	for _, s := range sensitiveHostPaths {
		if path == s {
			return true
		}
	}
	return false
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
