package planner_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/hostsfile"
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
	snap, err := planner.ObserveWorkloads(context.Background(), fake.New(), cfg)
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
			out = append(out, fc.Address.String()+" "+string(fc.Action))
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

// A host directory that is a link leads elsewhere: berth neither writes
// through it, --adopt or not, nor removes what is behind it.
func TestMirrorsNeverWriteThroughALinkedDirectory(t *testing.T) {
	certs, elsewhere := t.TempDir(), t.TempDir()
	handWritten := []byte("server = \"https://registry-1.docker.io\"\n")
	os.WriteFile(filepath.Join(elsewhere, "hosts.toml"), handWritten, 0o644)
	if err := os.Symlink(elsewhere, filepath.Join(certs, "docker.io")); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []planner.Options{{}, {Adopt: true}} {
		p := planFiles(t, certs, mirrorCfg, opts)
		if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "is a symbolic link; berth does not write through links") || p.HasChanges() {
			t.Errorf("adopt %v: changes %v, errors %q; want the link refused", opts.Adopt, fileActions(p), p.Errors)
		}
	}
	if p := planFiles(t, certs, `berth { stack = "test" }`, planner.Options{}); p.HasChanges() {
		t.Errorf("without the mirror: %v", fileActions(p))
	}
	if got, _ := os.ReadFile(filepath.Join(elsewhere, "hosts.toml")); !bytes.Equal(got, handWritten) {
		t.Errorf("the file behind the link changed: %q", got)
	}
}

func TestMirrorsWithoutCertsDir(t *testing.T) {
	p := planFiles(t, "", mirrorCfg, planner.Options{})
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "config_path = \"/etc/containerd/certs.d\"") {
		t.Fatalf("errors = %q", p.Errors)
	}
}

func planNetworks(t *testing.T, rt *fake.Runtime, confDir, src string, opts planner.Options) *planner.Plan {
	t.Helper()
	cfg := spectest.Load(t, src)
	snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := planner.ObserveNetworks(snap, confDir); err != nil {
		t.Fatal(err)
	}
	return planner.Diff(cfg, snap, opts)
}

func TestNetworks(t *testing.T) {
	confDir := t.TempDir()
	os.WriteFile(filepath.Join(confDir, "05-other.conflist"), []byte(`{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge"}]}`), 0o644)
	const pod = "pod \"web\" {\n  container \"main\" { image = \"docker.io/library/busybox:1.36\" }\n}\n"
	const net = "berth { stack = \"test\" }\nnetwork \"lan\" {\n  subnet = \"10.88.0.0/16\"\n}\n"
	rt := fake.New("docker.io/library/busybox:1.36")
	converge(t, rt, spectest.Load(t, "berth { stack = \"test\" }\n"+pod))

	p := planNetworks(t, rt, confDir, net+pod, planner.Options{})
	if got := fileActions(p); len(got) != 1 || got[0] != "network.lan create" {
		t.Fatalf("changes %v", got)
	}
	if w := strings.Join(p.Warnings, "\n"); !strings.Contains(w, "10-berth-test.conflist sorts after 05-other.conflist") || !strings.Contains(w, "pod.web keep their current network") {
		t.Errorf("warnings:\n%s", w)
	}
	if got := changes(p); len(got) != 0 {
		t.Errorf("pods changed without --replace-on-network-change: %v", got)
	}
	p = planNetworks(t, rt, confDir, net+pod, planner.Options{ReplaceOnNetworkChange: true})
	if got := changes(p); len(got) != 1 || got[0] != "pod.web replace" {
		t.Errorf("with --replace-on-network-change: %v", got)
	}
	writeAll(t, p)
	if p := planNetworks(t, rt, confDir, net+pod, planner.Options{}); p.HasChanges() {
		t.Fatalf("plan after writing: %v", fileActions(p))
	}
	p = planNetworks(t, rt, confDir, strings.Replace(net, "10.88.0.0/16", "10.89.0.0/16", 1)+pod, planner.Options{})
	if got := fileActions(p); len(got) != 1 || got[0] != "network.lan update" || !strings.Contains(p.Files[0].Diff, `+              "subnet": "10.89.0.0/16"`) {
		t.Fatalf("changed subnet: %v\n%s", got, p.Files[0].Diff)
	}
	if w := strings.Join(p.Warnings, "\n"); !strings.Contains(w, "the bridge berth-lan keeps the address it has on 10.88.0.0/16") {
		t.Errorf("a new subnet on the same bridge, warnings:\n%s", w)
	}
	p = planNetworks(t, rt, confDir, strings.Replace(net, "10.88.0.0/16\"", "10.89.0.0/16\"\n  bridge = \"lan1\"", 1)+pod, planner.Options{})
	if w := strings.Join(p.Warnings, "\n"); strings.Contains(w, "keeps the address") {
		t.Errorf("a new subnet on a new bridge, warnings:\n%s", w)
	}
	p = planNetworks(t, rt, confDir, "berth { stack = \"test\" }\n"+pod, planner.Options{})
	if got := fileActions(p); len(got) != 1 || got[0] != "network.lan destroy" {
		t.Fatalf("network removed: %v", got)
	}
	// Another stack's, or nobody's, file at the same path is refused.
	os.WriteFile(planner.NetworkPath(confDir, "test"), []byte(`{"name":"x"}`), 0o644)
	p = planNetworks(t, rt, confDir, net+pod, planner.Options{})
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0], "this stack did not write it") {
		t.Fatalf("errors %q", p.Errors)
	}
}
