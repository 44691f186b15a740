package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod that fails is reported with its cause, its dependent is skipped,
// an independent pod is still created, and a rerun after the fix converges.
func TestFailedPodSkipsDependents(t *testing.T) {
	s := newStack(t)
	const src = `
pod "broken" {
  container "main" {
    # Nothing listens on port 1: the pull fails at once, without internet.
    image   = "127.0.0.1:1/berth/missing:1"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}
pod "dependent" {
  depends_on = ["pod.broken"]
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}
pod "independent" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}
`
	s.write(src)
	// The plan asks the registry first: the image that cannot be pulled
	// is a warning, an error with --strict, and not asked for --offline.
	const cannot = "image 127.0.0.1:1/berth/missing:1 cannot be pulled"
	if p := s.berth("plan", s.dir); p.code != 0 || !strings.Contains(p.stdout, "pod.broken.container.main: "+cannot) {
		t.Errorf("plan does not warn of the image it cannot pull: %s", p)
	}
	if p := s.berth("plan", "--strict", s.dir); p.code != 1 || !strings.Contains(p.stdout, cannot) {
		t.Errorf("plan --strict: %s", p)
	}
	if p := s.berth("plan", "--offline", s.dir); p.code != 0 || strings.Contains(p.stdout, cannot) {
		t.Errorf("plan --offline: %s", p)
	}
	r := s.berth("apply", "--auto-approve", s.dir)
	if r.code != 1 {
		t.Fatalf("apply with a broken pod: %s", r)
	}
	// The cause once, on stderr; the progress line only says the step failed.
	if n := strings.Count(r.stderr, "Error: pod.broken:"); n != 1 || !regexp.MustCompile(`(?m)^pod\.broken: Creation failed after \S+ \(the error is below\)$`).MatchString(r.stdout) {
		t.Errorf("the pull's error is printed %d times on stderr, want once:\n%s", n, r)
	}
	for _, want := range []string{
		"pod.broken: Creation failed",
		"127.0.0.1:1/berth/missing:1",
		"pod.dependent: Skipped, because pod.broken, which it depends on, did not converge",
		"pod.independent: Creation complete",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	pods := s.pods()
	if _, ok := pods["independent"]; !ok || len(pods) != 1 {
		t.Fatalf("pods after the failed apply: %v, want only independent", keys(pods))
	}

	s.write(strings.Replace(src, "127.0.0.1:1/berth/missing:1", "docker.io/library/busybox:1.36", 1))
	s.apply()
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan after the fix: %s", p)
	}
	if n := len(s.pods()); n != 3 {
		t.Fatalf("%d pods after the fix, want 3", n)
	}
}

// An apply killed half way leaves nothing a rerun cannot converge.
func TestInterruptedApplyConverges(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "slow" {
  container "wait" {
    image   = "docker.io/library/busybox:1.36"
    init    = true
    command = ["sleep", "8"]
  }
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}
`)
	cmd := exec.Command(berthBin, "apply", "--auto-approve", s.dir)
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir, "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill berth while the init container runs: the sandbox exists, the
	// main container does not.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(snapshotOf(t, s), "wait") {
		if time.Now().After(deadline) {
			t.Fatalf("the init container never appeared; berth said:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// The init container sleeps far longer than the kill takes: berth is
	// always killed before main exists.
	if _, ok := s.containers()["slow/main"]; ok {
		t.Fatal("main exists, though berth was killed while the init container ran")
	}

	s.apply()
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan after the rerun: %s", p)
	}
	ctrs := s.containers()
	if c := ctrs["slow/main"]; c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("main after the rerun: %v", c)
	}
	resp, err := rt.ListPodSandbox(context.Background(), &cri.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sb := range resp.Items {
		if sb.Labels["berth.io/stack"] == s.name {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d sandboxes of the stack, want 1", n)
	}
}

// snapshotOf names the stack's containers, for polling.
func snapshotOf(t *testing.T, s *stack) string {
	var names []string
	for k := range s.containers() {
		names = append(names, k)
	}
	return strings.Join(names, " ")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
