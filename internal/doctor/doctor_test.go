package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
)

// stub is a runtime whose answers each case sets.
type stub struct {
	version    string
	config     string
	configPath string
	deps       []runtime.Deprecation
	images     []*cri.Image
	sandboxes  []*cri.PodSandbox
	conditions []*cri.RuntimeCondition
}

func (s *stub) Version(context.Context) (*cri.VersionResponse, error) {
	return &cri.VersionResponse{RuntimeName: "containerd", RuntimeVersion: s.version, RuntimeApiVersion: "v1"}, nil
}
func (s *stub) Status(context.Context) (*cri.StatusResponse, error) {
	conds := append([]*cri.RuntimeCondition{{Type: "RuntimeReady", Status: true}}, s.conditions...)
	return &cri.StatusResponse{Status: &cri.RuntimeStatus{Conditions: conds}, Info: map[string]string{"config": s.config}}, nil
}
func (s *stub) RegistryConfigPath(context.Context) (string, error)          { return s.configPath, nil }
func (s *stub) Deprecations(context.Context) ([]runtime.Deprecation, error) { return s.deps, nil }
func (s *stub) ListImages(context.Context) ([]*cri.Image, error)            { return s.images, nil }
func (s *stub) ListSandboxes(context.Context, map[string]string) ([]*cri.PodSandbox, error) {
	return s.sandboxes, nil
}

func TestRun(t *testing.T) {
	root := t.TempDir()
	mkdir := func(name string, files ...string) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	bins := mkdir("bin", "bridge", "host-local", "loopback", "portmap")
	noPortmap := mkdir("noportmap", "bridge", "host-local", "loopback")
	confDir := mkdir("net.d", "10-lan.conflist")
	emptyConf := mkdir("empty")
	kubeletConfig := filepath.Join(root, "kubelet.yaml")
	if err := os.WriteFile(kubeletConfig, []byte("containerRuntimeEndpoint: unix:///run/other.sock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	config := func(bin, conf string, restrict bool) string {
		r := "false"
		if restrict {
			r = "true"
		}
		return `{"restrictOOMScoreAdj":` + r + `,"cni":{"binDirs":["` + bin + `"],"confDir":"` + conf + `"}}`
	}
	good := func() *stub {
		return &stub{version: "v2.4.2", config: config(bins, confDir, true), configPath: "/etc/containerd/certs.d",
			images: []*cri.Image{{RepoTags: []string{"registry.k8s.io/pause:3.10.2"}, Pinned: true}}}
	}
	// The host sees only the test's directories (and a cgroup v1).
	goodHost := func() Host {
		return Host{
			Stat: func(p string) (os.FileInfo, error) {
				if strings.HasPrefix(p, root) {
					return os.Stat(p)
				}
				return nil, os.ErrNotExist
			},
			ReadFile: func(p string) ([]byte, error) {
				if p == "/proc/self/status" {
					return []byte("CapEff:\t000001fffeffffff\n"), nil
				}
				return os.ReadFile(p)
			},
			ReadDir:  os.ReadDir,
			KVM:      func() (int, error) { return 12, nil },
			Tun:      func() error { return nil },
			Kubelets: func() []Process { return nil },
		}
	}
	kubelet := func(args ...string) func() []Process {
		return func() []Process { return []Process{{PID: 42, Cmdline: append([]string{"/usr/bin/kubelet"}, args...)}} }
	}
	const address = "unix:///run/berth-test/containerd.sock"
	cases := []struct {
		name    string
		mutate  func(*stub, *Host, *string)
		want    map[string]Level // check -> level; checks not named must be OK or a cgroup warning
		fix     string
		message string
	}{
		{name: "healthy", mutate: func(*stub, *Host, *string) {}},
		{name: "no config_path", mutate: func(s *stub, _ *Host, _ *string) { s.configPath = "" },
			want: map[string]Level{"registry.config_path": Warn}, fix: `config_path = "/etc/containerd/certs.d"`},
		{name: "config_path of several directories", mutate: func(s *stub, _ *Host, _ *string) {
			s.configPath = "/etc/containerd/certs.d:/etc/docker/certs.d"
		}, want: map[string]Level{"registry.config_path": OK}, message: "mirror blocks are written to /etc/containerd/certs.d, which containerd reads first"},
		{name: "network not ready", mutate: func(s *stub, _ *Host, _ *string) {
			s.conditions = []*cri.RuntimeCondition{{Type: "NetworkReady", Status: false, Reason: "NetworkPluginNotReady", Message: "cni config load failed"}}
		}, want: map[string]Level{"cri.NetworkReady": Fail}, fix: "cni config load failed", message: "NetworkReady is false: NetworkPluginNotReady"},
		{name: "deprecation warnings", mutate: func(s *stub, _ *Host, _ *string) {
			s.conditions = []*cri.RuntimeCondition{{Type: "ContainerdHasNoDeprecationWarnings", Status: false, Reason: "ContainerdHasDeprecationWarnings",
				Message: `{"io.containerd.deprecation/cri-registry-mirrors":"Use config_path instead."}`}}
		}, want: map[string]Level{"cri.ContainerdHasNoDeprecationWarnings": Warn}, fix: "Use config_path instead.",
			message: "ContainerdHasNoDeprecationWarnings is false: io.containerd.deprecation/cri-registry-mirrors"},
		{name: "missing portmap", mutate: func(s *stub, _ *Host, _ *string) { s.config = config(noPortmap, confDir, true) },
			want: map[string]Level{"cni.plugins": Fail}, fix: "containernetworking-plugins", message: "missing in " + noPortmap + ": portmap"},
		{name: "missing bin dir", mutate: func(s *stub, _ *Host, _ *string) { s.config = config(root+"/nope", confDir, true) },
			want: map[string]Level{"cni.bin_dirs": Fail, "cni.plugins": Fail}, fix: "bin_dirs", message: "missing: " + root + "/nope"},
		{name: "no network in the conf dir", mutate: func(s *stub, _ *Host, _ *string) { s.config = config(bins, emptyConf, true) },
			want: map[string]Level{"cni.conf_dir": Warn}, fix: "network block", message: "holds no network configuration"},
		{name: "old containerd", mutate: func(s *stub, _ *Host, _ *string) { s.version = "1.7.20" }, want: map[string]Level{"runtime": Warn},
			fix: "containerd 2.2 or later"},
		{name: "containerd 2.1", mutate: func(s *stub, _ *Host, _ *string) { s.version = "v2.1.4" }, want: map[string]Level{"runtime": Warn},
			fix: "2.2 or later is recommended"},
		{name: "no restrict_oom_score_adj without CAP_SYS_RESOURCE", mutate: func(s *stub, _ *Host, _ *string) { s.config = config(bins, confDir, false) },
			want: map[string]Level{"cap_sys_resource": Warn}, fix: "restrict_oom_score_adj = true"},
		{name: "deprecated registry mirrors", mutate: func(s *stub, _ *Host, _ *string) {
			s.deps = []runtime.Deprecation{{ID: "io.containerd.deprecation/cri-registry-mirrors", Message: "mirrors are deprecated"}}
		}, want: map[string]Level{"registry.deprecated": Warn}, fix: "hosts.toml"},
		{name: "no pause image", mutate: func(s *stub, _ *Host, _ *string) { s.images = nil }, want: map[string]Level{"sandbox_image": Warn}},
		{name: "a kubelet's pods", mutate: func(s *stub, _ *Host, _ *string) {
			s.sandboxes = []*cri.PodSandbox{{Labels: map[string]string{"io.kubernetes.pod.uid": "x"}}}
		}, want: map[string]Level{"kubelet": Warn}, message: "1 pods of a kubelet"},
		{name: "a kubelet on this socket", mutate: func(_ *stub, h *Host, _ *string) {
			h.Kubelets = kubelet("--container-runtime-endpoint=" + address)
		}, want: map[string]Level{"kubelet": Warn}, message: "a kubelet (pid 42) uses this runtime", fix: "runtime of its own"},
		{name: "a kubelet on the default socket", mutate: func(_ *stub, h *Host, a *string) {
			h.Kubelets, *a = kubelet("--v=2"), "unix:///run/containerd/containerd.sock"
		}, want: map[string]Level{"kubelet": Warn}, message: "uses the default, this runtime"},
		{name: "a kubelet on another runtime, by its config file", mutate: func(_ *stub, h *Host, a *string) {
			h.Kubelets, *a = kubelet("--config", kubeletConfig), "unix:///run/containerd/containerd.sock"
		}, message: "a kubelet runs (pid 42), on another runtime"},
		{name: "a kubelet's socket without a process", mutate: func(_ *stub, h *Host, _ *string) {
			stat := h.Stat
			h.Stat = func(p string) (os.FileInfo, error) {
				if p == kubeletSocket {
					return os.Stat(root)
				}
				return stat(p)
			}
		}, want: map[string]Level{"kubelet": Warn}, message: kubeletSocket + " exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, h, addr := good(), goodHost(), address
			tc.mutate(s, &h, &addr)
			findings := Run(context.Background(), s, nil, h, addr)
			fixes, messages := "", ""
			seen := map[string]bool{}
			for _, f := range findings {
				seen[f.Check] = true
				want, named := tc.want[f.Check]
				switch {
				case named && f.Level != want:
					t.Errorf("%s: %s (%s), want %s", f.Check, f.Level, f.Message, want)
				case !named && f.Level != OK && f.Check != "cgroup":
					t.Errorf("%s: %s (%s), want ok", f.Check, f.Level, f.Message)
				}
				fixes += f.Fix + "\n"
				messages += f.Message + "\n"
			}
			for _, c := range []string{"runtime", "cri.RuntimeReady", "cni.conf_dir", "cni.bin_dirs", "cni.plugins", "registry.config_path",
				"sandbox_image", "kubelet", "/dev/kvm", "/dev/net/tun", "cgroup", "cap_sys_resource"} {
				if !seen[c] {
					t.Errorf("no %s finding", c)
				}
			}
			if !strings.Contains(fixes, tc.fix) {
				t.Errorf("no fix mentions %q:\n%s", tc.fix, fixes)
			}
			if !strings.Contains(messages, tc.message) {
				t.Errorf("no message mentions %q:\n%s", tc.message, messages)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	host := Host{Stat: os.Stat, ReadFile: os.ReadFile, ReadDir: os.ReadDir, KVM: func() (int, error) { return 0, errors.New("no kvm") }, Tun: func() error { return nil }}
	findings := Run(context.Background(), nil, errors.New("dial failed"), host, "unix:///nonexistent.sock")
	if findings[0].Check != "runtime" || findings[0].Level != Fail || !strings.Contains(findings[0].Fix, "BERTH_ADDRESS") {
		t.Fatalf("first finding %+v", findings[0])
	}
	for _, f := range findings {
		if f.Check == "/dev/kvm" && f.Level != Warn {
			t.Errorf("/dev/kvm: %+v", f)
		}
	}
}
