package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/docker/go-units"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/berth-dev/berth/internal/safefile"
)

// This file decodes what a container takes from the host: devices, mounts,
// tmpfs, capabilities, security profiles and cgroup resources.

var deviceSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "container_path"}, {Name: "permissions"}, {Name: "optional"},
}}

var mountSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "host_path", Required: true}, {Name: "read_only"}, {Name: "propagation"},
	{Name: "create"}, {Name: "hash_content"},
}}

var tmpfsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "size"}}}

var capabilitiesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "add"}, {Name: "drop"}}}

var resourcesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "cpus"}, {Name: "cpu_shares"}, {Name: "cpuset"}, {Name: "memory"}, {Name: "pids"},
}}

// capabilityNames are the Linux capabilities, without the CAP_ prefix.
var capabilityNames = []string{
	"ALL", "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL",
	"LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG",
	"SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE",
	"SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
}

// cdiNamePattern is a CDI device name: VENDOR/CLASS=NAME.
var cdiNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*=[A-Za-z0-9_.:-]+$`)

var (
	permissionsPattern = regexp.MustCompile(`^[rwm]{1,3}$`)
	cpusetPattern      = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
	profilePattern     = regexp.MustCompile(`^(runtime/default|unconfined|localhost/.+)$`)
)

// decodeHost fills c's security and host-resource fields from its content.
func decodeHost(e *evaluator, dir string, c *Container, content *hcl.BodyContent) {
	a := content.Attributes
	c.Privileged = e.boolean(a["privileged"], false)
	c.ReadOnlyRoot = e.boolean(a["read_only_root"], false)
	c.NoNewPrivileges = e.boolean(a["no_new_privileges"], false)
	c.Seccomp = profile(e, a["seccomp"])
	c.AppArmor = profile(e, a["apparmor"])
	if attr := a["cdi_devices"]; attr != nil {
		c.CDIDevices = e.plainList(attr)
		for _, name := range c.CDIDevices {
			if !cdiNamePattern.MatchString(name) {
				e.errorf(attr.Expr.Range(), "Invalid CDI device", "%q is not a CDI device name; write VENDOR/CLASS=NAME, such as \"nvidia.com/gpu=all\".", name)
			}
		}
	}

	seen := map[string]hcl.Range{}
	unique := func(kind, path string, rng hcl.Range) bool {
		if prev, dup := seen[kind+path]; dup {
			e.errorf(rng, "Duplicate "+kind, "%s %q is already declared at %s.", kind, path, prev)
			return false
		}
		seen[kind+path] = rng
		return true
	}
	for _, b := range content.Blocks {
		switch b.Type {
		case "capabilities":
			if len(c.CapAdd)+len(c.CapDrop) > 0 || seen["capabilities"] != (hcl.Range{}) {
				e.errorf(b.DefRange, "Duplicate capabilities block", "A container has at most one capabilities block.")
				continue
			}
			seen["capabilities"] = b.DefRange
			c.CapAdd, c.CapDrop = decodeCapabilities(e, b)
		case "resources":
			if seen["resources"] != (hcl.Range{}) {
				e.errorf(b.DefRange, "Duplicate resources block", "A container has at most one resources block.")
				continue
			}
			seen["resources"] = b.DefRange
			c.Resources = decodeResources(e, b)
		case "device":
			if d, ok := decodeDevice(e, b); ok && unique("device", d.ContainerPath, b.DefRange) {
				c.Devices = append(c.Devices, d)
			}
		case "mount":
			if m, ok := decodeMount(e, dir, b); ok && unique("mount", m.ContainerPath, b.DefRange) {
				c.Mounts = append(c.Mounts, m)
			}
		case "tmpfs":
			if t, ok := decodeTmpfs(e, b); ok && unique("mount", t.Path, b.DefRange) {
				c.Tmpfs = append(c.Tmpfs, t)
			}
		}
	}
}

// profile reads a seccomp or apparmor setting; the runtime's default profile
// is stored as "" so that writing it out changes nothing.
func profile(e *evaluator, attr *hcl.Attribute) string {
	s := e.plainStr(attr, "")
	if attr == nil || s == "" || s == "runtime/default" {
		return ""
	}
	if !profilePattern.MatchString(s) {
		e.errorf(attr.Expr.Range(), "Invalid profile", "%q must be \"runtime/default\", \"unconfined\" or \"localhost/<profile>\"; got %q.", attr.Name, s)
	}
	return s
}

func decodeCapabilities(e *evaluator, b *hcl.Block) (add, drop []string) {
	content, d := b.Body.Content(capabilitiesSchema)
	e.diags = append(e.diags, d...)
	read := func(attr *hcl.Attribute) []string {
		names := e.plainList(attr)
		out := make([]string, 0, len(names))
		for _, n := range names {
			n = strings.TrimPrefix(strings.ToUpper(n), "CAP_")
			if !slices.Contains(capabilityNames, n) {
				detail := fmt.Sprintf("%q is not a Linux capability.", n)
				if s := Suggest(n, capabilityNames); s != "" {
					detail += fmt.Sprintf(" Did you mean %q?", s)
				}
				e.errorf(attr.Expr.Range(), "Unknown capability", "%s", detail)
				continue
			}
			out = append(out, n)
		}
		sort.Strings(out)
		if len(out) == 0 {
			return nil
		}
		return slices.Compact(out)
	}
	return read(content.Attributes["add"]), read(content.Attributes["drop"])
}

// The range of resources.cpus.
const (
	MinCPUs = 0.01
	MaxCPUs = 1024.0
)

func decodeResources(e *evaluator, b *hcl.Block) Resources {
	content, d := b.Body.Content(resourcesSchema)
	e.diags = append(e.diags, d...)
	a := content.Attributes
	var r Resources
	if attr := a["cpus"]; attr != nil {
		v := e.eval(attr, cty.Number)
		v, _ = v.UnmarkDeep()
		if !v.IsNull() {
			// Between the smallest CPU quota the kernel takes (1ms of each
			// 100ms period) and far more CPUs than any host has; a number
			// too big for a float64 is out of range too, not infinity.
			cpus, _ := v.AsBigFloat().Float64()
			if math.IsInf(cpus, 0) || cpus < MinCPUs || cpus > MaxCPUs {
				e.errorf(attr.Expr.Range(), "Invalid cpus", "cpus must be between %g and %g, such as 0.5 or 4; got %s.", MinCPUs, MaxCPUs, v.AsBigFloat().Text('g', 6))
			} else {
				r.CPUs = cpus
			}
		}
	}
	r.CPUShares = int64(e.integer(a["cpu_shares"], 0))
	if attr := a["cpu_shares"]; attr != nil && (r.CPUShares < 2 || r.CPUShares > 262144) {
		e.errorf(attr.Expr.Range(), "Invalid cpu_shares", "cpu_shares must be between 2 and 262144 (1024 is one CPU's weight); got %d.", r.CPUShares)
	}
	r.Cpuset = e.plainStr(a["cpuset"], "")
	if r.Cpuset != "" && !cpusetPattern.MatchString(r.Cpuset) {
		e.errorf(a["cpuset"].Expr.Range(), "Invalid cpuset", "cpuset lists CPUs such as \"0-3\" or \"0,2\"; got %q.", r.Cpuset)
	}
	r.Memory = size(e, a["memory"])
	r.Pids = int64(e.integer(a["pids"], 0))
	if attr := a["pids"]; attr != nil && r.Pids < 1 {
		e.errorf(attr.Expr.Range(), "Invalid pids", "pids must be at least 1; got %d.", r.Pids)
	}
	return r
}

// size reads a byte size such as "512Mi", "8GiB" or "4G" (binary units, as
// docker reads them) or a plain number of bytes.
func size(e *evaluator, attr *hcl.Attribute) int64 {
	if attr == nil {
		return 0
	}
	s := e.plainStr(attr, "")
	// go-units reads "64MiB" and "64M" but not the Kubernetes form "64Mi".
	norm := s
	if strings.HasSuffix(norm, "i") || strings.HasSuffix(norm, "I") {
		norm += "B"
	}
	n, err := units.RAMInBytes(norm)
	if err != nil || n <= 0 {
		e.errorf(attr.Expr.Range(), "Invalid size", "%q must be a size such as \"512Mi\", \"8GiB\" or \"4G\"; got %q.", attr.Name, s)
		return 0
	}
	return n
}

func decodeDevice(e *evaluator, b *hcl.Block) (Device, bool) {
	d := Device{HostPath: b.Labels[0], DeclRange: b.DefRange}
	content, diags := b.Body.Content(deviceSchema)
	e.diags = append(e.diags, diags...)
	a := content.Attributes
	d.ContainerPath = e.plainStr(a["container_path"], d.HostPath)
	d.Permissions = e.plainStr(a["permissions"], "rwm")
	d.Optional = e.boolean(a["optional"], false)
	ok := true
	if !filepath.IsAbs(d.HostPath) {
		e.errorf(b.LabelRanges[0], "Invalid device", "A device's label is its absolute host path, such as device \"/dev/kvm\" {}; got %q.", d.HostPath)
		ok = false
	} else if clean := filepath.Clean(d.HostPath); clean != d.HostPath || !strings.HasPrefix(clean, "/dev/") {
		e.errorf(b.LabelRanges[0], "Invalid device", "A device is a node under /dev, named without \"..\", \".\" or doubled slashes, such as \"/dev/kvm\"; got %q. Use a mount block for other files.", d.HostPath)
		ok = false
	}
	if !filepath.IsAbs(d.ContainerPath) {
		e.errorf(rangeOr(a["container_path"], b.DefRange), "Invalid container_path", "container_path must be absolute; got %q.", d.ContainerPath)
		ok = false
	}
	if !permissionsPattern.MatchString(d.Permissions) {
		e.errorf(rangeOr(a["permissions"], b.DefRange), "Invalid permissions", "permissions combine r (read), w (write) and m (mknod), such as \"rwm\"; got %q.", d.Permissions)
		ok = false
	}
	return d, ok
}

func decodeMount(e *evaluator, dir string, b *hcl.Block) (Mount, bool) {
	m := Mount{ContainerPath: b.Labels[0], DeclRange: b.DefRange}
	content, diags := b.Body.Content(mountSchema)
	e.diags = append(e.diags, diags...)
	a := content.Attributes
	ok := !diags.HasErrors()
	if host := e.plainStr(a["host_path"], ""); host != "" {
		m.HostPath = resolve(dir, host)
	} else if a["host_path"] != nil {
		e.errorf(a["host_path"].Expr.Range(), "Empty host_path", "host_path names the host file or directory to mount.")
		ok = false
	}
	m.ReadOnly = e.boolean(a["read_only"], false)
	m.Propagation = Propagation(e.enum(a["propagation"], string(PropagationPrivate),
		string(PropagationPrivate), string(PropagationHostToContainer), string(PropagationBidirectional)))
	m.Create = e.boolean(a["create"], true)
	if !filepath.IsAbs(m.ContainerPath) {
		e.errorf(b.LabelRanges[0], "Invalid mount", "A mount's label is its absolute path in the container, such as mount \"/storage\" {...}; got %q.", m.ContainerPath)
		ok = false
	}
	if e.boolean(a["hash_content"], false) && ok {
		sum, err := contentHash(m.HostPath)
		if err != nil {
			e.errorf(a["hash_content"].Expr.Range(), "Cannot hash the mount's content", "hash_content reads %s: %s.", m.HostPath, err)
			ok = false
		}
		m.ContentHash = sum
	}
	return m, ok
}

func decodeTmpfs(e *evaluator, b *hcl.Block) (Tmpfs, bool) {
	t := Tmpfs{Path: b.Labels[0]}
	content, diags := b.Body.Content(tmpfsSchema)
	e.diags = append(e.diags, diags...)
	t.Size = size(e, content.Attributes["size"])
	if !filepath.IsAbs(t.Path) {
		e.errorf(b.LabelRanges[0], "Invalid tmpfs", "A tmpfs label is its absolute path in the container, such as tmpfs \"/run\" {}; got %q.", t.Path)
		return t, false
	}
	return t, !diags.HasErrors()
}

// What hash_content reads at most, on every load: it is for a
// configuration tree, not for a VM's disks.
const (
	MaxHashedBytes = 256 << 20
	MaxHashedFiles = 10_000
)

var errHashTooLarge = fmt.Errorf("it holds more than %s or %d files, the most hash_content reads at every plan; hash the configuration's directory, not the data's, or leave hash_content off", safefile.Size(MaxHashedBytes), MaxHashedFiles)

// contentHash is the SHA-256 of a file, or of a directory tree's relative
// paths and file contents in lexical order. A link as the path is
// followed, as the runtime's bind mount follows it (a "current" link to
// a release); links inside the tree are hashed as links.
func contentHash(path string) (string, error) {
	h := sha256.New()
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	var files int
	var left int64 = MaxHashedBytes
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if files++; files > MaxHashedFiles {
			return errHashTooLarge
		}
		rel, _ := filepath.Rel(path, p)
		fmt.Fprintf(h, "%s\x00%s\x00", rel, d.Type())
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := safefile.Open(p, safefile.Options{NoFollow: true}) // swapped for a FIFO since the walk saw it: refused, not waited on
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(h, io.LimitReader(f, left+1))
		if left -= n; left < 0 {
			return errHashTooLarge
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rangeOr is the attribute's expression range, or fallback when the
// attribute is unset (its value is a default derived from elsewhere).
func rangeOr(attr *hcl.Attribute, fallback hcl.Range) hcl.Range {
	if attr == nil {
		return fallback
	}
	return attr.Expr.Range()
}
