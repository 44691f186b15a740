// Package doctor checks that a host and its container runtime can run
// berth's workloads, and says how to fix what cannot.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

// Level is how a finding weighs.
type Level string

// The levels of a finding.
const (
	OK   Level = "ok"
	Warn Level = "warn"
	Fail Level = "fail"
)

// Finding is one check's result; Fix says what to do when it is not OK.
type Finding struct {
	Check   string `json:"check"`
	Level   Level  `json:"level"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Runtime is what the checks ask the runtime.
type Runtime interface {
	Version(ctx context.Context) (*cri.VersionResponse, error)
	Status(ctx context.Context) (*cri.StatusResponse, error)
	RegistryConfigPath(ctx context.Context) (string, error)
	Deprecations(ctx context.Context) ([]runtime.Deprecation, error)
	ListImages(ctx context.Context) ([]*cri.Image, error)
	ListSandboxes(ctx context.Context, labels map[string]string) ([]*cri.PodSandbox, error)
}

// Host is what the checks read from the machine; tests replace it.
type Host struct {
	Stat     func(string) (os.FileInfo, error)
	ReadFile func(string) ([]byte, error)
	ReadDir  func(string) ([]os.DirEntry, error)
	// KVM opens /dev/kvm and returns its API version.
	KVM func() (int, error)
	// Tun opens /dev/net/tun.
	Tun func() error
	// Kubelets lists the kubelet processes running on the host.
	Kubelets func() []Process
}

// Process is a running program, as /proc shows it.
type Process struct {
	PID     int
	Cmdline []string
}

// cniPlugins are the CNI plugins berth's networks and ports rely on.
var cniPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// kubeletSocket is the kubelet's pod-resources socket: present while a
// kubelet runs (or ran) on the host.
const kubeletSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

// defaultEndpoint is the runtime a kubelet uses when told none.
const defaultEndpoint = "/run/containerd/containerd.sock"

// Run performs every check of the runtime at address. rt may be nil when
// the runtime is unreachable; then dialErr says why.
func Run(ctx context.Context, rt Runtime, dialErr error, h Host, address string) []Finding {
	var out []Finding
	add := func(check string, level Level, msg, fix string) {
		out = append(out, Finding{Check: check, Level: level, Message: msg, Fix: fix})
	}
	restrictOOM := false
	if rt == nil {
		add("runtime", Fail, dialErr.Error(), "Start containerd with its CRI plugin, or point berth at it with --address or BERTH_ADDRESS.")
	} else {
		var found []Finding
		found, restrictOOM = runtimeChecks(ctx, rt, h)
		out = append(out, found...)
		out = append(out, kubeletCheck(ctx, rt, h, address))
	}
	out = append(out, hostChecks(h, restrictOOM)...)
	return out
}

// runtimeChecks also says whether the runtime restricts oom_score_adj,
// which decides whether a missing CAP_SYS_RESOURCE matters.
func runtimeChecks(ctx context.Context, rt Runtime, h Host) (out []Finding, restrictOOM bool) {
	add := func(check string, level Level, msg, fix string) {
		out = append(out, Finding{Check: check, Level: level, Message: msg, Fix: fix})
	}
	if v, err := rt.Version(ctx); err != nil {
		add("runtime", Fail, err.Error(), "Check that the socket belongs to containerd.")
	} else {
		major, minor := versionOf(v.RuntimeVersion)
		msg := fmt.Sprintf("%s %s, CRI %s", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
		switch {
		case v.RuntimeName != "containerd":
			add("runtime", Warn, msg, "berth is built and tested for containerd; other CRI runtimes lack its introspection API (mirrors, imports).")
		case major < 2:
			add("runtime", Warn, msg, "Upgrade to containerd 2.2 or later: berth reads the registry config_path and imports images through containerd 2's APIs.")
		case major == 2 && minor < 2:
			add("runtime", Warn, msg, "containerd 2.2 or later is recommended.")
		default:
			add("runtime", OK, msg, "")
		}
	}

	var cniConf string
	var cniBins []string
	if st, err := rt.Status(ctx); err != nil {
		add("cri", Fail, err.Error(), "Enable containerd's CRI plugin (it is on by default; check disabled_plugins).")
	} else {
		for _, c := range st.Status.GetConditions() {
			add(condition(c))
		}
		var config struct {
			RestrictOOMScoreAdj bool `json:"restrictOOMScoreAdj"`
			CNI                 struct {
				BinDirs []string `json:"binDirs"`
				BinDir  string   `json:"binDir"`
				ConfDir string   `json:"confDir"`
			} `json:"cni"`
		}
		if json.Unmarshal([]byte(st.Info["config"]), &config) == nil {
			cniConf, cniBins, restrictOOM = config.CNI.ConfDir, config.CNI.BinDirs, config.RestrictOOMScoreAdj
			if config.CNI.BinDir != "" {
				cniBins = append(cniBins, config.CNI.BinDir)
			}
		}
	}
	if cniConf != "" {
		add(confDirCheck(h, cniConf))
	}
	if len(cniBins) > 0 {
		var absent []string
		for _, d := range cniBins {
			if info, err := h.Stat(d); err != nil || !info.IsDir() {
				absent = append(absent, d)
			}
		}
		if len(absent) > 0 {
			add("cni.bin_dirs", Fail, "missing: "+strings.Join(absent, ", "),
				"Install the CNI plugins there (Debian: apt-get install containernetworking-plugins puts them in /usr/lib/cni), or point the runtime's [plugins.\"io.containerd.cri.v1.runtime\".cni] bin_dirs at them.")
		} else {
			add("cni.bin_dirs", OK, strings.Join(cniBins, ", "), "")
		}
		var missing []string
		for _, p := range cniPlugins {
			if !inAny(h, cniBins, p) {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			add("cni.plugins", Fail, fmt.Sprintf("missing in %s: %s", strings.Join(cniBins, ", "), strings.Join(missing, ", ")),
				"Install the CNI plugins (Debian: apt-get install containernetworking-plugins) into the runtime's bin_dirs.")
		} else {
			add("cni.plugins", OK, fmt.Sprintf("%s in %s", strings.Join(cniPlugins, ", "), strings.Join(cniBins, ", ")), "")
		}
	}

	if path, err := rt.RegistryConfigPath(ctx); err != nil {
		add("registry.config_path", Warn, err.Error(), "")
	} else if path == "" {
		add("registry.config_path", Warn, "not set: mirror blocks would be inert",
			"Set it in containerd's config (version 3): [plugins.\"io.containerd.cri.v1.images\".registry] config_path = \"/etc/containerd/certs.d\", then restart containerd.")
	} else if strings.Contains(path, ":") {
		// containerd 2's default is "/etc/containerd/certs.d:/etc/docker/certs.d":
		// the first directory wins, and berth writes there.
		add("registry.config_path", OK, path+" (mirror blocks are written to "+runtime.CertsDir(path)+", which containerd reads first)", "")
	} else {
		add("registry.config_path", OK, path, "")
	}
	if deps, err := rt.Deprecations(ctx); err == nil {
		for _, d := range deps {
			if strings.Contains(d.ID, "registry") {
				add("registry.deprecated", Warn, d.Message, "Move registry mirrors and configs to hosts.toml files under config_path; berth's mirror blocks write them.")
			}
		}
	}

	if imgs, err := rt.ListImages(ctx); err == nil {
		pause := ""
		for _, img := range imgs {
			for _, tag := range img.RepoTags {
				if img.Pinned && strings.Contains(tag, "pause") {
					pause = tag
				}
			}
		}
		if pause == "" {
			add("sandbox_image", Warn, "no pinned pause image is present", "Every pod needs the runtime's sandbox image; without internet, import it (e.g. registry.k8s.io/pause) before the first apply.")
		} else {
			add("sandbox_image", OK, pause+" is present", "")
		}
	}
	return out, restrictOOM
}

// condition grades one of the runtime's CRI conditions. Only RuntimeReady
// and NetworkReady are required (CRI says so); the others, such as
// containerd's ContainerdHasNoDeprecationWarnings, are warnings.
func condition(c *cri.RuntimeCondition) (string, Level, string, string) {
	check := "cri." + c.Type
	if c.Status {
		return check, OK, c.Type + " is true", ""
	}
	level := Warn
	if c.Type == cri.RuntimeReady || c.Type == cri.NetworkReady {
		level = Fail
	}
	msg := strings.TrimSpace(fmt.Sprintf("%s is false: %s", c.Type, c.Reason))
	fix := c.Message
	// containerd puts its deprecations in the message as a JSON object.
	var deps map[string]string
	if json.Unmarshal([]byte(c.Message), &deps) == nil && len(deps) > 0 {
		ids := make([]string, 0, len(deps))
		for id := range deps {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var fixes []string
		for _, id := range ids {
			fixes = append(fixes, deps[id])
		}
		msg = fmt.Sprintf("%s is false: %s", c.Type, strings.Join(ids, ", "))
		fix = strings.Join(fixes, " ")
	}
	return check, level, msg, fix
}

// confDirCheck says whether the runtime's CNI conf dir holds a network:
// without one, pods get none (and the runtime reports NetworkReady false).
func confDirCheck(h Host, dir string) (string, Level, string, string) {
	entries, err := h.ReadDir(dir)
	if err != nil {
		return "cni.conf_dir", Warn, fmt.Sprintf("%s: %v", dir, err), "Create it, and give it a network: a network block in the configuration (berth writes the conflist), or your own CNI configuration."
	}
	var nets []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".conf", ".conflist", ".json":
			nets = append(nets, e.Name())
		}
	}
	if len(nets) == 0 {
		return "cni.conf_dir", Warn, dir + " holds no network configuration, so pods get no network",
			"Declare a network block (berth writes the conflist there), or install a CNI configuration."
	}
	return "cni.conf_dir", OK, fmt.Sprintf("%s (pods get %s)", dir, nets[0]), ""
}

// kubeletCheck looks for a kubelet using this runtime: a kubelet removes
// sandboxes it did not make. Its pods on the runtime are proof; a kubelet
// process whose endpoint is this socket (or the default, when it names
// none and this is the default socket) is as good.
func kubeletCheck(ctx context.Context, rt Runtime, h Host, address string) Finding {
	const check = "kubelet"
	fix := "A kubelet removes sandboxes it did not make, and berth's would be among them. Give berth a runtime of its own (hack/runtime.sh shows a private containerd)."
	if sbs, err := rt.ListSandboxes(ctx, nil); err == nil {
		n := 0
		for _, sb := range sbs {
			_, kube := sb.Labels["io.kubernetes.pod.uid"]
			_, berth := sb.Labels[spec.LabelStack]
			if kube && !berth {
				n++
			}
		}
		if n > 0 {
			return Finding{Check: check, Level: Warn, Message: fmt.Sprintf("%d pods of a kubelet run on this runtime", n), Fix: fix}
		}
	}
	socket := strings.TrimPrefix(address, "unix://")
	var procs []Process
	if h.Kubelets != nil {
		procs = h.Kubelets()
	}
	var elsewhere []string
	for _, p := range procs {
		text := strings.Join(p.Cmdline, " ")
		// The endpoint may be in the kubelet's configuration file.
		for i, arg := range p.Cmdline {
			file, ok := strings.CutPrefix(arg, "--config=")
			if !ok && arg == "--config" && i+1 < len(p.Cmdline) {
				file, ok = p.Cmdline[i+1], true
			}
			if ok {
				if b, err := h.ReadFile(file); err == nil {
					text += "\n" + string(b)
				}
			}
		}
		named := strings.Contains(text, "container-runtime-endpoint") || strings.Contains(text, "containerRuntimeEndpoint")
		switch {
		case strings.Contains(text, socket):
			return Finding{Check: check, Level: Warn, Message: fmt.Sprintf("a kubelet (pid %d) uses this runtime", p.PID), Fix: fix}
		case !named && socket == defaultEndpoint:
			return Finding{Check: check, Level: Warn, Message: fmt.Sprintf("a kubelet (pid %d) names no runtime endpoint, so it uses the default, this runtime", p.PID), Fix: fix}
		}
		elsewhere = append(elsewhere, strconv.Itoa(p.PID))
	}
	if len(elsewhere) > 0 {
		return Finding{Check: check, Level: OK, Message: "a kubelet runs (pid " + strings.Join(elsewhere, ", ") + "), on another runtime"}
	}
	if _, err := h.Stat(kubeletSocket); err == nil {
		return Finding{Check: check, Level: Warn, Message: kubeletSocket + " exists: a kubelet runs or ran here, and no process says which runtime it uses", Fix: fix}
	}
	return Finding{Check: check, Level: OK, Message: "no kubelet on this host, and no kubelet's pods on this runtime"}
}

func hostChecks(h Host, restrictOOM bool) []Finding {
	var out []Finding
	add := func(check string, level Level, msg, fix string) {
		out = append(out, Finding{Check: check, Level: level, Message: msg, Fix: fix})
	}
	if v, err := h.KVM(); err != nil {
		add("/dev/kvm", Warn, err.Error(), "VM workloads need it: enable virtualisation in the firmware, load kvm_intel or kvm_amd, or turn on nested virtualisation.")
	} else {
		add("/dev/kvm", OK, fmt.Sprintf("KVM API version %d", v), "")
	}
	if err := h.Tun(); err != nil {
		add("/dev/net/tun", Warn, err.Error(), "Load the tun module: modprobe tun.")
	} else {
		add("/dev/net/tun", OK, "usable", "")
	}
	if _, err := h.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		add("cgroup", OK, "v2 (unified)", "")
	} else {
		add("cgroup", Warn, "v1", "containerd deprecates cgroup v1, and resources.pids needs v2. Boot with systemd.unified_cgroup_hierarchy=1.")
	}
	if status, err := h.ReadFile("/proc/self/status"); err == nil {
		switch {
		case hasCap(string(status), 24):
			add("cap_sys_resource", OK, "present", "")
		case restrictOOM:
			add("cap_sys_resource", OK, "missing, and the runtime sets restrict_oom_score_adj, as it must here", "")
		default:
			add("cap_sys_resource", Warn, "missing: pods cannot lower oom_score_adj",
				"Set [plugins.\"io.containerd.cri.v1.runtime\"] restrict_oom_score_adj = true in containerd's config, or every pod fails to start.")
		}
	}
	return out
}

// hasCap reads a capability bit from /proc/self/status's CapEff line.
func hasCap(status string, bit uint) bool {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<bit) != 0
		}
	}
	return false
}

func inAny(h Host, dirs []string, name string) bool {
	for _, d := range dirs {
		if info, err := h.Stat(filepath.Join(d, name)); err == nil && !info.IsDir() {
			return true
		}
	}
	return false
}

// versionOf reads "v2.4.2" or "2.4.2+unknown" as (2, 4).
func versionOf(v string) (int, int) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(parts[1])
	return major, minor
}
