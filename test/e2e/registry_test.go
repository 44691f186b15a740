package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// registries are the test registries hack/registry.sh runs on loopback.
type registries struct {
	mirror, tls, auth, ca, user, password string
}

func testRegistries(t *testing.T) registries {
	t.Helper()
	r := registries{os.Getenv("BERTH_REGISTRY_MIRROR"), os.Getenv("BERTH_REGISTRY_TLS"), os.Getenv("BERTH_REGISTRY_AUTH"),
		os.Getenv("BERTH_REGISTRY_CA"), os.Getenv("BERTH_REGISTRY_USER"), os.Getenv("BERTH_REGISTRY_PASSWORD")}
	if r.mirror == "" || r.auth == "" {
		if os.Getenv("BERTH_E2E_REQUIRED") == "1" {
			t.Fatal("no test registries: run hack/registry.sh up and source its env file (make test does)")
		}
		t.Skip("no test registries (hack/registry.sh up)")
	}
	return r
}

// certsDir is the runtime's registry config_path, as berth finds it.
func certsDir(t *testing.T) string {
	d := os.Getenv("BERTH_RUNTIME_DIR")
	if d == "" {
		skipUnlessRequired(t, "BERTH_RUNTIME_DIR is not set; it locates the private runtime's certs.d")
	}
	return filepath.Join(d, "certs.d")
}

// sleeper is a pod whose image is pulled on every create (pull =
// "always"), so a pull's success or failure is the registry's answer even
// when the image is present. (Test images share layers with the runtime's
// own, so removing one to force a pull would remove those too.)
func sleeper(image string) string {
	return fmt.Sprintf(`
pod "app" {
  container "main" {
    image        = %q
    pull         = "always"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`, image)
}

// A pull of docker.io succeeds only through the declared mirror (there is
// no internet); removing the block removes its file.
func TestMirrorServesPulls(t *testing.T) {
	reg := testRegistries(t)
	const image = "docker.io/berth/testapp:v1" // pushed only to the local mirror
	s := newStack(t)
	mirror := fmt.Sprintf("mirror \"docker.io\" {\n  endpoint \"http://%s\" {}\n}\n", reg.mirror)
	s.write(mirror + sleeper(image))

	r := s.apply()
	path := filepath.Join(certsDir(t), "docker.io", "hosts.toml")
	for _, want := range []string{"# mirror.docker.io will be written", `+[host."http://` + reg.mirror + `"]`, "# image docker.io/berth/testapp:v1 will be pulled", "pod.app: Creation complete"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("apply lacks %q:\n%s", want, r.stdout)
		}
	}
	content, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(content), fmt.Sprintf("# Managed by berth, stack %q.", s.name)) {
		t.Fatalf("%s: %v\n%s", path, err, content)
	}
	if c := s.containers()["app/main"]; c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("the container from the mirrored image is not running: %v", c)
	}

	s.write(sleeper(image))
	r = s.apply()
	if !strings.Contains(r.stdout, "# mirror.docker.io will be removed") {
		t.Fatalf("apply without the mirror: %s", r)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the mirror's file is left: %v", err)
	}
}

// A registry that wants credentials: the pull fails without a registry
// block and works with one; the password shows nowhere.
func TestRegistryCredentials(t *testing.T) {
	reg := testRegistries(t)
	image := reg.auth + "/berth/testapp:v1"
	s := newStack(t)
	base := fmt.Sprintf("mirror %q {\n  endpoint \"https://%s\" {\n    ca_file = %q\n  }\n}\n", reg.auth, reg.auth, reg.ca) + sleeper(image)
	s.write(base)
	r := s.berth("apply", "--auto-approve", s.dir)
	if r.code != 1 || !strings.Contains(r.stdout, "pod.app: Creation failed") {
		t.Fatalf("apply without credentials: %s", r)
	}

	s.write(base + fmt.Sprintf(`
variable "registry_password" {
  sensitive = true
  default   = "" # so that the cleanup's destroy, without the variable, still loads
}
registry %q {
  username = %q
  password = var.registry_password
}
`, reg.auth, reg.user))
	t.Setenv("BERTH_VAR_registry_password", reg.password)
	plan := s.mustBerth("plan", s.dir)
	jsonPlan := s.mustBerth("plan", "--json", s.dir)
	planFile := filepath.Join(s.dir, "..", "creds.plan")
	s.mustBerth("plan", "--out", planFile, s.dir)
	applied := runBerth(t, nil, "apply", "--log-level", "debug", planFile)
	if applied.code != 0 {
		t.Fatalf("apply with credentials: %s", applied)
	}
	if c := s.containers()["app/main"]; c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("not running after a pull with credentials: %v", c)
	}
	saved, _ := os.ReadFile(planFile)
	for what, text := range map[string]string{"plan": plan.stdout + plan.stderr, "plan --json": jsonPlan.stdout,
		"plan file": string(saved), "apply": applied.stdout + applied.stderr} {
		if strings.Contains(text, reg.password) {
			t.Errorf("the password appears in the %s", what)
		}
	}
}

// TLS with a self-signed CA: refused without ca_file, works with it, and
// with skip_verify.
func TestMirrorTLS(t *testing.T) {
	reg := testRegistries(t)
	image := reg.tls + "/berth/testapp:v1"
	s := newStack(t)
	endpoint := func(body string) string {
		return fmt.Sprintf("mirror %q {\n  endpoint \"https://%s\" {\n%s\n  }\n}\n", reg.tls, reg.tls, body) + sleeper(image)
	}
	s.write(endpoint(""))
	r := s.berth("apply", "--auto-approve", s.dir)
	if r.code != 1 || !strings.Contains(r.stderr, "certificate signed by unknown authority") {
		t.Fatalf("apply without the CA: %s", r)
	}

	s.write(endpoint(fmt.Sprintf("    ca_file = %q", reg.ca)))
	if r := s.apply(); !strings.Contains(r.stdout, "+  ca = ") {
		t.Errorf("the plan does not show the CA line being added:\n%s", r.stdout)
	}

	s.mustBerth("destroy", "--auto-approve", s.dir)
	s.write(endpoint("    skip_verify = true"))
	s.apply()
	if c := s.containers()["app/main"]; c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("not running with skip_verify: %v", c)
	}
}

// retag points a tag of the mirror registry at another image.
func retag(t *testing.T, from, to string) {
	t.Helper()
	out, err := exec.Command("../../hack/registry.sh", "retag", from, to, "mirror").CombinedOutput()
	if err != nil {
		t.Fatalf("retag %s %s: %v\n%s", from, to, err, out)
	}
}

// With pull = "always", a tag that moves at the registry replaces the
// containers that use it, and the plan shows the old and new digests.
func TestPullAlwaysFollowsTag(t *testing.T) {
	reg := testRegistries(t)
	image := reg.mirror + "/berth/testapp:latest"
	retag(t, "berth/testapp:v1", "berth/testapp:latest")
	t.Cleanup(func() { retag(t, "berth/testapp:v1", "berth/testapp:latest") })
	s := newStack(t)
	s.write(sleeper(image))
	s.apply()
	before := s.containers()["app/main"]
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan with an unmoved tag: %s", p)
	}

	retag(t, "berth/testapp:v2", "berth/testapp:latest")
	p := s.berth("plan", "--detailed-exitcode", s.dir)
	if p.code != 2 || !strings.Contains(p.stdout, `the tag now names another image (pull = "always")`) || !strings.Contains(p.stdout, `~ image_digest = "sha256:`) {
		t.Fatalf("plan after the tag moved: %s", p)
	}
	s.apply()
	after := s.containers()["app/main"]
	if after.Id == before.Id || after.ImageRef == before.ImageRef || after.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container %s (image %s) -> %s (image %s, %s)", before.Id, before.ImageRef, after.Id, after.ImageRef, after.State)
	}
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan after following the tag: %s", p)
	}
}
