package hostkey

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadMakesOneKeyAndKeepsIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := Load(dir)
	if err != nil || len(first) != Size {
		t.Fatalf("Load = %d bytes, %v", len(first), err)
	}
	again, err := Load(dir)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second Load = %v, want the same key", err)
	}
	info, _ := os.Stat(filepath.Join(dir, FileName))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", info.Mode())
	}
	if bytes.Equal(Sum(first, "a", []byte("x")), Sum(first, "b", []byte("x"))) {
		t.Error("sums of two purposes are equal")
	}
}

func TestLoadRefusesUnsafeKeys(t *testing.T) {
	tests := map[string]struct {
		setup func(t *testing.T, path string)
		want  string
	}{
		"readable by others": {func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte{1}, Size), 0o644)
			os.Chmod(path, 0o644)
		}, "others can read it"},
		"a symlink": {func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "k")
			os.WriteFile(target, bytes.Repeat([]byte{1}, Size), 0o600)
			os.Symlink(target, path)
		}, "symbolic link"},
		"the wrong size": {func(t *testing.T, path string) {
			os.WriteFile(path, []byte("short"), 0o600)
		}, "holds 5 bytes"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, filepath.Join(dir, FileName))
			if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want %q", err, tt.want)
			}
		})
	}
}

// berths that start at once on a new host all get the one key: none
// reads a key half written, and none is told to remove it.
func TestLoadAtOnceMakesOneKey(t *testing.T) {
	for round := range 100 {
		dir := filepath.Join(t.TempDir(), "state")
		keys := make([][]byte, 8)
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() { keys[i], errs[i] = Load(dir) })
		}
		wg.Wait()
		for i := range keys {
			if errs[i] != nil {
				t.Fatalf("round %d: Load = %v", round, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: two keys", round)
			}
		}
		if leftovers, _ := filepath.Glob(filepath.Join(dir, ".host.key-*")); len(leftovers) > 0 {
			t.Fatalf("round %d: left %v", round, leftovers)
		}
	}
}
