package planner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/hostsfile"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

const mirrorCfg = `
berth { stack = "test" }
mirror "docker.io" {
  endpoint "http://127.0.0.1:5000" {}
}
`

func planFiles(t *testing.T, certsDir, src string, opts planner.Options) *planner.Plan {
	t.Helper()
	cfg := spectest.Load(t, src)
	snap, err := planner.Observe(context.Background(), fake.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := planner.ObserveMirrors(snap, certsDir); err != nil {
		t.Fatal(err)
	}
	return planner.Diff(cfg, snap, opts)
}

// writeAll does what apply does with the plan's files.
func writeAll(t *testing.T, p *planner.Plan) {
	t.Helper()
	for _, fc := range p.Files {
		switch fc.Action {
		case planner.Create, planner.Update:
			if err := hostsfile.Write(fc.Path, fc.Content); err != nil {
				t.Fatal(err)
			}
		case planner.Destroy:
			if err := hostsfile.Remove(fc.Path); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func fileActions(p *planner.Plan) []string {
	var out []string
	for _, fc := range p.Files {
		if fc.Action != planner.NoOp {
			out = append(out, fc.Address+" "+string(fc.Action))
		}
	}
	return out
}

func TestMirrors(t *testing.T) {
	certs := t.TempDir()
	path := filepath.Join(certs, "docker.io", "hosts.toml")

	p := planFiles(t, certs, mirrorCfg, planner.Options{})
	if got := fileActions(p); len(got) != 1 || got[0] != "mirror.docker.io create" || !strings.Contains(p.Files[0].Diff, `+[host."http://127.0.0.1:5000"]`) {
		t.Fatalf("first plan: %v\n%s", got, p.Files[0].Diff)
	}
	writeAll(t, p)
	if p := planFiles(t, certs, mirrorCfg, planner.Options{}); p.HasChanges() {
		t.Fatalf("plan after writing: %v", fileActions(p))
	}

	changed := strings.Replace(mirrorCfg, "5000", "5001", 1)
	p = planFiles(t, certs, changed, planner.Options{})
	if got := fileActions(p); len(got) != 1 || got[0] != "mirror.docker.io update" ||
		!strings.Contains(p.Files[0].Diff, `-[host."http://127.0.0.1:5000"]`) || !strings.Contains(p.Files[0].Diff, `+[host."http://127.0.0.1:5001"]`) {
		t.Fatalf("changed endpoint: %v\n%s", got, p.Files[0].Diff)
	}

	p = planFiles(t, certs, `berth { stack = "test" }`, planner.Options{})
	if got := fileActions(p); len(got) != 1 || got[0] != "mirror.docker.io destroy" {
		t.Fatalf("mirror removed: %v", got)
	}
	writeAll(t, p)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file left after destroy: %v", err)
	}

	// A file berth did not write: refused, unless adopted.
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte("server = \"https://registry-1.docker.io\"\n"), 0o644)
	p = planFiles(t, certs, mirrorCfg, planner.Options{})
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "berth did not write it. Rerun with --adopt") {
		t.Fatalf("unmanaged file: errors %q", p.Errors)
	}
	if p := planFiles(t, certs, `berth { stack = "test" }`, planner.Options{}); p.HasChanges() {
		t.Fatal("a file berth did not write would be removed")
	}
	p = planFiles(t, certs, mirrorCfg, planner.Options{Adopt: true})
	if got := fileActions(p); len(p.Errors) != 0 || len(got) != 1 || got[0] != "mirror.docker.io update" {
		t.Fatalf("adopted: %v %q", got, p.Errors)
	}

	// Another stack's file is never touched.
	hostsfile.Write(path, hostsfile.Render("other", &spec.Mirror{Host: "docker.io"}))
	p = planFiles(t, certs, mirrorCfg, planner.Options{Adopt: true})
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], `belongs to stack "other"`) {
		t.Fatalf("other stack's file: %q", p.Errors)
	}
}

func TestMirrorsWithoutCertsDir(t *testing.T) {
	p := planFiles(t, "", mirrorCfg, planner.Options{})
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "config_path = \"/etc/containerd/certs.d\"") {
		t.Fatalf("errors = %q", p.Errors)
	}
}
