// Package crictl turns the pod and container configurations that crictl
// reads (`crictl runp POD.json`, `crictl create POD CONTAINER.json
// POD.json`: CRI PodSandboxConfig and ContainerConfig in their JSON or YAML
// form) into a berth configuration.
//
// Every field of the input that the output does not carry as it was is
// reported as a Warning; none is dropped silently.
package crictl

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// File is one input file: its name (for messages) and contents.
type File struct {
	Name string
	Data []byte
}

// Options steer the conversion.
type Options struct {
	// Stack is written as the berth block's stack; "" leaves the stack to
	// the configuration directory's name.
	Stack string
	// Pod names the pod; "" takes the pod config's metadata.name.
	Pod string
}

// Warning is a field of the input that the output does not carry as it
// was, and why.
type Warning struct {
	File    string
	Path    string // the field, as crictl's JSON spells it: linux.security_context.run_as_group
	Message string
}

func (w Warning) String() string { return fmt.Sprintf("%s: %s: %s", w.File, w.Path, w.Message) }

// Result is the configuration and what it could not carry.
type Result struct {
	HCL      []byte
	Warnings []Warning
}

// Convert turns one pod config and the configs of its containers into a
// berth configuration with one pod.
func Convert(pod File, containers []File, opts Options) (*Result, error) {
	if opts.Stack != "" && !spec.ValidStackName(opts.Stack) {
		return nil, fmt.Errorf("stack name %q: use 1-63 lower-case letters, digits, '-', '_' or '.'", opts.Stack)
	}
	psb, pdoc, err := decodePod(pod.Name, pod.Data)
	if err != nil {
		return nil, err
	}
	cv := &converter{}
	p, err := cv.pod(pdoc, psb, opts.Pod)
	if err != nil {
		return nil, err
	}
	cv.unsupported(pdoc, podHandled)
	seen := map[string]string{}
	for _, f := range containers {
		ccfg, cdoc, err := decodeContainer(f.Name, f.Data)
		if err != nil {
			return nil, err
		}
		c, err := cv.container(cdoc, p, ccfg)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[c.Name]; dup {
			return nil, fmt.Errorf("%s: container %q is already declared in %s; a pod's containers need distinct metadata.name", f.Name, c.Name, prev)
		}
		seen[c.Name] = f.Name
		cv.unsupported(cdoc, containerHandled)
		p.Containers = append(p.Containers, c)
	}
	if len(p.Containers) == 0 {
		return nil, fmt.Errorf("%s: no container configs: a berth pod needs at least one; pass them after the pod config", pod.Name)
	}
	return &Result{HCL: write(opts.Stack, p, sources(pod, containers)), Warnings: cv.warnings}, nil
}

// sources names the input files for the output's first comment: their
// base names, quoted as Go quotes them, so that a name with a newline
// cannot end the comment and write configuration of its own.
func sources(pod File, containers []File) []string {
	out := []string{commentName(pod.Name)}
	for _, c := range containers {
		out = append(out, commentName(c.Name))
	}
	return out
}

func commentName(name string) string {
	base := path.Base(name)
	if q := strconv.Quote(base); q[1:len(q)-1] != base {
		return q
	}
	return base
}

type converter struct {
	warnings []Warning
}

func (cv *converter) warn(doc *document, path, format string, args ...any) {
	cv.warnings = append(cv.warnings, Warning{File: doc.file, Path: path, Message: fmt.Sprintf(format, args...)})
}

// podHandled are the PodSandboxConfig fields the conversion reads; it
// reports itself the values among them that it cannot carry.
var podHandled = []string{
	"metadata.name", "metadata.namespace", "hostname", "dns_config", "port_mappings",
	"labels", "annotations", "linux.sysctls", "linux.security_context.privileged",
	"linux.security_context.namespace_options.network",
	"linux.security_context.namespace_options.pid",
	"linux.security_context.namespace_options.ipc",
}

// containerHandled are the ContainerConfig fields the conversion reads.
var containerHandled = []string{
	"metadata.name", "image.image", "command", "args", "working_dir", "envs",
	"mounts[].container_path", "mounts[].host_path", "mounts[].readonly", "mounts[].propagation",
	"devices", "CDI_devices", "labels", "annotations", "log_path", "stdin", "tty", "stop_signal",
	"linux.resources.cpu_period", "linux.resources.cpu_quota", "linux.resources.cpu_shares",
	"linux.resources.memory_limit_in_bytes", "linux.resources.cpuset_cpus", "linux.resources.unified",
	"linux.security_context.capabilities.add_capabilities",
	"linux.security_context.capabilities.drop_capabilities",
	"linux.security_context.privileged",
	"linux.security_context.namespace_options.network",
	"linux.security_context.namespace_options.pid",
	"linux.security_context.namespace_options.ipc",
	"linux.security_context.run_as_user", "linux.security_context.run_as_group",
	"linux.security_context.run_as_username", "linux.security_context.readonly_rootfs",
	"linux.security_context.no_new_privs", "linux.security_context.seccomp",
	"linux.security_context.apparmor", "linux.security_context.seccomp_profile_path",
	"linux.security_context.apparmor_profile",
}

// dropReasons say why a field berth does not read is not needed or not
// possible; fields not listed are simply not in berth's language.
var dropReasons = map[string]string{
	"metadata.uid":                           "berth gives every incarnation of a pod a uid of its own",
	"metadata.attempt":                       "berth counts attempts itself",
	"log_directory":                          "berth keeps pod logs under /var/log/berth/STACK/",
	"linux.cgroup_parent":                    "berth leaves the pod's cgroup to the runtime",
	"windows":                                "berth runs Linux containers only",
	"linux.security_context.selinux_options": "SELinux labels are not in berth's language",
	"mounts[].selinux_relabel":               "berth does not relabel mounts for SELinux",
	"mounts[].image":                         "image volumes are not in berth's language",
	"stdin_once":                             "berth does not attach to containers",
}

// unsupported reports the fields a document sets that the conversion
// does not read.
func (cv *converter) unsupported(doc *document, handled []string) {
	for _, key := range doc.unknown {
		cv.warn(doc, key, "unknown field, ignored (crictl ignores it too; check the spelling against the CRI API)")
	}
	for _, f := range doc.set {
		if covered(f.pattern, handled) {
			continue
		}
		reason := "not in berth's language"
		for p, r := range dropReasons {
			if f.pattern == p || strings.HasPrefix(f.pattern, p+".") || strings.HasPrefix(f.pattern, p+"[") {
				reason = r
			}
		}
		cv.warn(doc, f.path, "%s: dropped: %s", short(f.value), reason)
	}
}

func covered(pattern string, handled []string) bool {
	for _, h := range handled {
		if pattern == h || strings.HasPrefix(pattern, h+".") || strings.HasPrefix(pattern, h+"[") {
			return true
		}
	}
	return false
}

// short shows a value in a message.
func short(v any) string {
	raw, _ := json.Marshal(v)
	if s := string(raw); len(s) <= 60 {
		return s
	}
	return string(raw[:57]) + "..."
}

// invalidNameChars are what a CRI name may hold and a berth name may not.
var invalidNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// name makes a berth pod or container name of a CRI metadata name.
func (cv *converter) name(doc *document, path, kind, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%s: %s is empty: a %s needs a name", doc.file, path, kind)
	}
	if spec.ValidName(name) {
		return name, nil
	}
	clean := strings.Trim(invalidNameChars.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(clean) > 63 {
		clean = strings.Trim(clean[:63], "-")
	}
	if clean == "" {
		return "", fmt.Errorf("%s: %s %q cannot be a berth %s name (1-63 lower-case letters, digits or '-')", doc.file, path, name, kind)
	}
	cv.warn(doc, path, "%q is not a berth %s name (1-63 lower-case letters, digits or '-'): renamed %q", name, kind, clean)
	return clean, nil
}

func (cv *converter) pod(doc *document, cfg *cri.PodSandboxConfig, override string) (*spec.Pod, error) {
	p := &spec.Pod{Namespace: cfg.GetMetadata().GetNamespace()}
	var err error
	if override != "" {
		if !spec.ValidName(override) {
			return nil, fmt.Errorf("pod name %q: use 1-63 lower-case letters, digits or '-'", override)
		}
		p.Name = override
	} else if p.Name, err = cv.name(doc, "metadata.name", "pod", cfg.GetMetadata().GetName()); err != nil {
		return nil, err
	}

	sc := cfg.GetLinux().GetSecurityContext()
	p.Privileged = sc.GetPrivileged()
	ns := sc.GetNamespaceOptions()
	const nsPath = "linux.security_context.namespace_options."
	switch m := ns.GetNetwork(); m {
	case cri.NamespaceMode_NODE:
		p.HostNetwork = true
	case cri.NamespaceMode_POD:
	default:
		cv.warn(doc, nsPath+"network", "%s is not a pod's network mode: the pod gets a network of its own (POD)", m)
	}
	switch m := ns.GetPid(); m {
	case cri.NamespaceMode_NODE:
		p.HostPID = true
	case cri.NamespaceMode_POD, cri.NamespaceMode_CONTAINER:
	default:
		cv.warn(doc, nsPath+"pid", "%s (target_id %q) is not in berth's language: the pod's containers get PID namespaces of their own", m, ns.GetTargetId())
	}
	switch m := ns.GetIpc(); m {
	case cri.NamespaceMode_NODE:
		p.HostIPC = true
	case cri.NamespaceMode_POD:
	default:
		cv.warn(doc, nsPath+"ipc", "%s is not a pod's IPC mode: the pod gets an IPC namespace of its own (POD)", m)
	}

	if h := cfg.GetHostname(); h != "" && p.HostNetwork {
		cv.warn(doc, "hostname", "%q: dropped: a pod on the host's network has the host's name", h)
	} else {
		p.Hostname = h
	}
	p.Labels = cv.userMap(doc, "labels", cfg.GetLabels())
	p.Annotations = cv.userMap(doc, "annotations", cfg.GetAnnotations())
	p.Sysctls = cfg.GetLinux().GetSysctls()
	if d := cfg.GetDnsConfig(); d != nil && len(d.Servers)+len(d.Searches)+len(d.Options) > 0 {
		p.DNS = &spec.DNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	cv.ports(doc, p, cfg.GetPortMappings())
	return p, nil
}

var protocolNames = map[cri.Protocol]string{cri.Protocol_TCP: "tcp", cri.Protocol_UDP: "udp", cri.Protocol_SCTP: "sctp"}

func (cv *converter) ports(doc *document, p *spec.Pod, mappings []*cri.PortMapping) {
	names := map[string]bool{}
	for i, m := range mappings {
		at := fmt.Sprintf("port_mappings[%d]", i)
		proto, ok := protocolNames[m.GetProtocol()]
		switch {
		case p.HostNetwork:
			cv.warn(doc, at, "dropped: a pod on the host's network uses the host's ports directly")
			continue
		case !ok:
			cv.warn(doc, at+".protocol", "%d is not a protocol (0 TCP, 1 UDP, 2 SCTP): mapping dropped", m.GetProtocol())
			continue
		case m.GetContainerPort() < 1 || m.GetContainerPort() > 65535:
			cv.warn(doc, at+".container_port", "%d is not a port: mapping dropped", m.GetContainerPort())
			continue
		case m.GetHostPort() == 0:
			cv.warn(doc, at+".host_port", "unset, so the runtime publishes nothing: mapping dropped (a berth port always has a host port; use a forward block to reach the port from the host)")
			continue
		case m.GetHostPort() < 0 || m.GetHostPort() > 65535:
			cv.warn(doc, at+".host_port", "%d is not a port: mapping dropped", m.GetHostPort())
			continue
		}
		name := strconv.Itoa(int(m.GetContainerPort()))
		if proto != "tcp" {
			name += "-" + proto
		}
		if names[name] {
			name += fmt.Sprintf("-%d", m.GetHostPort())
		}
		for n := 2; names[name]; n++ {
			name = fmt.Sprintf("%d-%s-%d", m.GetContainerPort(), proto, n)
		}
		names[name] = true
		p.Ports = append(p.Ports, spec.Port{Name: name, Container: int(m.GetContainerPort()),
			Host: int(m.GetHostPort()), HostIP: m.GetHostIp(), Protocol: proto})
	}
}

// userMap keeps the labels or annotations that do not use berth's prefix.
func (cv *converter) userMap(doc *document, path string, m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, spec.LabelPrefix) {
			cv.warn(doc, path+"."+k, "dropped: berth reserves the prefix %q for its own bookkeeping", spec.LabelPrefix)
			continue
		}
		out[k] = v
	}
	return out
}

var permissionsPattern = regexp.MustCompile(`^[rwm]{1,3}$`)

func (cv *converter) container(doc *document, p *spec.Pod, cfg *cri.ContainerConfig) (*spec.Container, error) {
	name, err := cv.name(doc, "metadata.name", "container", cfg.GetMetadata().GetName())
	if err != nil {
		return nil, err
	}
	c := &spec.Container{Name: name, Image: cfg.GetImage().GetImage(),
		Command: cfg.GetCommand(), Args: cfg.GetArgs(), TTY: cfg.GetTty(), Stdin: cfg.GetStdin()}
	if c.Image == "" {
		return nil, fmt.Errorf("%s: image.image is empty: a container needs an image", doc.file)
	}
	if wd := cfg.GetWorkingDir(); wd != "" && !strings.HasPrefix(wd, "/") {
		cv.warn(doc, "working_dir", "%q: dropped: a working directory must be an absolute path", wd)
	} else {
		c.WorkingDir = wd
	}
	if lp := cfg.GetLogPath(); lp != "" && (strings.HasPrefix(lp, "/") || strings.Contains(lp, "..")) {
		cv.warn(doc, "log_path", "%q: dropped: a log path is relative to the pod's log directory", lp)
	} else {
		c.LogPath = lp
	}
	for i, kv := range cfg.GetEnvs() {
		if c.Env == nil {
			c.Env = map[string]string{}
		}
		if _, dup := c.Env[kv.GetKey()]; dup {
			cv.warn(doc, fmt.Sprintf("envs[%d]", i), "%s is set twice: the last value is kept", kv.GetKey())
		}
		c.Env[kv.GetKey()] = string(kv.GetValue())
	}
	c.Labels = cv.userMap(doc, "labels", cfg.GetLabels())
	c.Annotations = cv.userMap(doc, "annotations", cfg.GetAnnotations())
	if sig := cfg.GetStopSignal(); sig != cri.Signal_SIGNAL_RUNTIME_DEFAULT {
		if n := strings.TrimPrefix(sig.String(), "SIGNAL_"); spec.ValidStopSignal(n) {
			c.StopSignal = n
		} else {
			cv.warn(doc, "stop_signal", "%s: dropped: berth stops containers with SIGTERM, SIGINT, SIGQUIT, SIGKILL, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGPWR or SIGSTOP", sig)
		}
	}
	for _, d := range cfg.GetCDIDevices() {
		c.CDIDevices = append(c.CDIDevices, d.GetName())
	}
	cv.devices(doc, c, cfg.GetDevices())
	cv.mounts(doc, c, cfg.GetMounts())
	cv.resources(doc, c, cfg.GetLinux().GetResources())
	cv.security(doc, p, c, cfg.GetLinux().GetSecurityContext())
	return c, nil
}

func (cv *converter) devices(doc *document, c *spec.Container, devices []*cri.Device) {
	seen := map[string]bool{}
	for i, d := range devices {
		at := fmt.Sprintf("devices[%d]", i)
		dev := spec.Device{HostPath: d.GetHostPath(), ContainerPath: d.GetContainerPath(), Permissions: d.GetPermissions()}
		if dev.HostPath == "" || !strings.HasPrefix(dev.HostPath, "/") {
			cv.warn(doc, at+".host_path", "%q: device dropped: a device needs an absolute host path", dev.HostPath)
			continue
		}
		if dev.ContainerPath == "" {
			dev.ContainerPath = dev.HostPath
		}
		if dev.Permissions == "" {
			dev.Permissions = "rwm" // the runtime's default, and berth's
		} else if !permissionsPattern.MatchString(dev.Permissions) {
			cv.warn(doc, at+".permissions", "%q is not a combination of r, w and m: berth grants rwm", dev.Permissions)
			dev.Permissions = "rwm"
		}
		if seen[dev.ContainerPath] {
			cv.warn(doc, at, "%s is already a device of the container: dropped", dev.ContainerPath)
			continue
		}
		seen[dev.ContainerPath] = true
		c.Devices = append(c.Devices, dev)
	}
}

var propagations = map[cri.MountPropagation]spec.Propagation{
	cri.MountPropagation_PROPAGATION_PRIVATE:           spec.PropagationPrivate,
	cri.MountPropagation_PROPAGATION_HOST_TO_CONTAINER: spec.PropagationHostToContainer,
	cri.MountPropagation_PROPAGATION_BIDIRECTIONAL:     spec.PropagationBidirectional,
}

func (cv *converter) mounts(doc *document, c *spec.Container, mounts []*cri.Mount) {
	seen := map[string]bool{}
	for i, m := range mounts {
		at := fmt.Sprintf("mounts[%d]", i)
		prop, ok := propagations[m.GetPropagation()]
		switch {
		case m.GetHostPath() == "":
			cv.warn(doc, at+".host_path", "unset: mount dropped: a berth mount binds a host path")
			continue
		case !strings.HasPrefix(m.GetContainerPath(), "/"):
			cv.warn(doc, at+".container_path", "%q: mount dropped: the path in the container must be absolute", m.GetContainerPath())
			continue
		case seen[m.GetContainerPath()]:
			cv.warn(doc, at, "%s is already mounted: dropped", m.GetContainerPath())
			continue
		case !ok:
			cv.warn(doc, at+".propagation", "%d is not a propagation mode: private kept", m.GetPropagation())
			prop = spec.PropagationPrivate
		}
		seen[m.GetContainerPath()] = true
		// The runtime creates a missing host directory, as berth's default
		// create = true does.
		c.Mounts = append(c.Mounts, spec.Mount{ContainerPath: m.GetContainerPath(), HostPath: m.GetHostPath(),
			ReadOnly: m.GetReadonly(), Propagation: prop, Create: true})
	}
}

func (cv *converter) resources(doc *document, c *spec.Container, r *cri.LinuxContainerResources) {
	if r == nil {
		return
	}
	const at = "linux.resources."
	period := r.GetCpuPeriod()
	switch {
	case r.GetCpuQuota() > 0:
		if period <= 0 {
			period = 100_000 // the kernel's default period
		}
		c.Resources.CPUs = float64(r.GetCpuQuota()) / float64(period)
		if r.GetCpuPeriod() > 0 && r.GetCpuPeriod() != 100_000 {
			cv.warn(doc, at+"cpu_period", "%d: berth uses a 100000µs period; cpus = %g keeps the same share of CPU time", period, c.Resources.CPUs)
		}
	case period > 0:
		cv.warn(doc, at+"cpu_period", "%d without cpu_quota limits nothing: dropped", period)
	}
	c.Resources.CPUShares = r.GetCpuShares()
	c.Resources.Memory = r.GetMemoryLimitInBytes()
	c.Resources.Cpuset = r.GetCpusetCpus()
	keys := make([]string, 0, len(r.GetUnified()))
	for k := range r.GetUnified() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := r.GetUnified()[k]
		if k != "pids.max" {
			cv.warn(doc, at+"unified."+k, "%q: dropped: of the unified cgroup settings berth knows pids.max (resources { pids })", v)
			continue
		}
		if v == "max" {
			continue // unlimited, berth's default
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			cv.warn(doc, at+"unified.pids.max", "%q is not a number of processes: dropped", v)
			continue
		}
		c.Resources.Pids = n
	}
}

func (cv *converter) security(doc *document, p *spec.Pod, c *spec.Container, sc *cri.LinuxContainerSecurityContext) {
	const at = "linux.security_context."
	c.Privileged = sc.GetPrivileged()
	if c.Privileged && !p.Privileged {
		cv.warn(doc, at+"privileged", "the runtime runs privileged containers only in privileged pods: the pod is made privileged too")
		p.Privileged = true
	}
	c.ReadOnlyRoot = sc.GetReadonlyRootfs()
	c.NoNewPrivileges = sc.GetNoNewPrivs()
	c.CapAdd = capabilities(sc.GetCapabilities().GetAddCapabilities())
	c.CapDrop = capabilities(sc.GetCapabilities().GetDropCapabilities())

	// A container's namespaces follow its pod's in berth.
	ns := sc.GetNamespaceOptions()
	want := func(host bool, private cri.NamespaceMode) cri.NamespaceMode {
		if host {
			return cri.NamespaceMode_NODE
		}
		return private
	}
	for _, n := range []struct {
		name string
		got  cri.NamespaceMode
		want cri.NamespaceMode
	}{
		{"network", ns.GetNetwork(), want(p.HostNetwork, cri.NamespaceMode_POD)},
		{"pid", ns.GetPid(), want(p.HostPID, cri.NamespaceMode_CONTAINER)},
		{"ipc", ns.GetIpc(), want(p.HostIPC, cri.NamespaceMode_POD)},
	} {
		switch {
		case n.got == n.want:
		case n.name == "pid" && n.got == cri.NamespaceMode_POD:
			cv.warn(doc, at+"namespace_options.pid", "POD (also the value when unset) shares one PID namespace among the pod's containers, which berth does not: the container gets its own (CONTAINER)")
		default:
			cv.warn(doc, at+"namespace_options."+n.name, "%s differs from the pod's: berth gives a container its pod's namespaces (%s)", n.got, n.want)
		}
	}

	uid, gid, username := sc.GetRunAsUser(), sc.GetRunAsGroup(), sc.GetRunAsUsername()
	switch {
	case uid != nil:
		c.User = strconv.FormatInt(uid.GetValue(), 10)
		if username != "" {
			cv.warn(doc, at+"run_as_username", "%q: dropped: run_as_user is set too, and berth takes one user", username)
		}
	case username != "":
		c.User = username
	}
	if gid != nil {
		if c.User != "" {
			c.User += ":" + strconv.FormatInt(gid.GetValue(), 10)
		} else {
			cv.warn(doc, at+"run_as_group", "%d: dropped: berth sets a group only with a user (user = \"uid:gid\")", gid.GetValue())
		}
	}

	switch {
	case sc.GetSeccomp() != nil:
		c.Seccomp = profile(sc.GetSeccomp())
		if sc.GetSeccompProfilePath() != "" {
			cv.warn(doc, at+"seccomp_profile_path", "dropped: the runtime ignores it when seccomp is set")
		}
	case sc.GetSeccompProfilePath() != "":
		s, ok := legacyProfile(sc.GetSeccompProfilePath())
		if !ok {
			cv.warn(doc, at+"seccomp_profile_path", "%q: dropped: berth takes runtime/default, unconfined or localhost/<path>", sc.GetSeccompProfilePath())
		}
		c.Seccomp = s
	case !c.Privileged:
		cv.warn(doc, at+"seccomp", "unset: containerd then applies its unset_seccomp_profile (none by default), berth the runtime's default profile; write seccomp = \"unconfined\" if the container needs no filter")
	}
	switch {
	case sc.GetApparmor() != nil:
		c.AppArmor = profile(sc.GetApparmor())
		if sc.GetApparmorProfile() != "" {
			cv.warn(doc, at+"apparmor_profile", "dropped: the runtime ignores it when apparmor is set")
		}
	case sc.GetApparmorProfile() != "":
		s, ok := legacyProfile(sc.GetApparmorProfile())
		if !ok {
			cv.warn(doc, at+"apparmor_profile", "%q: dropped: berth takes runtime/default, unconfined or localhost/<profile>", sc.GetApparmorProfile())
		}
		c.AppArmor = s
	}
}

// capabilities are upper case and without CAP_ in berth; the runtime adds
// the prefix.
func capabilities(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimPrefix(strings.ToUpper(n), "CAP_"))
	}
	return out
}

// profile is berth's name of a CRI security profile; "" is the runtime's
// default.
func profile(sp *cri.SecurityProfile) string {
	switch sp.GetProfileType() {
	case cri.SecurityProfile_Unconfined:
		return "unconfined"
	case cri.SecurityProfile_Localhost:
		return "localhost/" + strings.TrimPrefix(sp.GetLocalhostRef(), "localhost/")
	}
	return ""
}

// legacyProfile reads the deprecated string form of a profile.
func legacyProfile(s string) (string, bool) {
	switch {
	case s == "runtime/default" || s == "docker/default":
		return "", true
	case s == "unconfined":
		return "unconfined", true
	case strings.HasPrefix(s, "localhost/") && len(s) > len("localhost/"):
		return s, true
	}
	return "", false
}
