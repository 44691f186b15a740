package crictl

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/runtime/criconfig"
	"github.com/berth-dev/berth/spec"
)

var update = flag.Bool("update", false, "rewrite the testdata/*/want.hcl files")

// TestConvert converts each fixture, checks the warnings name exactly the
// fields it could not carry, that the output is canonical and valid, and,
// for fixtures without losses, that berth sends the runtime what crictl
// would have sent.
func TestConvert(t *testing.T) {
	tests := []struct {
		dir        string
		pod        string
		containers []string
		opts       Options
		lossless   bool
		warnings   []string // file: path
	}{
		{
			dir: "windows", pod: "pod.json", containers: []string{"container.json"},
			opts: Options{Stack: "windows"}, lossless: true,
			warnings: []string{
				"pod.json: log_directory", "pod.json: metadata.attempt", "pod.json: metadata.uid",
				"container.json: linux.security_context.seccomp",
			},
		},
		{
			dir: "web", pod: "pod.yaml", containers: []string{"server.yaml", "sidecar.json"}, lossless: true,
			warnings: []string{"pod.yaml: metadata.uid"},
		},
		{
			dir: "hostnet", pod: "pod.json", containers: []string{"agent.json"}, lossless: true,
			warnings: []string{"pod.json: metadata.uid"},
		},
		{
			dir: "lossy", pod: "pod.json", containers: []string{"app.json"},
			warnings: []string{
				"pod.json: metadata.name",
				"pod.json: labels.berth.io/stack",
				"pod.json: port_mappings[0].host_port",
				"pod.json: portMappings",
				"pod.json: linux.cgroup_parent",
				"pod.json: linux.security_context.run_as_user.value",
				"pod.json: linux.security_context.selinux_options.type",
				"pod.json: metadata.attempt",
				"pod.json: metadata.uid",
				"app.json: envs[1]",
				"app.json: linux.resources.cpu_period",
				"app.json: linux.resources.unified.memory.high",
				"app.json: linux.security_context.privileged",
				"app.json: linux.security_context.namespace_options.pid",
				"app.json: linux.security_context.run_as_group",
				"app.json: linux.resources.oom_score_adj",
				"app.json: linux.security_context.masked_paths[0]",
				"app.json: metadata.attempt",
				"app.json: mounts[0].selinux_relabel",
				"app.json: stdin_once",
				"app.json: windows.resources.cpu_count",
			},
		},
		{
			dir: "windows", pod: "pod.json", containers: []string{"container.json"},
			opts: Options{Pod: "win11"},
			warnings: []string{
				"pod.json: log_directory", "pod.json: metadata.attempt", "pod.json: metadata.uid",
				"container.json: linux.security_context.seccomp",
			},
		},
	}
	for _, tt := range tests {
		name := tt.dir
		if tt.opts.Pod != "" {
			name += "-" + tt.opts.Pod
		}
		t.Run(name, func(t *testing.T) {
			pod := readFile(t, tt.dir, tt.pod)
			var containers []File
			for _, c := range tt.containers {
				containers = append(containers, readFile(t, tt.dir, c))
			}
			res, err := Convert(pod, containers, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range res.Warnings {
				got = append(got, filepath.Base(w.File)+": "+w.Path)
				if w.Message == "" {
					t.Errorf("warning %s has no message", w.Path)
				}
			}
			if diff := cmp.Diff(tt.warnings, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s\nall: %v", diff, res.Warnings)
			}
			if formatted := hclwrite.Format(res.HCL); !bytes.Equal(formatted, res.HCL) {
				t.Errorf("output is not canonical; berth fmt would write:\n%s", formatted)
			}
			golden(t, filepath.Join("testdata", name+".hcl"), res.HCL)

			cfg := load(t, res.HCL)
			if len(cfg.Pods) != 1 || len(cfg.Pods[0].Containers) != len(tt.containers) {
				t.Fatalf("want 1 pod with %d containers, got %+v", len(tt.containers), cfg.Pods)
			}
			if tt.opts.Stack != "" && cfg.Berth.Stack != tt.opts.Stack {
				t.Errorf("stack %q, want %q", cfg.Berth.Stack, tt.opts.Stack)
			}
			if tt.opts.Pod != "" && cfg.Pods[0].Name != tt.opts.Pod {
				t.Errorf("pod %q, want %q", cfg.Pods[0].Name, tt.opts.Pod)
			}
			if !tt.lossless {
				return
			}
			p := cfg.Pods[0]
			var wantPod cri.PodSandboxConfig
			unmarshal(t, pod, &wantPod)
			if diff := cmp.Diff(sandboxOf(&wantPod), sandboxOf(criconfig.Sandbox("s", p, "uid", "/logs"))); diff != "" {
				t.Errorf("sandbox (-crictl +berth):\n%s", diff)
			}
			for i, f := range containers {
				var want cri.ContainerConfig
				unmarshal(t, f, &want)
				wantView := containerOf(&want)
				gotView := containerOf(criconfig.Container("s", p, p.Containers[i], 0, criconfig.Host{}))
				if want.GetLinux().GetSecurityContext().GetSeccomp() == nil {
					// Reported: berth asks for the runtime's default profile
					// where crictl's config leaves it to the runtime.
					gotView.Seccomp = wantView.Seccomp
				}
				if want.GetLogPath() == "" {
					gotView.LogPath = "" // berth's default: <container>.log
				}
				if diff := cmp.Diff(wantView, gotView); diff != "" {
					t.Errorf("container %s (-crictl +berth):\n%s", f.Name, diff)
				}
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	pod := File{Name: "pod.json", Data: []byte(`{"metadata": {"name": "p"}}`)}
	ctr := File{Name: "c.json", Data: []byte(`{"metadata": {"name": "c"}, "image": {"image": "busybox"}}`)}
	tests := []struct {
		name       string
		pod        File
		containers []File
		opts       Options
		want       string
	}{
		{"no containers", pod, nil, Options{}, "no container configs"},
		{"not json", File{"pod.json", []byte("{")}, []File{ctr}, Options{}, "pod.json: unexpected end of JSON input"},
		{"not yaml", File{"pod.yaml", []byte("a: [")}, []File{ctr}, Options{}, "pod.yaml: not JSON or YAML"},
		{"wrong type", File{"pod.json", []byte(`{"hostname": 3}`)}, []File{ctr}, Options{}, "pod.json: json: cannot unmarshal number"},
		{"no pod name", File{"pod.json", []byte(`{}`)}, []File{ctr}, Options{}, "pod.json: metadata.name is empty"},
		{"no image", pod, []File{{"c.json", []byte(`{"metadata": {"name": "c"}}`)}}, Options{}, "c.json: image.image is empty"},
		{"twice", pod, []File{ctr, {"d.json", ctr.Data}}, Options{}, `d.json: container "c" is already declared in c.json`},
		{"bad pod flag", pod, []File{ctr}, Options{Pod: "Bad_Name"}, `pod name "Bad_Name"`},
		{"bad stack", pod, []File{ctr}, Options{Stack: "-x"}, `stack name "-x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Convert(tt.pod, tt.containers, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func readFile(t *testing.T, dir, name string) File {
	t.Helper()
	p := filepath.Join("testdata", dir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return File{Name: p, Data: data}
}

// unmarshal reads a fixture the way crictl does, independently of the code
// under test.
func unmarshal(t *testing.T, f File, out any) {
	t.Helper()
	if err := yaml.Unmarshal(f.Data, out); err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
}

func load(t *testing.T, src []byte) *spec.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	l := spec.NewLoader(spec.Options{LookupEnv: func(string) (string, bool) { return "", false }, Environ: func() []string { return nil }})
	cfg, diags := l.Load(dir)
	if diags.HasErrors() {
		t.Fatalf("the output does not load: %s\n%s", diags, src)
	}
	return cfg
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// sandboxView is what a pod config asks of the runtime, minus what berth
// decides itself (uid, attempt, log directory, its own labels).
type sandboxView struct {
	Name, Namespace, Hostname string
	Ports                     []string
	Network, PID, IPC         string
	Privileged                bool
	DNS                       string
	Sysctls                   map[string]string
	Labels, Annotations       map[string]string
}

func sandboxOf(c *cri.PodSandboxConfig) sandboxView {
	v := sandboxView{Name: c.GetMetadata().GetName(), Namespace: c.GetMetadata().GetNamespace(), Hostname: c.GetHostname(),
		Privileged: c.GetLinux().GetSecurityContext().GetPrivileged(),
		Sysctls:    nonEmpty(c.GetLinux().GetSysctls()),
		Labels:     userKeys(c.GetLabels()), Annotations: userKeys(c.GetAnnotations())}
	ns := c.GetLinux().GetSecurityContext().GetNamespaceOptions()
	v.Network, v.PID, v.IPC = ns.GetNetwork().String(), ns.GetPid().String(), ns.GetIpc().String()
	for _, p := range c.GetPortMappings() {
		v.Ports = append(v.Ports, fmt.Sprintf("%s %s:%d->%d", p.GetProtocol(), p.GetHostIp(), p.GetHostPort(), p.GetContainerPort()))
	}
	if d := c.GetDnsConfig(); d != nil {
		v.DNS = fmt.Sprint(d.Servers, d.Searches, d.Options)
	}
	return v
}

// containerView is what a container config asks of the runtime, minus
// the attempt and berth's own labels.
type containerView struct {
	Name, Image        string
	Command, Args      []string
	WorkingDir         string
	Env                []string
	Mounts, Devices    []string
	CDI                []string
	Privileged         bool
	CapAdd, CapDrop    []string
	User               string
	ReadOnly, NoNewPrv bool
	Seccomp, AppArmor  string
	Namespaces         string
	Resources          string
	TTY, Stdin         bool
	StopSignal         string
	LogPath            string
	Labels, Annots     map[string]string
}

func containerOf(c *cri.ContainerConfig) containerView {
	sc := c.GetLinux().GetSecurityContext()
	v := containerView{Name: c.GetMetadata().GetName(), Image: c.GetImage().GetImage(),
		Command: c.GetCommand(), Args: c.GetArgs(), WorkingDir: c.GetWorkingDir(),
		Privileged: sc.GetPrivileged(), ReadOnly: sc.GetReadonlyRootfs(), NoNewPrv: sc.GetNoNewPrivs(),
		CapAdd: sorted(sc.GetCapabilities().GetAddCapabilities()), CapDrop: sorted(sc.GetCapabilities().GetDropCapabilities()),
		User:    fmt.Sprintf("uid=%v gid=%v name=%q", sc.GetRunAsUser(), sc.GetRunAsGroup(), sc.GetRunAsUsername()),
		Seccomp: fmt.Sprint(sc.GetSeccomp()), AppArmor: fmt.Sprint(sc.GetApparmor()),
		TTY: c.GetTty(), Stdin: c.GetStdin(), StopSignal: c.GetStopSignal().String(), LogPath: c.GetLogPath(),
		Labels: userKeys(c.GetLabels()), Annots: userKeys(c.GetAnnotations())}
	ns := sc.GetNamespaceOptions()
	v.Namespaces = fmt.Sprintf("network=%s pid=%s ipc=%s", ns.GetNetwork(), ns.GetPid(), ns.GetIpc())
	for _, e := range c.GetEnvs() {
		v.Env = append(v.Env, e.GetKey()+"="+string(e.GetValue()))
	}
	sort.Strings(v.Env)
	for _, m := range c.GetMounts() {
		v.Mounts = append(v.Mounts, fmt.Sprintf("%s:%s ro=%t %s", m.GetHostPath(), m.GetContainerPath(), m.GetReadonly(), m.GetPropagation()))
	}
	for _, d := range c.GetDevices() {
		v.Devices = append(v.Devices, fmt.Sprintf("%s:%s:%s", d.GetHostPath(), d.GetContainerPath(), d.GetPermissions()))
	}
	for _, d := range c.GetCDIDevices() {
		v.CDI = append(v.CDI, d.GetName())
	}
	if r := c.GetLinux().GetResources(); r != nil {
		cpus := 0.0
		if r.GetCpuQuota() > 0 {
			cpus = float64(r.GetCpuQuota()) / float64(r.GetCpuPeriod())
		}
		v.Resources = fmt.Sprintf("cpus=%g shares=%d memory=%d cpuset=%q unified=%v",
			cpus, r.GetCpuShares(), r.GetMemoryLimitInBytes(), r.GetCpusetCpus(), r.GetUnified())
	}
	return v
}

func userKeys(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !strings.HasPrefix(k, spec.LabelPrefix) {
			out[k] = v
		}
	}
	return nonEmpty(out)
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// An input file's name goes into the output's first comment quoted when
// it holds anything but plain characters: a newline in it must not end
// the comment and write configuration of its own.
func TestFileNamesCannotWriteConfiguration(t *testing.T) {
	pod := File{Name: "dir/pod\npod \"evil\" {\n  container \"x\" { image = \"evil\" }\n}\n#.json", Data: []byte(`{"metadata": {"name": "p"}}`)}
	ctr := File{Name: "c.json", Data: []byte(`{"metadata": {"name": "c"}, "image": {"image": "busybox"}}`)}
	res, err := Convert(pod, []File{ctr}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(res.HCL, "main.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("the output does not parse: %s\n%s", diags, res.HCL)
	}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if len(b.Labels) > 0 && b.Labels[0] == "evil" {
			t.Fatalf("the file name wrote a pod:\n%s", res.HCL)
		}
	}
}
