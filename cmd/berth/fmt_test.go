package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// fmt, run as root on a user's file, leaves it the user's, with its mode;
// a file that became a link meanwhile is left alone.
func TestReplaceKeepsTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file another owner")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "main.hcl")
	if err := os.WriteFile(p, []byte("a=1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := replaceKeepingOwner(p, []byte("a = 1\n")); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if st.Uid != 1234 || st.Gid != 5678 || info.Mode().Perm() != 0o640 {
		t.Errorf("owner %d:%d mode %v, want 1234:5678 0640", st.Uid, st.Gid, info.Mode().Perm())
	}
	if b, _ := os.ReadFile(p); string(b) != "a = 1\n" {
		t.Errorf("content %q", b)
	}

	target := filepath.Join(dir, "elsewhere.hcl")
	os.WriteFile(target, []byte("b=2\n"), 0o644)
	link := filepath.Join(dir, "link.hcl")
	os.Symlink(target, link)
	if err := replaceKeepingOwner(link, []byte("b = 2\n")); err == nil {
		t.Error("a link was replaced")
	}
	if b, _ := os.ReadFile(target); string(b) != "b=2\n" {
		t.Errorf("the link's target changed: %q", b)
	}
}
