package e2e

import (
	"strings"
	"testing"
	"time"
)

// berth apply starts a pod only once the readiness probes of the pods it
// depends on pass; one that never passes skips its dependents.
func TestApplyWaitsForReadiness(t *testing.T) {
	const src = `
pod "db" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"]
    stop_timeout = "1s"
    probe "readiness" {
      exec { command = ["test", "-f", "/tmp/%s"] }
      interval          = "300ms"
      failure_threshold = 20
    }
  }
}
pod "web" {
  depends_on = ["pod.db"]
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}
`
	s := newStack(t)
	s.write(strings.Replace(src, "%s", "ready", 1))
	r := s.apply()
	if !strings.Contains(r.stdout, "pod.web: Waiting for pod.db to be ready...") {
		t.Errorf("apply did not say it waits:\n%s", r.stdout)
	}
	db, web := s.containers()["db/c"], s.pods()["web"]
	if db == nil || web == nil {
		t.Fatalf("db %v, web %v", db, web)
	}
	if gap := time.Duration(web.CreatedAt - db.CreatedAt); gap < 2*time.Second {
		t.Errorf("pod web created %s after db's container, before db could be ready (2s)", gap)
	}

	// Never ready: 20 × 300ms, then web is skipped and apply fails.
	s.mustBerth("destroy", "--auto-approve", s.dir)
	s.write(strings.Replace(src, "%s", "never", 1))
	r = s.berth("apply", "--auto-approve", s.dir)
	if r.code != 1 || !strings.Contains(r.stdout, "pod.web: Skipped, because pod.db, which it depends on, is not ready: container c: readiness probe did not pass within") {
		t.Errorf("apply with a dependency that never gets ready: %s", r)
	}
	if s.pods()["web"] != nil {
		t.Error("pod web was created")
	}
}
