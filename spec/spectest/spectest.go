// Package spectest loads configurations written inline, for other
// packages' tests.
package spectest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// Load writes src as main.hcl into a fresh directory named "test" (so the
// default stack is "test"), loads it with an empty environment, and fails
// the test on any diagnostic error.
func Load(t testing.TB, src string) *spec.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := spec.NewLoader(spec.Options{Environ: func() []string { return nil }}).Load(dir)
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return cfg
}
