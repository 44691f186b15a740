package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// A sensitive value never shows on any channel: plan text and JSON, the
// plan file, apply's output, status, show, watch's JSON log, the lock
// file, and the labels and annotations on the runtime's objects, whose
// spec hash is keyed with the host key rather than computed from the
// secret alone.
func TestSecretsStayHidden(t *testing.T) {
	const secret = "Zq8-hidden-Kx3"
	s := newStack(t)
	s.write(`
variable "pw" {
  type      = string
  sensitive = true
}
pod "app" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    env          = { PASSWORD = var.pw, MODE = "prod" }
    stop_timeout = "1s"
  }
}
`)
	// The value comes from the directory's auto variables file, and once
	// from --var, as a user would give it.
	if err := os.WriteFile(filepath.Join(s.dir, spec.AutoVarsFile), []byte("pw = \""+secret+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	planFile := filepath.Join(t.TempDir(), "app.plan")
	var outputs []string
	for _, args := range [][]string{
		{"plan", s.dir},
		{"plan", "--json", s.dir},
		{"plan", "--out", planFile, s.dir},
		{"apply", planFile},
		{"status", "--json", s.dir},
		{"show", "pod.app.container.c", s.dir},
		{"plan", "--var", "pw=" + secret + "-changed", s.dir},
	} {
		r := s.berth(args...)
		if r.code != 0 && !(args[0] == "plan" && r.code == 2) {
			t.Fatalf("berth %v: %s", args, r)
		}
		outputs = append(outputs, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(b))

	// A watcher of the same stack, long enough for a round.
	// A watcher of the same stack, long enough for a round: it finds
	// nothing to change (it keys the hashes as apply did).
	before := s.containers()["app/c"]
	w := s.watch("--resync", "1h", "--log-level", "debug")
	w.waitFor(30*time.Second, map[string]string{"msg": "converged", "trigger": "start"})
	w.stop()
	if after := s.containers()["app/c"]; after == nil || after.Id != before.Id {
		t.Error("the watcher replaced a container that apply had just made")
	}
	outputs = append(outputs, w.log())

	locks, _ := filepath.Glob(filepath.Join(lockDir, "*"))
	for _, l := range locks {
		b, _ := os.ReadFile(l)
		outputs = append(outputs, string(b))
	}
	for i, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("output %d shows the secret:\n%s", i, out)
		}
	}

	c := s.containers()["app/c"]
	if c == nil {
		t.Fatal("no container app/c")
	}
	meta, _ := json.Marshal([]any{c.Labels, c.Annotations})
	if strings.Contains(string(meta), secret) {
		t.Errorf("the runtime's labels or annotations show the secret: %s", meta)
	}
	st, err := rt.ContainerStatus(context.Background(), &cri.ContainerStatusRequest{ContainerId: c.Id})
	if err == nil && strings.Contains(st.String(), secret) && !strings.Contains(st.GetStatus().GetAnnotations()[spec.AnnotationSpec], "(sensitive)") {
		t.Errorf("the container status shows the secret outside its environment")
	}
	// The label is not the hash of the secret alone: one computed without
	// the host key differs.
	unkeyed := loadUnkeyed(t, s.dir).Pods[0].Containers[0].Hash()
	if c.Labels[spec.LabelSpecHash] == unkeyed {
		t.Errorf("the spec-hash label %s is the unkeyed hash of the secret", unkeyed)
	}
}

func loadUnkeyed(t *testing.T, dir string) *spec.Config {
	t.Helper()
	cfg, diags := spec.NewLoader(spec.Options{Environ: func() []string { return nil }}).Load(dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}
