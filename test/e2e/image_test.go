package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// imageStatus returns what CRI knows of an image, or nil.
func imageStatus(t *testing.T, ref string) *cri.Image {
	t.Helper()
	resp, err := images.ImageStatus(context.Background(), &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Image
}

// An image block imports an archive (air-gapped hosts), pins it, unpins it
// in place, and its image serves a container with pull = "never".
func TestImageImportAndPin(t *testing.T) {
	cache := os.Getenv("BERTH_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "berth")
	}
	archive := filepath.Join(cache, "images", "busybox.oci.tar")
	if _, err := os.Stat(archive); err != nil {
		skipUnlessRequired(t, fmt.Sprintf("no test image archive (hack/images.sh builds it): %v", err))
	}
	s := newStack(t)
	ref := "docker.io/berth/imported-" + s.name + ":v1" // new to the runtime on every run
	block := func(pin bool) string {
		return fmt.Sprintf(`
image %q {
  source = %q
  pin    = %v
}
pod "app" {
  container "main" {
    image        = %q
    pull         = "never"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`, ref, archive, pin, ref)
	}
	s.write(block(true))
	r := s.apply()
	if !strings.Contains(r.stdout, "# image."+ref+" will be imported") || !strings.Contains(r.stdout, "~ pin = true") {
		t.Fatalf("apply: %s", r)
	}
	img := imageStatus(t, ref)
	if img == nil || !img.Pinned {
		t.Fatalf("after import: %+v, want present and pinned", img)
	}
	if c := s.containers()["app/main"]; c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("the container from the imported image: %v", c)
	}
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan after import: %s", p)
	}

	s.write(block(false))
	r = s.apply()
	if !strings.Contains(r.stdout, "will be updated in place") || !strings.Contains(r.stdout, "~ pin = false") {
		t.Fatalf("unpin: %s", r)
	}
	if img := imageStatus(t, ref); img == nil || img.Pinned {
		t.Fatalf("after unpin: %+v", img)
	}

	// Images the stack no longer declares stay, unless pruned.
	withoutBlock := block(false)[strings.Index(block(false), `pod "app"`):]
	s.write(withoutBlock)
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan without the image block: %s", p)
	}
	r = s.mustBerth("apply", "--auto-approve", "--prune-images", s.dir)
	if !strings.Contains(r.stdout, "# image."+ref+" will be removed") {
		t.Fatalf("apply --prune-images: %s", r)
	}
	if img := imageStatus(t, ref); img != nil {
		t.Fatalf("after pruning, the image is still named %s: %+v", ref, img)
	}

	// A missing archive fails the plan before anything changes.
	s.write(strings.Replace(strings.Replace(block(false), archive, archive+".missing", 1), ref, ref+"-2", 1))
	if p := s.berth("plan", s.dir); p.code != 1 || !strings.Contains(p.stdout, "cannot be read (no such file or directory)") {
		t.Fatalf("plan with a missing archive: %s", p)
	}
}
