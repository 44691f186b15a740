package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Loads that share a ParseCache parse a file again only when its bytes
// changed, and give what a load without the cache gives.
func TestParseCache(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.hcl", `locals {
  steps = length([for i in range(1000) : length([for j in range(520) : j])])
}
pod "a" {
  container "main" {
    image = "busybox:1.36"
    env   = { STEPS = tostring(local.steps), MODE = "x" }
  }
}`)
	write(t, dir, "b.hcl", `pod "b" {
  container "main" { image = "busybox:1.36" }
}`)
	cache := NewParseCache()
	load := func() (*Loader, *Config) {
		t.Helper()
		l := NewLoader(Options{Parsed: cache})
		cfg, diags := l.Load(dir)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return l, cfg
	}
	first, _ := load()

	// a.hcl's for expression takes 520,000 of a load's 1,000,000 steps:
	// a second load from the cache has a budget of its own.
	write(t, dir, "b.hcl", `pod "b" {
  container "main" { image = "busybox:1.37" }
}`)
	second, cfg := load()
	if first.Files()[filepath.Join(dir, "a.hcl")] != second.Files()[filepath.Join(dir, "a.hcl")] {
		t.Error("the unchanged a.hcl was parsed again")
	}
	if first.Files()[filepath.Join(dir, "b.hcl")] == second.Files()[filepath.Join(dir, "b.hcl")] {
		t.Error("the changed b.hcl was taken from the cache")
	}
	if img := cfg.Pod("b").Containers[0].Image; img != "busybox:1.37" {
		t.Errorf("pod b runs %s, want the changed file's busybox:1.37", img)
	}
	if env := cfg.Pod("a").Containers[0].Env; len(env) != 2 {
		t.Errorf("pod a's env from the cached file: %v", env)
	}

	// A file that does not parse is not kept, and fails every load.
	write(t, dir, "b.hcl", `pod "b" {`)
	for range 2 {
		if _, diags := NewLoader(Options{Parsed: cache}).Load(dir); !diags.HasErrors() {
			t.Fatal("a broken b.hcl loaded")
		}
	}
	if err := os.Remove(filepath.Join(dir, "b.hcl")); err != nil {
		t.Fatal(err)
	}
	load()
	if len(cache.files) != 1 || cache.files[filepath.Join(dir, "a.hcl")].file == nil {
		var kept []string
		for p := range cache.files {
			kept = append(kept, p)
		}
		t.Errorf("the cache keeps %s, want a.hcl alone", strings.Join(kept, ", "))
	}
}

// Loads that share a ParseCache take a pod block of an unchanged file
// from it when the variables and locals are the same, and decode again
// one that reads the host (function calls, env_file, hash_content) or
// spends steps (for expressions, dynamic blocks), whatever else changed.
func TestParseCacheKeepsPurePods(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "vars.hcl", `variable "tag" {
  default = "1.36"
}
locals {
  mode = "x"
}`)
	write(t, dir, "pure.hcl", `pod "pure" {
  container "main" {
    image = "busybox:${var.tag}"
    env   = { MODE = local.mode }
  }
}`)
	write(t, dir, "app.env", "FROM_FILE=1\n")
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "data/f", "one")
	write(t, dir, "reads.hcl", `pod "call" {
  container "main" {
    image = "busybox:1.36"
    env   = { HOST = upper(env("BERTH_TEST_VALUE")) }
  }
}
pod "envfile" {
  container "main" {
    image    = "busybox:1.36"
    env_file = ["app.env"]
  }
}
pod "hashed" {
  container "main" {
    image = "busybox:1.36"
    mount "/data" {
      host_path    = "data"
      hash_content = true
    }
  }
}
pod "iterated" {
  container "main" {
    image = "busybox:1.36"
    env   = { for k in ["A"] : k => local.mode }
  }
}
pod "dynamic" {
  container "main" {
    image = "busybox:1.36"
    dynamic "mount" {
      for_each = ["/a"]
      labels   = [mount.value]
      content {
        host_path = "data"
      }
    }
  }
}`)
	cache := NewParseCache()
	value := "one"
	load := func(vars ...string) *Config {
		t.Helper()
		opts := Options{Parsed: cache, Vars: vars, LookupEnv: func(k string) (string, bool) {
			return value, k == "BERTH_TEST_VALUE"
		}}
		cfg, diags := NewLoader(opts).Load(dir)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		// What a load without the cache gives.
		opts.Parsed = nil
		fresh, diags := NewLoader(opts).Load(dir)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		for _, p := range fresh.Pods {
			if got := cfg.Pod(p.Name); got == nil || got.Hash() != p.Hash() || got.Containers[0].Hash() != p.Containers[0].Hash() {
				t.Errorf("pod %s from the cache differs from a load without it", p.Name)
			}
		}
		return cfg
	}
	first := load()
	value = "two"
	write(t, dir, "app.env", "FROM_FILE=2\n")
	write(t, dir, "data/f", "two")
	second := load()
	if first.Pod("pure") != second.Pod("pure") {
		t.Error("the pure pod of an unchanged file was decoded again")
	}
	for _, name := range []string{"call", "envfile", "hashed", "iterated", "dynamic"} {
		if first.Pod(name) == second.Pod(name) {
			t.Errorf("pod %s was taken from the cache", name)
		}
	}
	if got := second.Pod("call").Containers[0].Env["HOST"]; got != "TWO" {
		t.Errorf("env() gave %q, want the new TWO", got)
	}
	if got := second.Pod("envfile").Containers[0].Env["FROM_FILE"]; got != "2" {
		t.Errorf("env_file gave %q, want the new 2", got)
	}
	if first.Pod("hashed").Containers[0].Mounts[0].ContentHash == second.Pod("hashed").Containers[0].Mounts[0].ContentHash {
		t.Error("hash_content did not read the changed file")
	}

	// Another variable's value, or another local's, decodes it again.
	third := load("tag=1.37")
	if third.Pod("pure") == second.Pod("pure") || third.Pod("pure").Containers[0].Image != "busybox:1.37" {
		t.Errorf("with another var.tag the pod runs %s", third.Pod("pure").Containers[0].Image)
	}
	write(t, dir, "vars.hcl", `variable "tag" {
  default = "1.36"
}
locals {
  mode = "y"
}`)
	fourth := load("tag=1.37")
	if fourth.Pod("pure") == third.Pod("pure") || fourth.Pod("pure").Containers[0].Env["MODE"] != "y" {
		t.Errorf("with another local.mode the pod has MODE=%s", fourth.Pod("pure").Containers[0].Env["MODE"])
	}
	if fifth := load("tag=1.37"); fifth.Pod("pure") != fourth.Pod("pure") {
		t.Error("the pure pod was decoded again in the same scope")
	}
}

// BenchmarkReload is a watcher's load after a save of one file of a
// 500-pod configuration (499 pods in one file, the saved one in another):
// with the ParseCache, and without it, as every load did before.
func BenchmarkReload(b *testing.B) {
	dir := b.TempDir()
	var many strings.Builder
	many.WriteString("berth { stack = \"scale\" }\n")
	for i := range 499 {
		fmt.Fprintf(&many, "pod \"p%03d\" {\n  container \"main\" {\n    image        = \"docker.io/library/busybox:1.36\"\n    command      = [\"sleep\", \"3600\"]\n    stop_timeout = \"1s\"\n  }\n}\n", i)
	}
	write(b, dir, "main.hcl", many.String())
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%t", cached), func(b *testing.B) {
			opts := Options{}
			if cached {
				opts.Parsed = NewParseCache()
			}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				write(b, dir, "edit.hcl", fmt.Sprintf("pod \"edit\" {\n  container \"main\" {\n    image = \"docker.io/library/busybox:1.36\"\n    env   = { V = \"%d\" }\n  }\n}\n", n))
				if _, diags := NewLoader(opts).Load(dir); diags.HasErrors() {
					b.Fatal(diags.Error())
				}
			}
		})
	}
}
