package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/hungcri"
)

// Against a runtime that answers Version and then never again, plan and
// apply fail within --runtime-timeout naming the call, and apply gives
// the stack lock back: a second apply does not wait for the first.
func TestHungRuntime(t *testing.T) {
	addr := hungcri.Start(t)
	dir := filepath.Join(t.TempDir(), "hung")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(`pod "web" {
  container "app" {
    image = "docker.io/library/busybox:1.36"
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"plan", dir},
		{"apply", "--auto-approve", dir},
		{"apply", "--auto-approve", "--lock-timeout", "1s", dir},
		{"status", dir},
	} {
		start := time.Now()
		r := runBerth(t, nil, append([]string{"--address", addr, "--runtime-timeout", "1s"}, args...)...)
		took := time.Since(start)
		if r.code != 1 || !strings.Contains(r.stderr, "the runtime did not answer ListPodSandbox within 1s") {
			t.Errorf("berth %v: %s", args, r)
		}
		if strings.Contains(r.stderr, "Waiting for the lock") {
			t.Errorf("berth %v waited for a lock the previous run should have released: %s", args, r)
		}
		if took > 20*time.Second {
			t.Errorf("berth %v took %s against a 1s runtime timeout", args, took)
		}
	}

	// A plan reads the runtime while its pods load: a pod's error is told
	// at once, without waiting for the reads of a runtime that hangs.
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(`pod "web" {
  container "app" {
    image  = "docker.io/library/busybox:1.36"
    colour = "blue"
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runBerth(t, nil, "--address", addr, "--runtime-timeout", "2m", "plan", dir)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("plan of a wrong pod took %s against a runtime that hangs", took)
	}
	if r.code != 1 || !strings.Contains(r.stderr, `An argument named "colour" is not expected here`) || strings.Contains(r.stderr, "did not answer") {
		t.Errorf("plan of a wrong pod against a runtime that hangs: %s", r)
	}
}
