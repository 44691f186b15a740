package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The crictl form of the Windows example, imported, plans against the real
// runtime: a pod and its container to create, no errors.
func TestConvertImportCrictlPlans(t *testing.T) {
	s := newStack(t)
	src := filepath.Join("..", "..", "internal", "convert", "crictl", "testdata", "windows")
	tmp := t.TempDir()

	pod := readJSON(t, filepath.Join(src, "pod.json"))
	ctr := readJSON(t, filepath.Join(src, "container.json"))
	// busybox is on the runtime; the Windows image need not be pulled to plan.
	ctr["image"] = map[string]any{"image": "docker.io/library/busybox:1.36"}
	ctr["mounts"] = []any{map[string]any{"container_path": "/storage", "host_path": filepath.Join(tmp, "storage")}}
	var devices []any
	for _, d := range ctr["devices"].([]any) {
		if _, err := os.Stat(d.(map[string]any)["host_path"].(string)); err == nil {
			devices = append(devices, d)
		}
	}
	ctr["devices"] = devices
	podFile, ctrFile := writeJSON(t, tmp, "pod.json", pod), writeJSON(t, tmp, "container.json", ctr)

	r := s.mustBerth("import", "crictl", "--stack", s.name, "-o", filepath.Join(s.dir, "main.hcl"), podFile, ctrFile)
	if !strings.Contains(r.stderr, "Warning: ") || !strings.Contains(r.stderr, "metadata.uid") {
		t.Errorf("import does not warn about the dropped uid:\n%s", r)
	}
	s.mustBerth("validate", s.dir)
	s.mustBerth("fmt", "-check", s.dir)

	plan := s.mustBerth("plan", s.dir)
	for _, want := range []string{
		`pod.windows will be created`,
		`+ container "windows" {`,
		`+ image = "docker.io/library/busybox:1.36"`,
		"Plan: 2 to add, 0 to change, 0 to destroy.",
	} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan does not say %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan.stderr, "Error") {
		t.Errorf("plan reports errors:\n%s", plan)
	}
}

// export kubernetes of the hello example writes a Deployment.
func TestConvertExportKubernetes(t *testing.T) {
	r := runBerth(t, nil, "export", "kubernetes", filepath.Join("..", "..", "examples", "hello"))
	if r.code != 0 {
		t.Fatalf("export: %s", r)
	}
	for _, want := range []string{`# Kubernetes manifests of berth stack "hello"`, "kind: Deployment", "image: docker.io/library/busybox:1.36"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("manifest lacks %q:\n%s", want, r.stdout)
		}
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
