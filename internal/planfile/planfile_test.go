package planfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/render"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.plan")
	in := &File{Dir: "/srv/stack", Stack: "web", Address: "unix:///x.sock", VarFiles: []string{"prod.berthvars"},
		Key: NewKey(), Digests: map[string]string{"pod.web": "d1"}, Plan: render.JSONPlan{FormatVersion: "2", Stack: "web"}}
	if err := Write(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if out.Dir != in.Dir || out.Digests["pod.web"] != "d1" || out.Key != in.Key || out.VarFiles[0] != "prod.berthvars" || out.FormatVersion != FormatVersion {
		t.Fatalf("read back %+v", out)
	}
}

func TestReadRejects(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		content string
		want    string
	}{
		"not json":       {"pod \"x\" {}", "not a berth plan file"},
		"other json":     {`{"a": 1}`, "not a berth plan file"},
		"future version": {`{"format_version": 99}`, "plan file format 99"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			os.WriteFile(path, []byte(tc.content), 0o644)
			_, err := Read(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
