// Package criconfig translates berth's spec into CRI sandbox and container
// configurations: the one place that decides what the runtime is asked for.
package criconfig

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// DefaultLogRoot is where pod log directories are created.
const DefaultLogRoot = "/var/log/berth"

// LogDir is the log directory of one pod sandbox.
func LogDir(root, stack string, p *spec.Pod, uid string) string {
	return filepath.Join(root, stack, p.Namespace+"_"+p.Name+"_"+uid)
}

// Sandbox returns the sandbox configuration for a pod. uid identifies this
// incarnation of the pod; a replaced pod gets a new one.
func Sandbox(stack string, p *spec.Pod, uid, logDir string) *cri.PodSandboxConfig {
	cfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: uid},
		Hostname:     p.Hostname,
		LogDirectory: logDir,
		Labels:       ownLabels(p.Labels, stack, p.Name, "", p.Hash()),
		Annotations:  withRecord(p.Annotations, p.Record()),
		Linux: &cri.LinuxPodSandboxConfig{
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{
					Network: namespace(p.HostNetwork, cri.NamespaceMode_POD),
					Pid:     namespace(p.HostPID, cri.NamespaceMode_CONTAINER),
					Ipc:     namespace(p.HostIPC, cri.NamespaceMode_POD),
				},
				Privileged: p.Privileged,
			},
			Sysctls: p.Sysctls,
		},
	}
	if p.DNS != nil {
		cfg.DnsConfig = &cri.DNSConfig{Servers: p.DNS.Servers, Searches: p.DNS.Searches, Options: p.DNS.Options}
	}
	for _, port := range p.Ports {
		cfg.PortMappings = append(cfg.PortMappings, &cri.PortMapping{Protocol: protocols[port.Protocol],
			ContainerPort: int32(port.Container), HostPort: int32(port.Host), HostIp: port.HostIP})
	}
	return cfg
}

var protocols = map[string]cri.Protocol{"tcp": cri.Protocol_TCP, "udp": cri.Protocol_UDP, "sctp": cri.Protocol_SCTP}

func namespace(host bool, private cri.NamespaceMode) cri.NamespaceMode {
	if host {
		return cri.NamespaceMode_NODE
	}
	return private
}

// Host is what a container configuration needs from the host.
type Host struct {
	// DevicePresent reports whether a host device exists; optional devices
	// for which it returns false are left out. Nil: all exist.
	DevicePresent func(hostPath string) bool
	// TmpfsDirs maps a tmpfs's container path to the host directory where
	// berth mounted it.
	TmpfsDirs map[string]string
}

// Container returns the container configuration for c in pod p.
func Container(stack string, p *spec.Pod, c *spec.Container, attempt uint32, host Host) *cri.ContainerConfig {
	cfg := &cri.ContainerConfig{
		Metadata:    &cri.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:       &cri.ImageSpec{Image: c.Image},
		Command:     c.Command,
		Args:        c.Args,
		WorkingDir:  c.WorkingDir,
		Labels:      ownLabels(c.Labels, stack, p.Name, c.Name, c.Hash()),
		Annotations: withRecord(c.Annotations, c.Record()),
		LogPath:     c.LogPath,
		Stdin:       c.Stdin,
		Tty:         c.TTY,
		StopSignal:  signal(c.StopSignal),
		Linux:       &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{}},
	}
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cfg.Envs = append(cfg.Envs, &cri.KeyValue{Key: k, Value: []byte(c.Env[k])})
	}
	setUser(cfg.Linux.SecurityContext, c.User)
	setSecurity(cfg.Linux.SecurityContext, c)
	// The namespaces must be repeated here: without them the runtime puts a
	// container in the pod's PID namespace, where it is not PID 1 and its
	// stop signal goes to the wrong process.
	cfg.Linux.SecurityContext.NamespaceOptions = &cri.NamespaceOption{
		Network: namespace(p.HostNetwork, cri.NamespaceMode_POD),
		Pid:     namespace(p.HostPID, cri.NamespaceMode_CONTAINER),
		Ipc:     namespace(p.HostIPC, cri.NamespaceMode_POD),
	}
	cfg.Linux.Resources = Resources(c.Resources)
	for _, d := range c.Devices {
		if d.Optional && host.DevicePresent != nil && !host.DevicePresent(d.HostPath) {
			continue
		}
		cfg.Devices = append(cfg.Devices, &cri.Device{HostPath: d.HostPath, ContainerPath: d.ContainerPath, Permissions: d.Permissions})
	}
	for _, name := range c.CDIDevices {
		cfg.CDIDevices = append(cfg.CDIDevices, &cri.CDIDevice{Name: name})
	}
	for _, m := range c.Mounts {
		cfg.Mounts = append(cfg.Mounts, &cri.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath,
			Readonly: m.ReadOnly, Propagation: propagation[m.Propagation]})
	}
	for _, t := range c.Tmpfs {
		if dir, ok := host.TmpfsDirs[t.Path]; ok {
			cfg.Mounts = append(cfg.Mounts, &cri.Mount{ContainerPath: t.Path, HostPath: dir})
		}
	}
	return cfg
}

var propagation = map[spec.Propagation]cri.MountPropagation{
	spec.PropagationPrivate:         cri.MountPropagation_PROPAGATION_PRIVATE,
	spec.PropagationHostToContainer: cri.MountPropagation_PROPAGATION_HOST_TO_CONTAINER,
	spec.PropagationBidirectional:   cri.MountPropagation_PROPAGATION_BIDIRECTIONAL,
}

func setSecurity(sc *cri.LinuxContainerSecurityContext, c *spec.Container) {
	sc.Privileged = c.Privileged
	sc.ReadonlyRootfs = c.ReadOnlyRoot
	sc.NoNewPrivs = c.NoNewPrivileges
	if len(c.CapAdd)+len(c.CapDrop) > 0 {
		sc.Capabilities = &cri.Capability{AddCapabilities: c.CapAdd, DropCapabilities: c.CapDrop}
	}
	sc.Seccomp = securityProfile(c.Seccomp)
	if c.AppArmor != "" {
		sc.Apparmor = securityProfile(c.AppArmor)
	}
}

// securityProfile maps "" (the runtime's default), "unconfined" and
// "localhost/<ref>".
func securityProfile(s string) *cri.SecurityProfile {
	switch {
	case s == "" || s == "runtime/default":
		return &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}
	case s == "unconfined":
		return &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Unconfined}
	}
	return &cri.SecurityProfile{ProfileType: cri.SecurityProfile_Localhost, LocalhostRef: strings.TrimPrefix(s, "localhost/")}
}

// CPUPeriod is the CFS period that cpus is a fraction of.
const CPUPeriod = 100_000

// Resources maps a resources block to CRI's cgroup limits; nil for none.
func Resources(r spec.Resources) *cri.LinuxContainerResources {
	if r == (spec.Resources{}) {
		return nil
	}
	out := &cri.LinuxContainerResources{CpuShares: r.CPUShares, CpusetCpus: r.Cpuset, MemoryLimitInBytes: r.Memory}
	if r.CPUs > 0 {
		out.CpuPeriod, out.CpuQuota = CPUPeriod, int64(r.CPUs*CPUPeriod)
	}
	if r.Pids > 0 {
		out.Unified = map[string]string{"pids.max": strconv.FormatInt(r.Pids, 10)}
	}
	return out
}

// setUser maps "uid", "uid:gid", "name" and "name:gid".
func setUser(sc *cri.LinuxContainerSecurityContext, user string) {
	if user == "" {
		return
	}
	name, group, hasGroup := strings.Cut(user, ":")
	if uid, err := strconv.ParseInt(name, 10, 64); err == nil {
		sc.RunAsUser = &cri.Int64Value{Value: uid}
	} else {
		sc.RunAsUsername = name
	}
	if hasGroup {
		if gid, err := strconv.ParseInt(group, 10, 64); err == nil {
			sc.RunAsGroup = &cri.Int64Value{Value: gid}
		}
	}
}

func signal(name string) cri.Signal {
	if v, ok := cri.Signal_value["SIGNAL_"+name]; ok {
		return cri.Signal(v)
	}
	return cri.Signal_SIGNAL_RUNTIME_DEFAULT
}

// ownLabels adds the ownership labels to the user's labels.
func ownLabels(user map[string]string, stack, pod, container, hash string) map[string]string {
	out := map[string]string{spec.LabelStack: stack, spec.LabelPod: pod, spec.LabelSpecHash: hash}
	if container != "" {
		out[spec.LabelContainer] = container
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}

// withRecord adds the canonical spec annotation to the user's annotations.
func withRecord(user map[string]string, record any) map[string]string {
	raw, err := json.Marshal(record)
	if err != nil {
		panic("criconfig: encoding a record: " + err.Error()) // records are plain data
	}
	out := map[string]string{spec.AnnotationSpec: string(raw)}
	for k, v := range user {
		out[k] = v
	}
	return out
}

// HostCredentials returns, for a registry host, the username and secret of
// its registry block, as containerd's resolver asks for them.
func HostCredentials(registries []*spec.Registry) func(host string) (string, string, error) {
	byHost := map[string]*spec.Registry{}
	for _, r := range registries {
		byHost[r.Host] = r
	}
	return func(host string) (string, string, error) {
		if host == "registry-1.docker.io" {
			host = "docker.io"
		}
		r := byHost[host]
		switch {
		case r == nil:
			return "", "", nil
		case r.IdentityToken != "":
			return "", r.IdentityToken, nil
		case r.Auth != "":
			raw, err := base64.StdEncoding.DecodeString(r.Auth)
			if err != nil {
				return "", "", fmt.Errorf("registry %s: auth is not base64 of user:password", host)
			}
			user, pass, _ := strings.Cut(string(raw), ":")
			return user, pass, nil
		}
		return r.Username, r.Password, nil
	}
}
