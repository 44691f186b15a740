package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/inspect"
	"github.com/berth-dev/berth/runtime"
)

// statusOf runs berth status --json and returns the app container's row
// and its pod.
func statusOf(t *testing.T, s *stack) (inspect.PodStatus, inspect.ContainerStatus) {
	t.Helper()
	r := s.mustBerth("status", "--json", s.dir)
	var st inspect.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r)
	}
	if st.Stack != s.name || len(st.Pods) != 1 || len(st.Pods[0].Containers) != 1 {
		t.Fatalf("status: %s", r.stdout)
	}
	return st.Pods[0], st.Pods[0].Containers[0]
}

// kill makes the app container exit: its shell traps SIGTERM and exits 3.
func kill(t *testing.T, s *stack) *cri.ContainerStatus {
	t.Helper()
	id := s.containers()["web/app"].Id
	_, err := rt.ExecSync(context.Background(), &cri.ExecSyncRequest{ContainerId: id, Cmd: []string{"kill", "1"}, Timeout: 10})
	st := waitExited(t, id)
	if err != nil {
		t.Logf("exec kill 1: %v (the container exited anyway)", err)
	}
	if st.ExitCode != 3 {
		t.Fatalf("killed container exited %d, want 3", st.ExitCode)
	}
	return st
}

// status follows a container through a crash and berth's restarts; show
// prints the applied spec beside the live state.
func TestInspectStatusAndShow(t *testing.T) {
	s := newStack(t)
	port := freePort(t)
	s.write(fmt.Sprintf(`
pod "web" {
  hostname = "inspected"
  port "http" {
    container = 8080
    host      = %d
    host_ip   = "127.0.0.1"
  }
  forward "debug" {
    port   = 8080
    listen = "127.0.0.1:%d"
  }
  container "app" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "trap 'exit 3' TERM; sleep 3600 & wait"]
    env          = { GREETING = "hi" }
    stop_timeout = "1s"
  }
}
`, port, port+1))
	s.apply()

	// Running: state, IP, ports and forwards, image, as the runtime says.
	pod, app := statusOf(t, s)
	sb := s.pods()["web"]
	ctr := s.containers()["web/app"]
	sbst, err := rt.PodSandboxStatus(context.Background(), &cri.PodSandboxStatusRequest{PodSandboxId: sb.Id})
	if err != nil {
		t.Fatal(err)
	}
	if pod.State != "ready" || pod.SandboxID != sb.Id || pod.IP == "" || pod.IP != sbst.Status.GetNetwork().GetIp() {
		t.Errorf("pod: %+v, runtime IP %q", pod, sbst.Status.GetNetwork().GetIp())
	}
	if len(pod.Ports) != 1 || pod.Ports[0].String() != fmt.Sprintf("127.0.0.1:%d->8080/tcp", port) ||
		len(pod.Forwards) != 1 || pod.Forwards[0].String() != fmt.Sprintf("127.0.0.1:%d->8080", port+1) {
		t.Errorf("ports %v forwards %v", pod.Ports, pod.Forwards)
	}
	if app.State != "running" || app.Restarts != 0 || app.ExitCode != nil || app.Failed || app.CrashLoop ||
		app.ContainerID != ctr.Id || app.Image != "docker.io/library/busybox:1.36" || app.ImageID != ctr.ImageRef {
		t.Errorf("running app: %+v (runtime image ref %s)", app, ctr.ImageRef)
	}
	text := s.mustBerth("status", s.dir).stdout
	for _, want := range []string{"PORTS", "FORWARDS", "NOTE", fmt.Sprintf("127.0.0.1:%d->8080/tcp", port), pod.IP} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}

	// Killed: exited with its code, and flagged.
	kill(t, s)
	_, app = statusOf(t, s)
	if app.State != "exited" || app.ExitCode == nil || *app.ExitCode != 3 || !app.Failed || app.CrashLoop || app.Finished == nil {
		t.Errorf("killed app: %+v", app)
	}
	text = s.mustBerth("status", s.dir).stdout
	if !strings.Contains(text, "exited (3)") || !strings.Contains(text, "failed: exit code 3") {
		t.Errorf("status of a killed container:\n%s", text)
	}

	// apply restarts it (restart = "always"): a new attempt.
	s.apply()
	_, app = statusOf(t, s)
	if app.State != "running" || app.Restarts != 1 || app.ExitCode != nil || app.Failed || app.CrashLoop {
		t.Errorf("restarted app: %+v", app)
	}
	if got := s.containers()["web/app"].Metadata.Attempt; got != 1 {
		t.Errorf("runtime attempt %d, want 1", got)
	}

	// show: the applied spec (the annotation) and the live state.
	sb, ctr = s.pods()["web"], s.containers()["web/app"]
	r := s.mustBerth("show", "pod.web", s.dir)
	for _, want := range []string{`pod.web (stack "` + s.name + `"): matches the configuration`, "\napplied spec", `  hostname = "inspected"`,
		fmt.Sprintf("  ports.http.host = %d", port), "\nruntime", `  id = "` + sb.Id + `"`, `  state = "ready"`, `  ip = "` + pod.IP + `"`,
		`  containers.app.state = "running"`, "  containers.app.attempt = 1"} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("show pod.web lacks %q:\n%s", want, r.stdout)
		}
	}
	r = s.mustBerth("show", "pod.web.container.app", s.dir)
	for _, want := range []string{`  env.GREETING = "hi"`, `  stop_timeout = "1s"`, `  id = "` + ctr.Id + `"`, `  sandbox_id = "` + sb.Id + `"`,
		`  state = "running"`, "  attempt = 1", `  image = "docker.io/library/busybox:1.36"`} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("show pod.web.container.app lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "  started = ") || strings.Contains(r.stdout, "exit_code") {
		t.Errorf("show of a running container:\n%s", r.stdout)
	}
	r = s.mustBerth("show", "--json", "pod.web.container.app", s.dir)
	var res struct {
		Kind    string
		Applied struct {
			Image string
			Env   map[string]string
		}
		Runtime inspect.ContainerRuntime
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("show --json: %v\n%s", err, r.stdout)
	}
	if res.Kind != "container" || res.Applied.Image != "docker.io/library/busybox:1.36" || res.Applied.Env["GREETING"] != "hi" ||
		res.Runtime.ID != ctr.Id || res.Runtime.State != "running" || res.Runtime.Attempt != 1 || res.Runtime.Started == nil {
		t.Errorf("show --json: %+v", res)
	}

	// A slip of the keyboard: the error names the valid addresses.
	r = s.berth("show", "pod.wbe", s.dir)
	if r.code != 1 || !strings.Contains(r.stderr, `Did you mean "pod.web"?`) || !strings.Contains(r.stderr, "  pod.web.container.app\n") {
		t.Errorf("show pod.wbe: %s", r)
	}

	// Two more crashes and restarts: three restarts, the last seconds ago,
	// is a crash loop; crashing again keeps it one.
	for i := 0; i < 2; i++ {
		kill(t, s)
		s.apply()
	}
	_, app = statusOf(t, s)
	if app.State != "running" || app.Restarts != 3 || !app.CrashLoop || app.Failed {
		t.Errorf("app after three restarts: %+v", app)
	}
	kill(t, s)
	_, app = statusOf(t, s)
	if app.Restarts != 3 || !app.CrashLoop || !app.Failed || strings.Join(app.Notes, "; ") != "crash-loop (3 restarts); failed: exit code 3" {
		t.Errorf("app crashing again: %+v", app)
	}
	text = s.mustBerth("status", s.dir).stdout
	if !strings.Contains(text, "crash-loop (3 restarts); failed: exit code 3") {
		t.Errorf("status of a crash-looping container:\n%s", text)
	}
}

// doctorFindings runs berth doctor --json against address.
func doctorFindings(t *testing.T, address string) (map[string]map[string]string, result) {
	t.Helper()
	r := runBerth(t, nil, "doctor", "--json", "--address", address)
	var list []map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r)
	}
	out := map[string]map[string]string{}
	for _, f := range list {
		out[f["check"]] = f
	}
	return out, r
}

// doctor finds nothing wrong with the test runtime beyond what this host
// is known for: cgroup v1.
func TestDoctor(t *testing.T) {
	findings, r := doctorFindings(t, address)
	if r.code != 0 {
		t.Fatalf("doctor: %s", r)
	}
	for _, check := range []string{"runtime", "cri.RuntimeReady", "cri.NetworkReady", "cni.conf_dir", "cni.bin_dirs", "cni.plugins",
		"registry.config_path", "sandbox_image", "kubelet", "/dev/kvm", "/dev/net/tun", "cgroup", "cap_sys_resource"} {
		if findings[check] == nil {
			t.Errorf("doctor has no %s finding:\n%s", check, r.stdout)
		}
	}
	for check, f := range findings {
		expected := check == "cgroup" && f["message"] == "v1"
		if f["level"] != "ok" && !expected {
			t.Errorf("%s: %s %s (fix: %s)", check, f["level"], f["message"], f["fix"])
		}
	}
	text := runBerth(t, nil, "doctor")
	if text.code != 0 || !strings.Contains(text.stdout, "ok    runtime ") || strings.Contains(text.stdout, "fail ") {
		t.Errorf("doctor: %s", text)
	}
}

// doctor flags a runtime set up wrongly: a private containerd of the test's
// own (own root, state, socket; no pods, so no network is ever made) whose
// registry has no config_path but deprecated mirrors, and whose CNI bin dir
// lacks portmap.
func TestDoctorBrokenRuntime(t *testing.T) {
	sock := startContainerd(t, func(dir string) string {
		bins := filepath.Join(dir, "cni-bin")
		confDir := filepath.Join(dir, "net.d")
		for _, d := range []string{bins, confDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{"bridge", "host-local", "loopback"} {
			if err := os.Symlink(filepath.Join("/usr/lib/cni", p), filepath.Join(bins, p)); err != nil {
				t.Fatal(err)
			}
		}
		conflist := `{"cniVersion": "1.0.0", "name": "berth-doctor", "plugins": [{"type": "bridge", "bridge": "berthdoc0",
  "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.214.0.0/24"}]], "dataDir": "` + dir + `/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}`
		if err := os.WriteFile(filepath.Join(confDir, "10-doctor.conflist"), []byte(conflist), 0o644); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(`
[plugins."io.containerd.cri.v1.images".registry]
  config_path = ""
  [plugins."io.containerd.cri.v1.images".registry.mirrors."docker.io"]
    endpoint = ["http://127.0.0.1:1"]
[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = [%q]
  conf_dir = %q
`, bins, confDir)
	})
	findings, r := doctorFindings(t, "unix://"+sock)
	if r.code != 1 {
		t.Errorf("doctor exited %d, want 1 (a failing check)", r.code)
	}
	want := []struct{ check, level, message, fix string }{
		{"runtime", "ok", "containerd 2.4.2", ""},
		{"cni.plugins", "fail", "portmap", "apt-get install containernetworking-plugins"},
		{"cni.bin_dirs", "ok", "cni-bin", ""},
		{"registry.config_path", "warn", "not set", `config_path = "/etc/containerd/certs.d"`},
		{"registry.deprecated", "warn", "`mirrors` property", "hosts.toml"},
		{"sandbox_image", "warn", "no pinned pause image", "import it"},
	}
	for _, w := range want {
		f := findings[w.check]
		if f == nil || f["level"] != w.level || !strings.Contains(f["message"], w.message) || !strings.Contains(f["fix"], w.fix) {
			t.Errorf("%s: %v, want %s with %q and fix %q", w.check, f, w.level, w.message, w.fix)
		}
	}
	// The text says the same, each finding with its fix.
	text := runBerth(t, nil, "doctor", "--address", "unix://"+sock)
	for _, w := range []string{"fail  cni.plugins", ": portmap\n", "fix: Install the CNI plugins", "warn  registry.config_path", "not set: mirror blocks would be inert"} {
		if !strings.Contains(text.stdout, w) {
			t.Errorf("doctor text lacks %q:\n%s", w, text.stdout)
		}
	}
}

// startContainerd runs a private containerd, with the binaries
// hack/runtime.sh built, in a fresh directory with its own root, state and
// socket; extra (given the directory) is appended to its config. It is
// stopped, by its PID, and its directory removed when the test ends. It
// never runs a pod.
func startContainerd(t *testing.T, extra func(dir string) string) string {
	t.Helper()
	cache := os.Getenv("BERTH_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "berth")
	}
	bin := filepath.Join(cache, "bin", "containerd")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: hack/runtime.sh install builds containerd there", err)
	}
	// Short: the shim socket dir must stay within 42 characters.
	dir, err := os.MkdirTemp("", "bdoc-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "c.sock")
	config := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
imports = []
disabled_plugins = [
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "opt"), filepath.Join(dir, "s")) + extra(dir)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "config.toml"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = "/", logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mounts), dir) {
			t.Errorf("something is still mounted under %s; not removing it", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := runtime.Dial(ctx, "unix://"+sock)
		cancel()
		if err == nil {
			c.Close()
			return sock
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("containerd exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s: %v", sock, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
