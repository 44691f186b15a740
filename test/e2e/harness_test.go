// Package e2e runs the real berth binary against a real containerd.
//
// The runtime is the private one `hack/runtime.sh up` starts; its address
// comes from BERTH_ADDRESS. Without it the tests skip, unless
// BERTH_E2E_REQUIRED=1 (set by make test), when they fail: CI must never
// pass by skipping them.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

var (
	berthBin string
	address  string
	lockDir  string
	// rt and images are raw CRI clients: the tests check what berth did
	// without going through berth's own code.
	rt     cri.RuntimeServiceClient
	images cri.ImageServiceClient
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	address = os.Getenv("BERTH_ADDRESS")
	required := os.Getenv("BERTH_E2E_REQUIRED") == "1"
	if reason := reachable(address); reason != "" {
		if required {
			fmt.Fprintf(os.Stderr, "e2e: %s, and BERTH_E2E_REQUIRED=1\n", reason)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: skipping: %s (run `make test`, which starts a private containerd)\n", reason)
		return 0
	}
	tmp, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	lockDir = filepath.Join(tmp, "locks")
	// Every berth the tests start, by runBerth or by hand, keeps its host
	// key here, not in the host's state directory.
	os.Setenv("BERTH_STATE_DIR", filepath.Join(tmp, "state"))

	berthBin = os.Getenv("BERTH_BIN")
	if berthBin == "" {
		berthBin = filepath.Join(tmp, "berth")
		build := exec.Command("go", "build", "-o", berthBin, "../../cmd/berth")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building berth:", err)
			return 1
		}
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	rt, images = cri.NewRuntimeServiceClient(conn), cri.NewImageServiceClient(conn)
	return m.Run()
}

func reachable(addr string) string {
	if addr == "" {
		return "BERTH_ADDRESS is not set"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := runtime.Dial(ctx, addr)
	if err != nil {
		return err.Error()
	}
	c.Close()
	return ""
}

// stack is one test's configuration directory and stack name.
type stack struct {
	t    *testing.T
	name string
	dir  string
}

// newStack makes a configuration directory whose base name, and so the
// stack name, is unique to the test run. Whatever the stack owns is
// destroyed when the test ends.
func newStack(t *testing.T) *stack {
	t.Helper()
	name := fmt.Sprintf("e2e-%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), os.Getpid()%100000)
	if len(name) > 60 {
		name = name[len(name)-60:]
		name = strings.TrimLeft(name, "-")
	}
	s := &stack{t: t, name: name, dir: filepath.Join(t.TempDir(), name)}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r := s.berth("destroy", "--auto-approve", "--stack", s.name, s.dir); r.code != 0 {
			t.Errorf("cleanup destroy: %s", r)
		}
	})
	return s
}

// write replaces the configuration with one main.hcl.
func (s *stack) write(src string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// berth runs the binary with the test's runtime and lock directory.
func (s *stack) berth(args ...string) result {
	s.t.Helper()
	return runBerth(s.t, nil, args...)
}

func runBerth(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir, "NO_COLOR=1")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("berth %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustBerth runs berth and fails the test unless it exits 0.
func (s *stack) mustBerth(args ...string) result {
	s.t.Helper()
	r := s.berth(args...)
	if r.code != 0 {
		s.t.Fatalf("berth %v: %s", args, r)
	}
	return r
}

func (s *stack) apply() result { s.t.Helper(); return s.mustBerth("apply", "--auto-approve", s.dir) }

// pods lists the stack's sandboxes by pod name (newest wins).
func (s *stack) pods() map[string]*cri.PodSandbox {
	s.t.Helper()
	resp, err := rt.ListPodSandbox(context.Background(), &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{
		LabelSelector: map[string]string{spec.LabelStack: s.name}}})
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]*cri.PodSandbox{}
	for _, sb := range resp.Items {
		if prev := out[sb.Labels[spec.LabelPod]]; prev == nil || sb.CreatedAt > prev.CreatedAt {
			out[sb.Labels[spec.LabelPod]] = sb
		}
	}
	return out
}

// containers lists the stack's containers as "pod/container" → container.
func (s *stack) containers() map[string]*cri.Container {
	s.t.Helper()
	resp, err := rt.ListContainers(context.Background(), &cri.ListContainersRequest{Filter: &cri.ContainerFilter{
		LabelSelector: map[string]string{spec.LabelStack: s.name}}})
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]*cri.Container{}
	for _, c := range resp.Containers {
		key := c.Labels[spec.LabelPod] + "/" + c.Labels[spec.LabelContainer]
		if prev := out[key]; prev == nil || c.CreatedAt > prev.CreatedAt {
			out[key] = c
		}
	}
	return out
}

// execIn runs a command in a container and returns its stdout.
func execIn(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	resp, err := rt.ExecSync(context.Background(), &cri.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	if resp.ExitCode != 0 {
		t.Fatalf("exec %v: exit %d: %s", cmd, resp.ExitCode, resp.Stderr)
	}
	return string(resp.Stdout)
}

func containerStatus(t *testing.T, id string) *cri.ContainerStatus {
	t.Helper()
	resp, err := rt.ContainerStatus(context.Background(), &cri.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status
}

// waitExited waits until a container has exited.
func waitExited(t *testing.T, id string) *cri.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := containerStatus(t, id)
		if st.State == cri.ContainerState_CONTAINER_EXITED {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not exit", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// snapshot summarises every sandbox and container on the runtime, to prove
// that a command changed nothing.
func snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	pods, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ctrs, err := rt.ListContainers(ctx, &cri.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range pods.Items {
		lines = append(lines, fmt.Sprintf("pod %s %s", p.Id, p.State))
	}
	for _, c := range ctrs.Containers {
		lines = append(lines, fmt.Sprintf("ctr %s %s", c.Id, c.State))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// skipUnlessRequired skips a test whose precondition this host lacks,
// except under make test (BERTH_E2E_REQUIRED=1), where nothing may pass by
// skipping: there the missing precondition fails the test.
func skipUnlessRequired(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("BERTH_E2E_REQUIRED") == "1" {
		t.Fatalf("%s, and BERTH_E2E_REQUIRED=1: nothing may be skipped", reason)
	}
	t.Skip(reason)
}
