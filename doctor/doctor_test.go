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
}

func (s *stub) Version(context.Context) (*cri.VersionResponse, error) {
	return &cri.VersionResponse{RuntimeName: "containerd", RuntimeVersion: s.version, RuntimeApiVersion: "v1"}, nil
}
func (s *stub) Status(context.Context) (*cri.StatusResponse, error) {
	return &cri.StatusResponse{Status: &cri.RuntimeStatus{Conditions: []*cri.RuntimeCondition{{Type: "RuntimeReady", Status: true}}},
		Info: map[string]string{"config": s.config}}, nil
}
func (s *stub) RegistryConfigPath(context.Context) (string, error)          { return s.configPath, nil }
func (s *stub) Deprecations(context.Context) ([]runtime.Deprecation, error) { return s.deps, nil }
func (s *stub) ListImages(context.Context) ([]*cri.Image, error)            { return s.images, nil }
func (s *stub) ListSandboxes(context.Context, map[string]string) ([]*cri.PodSandbox, error) {
	return s.sandboxes, nil
}

func TestRun(t *testing.T) {
	bins := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		os.WriteFile(filepath.Join(bins, p), nil, 0o755)
	}
	noPortmap := t.TempDir()
	os.WriteFile(filepath.Join(noPortmap, "bridge"), nil, 0o755)
	config := func(dir string, restrict bool) string {
		r := "false"
		if restrict {
			r = "true"
		}
		return `{"restrictOOMScoreAdj":` + r + `,"cni":{"binDirs":["` + dir + `"],"confDir":"/etc/cni/net.d"}}`
	}
	good := func() *stub {
		return &stub{version: "v2.4.2", config: config(bins, true), configPath: "/etc/containerd/certs.d",
			images: []*cri.Image{{RepoTags: []string{"registry.k8s.io/pause:3.10.2"}, Pinned: true}}}
	}
	host := Host{
		Stat:     func(string) (os.FileInfo, error) { return nil, os.ErrNotExist },
		ReadFile: func(string) ([]byte, error) { return []byte("CapEff:\t000001fffeffffff\n"), nil },
		KVM:      func() (int, error) { return 12, nil },
		Tun:      func() error { return nil },
	}
	cases := []struct {
		name   string
		mutate func(*stub)
		want   map[string]Level // check -> level; checks not named must be OK or a cgroup warning
		fix    string
	}{
		{name: "healthy", mutate: func(*stub) {}},
		{name: "no config_path", mutate: func(s *stub) { s.configPath = "" },
			want: map[string]Level{"registry.config_path": Warn}, fix: `config_path = "/etc/containerd/certs.d"`},
		{name: "missing portmap", mutate: func(s *stub) { s.config = config(noPortmap, true) },
			want: map[string]Level{"cni.plugins": Fail}, fix: "containernetworking-plugins"},
		{name: "old containerd", mutate: func(s *stub) { s.version = "1.7.20" }, want: map[string]Level{"runtime": Warn}},
		{name: "no restrict_oom_score_adj without CAP_SYS_RESOURCE", mutate: func(s *stub) { s.config = config(bins, false) },
			want: map[string]Level{"cap_sys_resource": Warn}, fix: "restrict_oom_score_adj = true"},
		{name: "deprecated registry mirrors", mutate: func(s *stub) {
			s.deps = []runtime.Deprecation{{ID: "io.containerd.deprecation/cri-registry-mirrors", Message: "mirrors are deprecated"}}
		}, want: map[string]Level{"registry.deprecated": Warn}, fix: "hosts.toml"},
		{name: "no pause image", mutate: func(s *stub) { s.images = nil }, want: map[string]Level{"sandbox_image": Warn}},
		{name: "a kubelet's pods", mutate: func(s *stub) {
			s.sandboxes = []*cri.PodSandbox{{Labels: map[string]string{"io.kubernetes.pod.uid": "x"}}}
		}, want: map[string]Level{"kubelet": Warn}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.mutate(s)
			findings := Run(context.Background(), s, nil, host)
			fixes := ""
			for _, f := range findings {
				want, named := tc.want[f.Check]
				switch {
				case named && f.Level != want:
					t.Errorf("%s: %s (%s), want %s", f.Check, f.Level, f.Message, want)
				case !named && f.Level != OK && f.Check != "cgroup":
					t.Errorf("%s: %s (%s), want ok", f.Check, f.Level, f.Message)
				}
				fixes += f.Fix
			}
			if !strings.Contains(fixes, tc.fix) {
				t.Errorf("no fix mentions %q", tc.fix)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	host := Host{Stat: os.Stat, ReadFile: os.ReadFile, KVM: func() (int, error) { return 0, errors.New("no kvm") }, Tun: func() error { return nil }}
	findings := Run(context.Background(), nil, errors.New("dial failed"), host)
	if findings[0].Check != "runtime" || findings[0].Level != Fail || !strings.Contains(findings[0].Fix, "BERTH_ADDRESS") {
		t.Fatalf("first finding %+v", findings[0])
	}
	for _, f := range findings {
		if f.Check == "/dev/kvm" && f.Level != Warn {
			t.Errorf("/dev/kvm: %+v", f)
		}
	}
}
