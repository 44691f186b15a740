package serving

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMarkFollowsSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stack.serving")
	m := NewMark(dir, "web")
	steps := []struct {
		set, want string // set "-" writes nothing
		changed   bool
	}{
		{"-", "", false},
		{"aaaa", "aaaa", true},
		{"-", "aaaa", false},
		{"bbbb", "bbbb", true},
		{"", "", true},
		{"-", "", false},
	}
	for i, s := range steps {
		if s.set != "-" {
			if err := Set(dir, "web", s.set); err != nil {
				t.Fatal(err)
			}
		}
		got, changed := m.Sandbox()
		if got != s.want || changed != s.changed {
			t.Errorf("step %d: Sandbox() = %q, %v; want %q, %v", i, got, changed, s.want, s.changed)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the directory stays after its last mark went: %v", err)
	}
}

func TestMarkRefusesWhatBerthDidNotWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Set(dir, "web", "../../etc"); err == nil {
		t.Error("Set took a sandbox ID that is a path")
	}
	cases := map[string]func(path string) error{
		"not an ID":   func(p string) error { return os.WriteFile(p, []byte("x; rm -rf /\n"), 0o600) },
		"too large":   func(p string) error { return os.WriteFile(p, make([]byte, 4096), 0o600) },
		"a link":      func(p string) error { return os.Symlink("/etc/hostname", p) },
		"a fifo":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"a directory": func(p string) error { return os.Mkdir(p, 0o700) },
	}
	for name, plant := range cases {
		pod := strings.ReplaceAll(name, " ", "-")
		if err := plant(filepath.Join(dir, pod)); err != nil {
			t.Fatal(name, err)
		}
		if got, _ := NewMark(dir, pod).Sandbox(); got != "" {
			t.Errorf("%s: Sandbox() = %q, want none", name, got)
		}
	}
}

func TestValidSandboxID(t *testing.T) {
	for id, ok := range map[string]bool{
		"0": true, strings.Repeat("ab", 32): true, strings.Repeat("ab", 32) + "c": false,
		"": false, "0A": false, "0g": false, "../x": false, "ab\n": false,
	} {
		if got := validSandboxID(id); got != ok {
			t.Errorf("validSandboxID(%q) = %v, want %v", id, got, ok)
		}
	}
}
