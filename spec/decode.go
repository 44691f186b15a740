package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// LabelPrefix is reserved for berth's own labels and annotations.
const LabelPrefix = "berth.io/"

// DefaultStopTimeout is the grace period before SIGKILL when none is set.
const DefaultStopTimeout = 10 * time.Second

var podSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "namespace"}, {Name: "hostname"}, {Name: "labels"}, {Name: "annotations"},
		{Name: "runtime"}, {Name: "host_network"}, {Name: "host_pid"}, {Name: "host_ipc"},
		{Name: "privileged"}, {Name: "sysctls"}, {Name: "restart"}, {Name: "depends_on"},
		{Name: "prevent_replace"}, {Name: "update_order"}, {Name: "min_ready"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "dns"},
		{Type: "container", LabelNames: []string{"name"}},
		{Type: "port", LabelNames: []string{"name"}},
		{Type: "forward", LabelNames: []string{"name"}},
	},
}

var dnsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "servers"}, {Name: "searches"}, {Name: "options"},
}}

var containerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "image", Required: true}, {Name: "pull"}, {Name: "command"}, {Name: "args"},
		{Name: "env"}, {Name: "env_file"}, {Name: "working_dir"}, {Name: "user"}, {Name: "tty"},
		{Name: "stdin"}, {Name: "init"}, {Name: "restart"}, {Name: "stop_signal"},
		{Name: "stop_timeout"}, {Name: "labels"}, {Name: "annotations"}, {Name: "log_path"},
		{Name: "privileged"}, {Name: "read_only_root"}, {Name: "no_new_privileges"},
		{Name: "seccomp"}, {Name: "apparmor"}, {Name: "cdi_devices"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "capabilities"}, {Type: "resources"},
		{Type: "device", LabelNames: []string{"path"}},
		{Type: "mount", LabelNames: []string{"path"}},
		{Type: "tmpfs", LabelNames: []string{"path"}},
		{Type: "probe", LabelNames: []string{"kind"}},
	},
}

// namePattern keeps pod and container names valid as CRI metadata names and
// DNS labels, of at most 63 characters (see names.go).
var namePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidName reports whether name can be a pod or container name.
func ValidName(name string) bool { return len(name) <= maxLabel && namePattern.MatchString(name) }

var signals = []string{"SIGTERM", "SIGINT", "SIGQUIT", "SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGPWR", "SIGSTOP"}

// ValidStopSignal reports whether a container may declare name as its
// stop_signal.
func ValidStopSignal(name string) bool { return slices.Contains(signals, name) }

func decodePods(ctx *hcl.EvalContext, dir string, blocks []*hcl.Block, it *iterations, cache *ParseCache) ([]*Pod, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var pods []*Pod
	seen := map[string]*Pod{}
	for i, dp := range decodeEach(ctx, dir, blocks, it, cache) {
		b, p, d := blocks[i], dp.pod, dp.diags
		diags = append(diags, d...)
		if prev := seen[p.Name]; prev != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate pod",
				Detail: fmt.Sprintf("pod %q is already declared at %s. Pod names must be unique in a configuration.", p.Name, prev.DeclRange), Subject: b.DefRange.Ptr()})
			continue
		}
		seen[p.Name] = p
		pods = append(pods, p)
	}
	diags = append(diags, checkDependencies(pods)...)
	diags = append(diags, checkPorts(pods)...)
	diags = append(diags, checkForwards(pods)...)
	return pods, diags
}

// decoded is one pod block's decoding.
type decoded struct {
	pod   *Pod
	diags hcl.Diagnostics
}

// parallelPods is how many pod blocks make decoding them on every CPU
// worth its goroutines: with 500, their decoding is a third of a load.
const parallelPods = 64

// decodeEach decodes the pod blocks, in their order, on every CPU when
// there are many: each block's decoding reads its own body and the
// shared evaluation context, and writes nothing they share but the
// for-expression budget. A load that spends the budget decodes them again
// one by one, so that the same step of the same block is told as too many.
// With a cache, blocks decoded by an earlier load in the same scope are
// taken from it, and the rest kept in it.
func decodeEach(ctx *hcl.EvalContext, dir string, blocks []*hcl.Block, it *iterations, cache *ParseCache) []decoded {
	out := make([]decoded, len(blocks))
	var todo []int
	for i, b := range blocks {
		if p, diags, ok := cache.pod(b.Body); ok {
			out[i] = decoded{pod: p, diags: diags}
			continue
		}
		todo = append(todo, i)
	}
	decodeOnly(ctx, dir, blocks, todo, it, out)
	if !it.spent() {
		for _, i := range todo {
			cache.putPod(blocks[i], out[i].pod, out[i].diags)
		}
	}
	return out
}

// decodeOnly decodes the blocks at the indexes todo into out.
func decodeOnly(ctx *hcl.EvalContext, dir string, blocks []*hcl.Block, todo []int, it *iterations, out []decoded) {
	one := func(i int) { out[i].pod, out[i].diags = decodePod(ctx, dir, blocks[i]) }
	workers := min(runtime.GOMAXPROCS(0), len(todo)/parallelPods)
	if workers < 2 {
		for _, i := range todo {
			one(i)
		}
		return
	}
	before := it.used.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k < len(todo); k = int(next.Add(1) - 1) {
				one(todo[k])
			}
		})
	}
	wg.Wait()
	if it.spent() {
		it.used.Store(before)
		for _, i := range todo {
			one(i)
		}
	}
}

// mayBeDynamic says whether a pod's body may hold a dynamic block, at any
// depth: anything named "dynamic" counts. A body without one decodes the
// same with or without dynblock's expansion, which takes a tenth of a
// 500-pod load.
func mayBeDynamic(body hcl.Body) bool {
	syn, ok := body.(*hclsyntax.Body)
	if !ok {
		return true
	}
	if _, ok := syn.Attributes["dynamic"]; ok {
		return true
	}
	for _, blk := range syn.Blocks {
		if blk.Type == "dynamic" || mayBeDynamic(blk.Body) {
			return true
		}
	}
	return false
}

func decodePod(ctx *hcl.EvalContext, dir string, b *hcl.Block) (*Pod, hcl.Diagnostics) {
	p := &Pod{Name: b.Labels[0], DeclRange: b.DefRange}
	e := &evaluator{ctx: ctx}
	checkName(e, "pod", p.Name, b.LabelRanges[0])

	body := b.Body
	if mayBeDynamic(body) {
		body = dynblock.Expand(body, ctx)
	}
	content, d := body.Content(podSchema)
	e.diags = append(e.diags, d...)

	a := content.Attributes
	p.Namespace = e.plainStr(a["namespace"], "default")
	p.Hostname = e.plainStr(a["hostname"], "")
	if p.Hostname != "" && !validDNSName(p.Hostname) {
		e.errorf(a["hostname"].Expr.Range(), "Invalid hostname", "hostname must be a DNS name: labels of letters, digits and '-', separated by dots, at most 63 characters each; got %q.", p.Hostname)
	}
	p.Labels = e.plainMap(a["labels"])
	p.Annotations = e.plainMap(a["annotations"])
	checkReserved(e, a["labels"], p.Labels)
	checkReserved(e, a["annotations"], p.Annotations)
	p.Runtime = e.plainStr(a["runtime"], "")
	p.Restart = RestartPolicy(e.enum(a["restart"], string(RestartAlways), string(RestartAlways), string(RestartOnFailure), string(RestartNever)))
	p.PreventReplace = e.boolean(a["prevent_replace"], false)
	p.UpdateOrder = UpdateOrder(e.enum(a["update_order"], "", string(StopFirst), string(StartFirst)))
	p.MinReady = e.duration(a["min_ready"], 0)
	p.HostNetwork = e.boolean(a["host_network"], false)
	p.HostPID = e.boolean(a["host_pid"], false)
	p.HostIPC = e.boolean(a["host_ipc"], false)
	p.Privileged = e.boolean(a["privileged"], false)
	p.Sysctls = e.plainMap(a["sysctls"])
	for _, k := range sortedKeys(p.Sysctls) {
		if !sysctlPattern.MatchString(k) {
			e.errorf(a["sysctls"].Expr.Range(), "Invalid sysctl", "%q is not a sysctl name; write it as the kernel does, such as \"net.ipv4.ip_forward\" (no \"..\", no leading or doubled separators).", k)
		}
	}
	if p.HostNetwork && p.Hostname != "" {
		e.errorf(a["hostname"].Expr.Range(), "hostname with host_network", "A pod on the host's network has the host's name: the runtime cannot set a hostname without a private UTS namespace. Remove hostname, or host_network.")
	}
	if attr := a["depends_on"]; attr != nil {
		p.DependsOnRange = attr.Expr.Range()
		refs := e.plainList(attr)
		for _, ref := range refs {
			name, ok := strings.CutPrefix(ref, "pod.")
			if !ok || name == "" {
				e.errorf(attr.Expr.Range(), "Invalid depends_on reference", "%q is not a pod reference. Write depends_on = [\"pod.NAME\"].", ref)
				continue
			}
			p.DependsOn = append(p.DependsOn, name)
		}
	}

	for _, blk := range content.Blocks {
		switch blk.Type {
		case "dns":
			if p.DNS != nil {
				e.errorf(blk.DefRange, "Duplicate dns block", "A pod has at most one dns block.")
				continue
			}
			p.DNS = decodeDNS(e, blk)
		case "port":
			port, ok := decodePort(e, blk)
			if !ok {
				continue
			}
			if p.HostNetwork {
				e.errorf(blk.DefRange, "port with host_network", "pod %q uses the host's network, so its ports are the host's already. Remove the port block, or host_network.", p.Name)
				continue
			}
			if prev := portNamed(p, port.Name); prev != nil {
				e.errorf(blk.DefRange, "Duplicate port", "port %q is already declared in pod %q at %s.", port.Name, p.Name, prev.DeclRange)
				continue
			}
			p.Ports = append(p.Ports, port)
		case "forward":
			if f, ok := decodeForward(e, blk); ok {
				p.Forwards = append(p.Forwards, f)
			}
		case "container":
			c := decodeContainer(e, dir, blk, p.Restart)
			if prev := p.Container(c.Name); prev != nil {
				e.errorf(blk.DefRange, "Duplicate container", "container %q is already declared in pod %q at %s.", c.Name, p.Name, prev.DeclRange)
				continue
			}
			if c.Privileged && !p.Privileged {
				e.errorf(blk.DefRange, "Privileged container in an unprivileged pod", "container %q sets privileged = true, which the runtime allows only in a privileged pod. Add privileged = true to pod %q, or better, grant only the devices and capabilities it needs.", c.Name, p.Name)
			}
			p.Containers = append(p.Containers, c)
		}
	}
	checkStartFirst(e, p, a["update_order"])
	if len(p.Containers) == 0 {
		e.errorf(b.DefRange, "Pod without containers", "pod %q has no container blocks. Add at least one: container \"main\" { image = \"...\" }.", p.Name)
	}
	return p, e.diags
}

// checkStartFirst refuses start_first for pods two instances of which
// cannot run side by side, as a start-first replace runs them.
func checkStartFirst(e *evaluator, p *Pod, attr *hcl.Attribute) {
	if p.UpdateOrder != StartFirst {
		return
	}
	if p.HostNetwork {
		e.errorf(attr.Expr.Range(), "start_first with host_network", "pod %q uses the host's network: its new instance could not bind the ports the old one holds while both run. Use update_order = \"stop_first\", or give the pod its own network and publish ports with port blocks.", p.Name)
		return
	}
	for _, c := range p.Containers {
		if len(c.Devices) > 0 || len(c.CDIDevices) > 0 {
			e.errorf(attr.Expr.Range(), "start_first with devices", "container %q of pod %q uses host devices: two instances at once would share them (a VM's /dev/kvm and its one disk, a GPU). Use update_order = \"stop_first\".", c.Name, p.Name)
			return
		}
	}
}

func portNamed(p *Pod, name string) *Port {
	for i := range p.Ports {
		if p.Ports[i].Name == name {
			return &p.Ports[i]
		}
	}
	return nil
}

func decodeDNS(e *evaluator, b *hcl.Block) *DNS {
	content, d := b.Body.Content(dnsSchema)
	e.diags = append(e.diags, d...)
	dns := &DNS{}
	dns.Servers = e.plainList(content.Attributes["servers"])
	for _, s := range dns.Servers {
		if _, err := netip.ParseAddr(s); err != nil {
			e.errorf(content.Attributes["servers"].Expr.Range(), "Invalid DNS server", "DNS servers are IP addresses, such as \"1.1.1.1\" or \"fd00::53\"; got %q.", s)
		}
	}
	dns.Searches = e.plainList(content.Attributes["searches"])
	dns.Options = e.plainList(content.Attributes["options"])
	return dns
}

func decodeContainer(e *evaluator, dir string, b *hcl.Block, podRestart RestartPolicy) *Container {
	c := &Container{Name: b.Labels[0], DeclRange: b.DefRange}
	checkName(e, "container", c.Name, b.LabelRanges[0])
	content, d := b.Body.Content(containerSchema)
	e.diags = append(e.diags, d...)

	a := content.Attributes
	c.Image = e.plainStr(a["image"], "")
	if a["image"] != nil && c.Image == "" {
		e.errorf(a["image"].Expr.Range(), "Empty image", "container %q needs an image reference, such as \"docker.io/library/busybox:1.36\".", c.Name)
	} else if _, err := NormalizeImage(c.Image); a["image"] != nil && err != nil {
		e.errorf(a["image"].Expr.Range(), "Invalid image reference", "%q is not an image reference (%s). Write it as [registry/]repository[:tag][@digest], such as \"docker.io/library/busybox:1.36\".", c.Image, err)
	}
	c.Pull = PullPolicy(e.enum(a["pull"], string(PullIfNotPresent), string(PullIfNotPresent), string(PullAlways), string(PullNever)))
	var sensitive bool
	if c.Command, sensitive = e.strList(a["command"]); sensitive {
		c.Sensitive = append(c.Sensitive, "command")
	}
	if c.Args, sensitive = e.strList(a["args"]); sensitive {
		c.Sensitive = append(c.Sensitive, "args")
	}
	c.EnvFiles = e.plainList(a["env_file"])
	env, secretKeys := e.strMap(a["env"])
	c.Env = map[string]string{}
	for _, f := range c.EnvFiles {
		vals, err := readEnvFile(resolve(dir, f))
		if err != nil {
			e.errorf(a["env_file"].Expr.Range(), "Cannot read env_file", "%s.", err)
			continue
		}
		for k, v := range vals {
			c.Env[k] = v
		}
	}
	checkEnv(e, a["env"], env)
	// env_file values are treated as secrets (env files usually hold
	// them); values set in env override them and are shown as written.
	fromFiles := sortedKeys(c.Env)
	for k, v := range env {
		c.Env[k] = v
	}
	for _, k := range fromFiles {
		if _, overridden := env[k]; !overridden {
			secretKeys = append(secretKeys, k)
		}
	}
	sort.Strings(secretKeys)
	for _, k := range dedupe(secretKeys) {
		c.Sensitive = append(c.Sensitive, "env."+k)
	}
	if len(c.Env) == 0 {
		c.Env = nil
	}
	c.WorkingDir = e.plainStr(a["working_dir"], "")
	if c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/") {
		e.errorf(a["working_dir"].Expr.Range(), "Invalid working_dir", "working_dir must be an absolute path inside the container; got %q.", c.WorkingDir)
	}
	c.User = e.plainStr(a["user"], "")
	if c.User != "" && !userPattern.MatchString(c.User) {
		e.errorf(a["user"].Expr.Range(), "Invalid user", "user must be \"uid\", \"uid:gid\", \"name\" or \"name:gid\"; got %q.", c.User)
	}
	c.TTY = e.boolean(a["tty"], false)
	c.Stdin = e.boolean(a["stdin"], false)
	c.Init = e.boolean(a["init"], false)
	c.Restart = RestartPolicy(e.enum(a["restart"], string(podRestart), string(RestartAlways), string(RestartOnFailure), string(RestartNever)))
	c.StopSignal = e.enum(a["stop_signal"], "", signals...) // "": the image's STOPSIGNAL, else SIGTERM
	c.StopTimeout = e.duration(a["stop_timeout"], DefaultStopTimeout)
	c.Labels = e.plainMap(a["labels"])
	c.Annotations = e.plainMap(a["annotations"])
	checkReserved(e, a["labels"], c.Labels)
	checkReserved(e, a["annotations"], c.Annotations)
	decodeHost(e, dir, c, content)
	decodeProbes(e, c, content)
	c.LogPath = e.plainStr(a["log_path"], "")
	if c.LogPath == "" { // unset or "": the language's default
		c.LogPath = c.Name + ".log"
	}
	if a["log_path"] != nil && (strings.HasPrefix(c.LogPath, "/") || strings.Contains(c.LogPath, "..")) {
		e.errorf(a["log_path"].Expr.Range(), "Invalid log_path", "log_path is relative to the pod's log directory and cannot leave it; got %q.", c.LogPath)
	}
	return c
}

var userPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[0-9]+)?$`)

func checkName(e *evaluator, kind, name string, rng hcl.Range) {
	if !ValidName(name) {
		e.errorf(rng, "Invalid "+kind+" name", "%s name %q must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit.", kind, name)
	}
}

func checkReserved(e *evaluator, attr *hcl.Attribute, m map[string]string) {
	for k := range m {
		if strings.HasPrefix(k, LabelPrefix) {
			e.errorf(attr.Expr.Range(), "Reserved key", "%q uses the prefix %q, which berth reserves for its own bookkeeping. Choose another key.", k, LabelPrefix)
		}
	}
}

// readEnvFile reads KEY=VALUE lines; blank lines and # comments are skipped,
// and a value may be wrapped in single or double quotes.
func readEnvFile(path string) (map[string]string, error) {
	data, err := readFile(path, MaxEnvFile)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxEnvFile) // a line may be as long as the file
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\x00") {
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE (the line is not shown: it may hold a secret)", path, n)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%s:%d: the value of %s holds a NUL byte, which no environment can carry", path, n, k)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out, sc.Err()
}

// sysctlPattern is a sysctl name, dotted or slashed as the kernel takes it.
var sysctlPattern = regexp.MustCompile(`^[A-Za-z0-9_]+(?:[./][A-Za-z0-9_-]+)*$`)

// checkEnv refuses environment entries no process can be given: an empty
// key, one with "=" or NUL, a value with NUL. Values are never printed.
func checkEnv(e *evaluator, attr *hcl.Attribute, env map[string]string) {
	for _, k := range sortedKeys(env) {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			e.errorf(attr.Expr.Range(), "Invalid environment variable", "%q cannot be an environment variable's name: names are not empty and hold no \"=\" or NUL.", k)
		case strings.ContainsRune(env[k], 0):
			e.errorf(attr.Expr.Range(), "Invalid environment variable", "The value of %s holds a NUL byte, which no environment can carry.", k)
		}
	}
}

// checkDependencies resolves depends_on names and rejects cycles.
func checkDependencies(pods []*Pod) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byName := map[string]*Pod{}
	var names []string
	for _, p := range pods {
		byName[p.Name] = p
		names = append(names, p.Name)
	}
	sort.Strings(names)
	for _, p := range pods {
		for _, dep := range p.DependsOn {
			if byName[dep] != nil {
				continue
			}
			detail := fmt.Sprintf("pod %q depends on %s, which is not declared.", p.Name, PodAddress(dep))
			// A pod never depends on itself: it is no suggestion.
			others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == p.Name })
			if s := Suggest(dep, others); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", PodAddress(s).String())
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown dependency", Detail: detail, Subject: p.DependsOnRange.Ptr()})
		}
	}
	if diags.HasErrors() {
		return diags
	}
	if _, err := Levels(pods); err != nil {
		var cycle *CycleError
		subject := (*hcl.Range)(nil)
		if errors.As(err, &cycle) {
			subject = cycle.Pod.DeclRange.Ptr()
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Dependency cycle", Detail: err.Error() + " Remove one of the depends_on entries.", Subject: subject})
	}
	return diags
}

// CycleError reports pods that depend on each other in a circle.
type CycleError struct {
	Pod  *Pod
	Path []string
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("pods depend on each other in a cycle: %s.", strings.Join(e.Path, " -> "))
}

// Levels groups pods by dependency depth: level 0 depends on nothing, level
// n only on pods of lower levels. Each level is sorted by name.
func Levels(pods []*Pod) ([][]*Pod, error) {
	byName := map[string]*Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	level := map[string]int{}
	const visiting = -1
	var visit func(p *Pod, path []string) (int, error)
	visit = func(p *Pod, path []string) (int, error) {
		if l, ok := level[p.Name]; ok {
			if l == visiting {
				return 0, &CycleError{Pod: p, Path: append(path, p.Name)}
			}
			return l, nil
		}
		level[p.Name] = visiting
		l := 0
		for _, dep := range p.DependsOn {
			d := byName[dep]
			if d == nil {
				continue
			}
			dl, err := visit(d, append(path, p.Name))
			if err != nil {
				return 0, err
			}
			l = max(l, dl+1)
		}
		level[p.Name] = l
		return l, nil
	}
	var out [][]*Pod
	for _, p := range pods {
		l, err := visit(p, nil)
		if err != nil {
			return nil, err
		}
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], p)
	}
	for _, lv := range out {
		sort.Slice(lv, func(i, j int) bool { return lv[i].Name < lv[j].Name })
	}
	return out, nil
}
