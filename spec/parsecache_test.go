package spec

import (
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
