package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/spec"
)

const multiPod = `
variable "mode" { default = "prod" }

pod "db" {
  hostname = "db"
  container "main" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    env          = { ROLE = "database" }
    stop_timeout = "5s"
  }
}

pod "web" {
  hostname   = "web"
  depends_on = ["pod.db"]
  labels     = { tier = "front" }

  container "prepare" {
    image   = "docker.io/library/busybox:1.36"
    init    = true
    command = ["sh", "-c", "echo prepared; exit 0"]
  }
  container "app" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sh", "-c"]
    args    = ["trap 'exit 0' TERM; while true; do sleep 1; done"]
    env     = { MODE = var.mode, GREETING = "hello" }
  }
  container "sidecar" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}
`

// The core lifecycle on the real runtime: apply a multi-pod stack, check
// what the runtime runs, then change, remove, crash and re-plan.
func TestMultiPodLifecycle(t *testing.T) {
	s := newStack(t)
	s.write(multiPod)
	out := s.apply()
	if !strings.Contains(out.stdout, "Apply complete! Resources: 6 added, 0 changed, 0 destroyed.") {
		t.Fatalf("apply output: %s", out)
	}

	pods, ctrs := s.pods(), s.containers()
	if len(pods) != 2 || len(ctrs) != 4 {
		t.Fatalf("runtime has %d pods and %d containers, want 2 and 4", len(pods), len(ctrs))
	}
	for name, sb := range pods {
		if sb.State != cri.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod %s is %s", name, sb.State)
		}
	}
	if pods["web"].Labels["tier"] != "front" {
		t.Errorf("web labels = %v", pods["web"].Labels)
	}
	// depends_on: db's sandbox was made first.
	if pods["db"].CreatedAt >= pods["web"].CreatedAt {
		t.Errorf("web's sandbox was created before db's")
	}
	// The init container ran to completion before app started.
	prep := containerStatus(t, ctrs["web/prepare"].Id)
	app := containerStatus(t, ctrs["web/app"].Id)
	if prep.State != cri.ContainerState_CONTAINER_EXITED || prep.ExitCode != 0 {
		t.Errorf("init container: %s exit %d", prep.State, prep.ExitCode)
	}
	if prep.FinishedAt > app.StartedAt {
		t.Errorf("app started at %d, before the init container finished at %d", app.StartedAt, prep.FinishedAt)
	}
	// Declared env, command and hostname are what the containers see.
	env := execIn(t, ctrs["web/app"].Id, "env")
	for _, want := range []string{"MODE=prod", "GREETING=hello"} {
		if !strings.Contains(env, want) {
			t.Errorf("app env lacks %s:\n%s", want, env)
		}
	}
	if h := strings.TrimSpace(execIn(t, ctrs["db/main"].Id, "hostname")); h != "db" {
		t.Errorf("db hostname = %q", h)
	}
	if ps := execIn(t, ctrs["web/sidecar"].Id, "cat", "/proc/1/cmdline"); !strings.Contains(ps, "sleep") {
		t.Errorf("sidecar runs %q, want sleep", ps)
	}

	t.Run("re-plan is empty and makes no mutating call", func(t *testing.T) {
		// Counted by a proxy in front of the runtime, and compared with
		// berth's own account (its debug line).
		proxy := newRuntimeProxy(t, false)
		r := s.berth("--address", proxy.Address, "plan", "--detailed-exitcode", "--log-level", "debug", s.dir)
		if r.code != 0 || !strings.Contains(r.stdout, "No changes.") {
			t.Fatalf("plan: %s", r)
		}
		// One list of each kind, whatever the number of pods, and only
		// calls that read: the status of the one exited container (its exit
		// code), the runtime's status (its CNI dirs) and introspection (its
		// registry config_path).
		calls := proxy.Counts()
		for _, list := range []string{"ListPodSandbox", "ListContainers", "ListImages"} {
			if calls[list] != 1 {
				t.Errorf("%s called %d times, want 1 (%v)", list, calls[list], calls)
			}
		}
		for method := range calls {
			for _, verb := range []string{"Create", "Start", "Stop", "Remove", "Run", "Update", "Pull", "Exec", "Write", "Delete", "Transfer"} {
				if strings.HasPrefix(method[strings.LastIndex(method, "/")+1:], verb) {
					t.Errorf("plan made a mutating call: %s (%v)", method, calls)
				}
			}
		}
		bare := map[string]int{} // berth names containerd's own calls by method alone
		for method, n := range calls {
			bare[method[strings.LastIndex(method, "/")+1:]] += n
		}
		if told := parseCalls(t, r.stderr); !maps.Equal(told, bare) {
			t.Errorf("berth says it called %v; the proxy saw %v", told, bare)
		}
	})

	t.Run("an env change replaces only that container", func(t *testing.T) {
		before := s.containers()
		r := s.mustBerth("apply", "--auto-approve", "--var", "mode=dev", s.dir)
		if !strings.Contains(r.stdout, `~ env.MODE = "prod" -> "dev" # forces replacement`) || !strings.Contains(r.stdout, "1 added, 0 changed, 1 destroyed") {
			t.Fatalf("apply: %s", r)
		}
		after := s.containers()
		for key, c := range before {
			changed := after[key].Id != c.Id
			if changed != (key == "web/app") {
				t.Errorf("%s: replaced = %v", key, changed)
			}
		}
		if env := execIn(t, after["web/app"].Id, "env"); !strings.Contains(env, "MODE=dev") {
			t.Errorf("new app env: %s", env)
		}
		if p := s.berth("plan", "--detailed-exitcode", "--var", "mode=dev", s.dir); p.code != 0 {
			t.Errorf("plan after apply: %s", p)
		}
	})

	t.Run("a hostname change replaces the pod", func(t *testing.T) {
		before := s.pods()
		s.write(strings.Replace(multiPod, `hostname = "db"`, `hostname = "database"`, 1))
		r := s.mustBerth("apply", "--auto-approve", "--var", "mode=dev", s.dir)
		if !strings.Contains(r.stdout, `~ hostname = "db" -> "database" # forces replacement`) {
			t.Fatalf("apply: %s", r)
		}
		after := s.pods()
		if after["db"].Id == before["db"].Id || after["web"].Id != before["web"].Id {
			t.Errorf("db replaced: %v (want true), web replaced: %v (want false)", after["db"].Id != before["db"].Id, after["web"].Id != before["web"].Id)
		}
		if h := strings.TrimSpace(execIn(t, s.containers()["db/main"].Id, "hostname")); h != "database" {
			t.Errorf("db hostname = %q", h)
		}
	})

	t.Run("a killed container is restarted", func(t *testing.T) {
		id := s.containers()["web/sidecar"].Id
		if _, err := rt.StopContainer(context.Background(), &cri.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
			t.Fatal(err)
		}
		waitExited(t, id)
		r := s.berth("plan", "--detailed-exitcode", "--var", "mode=dev", s.dir)
		if r.code != 2 || !strings.Contains(r.stdout, "# pod.web.container.sidecar will be restarted") || !strings.Contains(r.stdout, "exited with code 137") {
			t.Fatalf("plan: %s", r)
		}
		s.mustBerth("apply", "--auto-approve", "--var", "mode=dev", s.dir)
		c := s.containers()["web/sidecar"]
		if c.State != cri.ContainerState_CONTAINER_RUNNING || c.Metadata.Attempt != 1 {
			t.Errorf("sidecar after restart: %s attempt %d", c.State, c.Metadata.Attempt)
		}
	})

	t.Run("an invalid file changes nothing", func(t *testing.T) {
		before := snapshot(t)
		if err := os.WriteFile(filepath.Join(s.dir, "broken.hcl"), []byte("pod \"x\" {\n  container \"y\" {\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(s.dir, "broken.hcl"))
		r := s.berth("apply", "--auto-approve", s.dir)
		if r.code != 1 || !strings.Contains(r.stderr, "broken.hcl") {
			t.Fatalf("apply of an invalid configuration: %s", r)
		}
		if after := snapshot(t); after != before {
			t.Errorf("the runtime changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("a pod removed from the configuration is destroyed", func(t *testing.T) {
		src := strings.Replace(multiPod, `depends_on = ["pod.db"]`, "", 1)
		src = src[:strings.Index(src, `pod "db"`)] + src[strings.Index(src, `pod "web"`):]
		s.write(src)
		webBefore := s.pods()["web"].Id
		r := s.mustBerth("apply", "--auto-approve", "--var", "mode=dev", s.dir)
		if !strings.Contains(r.stdout, "# pod.db will be destroyed") {
			t.Fatalf("apply: %s", r)
		}
		pods := s.pods()
		if _, ok := pods["db"]; ok || pods["web"].Id != webBefore {
			t.Errorf("pods after: %v", pods)
		}
	})
}

// parseCalls reads the debug line `msg="runtime calls" ... calls="map[A:1 B:2]"`.
func parseCalls(t *testing.T, stderr string) map[string]int {
	t.Helper()
	_, rest, ok := strings.Cut(stderr, `calls="map[`)
	if !ok {
		t.Fatalf("no runtime calls line in:\n%s", stderr)
	}
	body, _, _ := strings.Cut(rest, "]")
	calls := map[string]int{}
	for _, kv := range strings.Fields(body) {
		k, v, _ := strings.Cut(kv, ":")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("bad calls entry %q", kv)
		}
		calls[k] = n
	}
	return calls
}

// destroy removes exactly the stack's pods: an unlabelled pod and another
// stack's pod survive.
func TestDestroyLeavesForeignPods(t *testing.T) {
	s := newStack(t)
	s.write(`pod "mine" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`)
	s.apply()

	foreign := runForeignPod(t, "foreign-unlabelled", nil)
	other := runForeignPod(t, "foreign-other-stack", map[string]string{spec.LabelStack: "someone-else", spec.LabelPod: "mine"})

	r := s.mustBerth("destroy", "--auto-approve", s.dir)
	if !strings.Contains(r.stdout, "Destroy complete! Resources: 0 added, 0 changed, 2 destroyed.") {
		t.Fatalf("destroy: %s", r)
	}
	if len(s.pods()) != 0 {
		t.Errorf("stack pods left: %v", s.pods())
	}
	for _, id := range []string{foreign, other} {
		st, err := rt.PodSandboxStatus(context.Background(), &cri.PodSandboxStatusRequest{PodSandboxId: id})
		if err != nil || st.Status.State != cri.PodSandboxState_SANDBOX_READY {
			t.Errorf("foreign pod %s: %v %v", id, err, st)
		}
	}
}

// runForeignPod starts a sandbox berth does not own, removed at cleanup.
func runForeignPod(t *testing.T, name string, labels map[string]string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: &cri.PodSandboxConfig{
		Metadata: &cri.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: fmt.Sprintf("%s-%d", name, time.Now().UnixNano())},
		Labels:   labels,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.StopPodSandbox(context.Background(), &cri.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId})
		rt.RemovePodSandbox(context.Background(), &cri.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId})
	})
	return resp.PodSandboxId
}

// Only one apply of a stack runs at a time: the second waits, naming the
// holder, or gives up after --lock-timeout.
func TestLock(t *testing.T) {
	s := newStack(t)
	s.write(`pod "web" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`)
	t.Setenv("BERTH_LOCK_DIR", lockDir)
	held, err := lock.Acquire(context.Background(), lock.Path(lockDir, s.name, address), "e2e test holder", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := s.berth("apply", "--auto-approve", "--lock-timeout", "1s", s.dir)
	if r.code != 1 || !strings.Contains(r.stderr, "timed out waiting for the stack lock: held by pid") || !strings.Contains(r.stderr, "e2e test holder") {
		t.Fatalf("apply under a held lock: %s", r)
	}
	if len(s.pods()) != 0 {
		t.Fatalf("apply changed the runtime without the lock")
	}

	// Released while the second apply waits: it proceeds.
	done := make(chan result)
	go func() { done <- runBerth(t, nil, "apply", "--auto-approve", s.dir) }()
	time.Sleep(500 * time.Millisecond)
	held.Release()
	r = <-done
	if r.code != 0 || !strings.Contains(r.stderr, "Waiting for the lock on stack") {
		t.Fatalf("waiting apply: %s", r)
	}

	// Two applies of a change at once: serialised, one pod in the end.
	s.write(`pod "web" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3601"]
    stop_timeout = "1s"
  }
}`)
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = runBerth(t, nil, "apply", "--auto-approve", s.dir) }()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("concurrent apply: %s", r)
		}
	}
	if n := len(s.containers()); n != 1 {
		t.Fatalf("%d containers after two concurrent applies, want 1", n)
	}
	resp, _ := rt.ListPodSandbox(context.Background(), &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{LabelSelector: map[string]string{spec.LabelStack: s.name}}})
	if len(resp.Items) != 1 {
		t.Fatalf("%d sandboxes after two concurrent applies, want 1", len(resp.Items))
	}
}

// The hello example serves its page on the pod's own IP.
func TestHelloExample(t *testing.T) {
	s := newStack(t)
	src, err := os.ReadFile("../../examples/hello/main.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// The example names its stack; give this run its own.
	s.write(strings.Replace(string(src), `stack = "hello"`, fmt.Sprintf("stack = %q", s.name), 1))
	s.apply()
	st, err := rt.PodSandboxStatus(context.Background(), &cri.PodSandboxStatusRequest{PodSandboxId: s.pods()["web"].Id})
	if err != nil {
		t.Fatal(err)
	}
	ip := st.Status.GetNetwork().GetIp()
	if ip == "" {
		t.Fatal("the pod has no IP")
	}
	body := getWithRetry(t, "http://"+ip+"/")
	if strings.TrimSpace(body) != "hello from berth" {
		t.Fatalf("GET http://%s/ = %q", ip, body)
	}
}

// getWithRetry fetches a URL, retrying while the server starts.
func getWithRetry(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
