package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// brokenHCL is a syntax error: a leftover holding it must never be parsed.
const brokenHCL = "pod \"ghost\" {\n  container \"x\" {\n"

func TestIsConfigFile(t *testing.T) {
	for name, want := range map[string]bool{
		"main.hcl":             true,
		"10-base.hcl":          true,
		"x.tmp.hcl":            true, // only the final suffix counts
		".x.hcl":               false,
		".#main.hcl":           false,
		"#main.hcl#":           false,
		"#main.hcl":            false,
		"main.hcl~":            false,
		"main.hcl.swp":         false,
		"main.hcl.swx":         false,
		"main.hcl.bak":         false,
		"main.bak":             false,
		"main.hcl.orig":        false,
		"main.hcl.tmp":         false,
		"main.tf":              false,
		"main.hcl.json":        false,
		"main.berthvars":       false,
		"berth.auto.berthvars": false,
	} {
		if got := IsConfigFile(name); got != want {
			t.Errorf("IsConfigFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestIsIgnored(t *testing.T) {
	// IsIgnored is also used on non-.hcl files (berth fmt and validate walk
	// *.berthvars too), so every leftover pattern counts on its own.
	for name, want := range map[string]bool{
		"prod.berthvars":      false,
		"main.hcl":            false,
		"a.b.c":               false,
		".prod.berthvars":     true,
		"#prod.berthvars#":    true,
		"prod.berthvars~":     true,
		"prod.berthvars.swp":  true,
		"prod.berthvars.swx":  true,
		"prod.berthvars.bak":  true,
		"prod.berthvars.orig": true,
		"prod.berthvars.tmp":  true,
		"bak":                 false,
		"x.swpx":              false,
	} {
		if got := IsIgnored(name); got != want {
			t.Errorf("IsIgnored(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLoadDirectory(t *testing.T) {
	// Base: four files whose pods come out in lexical file order ("10" <
	// "a" < "b" < "c"), blocks in file order; not sorted by pod name.
	base := func() files {
		return files{
			"b.hcl":    "pod \"second\" {\n  container \"c\" { image = \"busybox\" }\n}\n",
			"a.hcl":    "pod \"first\" {\n  container \"c\" { image = \"busybox\" }\n}\n",
			"10.hcl":   "pod \"zero\" {\n  container \"c\" { image = \"busybox\" }\n}\n",
			"c.hcl":    "pod \"third-a\" {\n  container \"c\" { image = \"busybox\" }\n}\npod \"third-b\" {\n  container \"c\" { image = \"busybox\" }\n}\n",
			"notes.md": "not configuration",
		}
	}
	baseOrder := []string{"zero", "first", "second", "third-a", "third-b"}

	tests := []struct {
		name      string
		mutate    func(t *testing.T, fs files)
		wantOrder []string
		wantDiags []diagWant
	}{
		{name: "base", mutate: func(*testing.T, files) {}, wantOrder: baseOrder},
		{
			name: "editor leftovers and hidden files are ignored even when broken",
			mutate: func(t *testing.T, fs files) {
				for _, n := range []string{".x.hcl", ".#a.hcl", "#a.hcl#", "a.hcl~", "a.hcl.swp", "a.hcl.swx", "a.hcl.bak", "a.hcl.orig", "a.hcl.tmp", "x.bak", "x.orig", "x.tmp"} {
					fs[n] = brokenHCL
				}
			},
			wantOrder: baseOrder,
		},
		{
			name: "leftover copy of a valid file does not duplicate its pods",
			mutate: func(t *testing.T, fs files) {
				fs["a.hcl~"] = fs["a.hcl"]
				fs[".a.hcl"] = fs["a.hcl"]
				fs["a.hcl.bak"] = fs["a.hcl"]
			},
			wantOrder: baseOrder,
		},
		{
			name:      "subdirectories are not read",
			mutate:    func(t *testing.T, fs files) { fs["nested/x.hcl"] = brokenHCL },
			wantOrder: baseOrder,
		},
		{
			name:      "a directory named like a configuration file is an error, not left out",
			mutate:    func(t *testing.T, fs files) { fs["dir.hcl/y.hcl"] = brokenHCL },
			wantDiags: []diagWant{{summary: "Cannot read configuration file", detail: "not a regular file (a directory)"}},
		},
		{
			name:      "a real config file with a syntax error fails",
			mutate:    func(t *testing.T, fs files) { fs["d.hcl"] = brokenHCL },
			wantDiags: []diagWant{{summary: "Unclosed configuration block", detail: "no closing brace", file: "d.hcl", at: "container"}},
		},
		{
			name:      "a network without a subnet",
			mutate:    func(t *testing.T, fs files) { fs["d.hcl"] = "network \"berth\" {}\n" },
			wantDiags: []diagWant{{summary: "Invalid subnet", detail: `network "berth" needs a subnet in CIDR form`, file: "d.hcl", at: "network"}},
		},
		{
			name:      "unknown top-level block suggests the right one",
			mutate:    func(t *testing.T, fs files) { fs["d.hcl"] = "\npods \"x\" {}\n" },
			wantDiags: []diagWant{{summary: "Unsupported block type", detail: `Did you mean "pod"?`, file: "d.hcl", at: "pods"}},
		},
		{
			name:      "top-level attributes are rejected",
			mutate:    func(t *testing.T, fs files) { fs["d.hcl"] = "stack = \"x\"\n" },
			wantDiags: []diagWant{{summary: "Unsupported argument", detail: `"stack" is not expected here`, file: "d.hcl", at: "stack"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			tt.mutate(t, fs)
			cfg, diags, _ := loadFiles(t, fs, Options{})
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				if cfg != nil {
					t.Error("Load returned a Config despite errors")
				}
				return
			}
			requireNoErrors(t, diags)
			var got []string
			for _, p := range cfg.Pods {
				got = append(got, p.Name)
			}
			requireEqual(t, got, tt.wantOrder)
		})
	}
}

func TestLoadKeepsParsedFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stack")
	writeDir(t, dir, files{
		"main.hcl":  "pod \"p\" {\n  container \"c\" { image = \"busybox\" }\n}\n",
		".main.hcl": brokenHCL,
		"main.hcl~": brokenHCL,
	})
	l := NewLoader(isolated(Options{}))
	if _, diags := l.Load(dir); diags.HasErrors() {
		t.Fatalf("Load:\n%s", formatDiags(diags))
	}
	var got []string
	for name := range l.Files() {
		got = append(got, filepath.Base(name))
	}
	sort.Strings(got)
	requireEqual(t, got, []string{"main.hcl"})
}

func TestLoadDirectoryErrors(t *testing.T) {
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	onlyLeftovers := filepath.Join(root, "leftovers")
	writeDir(t, onlyLeftovers, files{".a.hcl": "pod \"p\" {}", "a.hcl~": "", "README": ""})
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(root, "file.hcl")
	writeDir(t, root, files{"file.hcl": ""})
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, dir, summary, detail string
	}{
		{"empty directory", empty, "No configuration files", empty + " has no *.hcl files"},
		{"only leftovers", onlyLeftovers, "No configuration files", onlyLeftovers + " has no *.hcl files"},
		{"missing directory", filepath.Join(root, "missing"), "Cannot read configuration directory", "no such file or directory"},
		{"a file, not a directory", aFile, "Cannot read configuration directory", "not a directory"},
		{"a FIFO, which is not opened", fifo, "Cannot read configuration directory", "not a directory (a FIFO)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := NewLoader(isolated(Options{})).Load(tt.dir)
			if cfg != nil {
				t.Error("got a Config, want nil")
			}
			requireDiags(t, nil, diags, diagWant{summary: tt.summary, detail: tt.detail})
		})
	}
}

func TestDefaultStackName(t *testing.T) {
	long := strings.Repeat("a", 62) + "-" + strings.Repeat("b", 10)
	for dir, want := range map[string]string{
		"/srv/home":            "home",
		"/srv/Home Lab":        "home-lab",
		"/srv/My_Stack.v2":     "my_stack.v2",
		"/srv/__weird__":       "weird",
		"/srv/été":             "t",
		"/srv/a  b!!c":         "a-b-c",
		"/srv/-_.":             "default",
		"/":                    "default",
		"/srv/" + long:         strings.Repeat("a", 62),
		"relative/Dir/":        "dir",
		"/srv/" + long[:63]:    strings.Repeat("a", 62),
		"/srv/UPPER.lower-123": "upper.lower-123",
	} {
		got := DefaultStackName(dir)
		if got != want {
			t.Errorf("DefaultStackName(%q) = %q, want %q", dir, got, want)
		}
		if !stackPattern.MatchString(got) {
			t.Errorf("DefaultStackName(%q) = %q is not a valid stack name", dir, got)
		}
	}
}

func TestBerthBlock(t *testing.T) {
	pod := "pod \"p\" {\n  container \"c\" { image = \"busybox\" }\n}\n"
	base := func() files {
		return files{
			"main.hcl": pod,
			"berth.hcl": `variable "socket" {
  default = "unix:///run/k3s/containerd/containerd.sock"
}

berth {
  stack        = "home"
  address      = var.socket
  certs_dir    = "/etc/containerd/certs.d"
  cni_conf_dir = "/etc/cni/net.d"
  parallelism  = 3
}
`,
		}
	}
	baseWant := Berth{
		Stack:       "home",
		Address:     "unix:///run/k3s/containerd/containerd.sock",
		CertsDir:    "/etc/containerd/certs.d",
		CNIConfDir:  "/etc/cni/net.d",
		Parallelism: 3,
	}

	tests := []struct {
		name      string
		dirName   string // default "stack"
		mutate    func(t *testing.T, fs files)
		want      func(b *Berth)
		wantDiags []diagWant
	}{
		{name: "base"},
		{
			name:    "no berth block: defaults, stack from the directory name",
			dirName: "My Home_Lab",
			mutate:  func(t *testing.T, fs files) { delete(fs, "berth.hcl") },
			want: func(b *Berth) {
				*b = Berth{Stack: "my-home_lab", Parallelism: DefaultParallelism}
			},
		},
		{
			name:    "empty berth block: defaults",
			dirName: "lab",
			mutate:  func(t *testing.T, fs files) { fs["berth.hcl"] = "berth {}\n" },
			want:    func(b *Berth) { *b = Berth{Stack: "lab", Parallelism: 8} },
		},
		{
			name:    "stack omitted: directory name",
			dirName: "Media.Server",
			mutate:  func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", "stack        = \"home\"\n", "") },
			want:    func(b *Berth) { b.Stack = "media.server" },
		},
		{
			name: "stack from a local",
			mutate: func(t *testing.T, fs files) {
				fs["l.hcl"] = "locals { env = \"prod\" }\n"
				fs.replace(t, "berth.hcl", `"home"`, `"home-${local.env}"`)
			},
			want: func(b *Berth) { b.Stack = "home-prod" },
		},
		{
			name:      "invalid stack name",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", `"home"`, `"Home Lab"`) },
			wantDiags: []diagWant{{summary: "Invalid stack name", detail: `Stack "Home Lab" must be 1-63 lower-case letters`, file: "berth.hcl", at: "stack "}},
		},
		{
			name:      "a relative certs_dir",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", `"/etc/containerd/certs.d"`, `"certs.d"`) },
			wantDiags: []diagWant{{summary: "Relative directory", detail: `certs_dir is a directory the runtime reads, so it must be an absolute path`, file: "berth.hcl", at: `"certs.d"`}},
		},
		{
			name:      "a relative cni_conf_dir",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", `"/etc/cni/net.d"`, `"./net.d"`) },
			wantDiags: []diagWant{{summary: "Relative directory", detail: `such as /etc/cni/net.d; got "./net.d"`, file: "berth.hcl", at: `"./net.d"`}},
		},
		{
			name:      "stack ending in a dash",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", `"home"`, `"home-"`) },
			wantDiags: []diagWant{{summary: "Invalid stack name", detail: `Stack "home-"`, file: "berth.hcl", at: "stack "}},
		},
		{
			name:      "stack too long",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", `"home"`, `"`+strings.Repeat("s", 64)+`"`) },
			wantDiags: []diagWant{{summary: "Invalid stack name", detail: "must be 1-63", file: "berth.hcl", at: "stack "}},
		},
		{
			name:      "duplicate berth block in another file",
			mutate:    func(t *testing.T, fs files) { fs["z.hcl"] = "\n\nberth {\n  stack = \"other\"\n}\n" },
			wantDiags: []diagWant{{summary: "Duplicate berth block", detail: "Only one berth block is allowed; the first is at …/stack/berth.hcl:5,1-6. Merge them.", file: "z.hcl", at: "berth {"}},
		},
		{
			name:      "parallelism zero",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", "= 3", "= 0") },
			wantDiags: []diagWant{{summary: "Invalid parallelism", detail: "parallelism must be at least 1; got 0.", file: "berth.hcl", at: "parallelism"}},
		},
		{
			name:      "parallelism negative",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", "= 3", "= -2") },
			wantDiags: []diagWant{{summary: "Invalid parallelism", detail: "got -2.", file: "berth.hcl", at: "parallelism"}},
		},
		{
			name:   "parallelism one is fine",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", "= 3", "= 1") },
			want:   func(b *Berth) { b.Parallelism = 1 },
		},
		{
			name:      "parallelism fractional",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", "= 3", "= 1.5") },
			wantDiags: []diagWant{{summary: "Invalid number", detail: `"parallelism" must be a whole number`, file: "berth.hcl", at: "parallelism"}},
		},
		{
			name:      "parallelism of the wrong type",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", "= 3", "= \"many\"") },
			wantDiags: []diagWant{{summary: "Incorrect attribute value type", detail: `Inappropriate value for attribute "parallelism"`, file: "berth.hcl", at: "parallelism"}},
		},
		{
			name:      "unknown attribute",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "berth.hcl", "parallelism  = 3", "paralelism = 3") },
			wantDiags: []diagWant{{summary: "Unsupported argument", detail: `Did you mean "parallelism"?`, file: "berth.hcl", at: "paralelism"}},
		},
		{
			name: "stack from a sensitive variable",
			mutate: func(t *testing.T, fs files) {
				fs["v.hcl"] = "variable \"s\" {\n  default   = \"secret\"\n  sensitive = true\n}\n"
				fs.replace(t, "berth.hcl", `"home"`, "var.s")
			},
			wantDiags: []diagWant{{summary: "Sensitive value not allowed", detail: `"stack" is shown in plans`, file: "berth.hcl", at: "stack "}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			if tt.mutate != nil {
				tt.mutate(t, fs)
			}
			name := tt.dirName
			if name == "" {
				name = "stack"
			}
			dir := filepath.Join(t.TempDir(), name)
			writeDir(t, dir, fs)
			cfg, diags := NewLoader(isolated(Options{})).Load(dir)
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				return
			}
			requireNoErrors(t, diags)
			want := baseWant
			if tt.want != nil {
				tt.want(&want)
			}
			requireEqual(t, cfg.Berth, want)
			if cfg.Dir != dir {
				t.Errorf("Config.Dir = %q, want %q", cfg.Dir, dir)
			}
		})
	}
}

func TestLoadRelativeDirIsMadeAbsolute(t *testing.T) {
	root := t.TempDir()
	writeDir(t, filepath.Join(root, "cfg"), files{"main.hcl": "pod \"p\" {\n  container \"c\" { image = \"busybox\" }\n}\n"})
	t.Chdir(root)
	cfg, diags := NewLoader(isolated(Options{})).Load("cfg")
	requireNoErrors(t, diags)
	if want := filepath.Join(root, "cfg"); cfg.Dir != want {
		t.Errorf("Dir = %q, want %q", cfg.Dir, want)
	}
	if cfg.Berth.Stack != "cfg" {
		t.Errorf("Stack = %q, want %q", cfg.Berth.Stack, "cfg")
	}
}

// BerthDecoded is told the berth block's settings, variables evaluated,
// once the files, variables and the block hold no error, whatever the
// pods hold; never when the block itself is wrong.
func TestBerthDecoded(t *testing.T) {
	const vars = `variable "name" { default = "web" }
berth {
  stack    = var.name
  address  = "unix:///run/x.sock"
  %s
}
`
	for _, tc := range []struct {
		name, berth, pod string
		want             *Berth // nil: never told
		loads            bool
	}{
		{"a valid configuration", "", `pod "a" {
  container "main" { image = "busybox" }
}`, &Berth{Stack: "web", Address: "unix:///run/x.sock", Parallelism: DefaultParallelism}, true},
		{"an error in a pod", "", `pod "a" {
  container "main" { image = 1 }
  colour = "blue"
}`, &Berth{Stack: "web", Address: "unix:///run/x.sock", Parallelism: DefaultParallelism}, false},
		{"an error in the berth block", `parallelism = "many"`, `pod "a" {
  container "main" { image = "busybox" }
}`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "stack")
			writeDir(t, dir, files{"main.hcl": fmt.Sprintf(vars, tc.berth) + tc.pod})
			var told []Berth
			_, diags := NewLoader(isolated(Options{BerthDecoded: func(b Berth) { told = append(told, b) }})).Load(dir)
			if diags.HasErrors() == tc.loads {
				t.Fatalf("Load: errors %t, want %t:\n%s", diags.HasErrors(), !tc.loads, formatDiags(diags))
			}
			switch {
			case tc.want == nil && len(told) > 0:
				t.Errorf("told %+v, want nothing", told)
			case tc.want != nil && (len(told) != 1 || told[0] != *tc.want):
				t.Errorf("told %+v, want %+v once", told, *tc.want)
			}
		})
	}
}

// DefaultStack names the stack in place of the directory, and a stack
// the berth block names still wins.
func TestDefaultStackOption(t *testing.T) {
	pod := "pod \"p\" {\n  container \"c\" { image = \"busybox\" }\n}\n"
	for _, tc := range []struct{ name, berth, defaultStack, want string }{
		{"the directory", "", "", "0123abcd"},
		{"the option", "", "Host1", "host1"},
		{"the block wins", "berth { stack = \"web\" }\n", "host1", "web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "0123abcd")
			writeDir(t, dir, files{"main.hcl": tc.berth + pod})
			cfg, diags := NewLoader(isolated(Options{DefaultStack: tc.defaultStack})).Load(dir)
			if diags.HasErrors() {
				t.Fatal(formatDiags(diags))
			}
			if cfg.Berth.Stack != tc.want {
				t.Errorf("stack %q, want %q", cfg.Berth.Stack, tc.want)
			}
		})
	}
}
