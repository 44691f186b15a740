package tmpfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func TestMountAndRelease(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	root := t.TempDir()
	t.Cleanup(func() { Release(root, filepath.Join(root, "stack")) }) // even when the test fails
	cdir := ContainerDir(root, "stack", "pod", "uid1", "app")
	dir, err := Mount(cdir, 2, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "stack", "pod-uid1", "app", "2", "0"); dir != want {
		t.Fatalf("dir = %s, want %s", dir, want)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil || len(mounts) != 1 || mounts[0].FSType != "tmpfs" || !strings.Contains(mounts[0].VFSOptions, "size=1024k") {
		t.Fatalf("mounts at %s: %+v %v", dir, mounts, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Mounting the same attempt again (an interrupted apply) gives a fresh one.
	if _, err := Mount(cdir, 2, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); !os.IsNotExist(err) {
		t.Fatalf("a re-mounted tmpfs is not empty: %v", err)
	}
	if m, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(root)); len(m) != 1 {
		t.Fatalf("%d mounts under root after re-mounting, want 1", len(m))
	}

	if err := Release(root, PodDir(root, "stack", "pod", "uid1")); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(root)); len(m) != 0 {
		t.Fatalf("mounts left: %+v", m)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Fatalf("left in root: %v", entries)
	}
	if err := Release(root, PodDir(root, "stack", "pod", "uid1")); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
}
