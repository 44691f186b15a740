package planfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Read takes any bytes without panicking, and accepts only files this
// host's key authenticates.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	goodPath := filepath.Join(dir, "good.plan")
	if err := Write(goodPath, good(), hostKey); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(goodPath)
	f.Add(b)
	f.Add([]byte(`{"format_version": 4}`))
	f.Add([]byte(`{"format_version": 4, "mac": "", "digests": {}}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "p.plan")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		pf, err := Read(path, hostKey)
		if err == nil && pf.MAC != pf.mac(hostKey) {
			t.Fatal("accepted a file its MAC does not authenticate")
		}
	})
}
