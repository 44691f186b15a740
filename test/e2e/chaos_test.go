package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// berth killed with SIGKILL at a random moment of apply or destroy, then
// run once more, converges in that one rerun: every pod has one sandbox
// with its containers running (or, after destroy, nothing of the stack is
// left), nothing without berth's labels is left behind, and the pod
// network's IP allocations are exactly the live sandboxes' addresses.
// The moments come from a seed (BERTH_CHAOS_SEED), logged for replay.
func TestChaosKillAndRerun(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("BERTH_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (BERTH_CHAOS_SEED=%d replays it)", seed, seed)
	rnd := rand.New(rand.NewPCG(seed, seed))

	const pods, rounds = 6, 20
	s := newStack(t)
	var src strings.Builder
	for i := range pods {
		fmt.Fprintf(&src, `pod "p%d" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    stop_timeout = "1s"
  }
}
`, i)
	}
	s.write(src.String())

	// How long a whole run of each verb takes here, learnt from the runs
	// that finished before their kill: the kill falls within that.
	took := map[string]time.Duration{"apply": 2 * time.Second, "destroy": 2 * time.Second}
	killed := 0
	for round := range rounds {
		verb := "apply"
		if round%2 == 1 {
			verb = "destroy"
		}
		delay := time.Duration(rnd.Int64N(int64(took[verb] * 9 / 10)))
		if finished, elapsed := killedIn(t, delay, verb, "--auto-approve", s.dir); finished {
			took[verb] = elapsed
		} else {
			killed++
		}
		// One rerun must converge.
		if r := s.berth(verb, "--auto-approve", s.dir); r.code != 0 {
			t.Fatalf("round %d: the %s rerun after a kill at %s failed: %s", round, verb, delay, r)
		}
		if verb == "apply" {
			if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
				t.Fatalf("round %d: plan after the apply rerun: %s", round, p)
			}
			checkOnePerPod(t, round, s, pods)
		} else if n, c := len(s.pods()), len(s.containers()); n+c != 0 {
			t.Fatalf("round %d: %d sandboxes and %d containers left after the destroy rerun", round, n, c)
		}
		checkNothingLeaked(t, round)
	}
	t.Logf("%d of %d runs were killed before they finished", killed, rounds)
	if killed < rounds/2 {
		t.Errorf("only %d of %d runs were killed before they finished; the kill moments miss the work", killed, rounds)
	}
}

// killedIn starts berth with args and kills it after delay; it reports
// whether berth finished first, and how long it took then.
func killedIn(t *testing.T, delay time.Duration, args ...string) (bool, time.Duration) {
	t.Helper()
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir, "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return true, time.Since(start)
	case <-time.After(delay):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return false, 0
	}
}

// checkOnePerPod: each pod has exactly one sandbox, ready, and its
// container runs.
func checkOnePerPod(t *testing.T, round int, s *stack, pods int) {
	t.Helper()
	resp, err := rt.ListPodSandbox(context.Background(), &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{LabelSelector: map[string]string{spec.LabelStack: s.name}}})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, sb := range resp.Items {
		per[sb.Labels[spec.LabelPod]]++
		if sb.State != cri.PodSandboxState_SANDBOX_READY {
			t.Errorf("round %d: sandbox of %s is %s", round, sb.Labels[spec.LabelPod], sb.State)
		}
	}
	ctrs := s.containers()
	for i := range pods {
		name := fmt.Sprintf("p%d", i)
		if per[name] != 1 {
			t.Errorf("round %d: pod %s has %d sandboxes, want 1", round, name, per[name])
		}
		if c := ctrs[name+"/c"]; c == nil || c.State != cri.ContainerState_CONTAINER_RUNNING {
			t.Errorf("round %d: %s/c is not running: %v", round, name, c)
		}
	}
}

// checkNothingLeaked: every sandbox and container on the runtime carries
// berth's stack label, and the pod network's IPAM holds exactly the
// addresses of the ready sandboxes.
func checkNothingLeaked(t *testing.T, round int) {
	t.Helper()
	ctx := context.Background()
	sbs, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, sb := range sbs.Items {
		if sb.Labels[spec.LabelStack] == "" {
			t.Errorf("round %d: sandbox %s has no stack label", round, sb.Id)
		}
		if sb.State != cri.PodSandboxState_SANDBOX_READY {
			continue
		}
		st, err := rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: sb.Id})
		if err == nil && st.GetStatus().GetNetwork().GetIp() != "" {
			live = append(live, st.GetStatus().GetNetwork().GetIp())
		}
	}
	ctrs, err := rt.ListContainers(ctx, &cri.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrs.Containers {
		if c.Labels[spec.LabelStack] == "" {
			t.Errorf("round %d: container %s has no stack label", round, c.Id)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(os.Getenv("BERTH_RUNTIME_DIR"), "cni", "ipam", "berth-test"))
	var allocated []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			allocated = append(allocated, e.Name())
		}
	}
	slices.Sort(live)
	slices.Sort(allocated)
	if !slices.Equal(live, allocated) {
		t.Errorf("round %d: IPAM holds %v, the ready sandboxes have %v", round, allocated, live)
	}
}

// A hang-up (the SSH session that ran apply dropped) stops berth apply as
// Ctrl-C does: it ends by itself, with an error, rather than being killed
// by the signal, and the rerun converges.
func TestApplyStopsCleanlyOnHangUp(t *testing.T) {
	s := newStack(t)
	s.write(`pod "slow" {
  container "setup" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "8"]
    init    = true
  }
  container "app" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
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
	eventually(t, 60*time.Second, "the init container to run", func() bool { return running(s.containers()["slow/setup"]) })
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("apply still runs after the hang-up:\n%s", out.String())
	}
	if st := cmd.ProcessState; st.ExitCode() <= 0 {
		t.Fatalf("apply after a hang-up: %s (killed by the signal, or a success), want its own error exit:\n%s", st, out.String())
	}
	t.Logf("apply, hung up:\n%s", out.String())
	r := s.berth("apply", "--auto-approve", s.dir)
	if r.code != 0 {
		t.Fatalf("the rerun: %s", r)
	}
	t.Logf("the rerun:\n%s", r.stdout)
	ctrs := s.containers()
	if !running(ctrs["slow/app"]) {
		t.Fatal("the rerun did not converge: the app is not running")
	}
	// The init container the hung-up apply started ran to its end first.
	status := func(c *cri.Container) *cri.ContainerStatus {
		resp, err := rt.ContainerStatus(context.Background(), &cri.ContainerStatusRequest{ContainerId: c.Id})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	setup, app := status(ctrs["slow/setup"]), status(ctrs["slow/app"])
	if setup.State != cri.ContainerState_CONTAINER_EXITED || setup.ExitCode != 0 || app.CreatedAt < setup.FinishedAt {
		t.Errorf("the app was made at %d, the init container finished at %d (state %s, code %d): the app did not wait for it",
			app.CreatedAt, setup.FinishedAt, setup.State, setup.ExitCode)
	}
}
