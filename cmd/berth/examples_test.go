package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/spec"
)

// Every example must validate, so the README's examples never rot. (The
// end-to-end tests apply examples/hello on the real runtime.)
func TestExamplesValidate(t *testing.T) {
	dirs, err := filepath.Glob("../../examples/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue
		}
		if files, _ := spec.ConfigFiles(dir); len(files) == 0 {
			continue // e.g. examples/systemd holds unit files, not a configuration
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			// Examples whose secrets have no default get them from the
			// environment, as a user would.
			env := func() []string { return []string{"BERTH_VAR_password=example"} }
			if _, diags := spec.NewLoader(spec.Options{Environ: env}).Load(dir); diags.HasErrors() {
				t.Fatal(diags.Error())
			}
		})
	}
}
