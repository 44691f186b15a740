package spec

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// The golden hashes below must never change: berth stores them as labels on
// the sandboxes and containers it creates, and a different hash for the same
// configuration would make the next berth version replace every workload.
// If a test here fails, fix the code, not the constants.
//
// Each is the first 16 bytes, in hex, of the SHA-256 of the spec fields'
// JSON (checked independently of Go); e.g. the minimal pod hashes
// {"namespace":"default"} and the minimal container
// {"image":"busybox","log_path":"c.log"}.
const (
	goldenPodHash          = "7722d94a93aee4ac1689a47833ebc06e"
	goldenMinimalPodHash   = "85ee577ad99c62f314abca9f43ad87c2"
	goldenContainerHash    = "f3ffb5e2ddc301fc66020316eb1a5781"
	goldenMinimalCtrHash   = "08f036147ac7bd32b826da1df8b2d290"
	goldenPodRecJSON       = `{"namespace":"apps","hostname":"web-host","labels":{"app":"web","tier":"front"},"annotations":{"example.com/owner":"ops"},"runtime":"runc","dns":{"servers":["192.0.2.53","192.0.2.54"],"searches":["lan"],"options":["ndots:2"]},"restart":"on_failure","depends_on":["db","cache"],"prevent_replace":true}`
	goldenContainerRecJSON = `{"image":"docker.io/library/nginx:1.27","command":["nginx"],"args":["-g","daemon off;"],"env":{"FROM_FILE":"1","MODE":"prod","PASSWORD":"(sensitive)"},"working_dir":"/srv","user":"1000:1000","tty":true,"stdin":true,"init":true,"stop_signal":"SIGQUIT","labels":{"role":"app"},"annotations":{"note":"x"},"log_path":"app/out.log","pull":"always","env_file":["app.env"],"restart":"always","stop_timeout":"2m0s","sensitive":["env.PASSWORD"]}`
)

// goldenPod sets every field of Pod that the spec language implements.
func goldenPod() *Pod {
	return &Pod{
		Name:           "web",
		Namespace:      "apps",
		Hostname:       "web-host",
		Labels:         map[string]string{"app": "web", "tier": "front"},
		Annotations:    map[string]string{"example.com/owner": "ops"},
		Runtime:        "runc",
		Restart:        RestartOnFailure,
		DependsOn:      []string{"db", "cache"},
		PreventReplace: true,
		DNS: &DNS{
			Servers:  []string{"192.0.2.53", "192.0.2.54"},
			Searches: []string{"lan"},
			Options:  []string{"ndots:2"},
		},
		DeclRange: hcl.Range{Filename: "web.hcl", Start: hcl.Pos{Line: 1, Column: 1}},
	}
}

// goldenContainer sets every field of Container.
func goldenContainer() *Container {
	return &Container{
		Name:        "app",
		Image:       "docker.io/library/nginx:1.27",
		Pull:        PullAlways,
		Command:     []string{"nginx"},
		Args:        []string{"-g", "daemon off;"},
		Env:         map[string]string{"MODE": "prod", "PASSWORD": "hunter2", "FROM_FILE": "1"},
		EnvFiles:    []string{"app.env"},
		WorkingDir:  "/srv",
		User:        "1000:1000",
		TTY:         true,
		Stdin:       true,
		Init:        true,
		Restart:     RestartAlways,
		StopSignal:  "SIGQUIT",
		StopTimeout: 2 * time.Minute,
		Labels:      map[string]string{"role": "app"},
		Annotations: map[string]string{"note": "x"},
		LogPath:     "app/out.log",
		Sensitive:   []string{"env.PASSWORD"},
		DeclRange:   hcl.Range{Filename: "web.hcl", Start: hcl.Pos{Line: 3, Column: 3}},
	}
}

// hostPod is goldenPod with the host settings of the VM workloads release;
// its hash is pinned too.
func hostPod() *Pod {
	p := goldenPod()
	p.HostNetwork, p.HostPID, p.HostIPC, p.Privileged = true, true, true, true
	p.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	return p
}

// hostContainer is goldenContainer with devices, mounts, security and
// resources set.
func hostContainer() *Container {
	c := goldenContainer()
	c.Privileged, c.ReadOnlyRoot, c.NoNewPrivileges = true, true, true
	c.CapAdd, c.CapDrop = []string{"NET_ADMIN"}, []string{"MKNOD"}
	c.Seccomp, c.AppArmor = "unconfined", "localhost/vm"
	c.Devices = []Device{{HostPath: "/dev/kvm", ContainerPath: "/dev/kvm", Permissions: "rwm"}}
	c.CDIDevices = []string{"nvidia.com/gpu=all"}
	c.Mounts = []Mount{{ContainerPath: "/storage", HostPath: "/srv/vm", Propagation: PropagationPrivate, Create: true}}
	c.Tmpfs = []Tmpfs{{Path: "/run", Size: 64 << 20}}
	c.Resources = Resources{CPUs: 4, Memory: 8 << 30}
	return c
}

const (
	goldenHostPodHash       = "698446a20ef4b351c4486757034e7af1"
	goldenHostContainerHash = "d78ac231856a2c24569c1fccd134fc8c"
)

func TestHashGolden(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"full pod", goldenPod().Hash(), goldenPodHash},
		{"minimal pod", (&Pod{Name: "p", Namespace: "default", Restart: RestartAlways}).Hash(), goldenMinimalPodHash},
		{"full container", goldenContainer().Hash(), goldenContainerHash},
		{"host pod", hostPod().Hash(), goldenHostPodHash},
		{"host container", hostContainer().Hash(), goldenHostContainerHash},
		{"minimal container", (&Container{Name: "c", Image: "busybox", Pull: PullIfNotPresent, Restart: RestartAlways, StopTimeout: DefaultStopTimeout, LogPath: "c.log"}).Hash(), goldenMinimalCtrHash},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: Hash() = %q, want %q (a changed hash replaces every deployed workload)", tt.name, tt.got, tt.want)
		}
		if len(tt.got) != 32 || strings.Trim(tt.got, "0123456789abcdef") != "" {
			t.Errorf("%s: Hash() = %q is not 32 lower-case hex digits (it is used as a label value)", tt.name, tt.got)
		}
	}
}

// TestRecordGolden pins the JSON that berth stores in annotations; a later
// berth must read what an earlier one wrote.
func TestRecordGolden(t *testing.T) {
	pj, err := json.Marshal(goldenPod().Record())
	if err != nil {
		t.Fatal(err)
	}
	if string(pj) != goldenPodRecJSON {
		t.Errorf("pod record JSON =\n%s\nwant\n%s", pj, goldenPodRecJSON)
	}
	cj, err := json.Marshal(goldenContainer().Record())
	if err != nil {
		t.Fatal(err)
	}
	if string(cj) != goldenContainerRecJSON {
		t.Errorf("container record JSON =\n%s\nwant\n%s", cj, goldenContainerRecJSON)
	}
}

func TestPodHashFields(t *testing.T) {
	tests := []struct {
		field   string // record key
		mutate  func(p *Pod)
		replace bool // whether the hash must change
	}{
		{"namespace", func(p *Pod) { p.Namespace = "default" }, true},
		{"hostname", func(p *Pod) { p.Hostname = "other" }, true},
		{"hostname", func(p *Pod) { p.Hostname = "" }, true},
		{"labels", func(p *Pod) { p.Labels["tier"] = "back" }, true},
		{"labels", func(p *Pod) { p.Labels["new"] = "x" }, true},
		{"labels", func(p *Pod) { delete(p.Labels, "tier") }, true},
		{"labels", func(p *Pod) { p.Labels = map[string]string{"app": "front", "tier": "web"} }, true}, // values swapped
		{"annotations", func(p *Pod) { p.Annotations["example.com/owner"] = "dev" }, true},
		{"annotations", func(p *Pod) { p.Annotations = nil }, true},
		{"runtime", func(p *Pod) { p.Runtime = "kata" }, true},
		{"dns", func(p *Pod) { p.DNS.Servers = []string{"192.0.2.54", "192.0.2.53"} }, true}, // order matters
		{"dns", func(p *Pod) { p.DNS.Searches = append(p.DNS.Searches, "corp") }, true},
		{"dns", func(p *Pod) { p.DNS.Options = nil }, true},
		{"dns", func(p *Pod) { p.DNS = nil }, true},
		{"host_network", func(p *Pod) { p.HostNetwork = true }, true},
		{"host_pid", func(p *Pod) { p.HostPID = true }, true},
		{"host_ipc", func(p *Pod) { p.HostIPC = true }, true},
		{"privileged", func(p *Pod) { p.Privileged = true }, true},
		{"sysctls", func(p *Pod) { p.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"} }, true},
		{"ports", func(p *Pod) { p.Ports = []Port{{Name: "web", Container: 80, Host: 8080, Protocol: "tcp"}} }, true},

		// Policy fields steer berth and must never replace a pod.
		{"restart", func(p *Pod) { p.Restart = RestartNever }, false},
		{"depends_on", func(p *Pod) { p.DependsOn = nil }, false},
		{"depends_on", func(p *Pod) { p.DependsOn = []string{"cache", "db", "queue"} }, false},
		{"prevent_replace", func(p *Pod) { p.PreventReplace = false }, false},
		{"update_order", func(p *Pod) { p.UpdateOrder = StartFirst }, false},
		{"min_ready", func(p *Pod) { p.MinReady = time.Second }, false},
		// Neither do things that are not part of the spec at all.
		{"(name)", func(p *Pod) { p.Name = "renamed" }, false},
		{"(decl range)", func(p *Pod) { p.DeclRange = hcl.Range{Filename: "moved.hcl"} }, false},
		{"(containers)", func(p *Pod) { p.Containers = []*Container{goldenContainer()} }, false},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		p := goldenPod()
		before, beforeRec := p.Hash(), goldenPod().Record() // Record shares p's maps
		tt.mutate(p)
		after := p.Hash()
		if changed := after != before; changed != tt.replace {
			t.Errorf("%s: hash changed = %v, want %v", tt.field, changed, tt.replace)
		}
		if tt.replace {
			covered[tt.field] = true
			if !slices.Contains(PodReplaceFields, tt.field) {
				t.Errorf("%s changes the hash but is not in PodReplaceFields", tt.field)
			}
		} else if slices.Contains(PodReplaceFields, tt.field) {
			t.Errorf("%s is in PodReplaceFields but a change of it keeps the hash", tt.field)
		}
		// The record shows every spec and policy change.
		if !strings.HasPrefix(tt.field, "(") && reflect.DeepEqual(p.Record(), beforeRec) {
			t.Errorf("%s: the change is not visible in Record()", tt.field)
		}
	}
	for _, f := range PodReplaceFields {
		if !covered[f] {
			t.Errorf("PodReplaceFields has %q, but no test case changes it", f)
		}
	}

	// An empty map is the same spec as no map.
	a, b := goldenPod(), goldenPod()
	a.Labels, a.Annotations = nil, nil
	b.Labels, b.Annotations = map[string]string{}, map[string]string{}
	if a.Hash() != b.Hash() {
		t.Error("nil and empty labels hash differently")
	}
}

func TestContainerHashFields(t *testing.T) {
	tests := []struct {
		field   string
		mutate  func(c *Container)
		replace bool
	}{
		{"image", func(c *Container) { c.Image = "docker.io/library/nginx:1.28" }, true},
		{"command", func(c *Container) { c.Command = []string{"nginx", "-c", "/x"} }, true},
		{"command", func(c *Container) { c.Command = nil }, true},
		{"args", func(c *Container) { c.Args = []string{"daemon off;", "-g"} }, true}, // order matters
		{"env", func(c *Container) { c.Env["MODE"] = "dev" }, true},
		{"env", func(c *Container) { c.Env["NEW"] = "" }, true},
		{"env", func(c *Container) { c.Env["FROM_FILE"] = "2" }, true},      // env_file contents count
		{"env", func(c *Container) { c.Env["PASSWORD"] = "hunter3" }, true}, // secrets count too (but stay out of the record)
		{"working_dir", func(c *Container) { c.WorkingDir = "/" }, true},
		{"user", func(c *Container) { c.User = "0" }, true},
		{"tty", func(c *Container) { c.TTY = false }, true},
		{"stdin", func(c *Container) { c.Stdin = false }, true},
		{"init", func(c *Container) { c.Init = false }, true},
		{"stop_signal", func(c *Container) { c.StopSignal = "SIGTERM" }, true},
		{"stop_signal", func(c *Container) { c.StopSignal = "" }, true},
		{"labels", func(c *Container) { c.Labels["role"] = "db" }, true},
		{"annotations", func(c *Container) { c.Annotations = map[string]string{"note": "y"} }, true},
		{"log_path", func(c *Container) { c.LogPath = "app.log" }, true},
		{"privileged", func(c *Container) { c.Privileged = true }, true},
		{"read_only_root", func(c *Container) { c.ReadOnlyRoot = true }, true},
		{"no_new_privileges", func(c *Container) { c.NoNewPrivileges = true }, true},
		{"capabilities", func(c *Container) { c.CapAdd = []string{"NET_ADMIN"} }, true},
		{"capabilities", func(c *Container) { c.CapDrop = []string{"ALL"} }, true},
		{"seccomp", func(c *Container) { c.Seccomp = "unconfined" }, true},
		{"apparmor", func(c *Container) { c.AppArmor = "unconfined" }, true},
		{"devices", func(c *Container) {
			c.Devices = []Device{{HostPath: "/dev/kvm", ContainerPath: "/dev/kvm", Permissions: "rwm"}}
		}, true},
		{"cdi_devices", func(c *Container) { c.CDIDevices = []string{"nvidia.com/gpu=0"} }, true},
		{"mounts", func(c *Container) {
			c.Mounts = []Mount{{ContainerPath: "/data", HostPath: "/srv", Propagation: PropagationPrivate}}
		}, true},
		{"mounts", func(c *Container) {
			c.Mounts = []Mount{{ContainerPath: "/data", HostPath: "/srv", Propagation: PropagationPrivate, ContentHash: "ab"}}
		}, true},
		{"tmpfs", func(c *Container) { c.Tmpfs = []Tmpfs{{Path: "/run"}} }, true},
		// Resources change in place, never by replacement.
		{"resources", func(c *Container) { c.Resources.Memory = 1 << 30 }, false},
		{"resources", func(c *Container) { c.Resources.CPUs = 0.5 }, false},

		// Policy fields.
		{"pull", func(c *Container) { c.Pull = PullNever }, false},
		{"restart", func(c *Container) { c.Restart = RestartOnFailure }, false},
		{"stop_timeout", func(c *Container) { c.StopTimeout = 5 * time.Second }, false},
		{"env_file", func(c *Container) { c.EnvFiles = []string{"renamed.env"} }, false},
		{"env_file", func(c *Container) { c.EnvFiles = nil }, false},
		{"sensitive", func(c *Container) { c.Sensitive = nil }, false},
		{"(name)", func(c *Container) { c.Name = "other" }, false},
		{"(decl range)", func(c *Container) { c.DeclRange = hcl.Range{} }, false},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		c := goldenContainer()
		before := c.Hash()
		tt.mutate(c)
		if changed := c.Hash() != before; changed != tt.replace {
			t.Errorf("%s: hash changed = %v, want %v", tt.field, changed, tt.replace)
		}
		secret := tt.field == "env" && c.Env["PASSWORD"] != "hunter2"
		if recordSame := reflect.DeepEqual(c.Record(), goldenContainer().Record()); recordSame != (secret || strings.HasPrefix(tt.field, "(")) {
			t.Errorf("%s: record unchanged = %v, want %v", tt.field, recordSame, !recordSame)
		}
		if tt.replace {
			covered[tt.field] = true
			if !slices.Contains(ContainerReplaceFields, tt.field) {
				t.Errorf("%s changes the hash but is not in ContainerReplaceFields", tt.field)
			}
		} else if slices.Contains(ContainerReplaceFields, tt.field) {
			t.Errorf("%s is in ContainerReplaceFields but a change of it keeps the hash", tt.field)
		}
	}
	for _, f := range ContainerReplaceFields {
		if !covered[f] {
			t.Errorf("ContainerReplaceFields has %q, but no test case changes it", f)
		}
	}
}

// TestReplaceFieldsAreRecordKeys ties the field lists to the record's JSON
// keys, which is how plans name changed fields.
func TestReplaceFieldsAreRecordKeys(t *testing.T) {
	keys := func(v any) map[string]bool {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for k := range m {
			out[k] = true
		}
		return out
	}
	withPorts := hostPod()
	withPorts.Ports = []Port{{Name: "web", Container: 80, Host: 8080, Protocol: "tcp"}}
	pk := keys(withPorts.Record())
	for _, f := range PodReplaceFields {
		if !pk[f] {
			t.Errorf("PodReplaceFields has %q, which is not a key of the pod record %v", f, pk)
		}
	}
	ck := keys(hostContainer().Record())
	for _, f := range ContainerReplaceFields {
		if !ck[f] {
			t.Errorf("ContainerReplaceFields has %q, which is not a key of the container record %v", f, ck)
		}
	}
}

func TestSensitiveValueChangesHashNotRecord(t *testing.T) {
	a, b := goldenContainer(), goldenContainer()
	b.Env["PASSWORD"] = "correct horse battery staple"
	if a.Hash() == b.Hash() {
		t.Error("a changed secret must change the hash, so the container is replaced")
	}
	if !reflect.DeepEqual(a.Record(), b.Record()) {
		t.Errorf("a changed secret shows in the record:\n%+v\n%+v", a.Record(), b.Record())
	}
	r := b.Record()
	if r.Env["PASSWORD"] != Redacted || r.Env["MODE"] != "prod" {
		t.Errorf("record env = %v, want PASSWORD redacted and MODE shown", r.Env)
	}
	if b.Env["PASSWORD"] != "correct horse battery staple" {
		t.Errorf("Record() changed the container's own env: %v", b.Env)
	}
	js, _ := json.Marshal(r)
	if strings.Contains(string(js), "correct horse") {
		t.Errorf("record JSON holds the secret: %s", js)
	}

	// Hash does not depend on which values are marked sensitive.
	c := goldenContainer()
	c.Sensitive = []string{"env.PASSWORD", "env.MODE", "args", "command"}
	if c.Hash() != a.Hash() {
		t.Error("marking more values sensitive changed the hash")
	}
	rc := c.Record()
	requireEqual(t, rc.Command, []string{Redacted})
	requireEqual(t, rc.Args, []string{Redacted})
	requireEqual(t, rc.Env, map[string]string{"MODE": Redacted, "PASSWORD": Redacted, "FROM_FILE": "1"})
	requireEqual(t, c.Args, []string{"-g", "daemon off;"})
}

// TestHashOfLoadedConfig checks the hash end to end: env_file contents are
// part of it, the env_file's name is not.
func TestHashOfLoadedConfig(t *testing.T) {
	base := func() files {
		return files{
			"main.hcl": `pod "p" {
  container "c" {
    image    = "busybox"
    env_file = ["a.env"]
    restart  = "always"
  }
}
`,
			"a.env": "K=1\n",
		}
	}
	hashes := func(fs files) (string, string) {
		cfg := mustLoad(t, fs, Options{})
		return cfg.Pods[0].Hash(), cfg.Pods[0].Containers[0].Hash()
	}
	basePod, baseCtr := hashes(base())

	tests := []struct {
		name       string
		mutate     func(t *testing.T, fs files)
		podChanges bool
		ctrChanges bool
	}{
		{name: "same config, same hashes", mutate: func(*testing.T, files) {}},
		{name: "env_file content changes", mutate: func(t *testing.T, fs files) { fs["a.env"] = "K=2\n" }, ctrChanges: true},
		{name: "env_file renamed, same content", mutate: func(t *testing.T, fs files) {
			fs["b.env"] = fs["a.env"]
			delete(fs, "a.env")
			fs.replace(t, "main.hcl", `"a.env"`, `"b.env"`)
		}},
		{name: "env_file replaced by the same env", mutate: func(t *testing.T, fs files) {
			fs.replace(t, "main.hcl", `env_file = ["a.env"]`, `env      = { K = "1" }`)
		}},
		{name: "comments and formatting", mutate: func(t *testing.T, fs files) {
			fs["a.env"] = "# note\n\nK = \"1\"\n"
			fs.replace(t, "main.hcl", "image    = \"busybox\"", "# the image\n    image = \"busy${\"box\"}\"")
		}},
		{name: "restart and stop_timeout", mutate: func(t *testing.T, fs files) {
			fs.replace(t, "main.hcl", `restart  = "always"`, "restart  = \"never\"\n    stop_timeout = \"1m\"\n    pull = \"never\"")
		}},
		{name: "pod label", mutate: func(t *testing.T, fs files) {
			fs.replace(t, "main.hcl", "pod \"p\" {", "pod \"p\" {\n  labels = { a = \"b\" }")
		}, podChanges: true},
		{name: "image", mutate: func(t *testing.T, fs files) { fs.replace(t, "main.hcl", `"busybox"`, `"busybox:1.37"`) }, ctrChanges: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			tt.mutate(t, fs)
			p, c := hashes(fs)
			if (p != basePod) != tt.podChanges {
				t.Errorf("pod hash changed = %v, want %v", p != basePod, tt.podChanges)
			}
			if (c != baseCtr) != tt.ctrChanges {
				t.Errorf("container hash changed = %v, want %v", c != baseCtr, tt.ctrChanges)
			}
		})
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	t.Run("pod", func(t *testing.T) {
		in := goldenPod().Record()
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out PodRecord
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		requireEqual(t, out, in)
	})
	t.Run("container", func(t *testing.T) {
		in := goldenContainer().Record()
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"stop_timeout":"2m0s"`) {
			t.Errorf("stop_timeout is not written as text: %s", b)
		}
		var out ContainerRecord
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		requireEqual(t, out, in)
	})
	t.Run("minimal container omits empty fields", func(t *testing.T) {
		c := &Container{Name: "c", Image: "busybox"}
		b, err := json.Marshal(c.Record())
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != `{"image":"busybox"}` {
			t.Errorf("JSON = %s", b)
		}
		var out ContainerRecord
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		requireEqual(t, out, c.Record())
	})
}

func TestDurationJSON(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		text string
	}{
		{2 * time.Minute, `"2m0s"`},
		{10 * time.Second, `"10s"`},
		{90 * time.Minute, `"1h30m0s"`},
		{1500 * time.Millisecond, `"1.5s"`},
		{0, `"0s"`},
	} {
		b, err := json.Marshal(Duration(tt.d))
		if err != nil || string(b) != tt.text {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.d, b, err, tt.text)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || time.Duration(back) != tt.d {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", b, time.Duration(back), err, tt.d)
		}
	}
	for _, bad := range []string{`"2 minutes"`, `120`, `""`, `"-"`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, time.Duration(d))
		}
	}
}

// With the host key, a sensitive value counts in the hash only through
// its keyed digest: another key gives another hash, the value still
// changes it, and a container without secrets hashes as without a key.
func TestHashKeysSecrets(t *testing.T) {
	secret := func(pw string, key []byte) *Container {
		return &Container{Name: "db", Image: "postgres", Env: map[string]string{"PASSWORD": pw, "MODE": "x"}, Sensitive: []string{"env.PASSWORD"}, secretKey: key}
	}
	k1, k2 := []byte("key one"), []byte("key two")
	unkeyed := secret("hunter2", nil).Hash()
	if h := secret("hunter2", k1).Hash(); h == unkeyed || h == secret("hunter2", k2).Hash() {
		t.Error("the keyed hash is the unkeyed one, or the same under two keys")
	}
	if secret("hunter2", k1).Hash() != secret("hunter2", k1).Hash() {
		t.Error("the same secret and key hash differently")
	}
	if secret("hunter2", k1).Hash() == secret("hunter3", k1).Hash() {
		t.Error("a changed secret does not change the hash")
	}
	plain := &Container{Name: "web", Image: "nginx", Command: []string{"nginx"}, Env: map[string]string{"MODE": "x"}}
	keyed := *plain
	keyed.secretKey = k1
	if plain.Hash() != keyed.Hash() {
		t.Error("a container without secrets hashes differently with a key")
	}
	c := secret("hunter2", k1)
	c.Hash()
	if c.Env["PASSWORD"] != "hunter2" {
		t.Error("hashing changed the container's env")
	}
}

// A loaded pod and container keep their hashes, each its own, the same as
// one computed anew, whichever goroutine asks first.
func TestLoadedHashesAreKept(t *testing.T) {
	cfg := mustLoad(t, files{"main.hcl": `pod "a" {
  container "c" { image = "busybox:1.36" }
}
pod "b" {
  container "c" { image = "busybox:1.37" }
}
`}, Options{})
	var wg sync.WaitGroup
	for range 4 {
		for _, p := range cfg.Pods {
			wg.Go(func() { p.Hash(); p.Containers[0].Hash() })
		}
	}
	wg.Wait()
	for _, p := range cfg.Pods {
		anewPod, anewCtr := *p, *p.Containers[0]
		anewPod.hash, anewCtr.hash = nil, nil
		if p.hash == nil || p.Hash() != anewPod.Hash() || p.Containers[0].Hash() != anewCtr.Hash() {
			t.Errorf("pod %s: kept hashes %s and %s, computed anew %s and %s", p.Name, p.Hash(), p.Containers[0].Hash(), anewPod.Hash(), anewCtr.Hash())
		}
	}
	if cfg.Pods[0].Containers[0].Hash() == cfg.Pods[1].Containers[0].Hash() {
		t.Error("two containers of other images share a kept hash")
	}
}
