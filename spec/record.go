package spec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
)

// The labels that mark what berth owns, and the annotation that carries a
// record. A stack owns exactly the sandboxes and containers labelled with
// its name; each carries the record it was created from.
const (
	LabelStack     = "berth.io/stack"
	LabelPod       = "berth.io/pod"
	LabelContainer = "berth.io/container"
	LabelSpecHash  = "berth.io/spec-hash"
	// LabelRevision is the commit of the configuration an object was made
	// from, when it came from git (berth watch --git).
	LabelRevision = "berth.io/revision"
	// LabelAttemptBase is the CRI attempt a container's configuration first
	// ran as: a replace takes the next attempt (so the new container can
	// start before the old one is removed), and restarts count from it.
	LabelAttemptBase = "berth.io/attempt-base"
	// AnnotationSpec holds the record's canonical JSON.
	AnnotationSpec = "berth.io/spec"
	// AnnotationNetwork, on a sandbox, holds the network configuration the
	// runtime made it on, which its teardown needs.
	AnnotationNetwork = "berth.io/network"
)

// Redacted replaces sensitive values in records and plans.
const Redacted = "(sensitive)"

// PodRecord is the canonical form of a pod's spec. berth stores it as JSON
// in an annotation of the sandbox it creates, so a later plan can show
// field-level changes without a state file.
type PodRecord struct {
	PodIdentity

	// Policy fields steer berth, not the sandbox: they are not hashed, so
	// changing them never replaces anything.
	Restart        string   `json:"restart,omitempty"`
	DependsOn      []string `json:"depends_on,omitempty"`
	PreventReplace bool     `json:"prevent_replace,omitempty"`
	UpdateOrder    string   `json:"update_order,omitempty"`
	MinReady       Duration `json:"min_ready,omitempty"`
}

// PodIdentity is the part of a pod's record that its spec hash covers:
// exactly the fields whose change replaces the sandbox. Its JSON keys are
// PodReplaceFields. Add fields only with omitempty, so that existing pods
// keep their hash.
type PodIdentity struct {
	Namespace   string                `json:"namespace"`
	Hostname    string                `json:"hostname,omitempty"`
	Labels      map[string]string     `json:"labels,omitempty"`
	Annotations map[string]string     `json:"annotations,omitempty"`
	Runtime     string                `json:"runtime,omitempty"`
	DNS         *DNSRecord            `json:"dns,omitempty"`
	HostNetwork bool                  `json:"host_network,omitempty"`
	HostPID     bool                  `json:"host_pid,omitempty"`
	HostIPC     bool                  `json:"host_ipc,omitempty"`
	Privileged  bool                  `json:"privileged,omitempty"`
	Sysctls     map[string]string     `json:"sysctls,omitempty"`
	Ports       map[string]PortRecord `json:"ports,omitempty"` // by name
}

// PortRecord is a port block, keyed by its name.
type PortRecord struct {
	Container int    `json:"container"`
	Host      int    `json:"host"`
	HostIP    string `json:"host_ip,omitempty"`
	Protocol  string `json:"protocol"`
}

// DNSRecord is the canonical form of a dns block.
type DNSRecord struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// ContainerRecord is the canonical form of a container's spec, stored in an
// annotation of the container berth creates.
type ContainerRecord struct {
	ContainerIdentity

	// Resources change in place; see ResourcesRecord.
	Resources *ResourcesRecord `json:"resources,omitempty"`

	// Policy fields, not hashed.
	Pull        string   `json:"pull,omitempty"`
	EnvFiles    []string `json:"env_file,omitempty"`
	Restart     string   `json:"restart,omitempty"`
	StopTimeout Duration `json:"stop_timeout,omitempty"`
	// Sensitive lists the paths whose values are redacted.
	Sensitive []string `json:"sensitive,omitempty"`
}

// ContainerIdentity is the part of a container's record that its spec hash
// covers; its JSON keys are ContainerReplaceFields. Add fields only with
// omitempty, so that existing containers keep their hash.
type ContainerIdentity struct {
	Image       string            `json:"image"`
	Command     []string          `json:"command,omitempty"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	WorkingDir  string            `json:"working_dir,omitempty"`
	User        string            `json:"user,omitempty"`
	TTY         bool              `json:"tty,omitempty"`
	Stdin       bool              `json:"stdin,omitempty"`
	Init        bool              `json:"init,omitempty"`
	StopSignal  string            `json:"stop_signal,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	LogPath     string            `json:"log_path,omitempty"`

	Privileged      bool                    `json:"privileged,omitempty"`
	ReadOnlyRoot    bool                    `json:"read_only_root,omitempty"`
	NoNewPrivileges bool                    `json:"no_new_privileges,omitempty"`
	Capabilities    *CapabilitiesRecord     `json:"capabilities,omitempty"`
	Seccomp         string                  `json:"seccomp,omitempty"`
	AppArmor        string                  `json:"apparmor,omitempty"`
	Devices         map[string]DeviceRecord `json:"devices,omitempty"` // by host path
	CDIDevices      []string                `json:"cdi_devices,omitempty"`
	Mounts          map[string]MountRecord  `json:"mounts,omitempty"` // by container path
	Tmpfs           map[string]TmpfsRecord  `json:"tmpfs,omitempty"`  // by container path
}

// CapabilitiesRecord is a capabilities block.
type CapabilitiesRecord struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// DeviceRecord is a device block, keyed by its host path.
type DeviceRecord struct {
	ContainerPath string `json:"container_path"`
	Permissions   string `json:"permissions"`
}

// MountRecord is a mount block, keyed by its container path.
type MountRecord struct {
	HostPath    string `json:"host_path"`
	ReadOnly    bool   `json:"read_only,omitempty"`
	Propagation string `json:"propagation,omitempty"` // omitted when private
	ContentHash string `json:"content_sha256,omitempty"`
}

// TmpfsRecord is a tmpfs block, keyed by its container path.
type TmpfsRecord struct {
	Size int64 `json:"size,omitempty"`
}

// ResourcesRecord is a resources block. Resources are not hashed: a
// change is applied to the running container in place.
type ResourcesRecord struct {
	CPUs      float64 `json:"cpus,omitempty"`
	CPUShares int64   `json:"cpu_shares,omitempty"`
	Cpuset    string  `json:"cpuset,omitempty"`
	Memory    int64   `json:"memory,omitempty"`
	Pids      int64   `json:"pids,omitempty"`
}

// PodReplaceFields are the record keys whose change replaces a pod.
var PodReplaceFields = []string{"namespace", "hostname", "labels", "annotations", "runtime", "dns",
	"host_network", "host_pid", "host_ipc", "privileged", "sysctls", "ports"}

// ContainerReplaceFields are the record keys whose change replaces a container.
var ContainerReplaceFields = []string{"image", "command", "args", "env", "working_dir", "user", "tty", "stdin", "init", "stop_signal", "labels", "annotations", "log_path",
	"privileged", "read_only_root", "no_new_privileges", "capabilities", "seccomp", "apparmor", "devices", "cdi_devices", "mounts", "tmpfs"}

// Record returns the pod's canonical record.
func (p *Pod) Record() PodRecord {
	r := PodRecord{
		PodIdentity: PodIdentity{Namespace: p.Namespace, Hostname: p.Hostname, Labels: nilIfEmpty(p.Labels),
			Annotations: nilIfEmpty(p.Annotations), Runtime: p.Runtime,
			HostNetwork: p.HostNetwork, HostPID: p.HostPID, HostIPC: p.HostIPC, Privileged: p.Privileged,
			Sysctls: nilIfEmpty(p.Sysctls)},
		Restart: string(p.Restart), DependsOn: p.DependsOn, PreventReplace: p.PreventReplace,
		MinReady: Duration(p.MinReady),
	}
	if p.UpdateOrder == StartFirst {
		r.UpdateOrder = string(p.UpdateOrder) // stop_first, the default, is left out
	}
	if p.DNS != nil {
		r.DNS = &DNSRecord{Servers: p.DNS.Servers, Searches: p.DNS.Searches, Options: p.DNS.Options}
	}
	for _, port := range p.Ports {
		if r.Ports == nil {
			r.Ports = map[string]PortRecord{}
		}
		r.Ports[port.Name] = PortRecord{Container: port.Container, Host: port.Host, HostIP: port.HostIP, Protocol: port.Protocol}
	}
	return r
}

// Hash returns the pod's spec hash: it changes exactly when a field in
// PodReplaceFields changes. A golden test pins it, because a different hash
// for the same configuration would replace every pod on upgrade.
func (p *Pod) Hash() string {
	return p.hash.get(func() string { return hashOf(p.Record().PodIdentity) })
}

// Record returns the container's canonical record with sensitive values
// redacted: this is what is stored and shown.
func (c *Container) Record() ContainerRecord {
	r := c.record()
	for _, path := range c.Sensitive {
		switch {
		case path == "command":
			r.Command = redactList(r.Command)
		case path == "args":
			r.Args = redactList(r.Args)
		case len(path) > 4 && path[:4] == "env.":
			r.Env[path[4:]] = Redacted
		}
	}
	return r
}

func (c *Container) record() ContainerRecord {
	env := make(map[string]string, len(c.Env))
	for k, v := range c.Env {
		env[k] = v
	}
	r := ContainerRecord{
		ContainerIdentity: ContainerIdentity{
			Image: c.Image, Command: c.Command, Args: c.Args, Env: nilIfEmpty(env),
			WorkingDir: c.WorkingDir, User: c.User, TTY: c.TTY, Stdin: c.Stdin, Init: c.Init,
			StopSignal: c.StopSignal, Labels: nilIfEmpty(c.Labels), Annotations: nilIfEmpty(c.Annotations),
			LogPath: c.LogPath, Privileged: c.Privileged, ReadOnlyRoot: c.ReadOnlyRoot,
			NoNewPrivileges: c.NoNewPrivileges, Seccomp: c.Seccomp, AppArmor: c.AppArmor,
			CDIDevices: c.CDIDevices,
		},
		Resources: c.Resources.record(),
		Pull:      string(c.Pull), EnvFiles: c.EnvFiles, Restart: string(c.Restart),
		StopTimeout: Duration(c.StopTimeout), Sensitive: slices.Clone(c.Sensitive),
	}

	if len(c.CapAdd)+len(c.CapDrop) > 0 {
		r.Capabilities = &CapabilitiesRecord{Add: c.CapAdd, Drop: c.CapDrop}
	}
	for _, d := range c.Devices {
		if r.Devices == nil {
			r.Devices = map[string]DeviceRecord{}
		}
		r.Devices[d.HostPath] = DeviceRecord{ContainerPath: d.ContainerPath, Permissions: d.Permissions}
	}
	for _, m := range c.Mounts {
		if r.Mounts == nil {
			r.Mounts = map[string]MountRecord{}
		}
		mr := MountRecord{HostPath: m.HostPath, ReadOnly: m.ReadOnly, ContentHash: m.ContentHash}
		if m.Propagation != PropagationPrivate {
			mr.Propagation = string(m.Propagation)
		}
		r.Mounts[m.ContainerPath] = mr
	}
	for _, t := range c.Tmpfs {
		if r.Tmpfs == nil {
			r.Tmpfs = map[string]TmpfsRecord{}
		}
		r.Tmpfs[t.Path] = TmpfsRecord{Size: t.Size}
	}
	return r
}

// ResourcesRecord is Record().Resources, without building the rest of the
// record: a plan compares every running container's limits.
func (c *Container) ResourcesRecord() *ResourcesRecord { return c.Resources.record() }

// record returns nil for no limits, so that containers without a
// resources block record nothing.
func (r Resources) record() *ResourcesRecord {
	if r == (Resources{}) {
		return nil
	}
	return &ResourcesRecord{CPUs: r.CPUs, CPUShares: r.CPUShares, Cpuset: r.Cpuset, Memory: r.Memory, Pids: r.Pids}
}

// Hash returns the container's spec hash over ContainerReplaceFields, so
// a changed secret replaces the container too. A sensitive value counts
// through its HMAC under the host key, never as itself: the hash sits in
// a label beside a record of every other field, and an unkeyed digest of
// a weak password could be guessed offline. Without sensitive values, the
// hash is the same with or without a key.
func (c *Container) Hash() string {
	return c.hash.get(func() string {
		id := c.record().ContainerIdentity
		if c.secretKey != nil && len(c.Sensitive) > 0 {
			id = c.keyedSecrets(id)
		}
		return hashOf(id)
	})
}

// hashMemo keeps the hash of a loaded pod or container, which nothing
// changes after its load: a watcher diffs the same configuration round
// after round, and a plan asks each hash several times. A nil memo
// computes the hash at every call.
type hashMemo struct {
	once sync.Once
	hash string
}

func (m *hashMemo) get(compute func() string) string {
	if m == nil {
		return compute()
	}
	m.once.Do(func() { m.hash = compute() })
	return m.hash
}

// keyedSecrets replaces the sensitive values of id by their keyed digests.
func (c *Container) keyedSecrets(id ContainerIdentity) ContainerIdentity {
	keyed := func(v string) string {
		mac := hmac.New(sha256.New, c.secretKey)
		mac.Write([]byte("berth spec hash\x00" + v))
		return "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil))
	}
	keyedList := func(l []string) []string {
		out := make([]string, len(l))
		for i, v := range l {
			out[i] = keyed(v)
		}
		return out
	}
	for _, path := range c.Sensitive {
		switch {
		case path == "command":
			id.Command = keyedList(id.Command)
		case path == "args":
			id.Args = keyedList(id.Args)
		case strings.HasPrefix(path, "env."):
			if v, ok := id.Env[path[4:]]; ok {
				id.Env[path[4:]] = keyed(v) // record() gave id an env map of its own
			}
		}
	}
	return id
}

// hashOf is the first 128 bits of the SHA-256 of v's JSON: short enough for
// a label value, long enough never to collide by accident. encoding/json
// sorts map keys, so the encoding is canonical.
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("spec: hashing a record: " + err.Error()) // records hold only strings, bools and slices
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func redactList(l []string) []string {
	if l == nil {
		return nil
	}
	return []string{Redacted}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// Duration is a time.Duration that reads and writes JSON as text ("2m0s"),
// for records and plans that people read.
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration written as text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}
