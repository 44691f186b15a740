package spec

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/berth-dev/berth/internal/safefile"
)

// Options are the inputs to Load that do not come from the directory.
type Options struct {
	// Vars are --var assignments ("name=value"), in command-line order.
	Vars []string
	// VarFiles are --var-file paths, in command-line order.
	VarFiles []string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Environ lists the environment for BERTH_VAR_*; nil means os.Environ.
	Environ func() []string
	// SecretKey, the host key, keys what spec hashes hold of sensitive
	// values, so that a hash in a runtime label cannot be tried against
	// guessed passwords. nil hashes them unkeyed (tests, validate).
	SecretKey []byte
	// UnsetUnknown gives a variable without a value an unknown one instead
	// of an error, as validate does: the attributes computed from it are
	// left unchecked, everything else is checked.
	UnsetUnknown bool
	// Parsed, when set, keeps parsed files between the loads that share
	// it (see ParseCache).
	Parsed *ParseCache
	// BerthDecoded, when set, is told the berth block's settings as soon
	// as the files, variables, locals and the block itself hold no error,
	// before the pods are decoded: a plan starts its runtime reads then.
	// A load may still fail after it.
	BerthDecoded func(Berth)
	// DefaultStack names the stack when the berth block does not; ""
	// names it after the directory. (A watcher of a git repository loads
	// each commit from a directory named by its hash.)
	DefaultStack string
}

// Loader reads configuration directories. It keeps the parsed files so
// diagnostics can be printed with source snippets.
type Loader struct {
	opts Options
	// files are the files read, parsed here or taken from opts.Parsed.
	files map[string]*hcl.File
	// iter is the running load's budget of for-expression steps, of
	// maxIterations (0: MaxIterations; tests set less).
	iter          *iterations
	maxIterations int64
}

// NewLoader returns a Loader with the given options.
func NewLoader(opts Options) *Loader {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ
	}
	return &Loader{opts: opts, files: map[string]*hcl.File{}}
}

// Files returns every file read so far, for diagnostic rendering.
func (l *Loader) Files() map[string]*hcl.File { return l.files }

// ignoredSuffixes are editor and tool leftovers that must never become workloads.
var ignoredSuffixes = []string{"~", ".swp", ".swx", ".bak", ".orig", ".tmp"}

// IsConfigFile reports whether a file name in a configuration directory is
// part of the configuration.
func IsConfigFile(name string) bool {
	return strings.HasSuffix(name, ".hcl") && !IsIgnored(name)
}

// IsIgnored reports whether a file name is an editor leftover or hidden file.
func IsIgnored(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") {
		return true
	}
	for _, s := range ignoredSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// ConfigFiles lists a directory's configuration files in lexical order.
func ConfigFiles(dir string) ([]string, error) {
	// Opening a FIFO would wait for a writer: look before opening.
	if info, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (%s)", dir, safefile.Kind(info.Mode()))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		// Whatever its type: a directory or FIFO named x.hcl is an error
		// when read, not silently left out.
		if IsConfigFile(e.Name()) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

var rootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "berth"},
	{Type: "variable", LabelNames: []string{"name"}},
	{Type: "locals"},
	{Type: "pod", LabelNames: []string{"name"}},
	{Type: "mirror", LabelNames: []string{"host"}},
	{Type: "registry", LabelNames: []string{"host"}},
	{Type: "image", LabelNames: []string{"ref"}},
	{Type: "network", LabelNames: []string{"name"}},
}}

// Load reads and evaluates the configuration in dir. The returned Config is
// nil when there are errors.
func (l *Loader) Load(dir string) (*Config, hcl.Diagnostics) {
	l.iter = &iterations{max: cmp.Or(l.maxIterations, MaxIterations)}
	if c := l.opts.Parsed; c != nil {
		c.begin()
		defer c.end()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid configuration directory", Detail: err.Error()}}
	}
	// Files keep the path as the user gave it, so diagnostics read
	// "examples/hello/main.hcl", not an absolute path.
	paths, err := ConfigFiles(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration directory", Detail: fmt.Sprintf("%s. Pass the directory that holds your *.hcl files.", err)}}
	}
	if len(paths) == 0 {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No configuration files", Detail: fmt.Sprintf("%s has no *.hcl files. Pass the directory that holds your configuration.", abs)}}
	}

	var diags hcl.Diagnostics
	var files []*hcl.File
	for _, p := range paths {
		f, d := l.parseConfigFile(p)
		diags = append(diags, d...)
		if f != nil {
			files = append(files, f)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}

	content, d := hcl.MergeFiles(files).Content(rootSchema)
	diags = append(diags, d...)

	var berthBlocks, varBlocks, localBlocks, podBlocks, mirrorBlocks, registryBlocks, imageBlocks, networkBlocks []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "berth":
			berthBlocks = append(berthBlocks, b)
		case "variable":
			varBlocks = append(varBlocks, b)
		case "locals":
			localBlocks = append(localBlocks, b)
		case "pod":
			podBlocks = append(podBlocks, b)
		case "mirror":
			mirrorBlocks = append(mirrorBlocks, b)
		case "registry":
			registryBlocks = append(registryBlocks, b)
		case "image":
			imageBlocks = append(imageBlocks, b)
		case "network":
			networkBlocks = append(networkBlocks, b)
		}
	}

	vars, d := l.variables(abs, varBlocks)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return nil, diags
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: l.functions(abs),
	}
	locals, d := evalLocals(ctx, localBlocks)
	diags = append(diags, d...)
	ctx.Variables["local"] = cty.ObjectVal(locals)
	if diags.HasErrors() {
		return nil, diags
	}

	cfg := &Config{Dir: abs}
	cfg.Berth, d = decodeBerth(ctx, berthBlocks, cmp.Or(l.opts.DefaultStack, abs))
	diags = append(diags, d...)
	if l.opts.BerthDecoded != nil && !diags.HasErrors() {
		l.opts.BerthDecoded(cfg.Berth)
	}
	if c := l.opts.Parsed; c != nil {
		c.scopePods(decodeScope{vars: ctx.Variables["var"], locals: ctx.Variables["local"], dir: abs, key: string(l.opts.SecretKey)})
	}
	cfg.Pods, d = decodePods(ctx, abs, podBlocks, l.iter, l.opts.Parsed)
	for _, p := range cfg.Pods {
		if p.hash != nil {
			continue // decoded by an earlier load, with this key
		}
		p.hash = &hashMemo{}
		for _, c := range p.Containers {
			c.secretKey, c.hash = l.opts.SecretKey, &hashMemo{}
		}
	}
	diags = append(diags, d...)
	cfg.Mirrors, d = decodeMirrors(ctx, abs, mirrorBlocks)
	diags = append(diags, d...)
	cfg.Registries, d = decodeRegistries(ctx, registryBlocks)
	diags = append(diags, d...)
	cfg.Images, d = decodeImages(ctx, abs, imageBlocks)
	diags = append(diags, d...)
	cfg.Networks, d = decodeNetworks(ctx, networkBlocks)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return nil, dropImpliedMissing(diags)
	}
	return cfg, diags
}

// suggested finds the argument an "Unsupported argument" diagnostic
// suggests, and missing the one a "Missing required argument" lacks.
var (
	suggested = regexp.MustCompile(`Did you mean "([^"]+)"\?`)
	missing   = regexp.MustCompile(`^The argument "([^"]+)" is required`)
)

// dropImpliedMissing removes "Missing required argument X" where a
// misspelt argument in the same block already says "Did you mean X?":
// the misspelling is the one thing to fix. The block is the nearest one
// opening before the misspelt argument.
func dropImpliedMissing(diags hcl.Diagnostics) hcl.Diagnostics {
	drop := map[*hcl.Diagnostic]bool{}
	for _, u := range diags {
		m := suggested.FindStringSubmatch(u.Detail)
		if u.Summary != "Unsupported argument" || m == nil || u.Subject == nil {
			continue
		}
		var nearest *hcl.Diagnostic
		for _, r := range diags {
			if r.Summary != "Missing required argument" || r.Subject == nil || r.Subject.Filename != u.Subject.Filename || r.Subject.Start.Byte > u.Subject.Start.Byte {
				continue
			}
			if nearest == nil || r.Subject.Start.Byte > nearest.Subject.Start.Byte {
				nearest = r
			}
		}
		if nearest != nil {
			if n := missing.FindStringSubmatch(nearest.Detail); n != nil && n[1] == m[1] {
				drop[nearest] = true
			}
		}
	}
	if len(drop) == 0 {
		return diags
	}
	out := diags[:0:0]
	for _, d := range diags {
		if !drop[d] {
			out = append(out, d)
		}
	}
	return out
}

var berthSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "stack"}, {Name: "address"}, {Name: "certs_dir"}, {Name: "cni_conf_dir"}, {Name: "parallelism"},
}}

// stackPattern keeps stack names valid as CRI label values, of at most
// 63 characters (see names.go).
var stackPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$`)

// decodeBerth reads the berth block; without a stack there, the stack is
// named after named's base name.
func decodeBerth(ctx *hcl.EvalContext, blocks []*hcl.Block, named string) (Berth, hcl.Diagnostics) {
	b := Berth{Stack: DefaultStackName(named), Parallelism: DefaultParallelism}
	if len(blocks) == 0 {
		return b, nil
	}
	e := &evaluator{ctx: ctx}
	for _, extra := range blocks[1:] {
		e.errorf(extra.DefRange, "Duplicate berth block", "Only one berth block is allowed; the first is at %s. Merge them.", blocks[0].DefRange)
	}
	content, d := blocks[0].Body.Content(berthSchema)
	e.diags = append(e.diags, d...)
	if a := content.Attributes["stack"]; a != nil {
		b.Stack = e.plainStr(a, b.Stack)
		if !ValidStackName(b.Stack) {
			e.errorf(a.Expr.Range(), "Invalid stack name", "Stack %q must be 1-63 lower-case letters, digits, '-', '_' or '.', starting and ending with a letter or digit.", b.Stack)
		}
	}
	b.Address = e.plainStr(content.Attributes["address"], "")
	b.CertsDir = runtimeDir(e, content.Attributes["certs_dir"], "the runtime's registry config_path, such as /etc/containerd/certs.d")
	b.CNIConfDir = runtimeDir(e, content.Attributes["cni_conf_dir"], "the runtime's CNI conf_dir, such as /etc/cni/net.d")
	if a := content.Attributes["parallelism"]; a != nil {
		b.Parallelism = e.integer(a, DefaultParallelism)
		if b.Parallelism < 1 {
			e.errorf(a.Expr.Range(), "Invalid parallelism", "parallelism must be at least 1; got %d.", b.Parallelism)
		}
	}
	return b, e.diags
}

// runtimeDir reads a directory the runtime reads too. It must be absolute:
// the runtime does not share berth's working directory, and a watcher
// under systemd runs in /.
func runtimeDir(e *evaluator, attr *hcl.Attribute, what string) string {
	dir := e.plainStr(attr, "")
	if dir != "" && !filepath.IsAbs(dir) {
		e.errorf(attr.Expr.Range(), "Relative directory", "%s is a directory the runtime reads, so it must be an absolute path: %s; got %q.", attr.Name, what, dir)
		return ""
	}
	return dir
}

// DefaultStackName derives a stack name from a directory's base name.
func DefaultStackName(dir string) string {
	name := strings.ToLower(filepath.Base(dir))
	name = regexp.MustCompile(`[^a-z0-9_.-]+`).ReplaceAllString(name, "-")
	name = strings.Trim(name, "-_.")
	if len(name) > 63 {
		name = strings.Trim(name[:63], "-_.")
	}
	if name == "" {
		name = "default"
	}
	return name
}

// ValidStackName reports whether name can be a stack name (a CRI label value).
func ValidStackName(name string) bool {
	return len(name) <= maxLabel && stackPattern.MatchString(name)
}
