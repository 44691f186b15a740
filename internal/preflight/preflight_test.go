package preflight

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// fakeInfo is a file's mode for the fake Stat.
type fakeInfo struct{ mode fs.FileMode }

func (f fakeInfo) Name() string       { return "" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

// host has /dev/kvm (a device), /srv (a directory) and /etc/hosts (a file).
func host(t *testing.T) Host {
	files := map[string]fs.FileMode{"/dev/kvm": fs.ModeDevice | fs.ModeCharDevice, "/srv": fs.ModeDir, "/etc/hosts": 0}
	cdiDir := t.TempDir()
	spec := "cdiVersion: \"0.6.0\"\nkind: example.com/gpu\ndevices:\n  - name: \"0\"\n    containerEdits:\n      env: [\"GPU=0\"]\n"
	if err := os.WriteFile(filepath.Join(cdiDir, "gpu.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return Host{
		Stat: func(p string) (fs.FileInfo, error) {
			if m, ok := files[p]; ok {
				return fakeInfo{m}, nil
			}
			return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
		},
		CDISpecDirs: []string{cdiDir},
	}
}

func planWith(action planner.Action, c *spec.Container) *planner.Plan {
	return &planner.Plan{Pods: []*planner.PodChange{{Containers: []*planner.ContainerChange{
		{Address: spec.ContainerAddress("vm", "main"), Action: action, Desired: c},
	}}}}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name      string
		container spec.Container
		action    planner.Action
		errors    []string
		warnings  []string
		notes     []string
	}{
		{name: "all present", container: spec.Container{
			Devices:    []spec.Device{{HostPath: "/dev/kvm"}},
			Mounts:     []spec.Mount{{ContainerPath: "/data", HostPath: "/srv"}},
			CDIDevices: []string{"example.com/gpu=0"},
		}},
		{name: "missing kvm", container: spec.Container{Devices: []spec.Device{{HostPath: "/dev/kvm2"}}},
			errors: []string{"pod.vm.container.main: device /dev/kvm2 does not exist on this host. Check the device's driver"}},
		{name: "missing kvm hint", container: spec.Container{Devices: []spec.Device{{HostPath: "/dev/kvm"}}},
			action: planner.NoOp}, // running containers are not checked
		{name: "optional missing device", container: spec.Container{Devices: []spec.Device{{HostPath: "/dev/net/tun", Optional: true}}},
			warnings: []string{"optional device /dev/net/tun is missing"}},
		{name: "not a device", container: spec.Container{Devices: []spec.Device{{HostPath: "/etc/hosts"}}},
			errors: []string{"/etc/hosts is not a device node"}},
		{name: "missing mount without create", container: spec.Container{Mounts: []spec.Mount{{ContainerPath: "/data", HostPath: "/nope"}}},
			errors: []string{`the source of mount "/data", /nope, does not exist (file does not exist). Create it, or set create = true.`}},
		{name: "missing mount with create", container: spec.Container{Mounts: []spec.Mount{{ContainerPath: "/data", HostPath: "/nope", Create: true}, {ContainerPath: "/again", HostPath: "/nope", Create: true}}},
			notes: []string{"/nope does not exist: apply creates it, an empty directory (mode 0755), for the mounts that set create = true"}},
		{name: "present mount with create", container: spec.Container{Mounts: []spec.Mount{{ContainerPath: "/data", HostPath: "/srv", Create: true}}}},
		{name: "unknown CDI device", container: spec.Container{CDIDevices: []string{"example.com/gpu=1"}},
			errors: []string{`CDI device "example.com/gpu=1" is not defined by any spec`}},
		{name: "pids on cgroup v1", container: spec.Container{Resources: spec.Resources{Pids: 10}},
			errors: []string{"resources.pids needs cgroup v2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			action := tc.action
			if action == "" {
				action = planner.Create
			}
			r := Check(planWith(action, &tc.container), host(t))
			match(t, "errors", r.Errors, tc.errors)
			match(t, "warnings", r.Warnings, tc.warnings)
			match(t, "notes", r.Notes, tc.notes)
		})
	}
}

func TestKVMHint(t *testing.T) {
	h := host(t)
	h.Stat = func(p string) (fs.FileInfo, error) { return nil, fs.ErrNotExist }
	r := Check(planWith(planner.Replace, &spec.Container{Devices: []spec.Device{{HostPath: "/dev/kvm"}}}), h)
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "nested virtualisation") {
		t.Fatalf("errors = %q", r.Errors)
	}
}

func match(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %q, want %d matching %q", what, got, len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("%s[%d] = %q, want it to contain %q", what, i, got[i], want[i])
		}
	}
}

func TestPodNetworkAndPorts(t *testing.T) {
	write := func(dir, name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withPortmap, without, empty := t.TempDir(), t.TempDir(), t.TempDir()
	write(withPortmap, "10-net.conflist", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	write(withPortmap, "20-other.conflist", `{"cniVersion":"1.0.0","name":"o","plugins":[{"type":"bridge"}]}`)
	write(without, "10-net.conflist", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}`)

	plan := &planner.Plan{Pods: []*planner.PodChange{{Address: spec.PodAddress("web"), Action: planner.Create,
		Desired: &spec.Pod{Name: "web", Ports: []spec.Port{{Name: "http", Container: 80, Host: 8080, Protocol: "tcp"}}}}}}
	cases := []struct {
		dir, err string
	}{
		{withPortmap, ""},
		{without, "has none with the portMappings capability"},
		{empty, "no CNI network configuration"},
	}
	for _, tc := range cases {
		h := host(t)
		h.PodNetwork = func() (string, bool, error) { return PodNetwork(tc.dir) }
		r := Check(plan, h)
		if tc.err == "" && len(r.Errors) != 0 || tc.err != "" && (len(r.Errors) != 1 || !strings.Contains(r.Errors[0], tc.err)) {
			t.Errorf("%s: errors %q, want %q", tc.dir, r.Errors, tc.err)
		}
	}
	// Pods that stay are not checked: the network is only read when needed.
	plan.Pods[0].Action = planner.NoOp
	h := host(t)
	h.PodNetwork = func() (string, bool, error) {
		t.Fatal("read the network for a pod that is not created")
		return "", false, nil
	}
	Check(plan, h)
}
