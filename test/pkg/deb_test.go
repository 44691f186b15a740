// Package pkg tests the .deb that make package builds: unpacked into a
// scratch root, it holds what docs/install.md says, and its binary runs.
package pkg

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debPath is the package under test: BERTH_DEB, which make test sets after
// building it. Under BERTH_E2E_REQUIRED=1 it must be there.
func debPath(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("BERTH_DEB")
	if deb == "" {
		if os.Getenv("BERTH_E2E_REQUIRED") == "1" {
			t.Fatal("BERTH_E2E_REQUIRED=1, but BERTH_DEB names no package (make test builds it with make package)")
		}
		t.Skip("BERTH_DEB is not set: run make package, then BERTH_DEB=dist/berth_*.deb")
	}
	return deb
}

func TestDebUnpacksAndRuns(t *testing.T) {
	deb := debPath(t)
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	for _, path := range []string{
		"usr/bin/berth",
		"usr/lib/systemd/system/berth-watch.service",
		"usr/lib/systemd/system/berth-pull.service",
		"usr/lib/systemd/system/berth-pull.timer",
		"usr/share/bash-completion/completions/berth",
		"usr/share/zsh/vendor-completions/_berth",
		"usr/share/fish/vendor_completions.d/berth.fish",
		"usr/share/man/man1/berth.1.gz",
		"usr/share/man/man1/berth-apply.1.gz",
		"usr/share/doc/berth/copyright",
		"usr/share/doc/berth/README.md",
		"usr/share/doc/berth/language.md",
		"usr/share/doc/berth/install.md",
		"usr/share/doc/berth/examples/hello/main.hcl",
	} {
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			t.Errorf("the package lacks /%s: %v", path, err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/berth-watch.service"))
	if err != nil || !strings.Contains(string(unit), "ExecStart=/usr/bin/berth watch") {
		t.Errorf("the watch unit does not run the packaged binary:\n%s", unit)
	}
	if info, err := os.Stat(filepath.Join(root, "usr/bin/berth")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("/usr/bin/berth: %v %v, want mode 0755", info.Mode(), err)
	}

	control, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Recommends").Output()
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(control)), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		fields[k] = v
	}
	if fields["Package"] != "berth" || !strings.Contains(fields["Recommends"], "containerd") || fields["Version"] == "" {
		t.Errorf("control fields %v", fields)
	}

	// The packaged binary, not the one make build wrote, runs and knows
	// its version: the package's.
	bin := filepath.Join(root, "usr/bin/berth")
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("berth version: %v", err)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(out, &v); err != nil || v.Version != fields["Version"] {
		t.Errorf("the packaged berth says version %q (%v), the package is %q", v.Version, err, fields["Version"])
	}
	cmd := exec.Command(bin, "validate", filepath.Join(root, "usr/share/doc/berth/examples/hello"))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Success!") {
		t.Errorf("the packaged berth cannot validate the packaged example: %v\n%s", err, out)
	}
	// Completions come from the same binary: a shell finds its commands.
	bash, _ := os.ReadFile(filepath.Join(root, "usr/share/bash-completion/completions/berth"))
	if !strings.Contains(string(bash), "__start_berth") {
		t.Error("the bash completion is not berth's")
	}
	if out, err := exec.Command("file", bin).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("the packaged binary is not static: %s", out)
	}
}
