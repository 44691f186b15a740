package render_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/internal/render"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec/spectest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const before = `
berth { stack = "golden" }
variable "password" {
  default   = "hunter2"
  sensitive = true
}
pod "web" {
  hostname = "web"
  labels   = { "app.kubernetes.io/name" = "web" }
  container "app" {
    image   = "docker.io/library/busybox:1.36"
    command = ["httpd", "-f"]
    env     = { MODE = "prod", PASSWORD = var.password }
  }
}
pod "vm" {
  container "windows" {
    image        = "docker.io/library/busybox:1.36"
    stop_timeout = "2m"
  }
}
pod "crash" {
  container "loop" { image = "docker.io/library/busybox:1.36" }
}
pod "api" {
  hostname = "api"
  container "main" { image = "docker.io/library/busybox:1.36" }
}
`

const after = `
berth { stack = "golden" }
variable "password" {
  default   = "swordfish"
  sensitive = true
}
pod "web" {
  hostname = "web"
  labels   = { "app.kubernetes.io/name" = "web" }
  container "app" {
    image   = "docker.io/library/busybox:1.36"
    command = ["httpd", "-f", "-v"]
    env     = { MODE = "dev", PASSWORD = var.password }
  }
}
pod "crash" {
  container "loop" { image = "docker.io/library/busybox:1.36" }
}
pod "api" {
  hostname     = "api2"
  update_order = "start_first"
  container "main" { image = "docker.io/library/busybox:1.36" }
}
pod "new" {
  container "main" {
    image = "docker.io/library/alpine:3"
    args  = ["sleep", "1d"]
  }
}
`

// goldenPlan covers every action: create, destroy, pod replace (stop and
// start first), container replace with a secret, restart.
func goldenPlan(t *testing.T) *planner.Plan {
	rt := fake.New("docker.io/library/busybox:1.36")
	ctx := context.Background()
	snap, _ := planner.ObserveWorkloads(ctx, rt, spectest.Load(t, before))
	if res := apply.Execute(ctx, planner.Diff(spectest.Load(t, before), snap, planner.Options{}), rt, apply.Options{LogRoot: t.TempDir(), Revision: "0123456789abcdef0123456789abcdef01234567"}); res.Err() != nil {
		t.Fatal(res.Err())
	}
	for id, c := range rt.Containers {
		if c.Metadata.Name == "loop" {
			rt.Exit(id, 137)
		}
	}
	snap, err := planner.ObserveWorkloads(ctx, rt, spectest.Load(t, after))
	if err != nil {
		t.Fatal(err)
	}
	return planner.Diff(spectest.Load(t, after), snap, planner.Options{})
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./render -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	render.Text(&buf, goldenPlan(t), render.Style{})
	checkGolden(t, "plan.txt", buf.Bytes())
	if strings.Contains(buf.String(), "hunter2") || strings.Contains(buf.String(), "swordfish") {
		t.Fatal("a sensitive value is printed")
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := render.JSON(&buf, goldenPlan(t)); err != nil {
		t.Fatal(err)
	}
	// The observed fingerprint depends on generated IDs; blank it.
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	doc["observed"] = "<fingerprint>"
	out, _ := json.MarshalIndent(doc, "", "  ")
	checkGolden(t, "plan.json", append(out, '\n'))
	if strings.Contains(buf.String(), "hunter2") || strings.Contains(buf.String(), "swordfish") {
		t.Fatal("a sensitive value is printed")
	}
}

func TestNoChanges(t *testing.T) {
	var buf bytes.Buffer
	render.Text(&buf, &planner.Plan{Stack: "s"}, render.Style{})
	if !strings.HasPrefix(buf.String(), "No changes.") {
		t.Fatalf("got %q", buf.String())
	}
}
