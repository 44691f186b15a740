package crictl

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/berth-dev/berth/spec"
)

// write renders a pod as a berth configuration, leaving out every setting
// that equals the language's default.
func write(stack string, p *spec.Pod, from []string) []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment,
		Bytes: []byte("# Imported by `berth import crictl` from " + strings.Join(from, ", ") + ".\n")},
		{Type: hclsyntax.TokenComment, Bytes: []byte("# berth restarts exited containers (restart = \"always\", the default); crictl does not.\n")}})
	body.AppendNewline()
	if stack != "" {
		body.AppendNewBlock("berth", nil).Body().SetAttributeValue("stack", cty.StringVal(stack))
		body.AppendNewline()
	}
	writePod(body.AppendNewBlock("pod", []string{p.Name}).Body(), p)
	// hclwrite opens every block on a line of its own; an empty one reads
	// better as device "/dev/kvm" {}, which fmt keeps as it is. Quoted
	// strings hold no raw newlines, so only empty blocks match.
	return hclwrite.Format(emptyBlock.ReplaceAll(f.Bytes(), []byte("{}")))
}

var emptyBlock = regexp.MustCompile(`\{\n\s*\}`)

func writePod(b *hclwrite.Body, p *spec.Pod) {
	if p.Namespace != "" && p.Namespace != "default" {
		setString(b, "namespace", p.Namespace)
	}
	setString(b, "hostname", p.Hostname)
	setMap(b, "labels", p.Labels)
	setMap(b, "annotations", p.Annotations)
	setBool(b, "host_network", p.HostNetwork)
	setBool(b, "host_pid", p.HostPID)
	setBool(b, "host_ipc", p.HostIPC)
	setBool(b, "privileged", p.Privileged)
	setMap(b, "sysctls", p.Sysctls)
	if p.DNS != nil {
		b.AppendNewline()
		dns := b.AppendNewBlock("dns", nil).Body()
		setList(dns, "servers", p.DNS.Servers)
		setList(dns, "searches", p.DNS.Searches)
		setList(dns, "options", p.DNS.Options)
	}
	for _, port := range p.Ports {
		b.AppendNewline()
		pb := b.AppendNewBlock("port", []string{port.Name}).Body()
		pb.SetAttributeValue("container", cty.NumberIntVal(int64(port.Container)))
		if port.Host != port.Container {
			pb.SetAttributeValue("host", cty.NumberIntVal(int64(port.Host)))
		}
		setString(pb, "host_ip", port.HostIP)
		if port.Protocol != "tcp" {
			setString(pb, "protocol", port.Protocol)
		}
	}
	for _, c := range p.Containers {
		b.AppendNewline()
		writeContainer(b.AppendNewBlock("container", []string{c.Name}).Body(), c)
	}
}

func writeContainer(b *hclwrite.Body, c *spec.Container) {
	setString(b, "image", c.Image)
	setList(b, "command", c.Command)
	setList(b, "args", c.Args)
	setMap(b, "env", c.Env)
	setString(b, "working_dir", c.WorkingDir)
	setString(b, "user", c.User)
	setBool(b, "tty", c.TTY)
	setBool(b, "stdin", c.Stdin)
	setString(b, "stop_signal", c.StopSignal)
	setMap(b, "labels", c.Labels)
	setMap(b, "annotations", c.Annotations)
	if c.LogPath != c.Name+".log" {
		setString(b, "log_path", c.LogPath)
	}
	setBool(b, "privileged", c.Privileged)
	setBool(b, "read_only_root", c.ReadOnlyRoot)
	setBool(b, "no_new_privileges", c.NoNewPrivileges)
	setString(b, "seccomp", c.Seccomp)
	setString(b, "apparmor", c.AppArmor)
	setList(b, "cdi_devices", c.CDIDevices)
	if len(c.CapAdd)+len(c.CapDrop) > 0 {
		b.AppendNewline()
		caps := b.AppendNewBlock("capabilities", nil).Body()
		setList(caps, "add", c.CapAdd)
		setList(caps, "drop", c.CapDrop)
	}
	for _, d := range c.Devices {
		b.AppendNewline()
		db := b.AppendNewBlock("device", []string{d.HostPath}).Body()
		if d.ContainerPath != d.HostPath {
			setString(db, "container_path", d.ContainerPath)
		}
		if d.Permissions != "rwm" {
			setString(db, "permissions", d.Permissions)
		}
	}
	for _, m := range c.Mounts {
		b.AppendNewline()
		mb := b.AppendNewBlock("mount", []string{m.ContainerPath}).Body()
		setString(mb, "host_path", m.HostPath)
		setBool(mb, "read_only", m.ReadOnly)
		if m.Propagation != spec.PropagationPrivate {
			setString(mb, "propagation", string(m.Propagation))
		}
	}
	if r := c.Resources; r != (spec.Resources{}) {
		b.AppendNewline()
		rb := b.AppendNewBlock("resources", nil).Body()
		if r.CPUs > 0 {
			rb.SetAttributeValue("cpus", cty.NumberFloatVal(r.CPUs))
		}
		if r.CPUShares > 0 {
			rb.SetAttributeValue("cpu_shares", cty.NumberIntVal(r.CPUShares))
		}
		setString(rb, "cpuset", r.Cpuset)
		if r.Memory > 0 {
			setString(rb, "memory", byteSize(r.Memory))
		}
		if r.Pids > 0 {
			rb.SetAttributeValue("pids", cty.NumberIntVal(r.Pids))
		}
	}
}

// byteSize writes a size the way people do ("4Gi"), exactly.
func byteSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

func setString(b *hclwrite.Body, name, v string) {
	if v != "" {
		b.SetAttributeValue(name, cty.StringVal(v))
	}
}

func setBool(b *hclwrite.Body, name string, v bool) {
	if v {
		b.SetAttributeValue(name, cty.True)
	}
}

func setList(b *hclwrite.Body, name string, vs []string) {
	if len(vs) == 0 {
		return
	}
	vals := make([]cty.Value, len(vs))
	for i, v := range vs {
		vals[i] = cty.StringVal(v)
	}
	b.SetAttributeValue(name, cty.ListVal(vals))
}

// setMap writes a map as an object in key order.
func setMap(b *hclwrite.Body, name string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := map[string]cty.Value{}
	for _, k := range keys {
		vals[k] = cty.StringVal(m[k])
	}
	b.SetAttributeValue(name, cty.MapVal(vals))
}
