package e2e

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const kvmImage = "docker.io/berth/kvmtest:latest"

// logOf reads a container's CRI log file.
func logOf(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(containerStatus(t, id).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A container given /dev/kvm, without privileges, runs a real KVM guest;
// without the device it fails with a clear message.
func TestKVMGuest(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		skipUnlessRequired(t, "this host has no /dev/kvm")
	}
	s := newStack(t)
	s.write(fmt.Sprintf(`
pod "vm" {
  restart = "never"
  container "with-kvm" {
    image   = %[1]q
    command = ["kvmtest", "kvm"]
    device "/dev/kvm" {}
  }
  container "without-kvm" {
    image   = %[1]q
    command = ["kvmtest", "kvm"]
  }
}`, kvmImage))
	r := s.apply()
	if strings.Contains(r.stdout, "privileged") {
		t.Errorf("a device alone must not make anything privileged:\n%s", r.stdout)
	}
	ctrs := s.containers()
	with := waitExited(t, ctrs["vm/with-kvm"].Id)
	if with.ExitCode != 0 || !strings.Contains(logOf(t, with.Id), `guest wrote: \"hello from a KVM guest: 40+2=42\n\"`) && !strings.Contains(logOf(t, with.Id), `guest wrote: "hello from a KVM guest: 40+2=42\n"`) {
		t.Fatalf("with /dev/kvm: exit %d, log:\n%s", with.ExitCode, logOf(t, with.Id))
	}
	if !strings.Contains(logOf(t, with.Id), "guest halted") {
		t.Errorf("the guest did not halt:\n%s", logOf(t, with.Id))
	}
	without := waitExited(t, ctrs["vm/without-kvm"].Id)
	if without.ExitCode != 1 || !strings.Contains(logOf(t, without.Id), "open /dev/kvm: no such file or directory") {
		t.Fatalf("without /dev/kvm: exit %d, log:\n%s", without.ExitCode, logOf(t, without.Id))
	}
}

// /dev/net/tun works with NET_ADMIN and fails without it.
func TestTunNeedsNetAdmin(t *testing.T) {
	s := newStack(t)
	s.write(fmt.Sprintf(`
pod "net" {
  restart = "never"
  container "admin" {
    image   = %[1]q
    command = ["kvmtest", "tun", "tun0"]
    device "/dev/net/tun" {}
    capabilities { add = ["NET_ADMIN"] }
  }
  container "plain" {
    image   = %[1]q
    command = ["kvmtest", "tun", "tun0"]
    device "/dev/net/tun" {}
  }
}`, kvmImage))
	s.apply()
	ctrs := s.containers()
	admin := waitExited(t, ctrs["net/admin"].Id)
	if admin.ExitCode != 0 || !strings.Contains(logOf(t, admin.Id), "tun: created tun0") {
		t.Fatalf("with NET_ADMIN: exit %d, log:\n%s", admin.ExitCode, logOf(t, admin.Id))
	}
	plain := waitExited(t, ctrs["net/plain"].Id)
	if plain.ExitCode != 1 || !strings.Contains(logOf(t, plain.Id), "needs CAP_NET_ADMIN") {
		t.Fatalf("without NET_ADMIN: exit %d, log:\n%s", plain.ExitCode, logOf(t, plain.Id))
	}
}

// Bind mounts: writes show on the host, read_only is enforced, create
// makes the directory, and hash_content replaces on a content change.
func TestMounts(t *testing.T) {
	s := newStack(t)
	host := t.TempDir()
	shared, created, conf := filepath.Join(host, "shared"), filepath.Join(host, "new", "dir"), filepath.Join(host, "app.conf")
	os.MkdirAll(shared, 0o755)
	os.WriteFile(conf, []byte("v1\n"), 0o644)
	src := fmt.Sprintf(`
pod "files" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
    mount "/shared" { host_path = %q }
    mount "/ro" {
      host_path = %q
      read_only = true
    }
    mount "/created" { host_path = %q }
    mount "/etc/app.conf" {
      host_path    = %q
      read_only    = true
      hash_content = true
    }
  }
}`, shared, shared, created, conf)
	s.write(src)
	s.apply()
	id := s.containers()["files/main"].Id
	execIn(t, id, "sh", "-c", "echo from-container > /shared/out")
	if b, err := os.ReadFile(filepath.Join(shared, "out")); err != nil || string(b) != "from-container\n" {
		t.Errorf("host sees %q, %v", b, err)
	}
	resp, err := rt.ExecSync(context.Background(), &cri.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo x > /ro/x"}, Timeout: 10})
	if err != nil || resp.ExitCode == 0 || !strings.Contains(string(resp.Stderr), "Read-only file system") {
		t.Errorf("write to a read_only mount: %v exit %d %s", err, resp.GetExitCode(), resp.GetStderr())
	}
	if info, err := os.Stat(created); err != nil || !info.IsDir() {
		t.Errorf("create = true did not make %s: %v", created, err)
	}
	if got := execIn(t, id, "cat", "/etc/app.conf"); got != "v1\n" {
		t.Errorf("/etc/app.conf = %q", got)
	}

	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan with unchanged content: %s", p)
	}
	os.WriteFile(conf, []byte("v2\n"), 0o644)
	p := s.berth("plan", "--detailed-exitcode", s.dir)
	if p.code != 2 || !strings.Contains(p.stdout, `mounts["/etc/app.conf"].content_sha256`) || !strings.Contains(p.stdout, "# pod.files.container.main must be replaced") {
		t.Fatalf("plan after editing a hash_content file: %s", p)
	}
	s.apply()
	if got := execIn(t, s.containers()["files/main"].Id, "cat", "/etc/app.conf"); got != "v2\n" {
		t.Errorf("after replace /etc/app.conf = %q", got)
	}
}

// Resource limits reach the container's cgroup, and a memory change is
// applied in place: same container, same start time, new limit.
func TestResourcesInPlace(t *testing.T) {
	s := newStack(t)
	src := `
pod "limited" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
    resources {
      cpus   = 0.5
      memory = "64Mi"
    }
  }
}`
	s.write(src)
	s.apply()
	before := containerStatus(t, s.containers()["limited/main"].Id)
	if got := strings.TrimSpace(execIn(t, before.Id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")); got != fmt.Sprint(64<<20) {
		t.Errorf("memory limit in the cgroup = %s, want %d", got, 64<<20)
	}
	quota := strings.TrimSpace(execIn(t, before.Id, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"))
	period := strings.TrimSpace(execIn(t, before.Id, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
	if quota != "50000" || period != "100000" {
		t.Errorf("cpu quota/period = %s/%s, want 50000/100000", quota, period)
	}

	s.write(strings.Replace(src, `"64Mi"`, `"128Mi"`, 1))
	r := s.apply()
	if !strings.Contains(r.stdout, "will be updated in place") || !strings.Contains(r.stdout, "~ resources.memory = 67108864 -> 134217728") {
		t.Fatalf("apply: %s", r)
	}
	after := containerStatus(t, s.containers()["limited/main"].Id)
	if after.Id != before.Id || after.StartedAt != before.StartedAt {
		t.Fatalf("the container was restarted: %s@%d -> %s@%d", before.Id, before.StartedAt, after.Id, after.StartedAt)
	}
	if got := strings.TrimSpace(execIn(t, after.Id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")); got != fmt.Sprint(128<<20) {
		t.Errorf("memory limit after the update = %s", got)
	}
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan after the in-place update: %s", p)
	}
}

// stop_timeout: a container that handles SIGTERM gets its grace and exits
// by itself; one that ignores SIGTERM is killed when the grace is over.
func TestStopTimeout(t *testing.T) {
	s := newStack(t)
	src := fmt.Sprintf(`
pod "graceful" {
  container "traps" {
    image        = %[1]q
    command      = ["kvmtest", "stop-after", "1s"]
    stop_timeout = "30s"
  }
  container "ignores" {
    image        = %[1]q
    command      = ["kvmtest", "ignore-term"]
    stop_timeout = "2s"
  }
}`, kvmImage)
	s.write(src)
	s.apply()
	ctrs := s.containers()
	traps, ignores := ctrs["graceful/traps"].Id, ctrs["graceful/ignores"].Id
	for _, id := range []string{traps, ignores} {
		waitLog(t, id, "ready")
	}

	// Replace both: berth stops each with its own grace.
	trapsLog := containerStatus(t, traps).LogPath
	s.write(strings.NewReplacer(`"stop-after", "1s"`, `"stop-after", "1s", "v2"`, `"ignore-term"`, `"ignore-term", "v2"`).Replace(src))
	r := s.apply()
	if !strings.Contains(r.stdout, "Update complete") {
		t.Fatalf("apply: %s", r)
	}
	if l, _ := os.ReadFile(trapsLog); !strings.Contains(string(l), "got SIGTERM, exiting in 1s") {
		t.Errorf("the trapping container did not get SIGTERM:\n%s", l)
	}
	elapsed := progressTime(t, r.stdout, "pod.graceful")
	if elapsed < 2*time.Second {
		t.Errorf("the replace took %s, less than the 2s grace of the container that ignores SIGTERM", elapsed)
	}
	if elapsed >= 30*time.Second {
		t.Errorf("the replace took %s: the trapping container was not let go when it exited", elapsed)
	}
}

// waitLog waits until a container's log has a line.
func waitLog(t *testing.T, id, line string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logOf(t, id), line) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log of %s:\n%s", line, id, logOf(t, id))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// progressTime reads "ADDRESS: ... complete after D" from apply's output.
func progressTime(t *testing.T, out, addr string) time.Duration {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, addr+":") || !strings.Contains(line, "complete after ") {
			continue
		}
		f := strings.Fields(line[strings.Index(line, "complete after ")+len("complete after "):])
		d, err := time.ParseDuration(f[0])
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Fatalf("no completion line for %s in:\n%s", addr, out)
	return 0
}

// Preflight: a missing device or mount source fails the plan before any
// change; an optional missing device only warns.
func TestPreflight(t *testing.T) {
	s := newStack(t)
	missing := filepath.Join(t.TempDir(), "absent")
	cases := []struct {
		name, block, want string
		code              int
	}{
		{"missing device", `device "/dev/berth-missing" {}`, "device /dev/berth-missing does not exist on this host", 1},
		{"missing mount source", fmt.Sprintf("mount \"/data\" {\n  host_path = %q\n  create = false\n}", missing), "does not exist (no such file or directory). Create it, or set create = true.", 1},
		{"unknown CDI device", `cdi_devices = ["example.com/gpu=none"]`, `CDI device "example.com/gpu=none" is not defined by any spec`, 1},
		{"optional missing device", "device \"/dev/berth-missing\" {\n  optional = true\n}", "optional device /dev/berth-missing is missing on this host", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.write(fmt.Sprintf(`
pod "p" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    %s
  }
}`, tc.block))
			before := snapshot(t)
			r := s.berth("plan", "--detailed-exitcode", s.dir)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("plan: want exit %d and %q, got %s", tc.code, tc.want, r)
			}
			if tc.code == 1 {
				if a := s.berth("apply", "--auto-approve", s.dir); a.code != 1 {
					t.Fatalf("apply: %s", a)
				}
				if after := snapshot(t); after != before {
					t.Fatal("a failed preflight changed the runtime")
				}
			}
		})
	}
}

// A tmpfs is a sized memory file system in the container, empty again
// after a restart, and unmounted from the host when the pod goes.
func TestTmpfs(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "scratch" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
    tmpfs "/scratch" { size = "8Mi" }
  }
}`)
	s.apply()
	id := s.containers()["scratch/main"].Id
	df := execIn(t, id, "df", "-k", "/scratch")
	if !strings.Contains(df, "tmpfs") || !strings.Contains(df, " 8192 ") {
		t.Fatalf("df /scratch:\n%s", df)
	}
	execIn(t, id, "sh", "-c", "echo data > /scratch/f")

	// A restart gets a fresh, empty tmpfs.
	if _, err := rt.StopContainer(context.Background(), &cri.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	waitExited(t, id)
	s.apply()
	id2 := s.containers()["scratch/main"].Id
	if out := execIn(t, id2, "ls", "-A", "/scratch"); out != "" {
		t.Errorf("/scratch after a restart holds %q", out)
	}
	// The restart started attempt 1 before removing attempt 0: the host
	// holds the new attempt's tmpfs alone.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var attempts []string
	for line := range strings.Lines(string(mounts)) {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], "/run/berth/tmpfs/"+s.name+"/") {
			attempts = append(attempts, strings.TrimPrefix(path.Dir(f[4]), path.Dir(path.Dir(f[4]))+"/"))
		}
	}
	if !slices.Equal(attempts, []string{"1"}) {
		t.Errorf("the host holds tmpfs mounts of attempts %q, want [1] alone", attempts)
	}

	s.mustBerth("destroy", "--auto-approve", s.dir)
	mounts, _ = os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), "/run/berth/tmpfs/"+s.name+"/") {
		t.Fatalf("tmpfs mounts of the stack are left after destroy")
	}
	if _, err := os.Stat("/run/berth/tmpfs/" + s.name); !os.IsNotExist(err) {
		t.Fatalf("the stack's tmpfs directory is left: %v", err)
	}
}

// Security settings and host namespaces reach the container as declared.
func TestSecuritySettings(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "locked" {
  sysctls = { "net.ipv4.ip_unprivileged_port_start" = "80" }
  container "main" {
    image             = "docker.io/library/busybox:1.36"
    command           = ["sleep", "3600"]
    stop_timeout      = "1s"
    read_only_root    = true
    no_new_privileges = true
    user              = "65534:65534"
    capabilities { drop = ["ALL"] }
  }
}
pod "host" {
  host_network = true
  host_pid     = true
  privileged   = true
  container "main" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
    privileged   = true
    seccomp      = "unconfined"
  }
}`)
	r := s.apply()
	for _, w := range []string{"pod.host is privileged", "pod.host shares the host's PID, network namespaces", "pod.host.container.main is privileged"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("plan lacks the warning %q", w)
		}
	}
	ctrs := s.containers()
	locked, host := ctrs["locked/main"].Id, ctrs["host/main"].Id

	status := execIn(t, locked, "cat", "/proc/self/status")
	for _, want := range []string{"NoNewPrivs:\t1", "CapEff:\t0000000000000000", "Uid:\t65534", "Seccomp:\t2"} {
		if !strings.Contains(status, want) {
			t.Errorf("locked container's status lacks %q:\n%s", want, status)
		}
	}
	if got := strings.TrimSpace(execIn(t, locked, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")); got != "80" {
		t.Errorf("sysctl = %s, want 80", got)
	}
	resp, err := rt.ExecSync(context.Background(), &cri.ExecSyncRequest{ContainerId: locked, Cmd: []string{"touch", "/x"}, Timeout: 10})
	if err != nil || resp.ExitCode == 0 {
		t.Errorf("writing to a read-only root succeeded: %v", err)
	}

	hostStatus := execIn(t, host, "cat", "/proc/self/status")
	// Privileged: every capability the runtime itself has, SYS_ADMIN (bit 21) among them.
	var capEff uint64
	for _, line := range strings.Split(hostStatus, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			capEff, _ = strconv.ParseUint(v, 16, 64)
		}
	}
	if !strings.Contains(hostStatus, "Seccomp:\t0") || capEff&(1<<21) == 0 {
		t.Errorf("privileged unconfined container's status:\n%s", hostStatus)
	}
	// A private PID namespace per container: its command is PID 1. In the
	// host's, the runtime itself is visible.
	if cmd := execIn(t, locked, "cat", "/proc/1/cmdline"); cmd != "sleep\x003600\x00" {
		t.Errorf("PID 1 of a container is %q, want its own sleep 3600", cmd)
	}
	if out := execIn(t, host, "sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"); !strings.Contains(out, "containerd") {
		t.Errorf("host_pid: the runtime's processes are not visible")
	}
	// Host network: the host's interfaces, such as the test bridge, are visible.
	if dev := execIn(t, host, "cat", "/proc/net/dev"); !strings.Contains(dev, "berthtest0") {
		t.Errorf("host_network: the host bridge is not visible:\n%s", dev)
	}
}
