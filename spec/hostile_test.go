package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Hostile and clumsy input: every case must end in a clear diagnostic,
// not a panic, a hang or an exhausted memory.
func TestHostileInput(t *testing.T) {
	pod := func(body string) string {
		return "pod \"a\" {\n  container \"c\" {\n    image = \"busybox\"\n" + body + "\n  }\n}\n"
	}
	doubling := "locals {\n  s0 = \"" + strings.Repeat("x", 1024) + "\"\n"
	for i := 1; i <= 20; i++ {
		doubling += "  s" + strconv.Itoa(i) + " = \"${local.s" + strconv.Itoa(i-1) + "}${local.s" + strconv.Itoa(i-1) + "}\"\n"
	}
	doubling += "}\n" + pod(`    env = { X = local.s20 }`)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"a FIFO as a configuration file", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "z.hcl")) }, "not a regular file (a FIFO)"},
		{"a FIFO as the auto variables file", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod(""))
			mkfifo(t, filepath.Join(dir, AutoVarsFile))
		}, "not a regular file (a FIFO)"},
		{"a device as an env_file", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod(`    env_file = ["/dev/zero"]`))
		}, "not a regular file (a device)"},
		{"a device read by file()", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod(`    command = [file("/dev/zero")]`))
		}, "not a regular file (a device)"},
		{"a file over the size cap", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod("")+"# "+strings.Repeat("x", MaxConfigFile)+"\n")
		}, "more than 4 MiB"},
		{"deep nesting", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", "locals {\n  x = "+strings.Repeat("(", 100_000)+"1"+strings.Repeat(")", 100_000)+"\n}\n")
		}, "Nested too deeply"},
		{"deep objects", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", "locals {\n  x = "+strings.Repeat("{a=", 100_000)+"1"+strings.Repeat("}", 100_000)+"\n}\n")
		}, "Nested too deeply"},
		{"an infinite number", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod("    resources { cpus = 1e309 }"))
		}, "cpus must be between 0.01 and 1024"},
		{"a CPU quota of zero", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod("    resources { cpus = 0.000001 }"))
		}, "cpus must be between 0.01 and 1024"},
		{"setproduct of a hundred million", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", "locals {\n  x = setproduct(range(1000), range(1000), range(100))\n}\n")
		}, "setproduct would make 100000000 elements"},
		{"range of a billion", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", "locals {\n  x = range(1000000000)\n}\n")
		}, "range would make 1000000000 elements"},
		{"nested for expressions of a billion steps", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", "locals {\n  x = [for i in range(1000): [for j in range(1000): [for k in range(1000): k if k > 0]]]\n}\n")
		}, "take more than 1000000 steps in all"},
		{"nested for expressions over a variable's default", func(t *testing.T, dir string) {
			big := "[" + strings.Repeat("1,", 10000) + "1]"
			write(t, dir, "main.hcl", "variable \"v\" {\n  default = [for a in "+big+": [for b in "+big+": [for c in "+big+": c]]]\n}\n")
		}, "take more than 1000000 steps in all"},
		{"nested for expressions in a template", func(t *testing.T, dir string) {
			write(t, dir, "t.tpl", "%{ for i in range(1000) }%{ for j in range(1000) }%{ for k in range(1000) }%{ endfor }%{ endfor }%{ endfor }")
			write(t, dir, "main.hcl", pod(`    env = { X = templatefile("t.tpl", {}) }`))
		}, "take more than 1000000 steps in all"},
		{"a string doubled through locals", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", doubling)
		}, "holds more than 16 MiB of text"},
		{"a directory named like a configuration file", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "x.hcl"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file (a directory)"},
		{"an env key with =", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod(`    env = { "A=B" = "x" }`))
		}, `"A=B" cannot be an environment variable's name`},
		{"an empty env key", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod(`    env = { "" = "x" }`))
		}, `"" cannot be an environment variable's name`},
		{"a NUL in an env value", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod(`    env = { A = "x\u0000y" }`))
		}, "The value of A holds a NUL byte"},
		{"a NUL in an env_file value", func(t *testing.T, dir string) {
			write(t, dir, "e.env", "A=x\x00y\n")
			write(t, dir, "main.hcl", pod(`    env_file = ["e.env"]`))
		}, "the value of A holds a NUL byte"},
		{"a device outside /dev", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod("    device \"/dev/../etc/shadow\" {}"))
		}, "A device is a node under /dev"},
		{"a sysctl that climbs", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", strings.Replace(pod(""), "pod \"a\" {", "pod \"a\" {\n  sysctls = { \"../../x\" = \"1\" }", 1))
		}, `"../../x" is not a sysctl name`},
		{"a DNS server that is not an IP", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", strings.Replace(pod(""), "pod \"a\" {", "pod \"a\" {\n  dns {\n    servers = [\"dns.example\"]\n  }", 1))
		}, "DNS servers are IP addresses"},
		{"a CDI name with a newline", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod(`    cdi_devices = ["nvidia.com/gpu=all\nx"]`))
		}, "is not a CDI device name"},
		{"a probe every nanosecond", func(t *testing.T, dir string) {
			write(t, dir, "main.hcl", pod("    probe \"liveness\" {\n      exec { command = [\"true\"] }\n      interval = \"1ns\"\n    }"))
		}, `"interval" must be at least 10ms`},
		{"random bytes", func(t *testing.T, dir string) {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(i*7919 + i>>3)
			}
			write(t, dir, "main.hcl", string(b))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "stack")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			cfg, diags := NewLoader(Options{Environ: func() []string { return nil }}).Load(dir)
			if !diags.HasErrors() || cfg != nil {
				t.Fatalf("loaded without errors")
			}
			if !strings.Contains(diags.Error(), tt.want) {
				t.Errorf("diagnostics do not say %q:\n%s", tt.want, diags.Error())
			}
		})
	}
}

func write(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryHosts(t *testing.T) {
	for host, ok := range map[string]bool{
		"docker.io": true, "registry.example.com:5000": true, "127.0.0.1:5443": true, "[::1]:5000": true, "localhost": true,
		"_default": true, "..": false, ".": false, "a/../b": false, "x:0": false, "x:65536": false, "-x.io": false,
		"https://docker.io": false, "": false, "a b": false, "x.io:": false, "x..io": false,
	} {
		if err := checkRegistryHost(host, true); (err == nil) != ok {
			t.Errorf("checkRegistryHost(%q) = %v, want ok %v", host, err, ok)
		}
	}
}

// An env_file line may be as long as the file may be.
func TestEnvFileLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.env")
	if err := os.WriteFile(path, []byte("BIG="+strings.Repeat("x", 200<<10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env, err := readEnvFile(path)
	if err != nil || len(env["BIG"]) != 200<<10 {
		t.Fatalf("readEnvFile = %d bytes, %v", len(env["BIG"]), err)
	}
}

// An unknown dependency is reported at depends_on, and a pod is never
// told to depend on itself.
func TestUnknownDependencyNeverSuggestsItself(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stack")
	os.Mkdir(dir, 0o755)
	write(t, dir, "main.hcl", "pod \"web\" {\n  depends_on = [\"pod.wbe\"]\n  container \"c\" {\n    image = \"busybox\"\n  }\n}\n")
	_, diags := NewLoader(Options{Environ: func() []string { return nil }}).Load(dir)
	if len(diags) != 1 || diags[0].Summary != "Unknown dependency" || diags[0].Subject == nil || diags[0].Subject.Start.Line != 2 {
		t.Fatalf("diagnostics %v, want one Unknown dependency on line 2", diags)
	}
	if strings.Contains(diags[0].Detail, "Did you mean") {
		t.Errorf("suggests %s", diags[0].Detail)
	}
}

// Pods decoded on every CPU still spend the for-expression budget in
// their order: the step past it is told where decoding them one by one
// tells it, run after run.
func TestIterationBudgetAcrossPods(t *testing.T) {
	var src strings.Builder
	// The first pod takes 9,090 steps of a budget of 10,000, the others 10
	// each: decoded at once, the others run ahead of the first.
	for i := range 4 * parallelPods {
		outer, inner := 10, 0
		if i == 0 {
			outer, inner = 90, 100
		}
		fmt.Fprintf(&src, "pod \"p%03d\" {\n  container \"main\" {\n    image = \"busybox\"\n    env   = { N = length(flatten([for i in range(%d) : [for j in range(%d) : j]])) }\n  }\n}\n", i, outer, inner)
	}
	dir := filepath.Join(t.TempDir(), "stack")
	writeDir(t, dir, files{"main.hcl": src.String()})
	toldAt := func() []string {
		l := NewLoader(isolated(Options{}))
		l.maxIterations = 10_000
		_, diags := l.Load(dir)
		var told []string
		for _, d := range diags {
			if strings.Contains(d.Detail, "take more than") && d.Subject != nil {
				told = append(told, d.Subject.String())
			}
		}
		return told
	}
	procs := runtime.GOMAXPROCS(1)
	want := toldAt()
	runtime.GOMAXPROCS(max(procs, 2))
	defer runtime.GOMAXPROCS(procs)
	if len(want) != 1 {
		t.Fatalf("decoded one by one, the budget was told at %v, want once", want)
	}
	for run := range 2 {
		if got := toldAt(); !slices.Equal(got, want) {
			t.Fatalf("run %d on every CPU: the budget was told at %v, want at %v as one by one", run, got, want)
		}
	}
}

// hash_content follows a link given as the mount's path, as the bind
// mount does, and hashes what is inside the tree without waiting on a FIFO
// planted there.
func TestContentHash(t *testing.T) {
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		// setup makes the tree and returns the path to hash; change
		// alters its content, which must change the hash.

		setup  func(t *testing.T, root string) string
		change func(t *testing.T, root string)
	}{
		{
			name: "a directory",
			setup: func(t *testing.T, root string) string {
				os.Mkdir(filepath.Join(root, "conf"), 0o755)
				write(t, filepath.Join(root, "conf", "a"), "one")
				return filepath.Join(root, "conf")
			},
			change: func(t *testing.T, root string) { write(t, filepath.Join(root, "conf", "a"), "two") },
		},
		{
			name: "a link to a release",
			setup: func(t *testing.T, root string) string {
				os.Mkdir(filepath.Join(root, "release-1"), 0o755)
				write(t, filepath.Join(root, "release-1", "a"), "one")
				os.Symlink("release-1", filepath.Join(root, "current"))
				return filepath.Join(root, "current")
			},
			change: func(t *testing.T, root string) { write(t, filepath.Join(root, "release-1", "a"), "two") },
		},
		{
			name: "a FIFO in the tree",
			setup: func(t *testing.T, root string) string {
				os.Mkdir(filepath.Join(root, "conf"), 0o755)
				write(t, filepath.Join(root, "conf", "a"), "one")
				mkfifo(t, filepath.Join(root, "conf", "pipe"))
				return filepath.Join(root, "conf")
			},
			change: func(t *testing.T, root string) { write(t, filepath.Join(root, "conf", "a"), "two") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			path := tc.setup(t, root)
			before, err := contentHash(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, root)
			after, err := contentHash(path)
			if err != nil {
				t.Fatal(err)
			}
			if before == after {
				t.Error("the hash did not change with the content")
			}
		})
	}
}

// hash_content reads a bounded tree: more files or bytes than the limits
// is an error that says so, not a plan that reads a VM's disks.
func TestContentHashIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"too many files", func(t *testing.T, dir string) {
			for i := range MaxHashedFiles {
				if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"too many bytes", func(t *testing.T, dir string) {
			f, err := os.Create(filepath.Join(dir, "disk.img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(MaxHashedBytes + 1); err != nil { // sparse: nothing written
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			if _, err := contentHash(dir); !errors.Is(err, errHashTooLarge) {
				t.Errorf("contentHash = %v, want the limit", err)
			}
		})
	}
	// At the limits, it hashes.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := contentHash(dir); err != nil {
		t.Errorf("a small tree: %v", err)
	}
}
