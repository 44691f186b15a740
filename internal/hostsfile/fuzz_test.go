package hostsfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Read takes any hosts.toml content, and finds a stack only in berth's
// own marker line.
func FuzzRead(f *testing.F) {
	f.Add([]byte("# Managed by berth, stack \"web\". Changes here are overwritten by berth apply.\nserver = \"https://x\"\n"))
	f.Add([]byte("server = \"https://registry-1.docker.io\"\n"))
	f.Add([]byte("# Managed by berth, stack \"\x00\"."))
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "docker.io"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(Path(dir, "docker.io"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		files, err := Read(dir)
		if err != nil {
			t.Fatal(err)
		}
		if f := files["docker.io"]; f == nil || string(f.Content) != string(content) {
			t.Fatal("content not read back")
		}
	})
}
