// Package spec turns a directory of berth HCL files into plain Go values.
//
// It knows nothing about containerd: everything it returns is the desired
// state as the user wrote it, with defaults filled in and references
// resolved. Problems are reported as hcl.Diagnostics that point at the
// source.
package spec

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultAddress is the containerd socket used when nothing else is set.
const DefaultAddress = "unix:///run/containerd/containerd.sock"

// DefaultParallelism bounds how many independent pods apply works on at once.
const DefaultParallelism = 8

// Config is one configuration directory, fully evaluated.
type Config struct {
	Dir   string
	Berth Berth
	// Pods in declaration order (files in lexical order, blocks in file order).
	Pods []*Pod
	// Mirrors by host, sorted.
	Mirrors []*Mirror
	// Registries hold pull credentials, in declaration order.
	Registries []*Registry
	// Images must be present, in declaration order.
	Images []*Image
	// Networks: at most one, the pod network the stack writes.
	Networks []*Network
}

// Berth holds the settings of the optional top-level berth block.
type Berth struct {
	Stack       string
	Address     string
	CertsDir    string
	CNIConfDir  string
	Parallelism int
}

// Pod returns the pod with the given name, or nil.
func (c *Config) Pod(name string) *Pod {
	for _, p := range c.Pods {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// RestartPolicy says when an exited container is started again.
type RestartPolicy string

// The restart policies a pod or container may declare.
const (
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on_failure"
	RestartNever     RestartPolicy = "never"
)

// PullPolicy says when an image is pulled.
type PullPolicy string

// The pull policies a container may declare.
const (
	PullIfNotPresent PullPolicy = "if_not_present"
	PullAlways       PullPolicy = "always"
	PullNever        PullPolicy = "never"
)

// Pod is a CRI pod sandbox and its containers.
type Pod struct {
	Name        string
	Namespace   string
	Hostname    string
	Labels      map[string]string
	Annotations map[string]string
	Runtime     string
	HostNetwork bool
	HostPID     bool
	HostIPC     bool
	Privileged  bool
	Sysctls     map[string]string
	Restart     RestartPolicy
	DependsOn   []string // names of pods this one starts after
	// DependsOnRange is where depends_on is written, for its diagnostics.
	DependsOnRange hcl.Range
	PreventReplace bool
	// UpdateOrder says how a replace goes: the old pod stopped first, or
	// the new one started and ready first. MinReady is how long, without
	// readiness probes, a start-first pod's containers must run before it
	// counts as ready. The zero UpdateOrder is StopFirst.
	UpdateOrder UpdateOrder
	MinReady    time.Duration
	DNS         *DNS
	Ports       []Port
	Forwards    []Forward
	Containers  []*Container

	DeclRange hcl.Range

	// hash keeps Hash for a loaded pod (nil for one built otherwise).
	hash *hashMemo
}

// UpdateOrder is the order of a pod's replace, named after compose's
// update_config.order.
type UpdateOrder string

// The orders of a replace.
const (
	// StopFirst stops the old pod, then starts the new one: an outage as
	// long as both take, and the only way for pods that cannot run twice.
	StopFirst UpdateOrder = "stop_first"
	// StartFirst starts the new pod beside the old one, waits until it is
	// ready, moves traffic to it, then drains and removes the old one.
	StartFirst UpdateOrder = "start_first"
)

// Container returns the container with the given name, or nil.
func (p *Pod) Container(name string) *Container {
	for _, c := range p.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// HasHostNamespace reports whether the pod shares any namespace with the host.
func (p *Pod) HasHostNamespace() bool { return p.HostNetwork || p.HostPID || p.HostIPC }

// DNS is a pod's resolver configuration.
type DNS struct {
	Servers  []string
	Searches []string
	Options  []string
}

// Container is one container of a pod.
type Container struct {
	Name        string
	Image       string
	Pull        PullPolicy
	Command     []string
	Args        []string
	Env         map[string]string // env_file values merged under env
	EnvFiles    []string
	WorkingDir  string
	User        string
	TTY         bool
	Stdin       bool
	Init        bool
	Restart     RestartPolicy
	StopSignal  string
	StopTimeout time.Duration
	Labels      map[string]string
	Annotations map[string]string
	LogPath     string

	// Security.
	Privileged      bool
	ReadOnlyRoot    bool
	NoNewPrivileges bool
	CapAdd          []string // upper case, without CAP_
	CapDrop         []string
	Seccomp         string // "runtime/default", "unconfined" or "localhost/<path>"
	AppArmor        string // "", "runtime/default", "unconfined" or "localhost/<profile>"

	// Host resources.
	Devices    []Device
	CDIDevices []string
	Mounts     []Mount
	Tmpfs      []Tmpfs
	Resources  Resources

	// Probes are run by berth watch; at most one of each kind.
	Probes []Probe

	// Sensitive lists the record paths (e.g. "env.PASSWORD", "args")
	// whose values came from sensitive variables and are never shown.
	Sensitive []string

	DeclRange hcl.Range

	// secretKey keys the spec hash's digests of sensitive values (see
	// Hash); the loader sets it from Options.SecretKey.
	secretKey []byte
	// hash keeps Hash for a loaded container (nil for one built
	// otherwise).
	hash *hashMemo
}

// Device is a host device node made available in a container.
type Device struct {
	HostPath      string
	ContainerPath string
	Permissions   string // cgroup device permissions: a combination of r, w, m
	// Optional devices that are missing on the host are left out instead of
	// failing the plan.
	Optional bool

	DeclRange hcl.Range
}

// Propagation is a bind mount's mount propagation.
type Propagation string

// The propagation modes of a mount.
const (
	PropagationPrivate         Propagation = "private"
	PropagationHostToContainer Propagation = "host_to_container"
	PropagationBidirectional   Propagation = "bidirectional"
)

// Mount is a bind mount of a host path.
type Mount struct {
	ContainerPath string
	HostPath      string
	ReadOnly      bool
	Propagation   Propagation
	// Create makes a missing host directory at apply; without it a missing
	// host path fails the plan.
	Create bool
	// ContentHash is the SHA-256 of the host path's content when
	// hash_content is set, so that editing the file replaces the container.
	ContentHash string

	DeclRange hcl.Range
}

// Tmpfs is a memory-backed file system mounted in a container.
type Tmpfs struct {
	Path string
	Size int64 // bytes; 0: the kernel's default (half of RAM)
}

// Resources are a container's cgroup limits. Zero means unlimited.
type Resources struct {
	CPUs      float64 // CPU quota in CPUs; fractions allowed
	CPUShares int64
	Cpuset    string
	Memory    int64 // bytes
	Pids      int64
}
