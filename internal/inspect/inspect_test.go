package inspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/internal/hostsfile"
	"github.com/berth-dev/berth/internal/inspect"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

const image = "docker.io/library/busybox:1.36"

const config = `
pod "web" {
  port "http" {
    container = 8080
    host      = 18080
    host_ip   = "127.0.0.1"
  }
  forward "debug" {
    port   = 6060
    listen = "127.0.0.1:16060"
  }
  container "app" {
    image = "docker.io/library/busybox:1.36"
    args  = ["serve"]
  }
  container "side" { image = "docker.io/library/busybox:1.36" }
}
mirror "docker.io" {
  endpoint "http://127.0.0.1:5000" {}
}
`

// applied is a fake runtime running the configuration.
func applied(t *testing.T) (*fake.Runtime, *spec.Config) {
	t.Helper()
	cfg := spectest.Load(t, config)
	rt := fake.New(image)
	rt.Images[image].RepoDigests = []string{"docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := apply.Execute(context.Background(), planner.Diff(cfg, snap, planner.Options{}), rt, apply.Options{LogRoot: t.TempDir(), Parallelism: 1})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	rt.ResetCalls()
	return rt, cfg
}

func containerID(t *testing.T, rt *fake.Runtime, name string) string {
	t.Helper()
	for id, c := range rt.Containers {
		if c.Metadata.Name == name {
			return id
		}
	}
	t.Fatalf("no container %s", name)
	return ""
}

// setAttempt makes a container look restarted n times.
func setAttempt(rt *fake.Runtime, id string, n uint32) {
	c := rt.Containers[id]
	c.Metadata = &cri.ContainerMetadata{Name: c.Metadata.Name, Attempt: n}
}

// start returns when the fake started a container: its clock counts ticks
// from the epoch.
func started(t *testing.T, rt *fake.Runtime, id string) time.Time {
	t.Helper()
	st, err := rt.ContainerStatus(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(0, st.StartedAt)
}

func TestReadStatus(t *testing.T) {
	cases := []struct {
		name string
		// mutate changes the runtime and returns the time status is read at.
		mutate func(t *testing.T, rt *fake.Runtime) time.Time
		// app is what the app container must be: state, exit code (-1 for
		// none), failed, crash-looping.
		state               string
		exit                int32
		failed, crash       bool
		notes               string
		containerStatusCall int
		podNotes            string
	}{
		{name: "running", state: "running", exit: -1,
			mutate: func(*testing.T, *fake.Runtime) time.Time { return time.Unix(0, 0).Add(time.Hour) }},
		{name: "exited with a code", state: "exited", exit: 3, failed: true, notes: "failed: exit code 3", containerStatusCall: 1,
			mutate: func(t *testing.T, rt *fake.Runtime) time.Time {
				rt.Exit(containerID(t, rt, "app"), 3)
				return time.Unix(0, 0).Add(time.Hour)
			}},
		{name: "exited cleanly", state: "exited", exit: 0, containerStatusCall: 1,
			mutate: func(t *testing.T, rt *fake.Runtime) time.Time {
				rt.Exit(containerID(t, rt, "app"), 0)
				return time.Unix(0, 0).Add(time.Hour)
			}},
		{name: "restarted often, failed again", state: "exited", exit: 1, failed: true, crash: true, containerStatusCall: 1,
			notes: "crash-loop (3 restarts); failed: exit code 1",
			mutate: func(t *testing.T, rt *fake.Runtime) time.Time {
				id := containerID(t, rt, "app")
				setAttempt(rt, id, 3)
				rt.Exit(id, 1)
				return time.Unix(0, 0).Add(time.Hour)
			}},
		{name: "restarted often, running for seconds", state: "running", exit: -1, crash: true, containerStatusCall: 1,
			notes: "crash-loop (3 restarts)",
			mutate: func(t *testing.T, rt *fake.Runtime) time.Time {
				id := containerID(t, rt, "app")
				setAttempt(rt, id, 3)
				return started(t, rt, id).Add(10 * time.Second)
			}},
		{name: "restarted often, running for minutes", state: "running", exit: -1, containerStatusCall: 1,
			mutate: func(t *testing.T, rt *fake.Runtime) time.Time {
				id := containerID(t, rt, "app")
				setAttempt(rt, id, 3)
				return started(t, rt, id).Add(2 * time.Minute)
			}},
		{name: "restarted twice, failed", state: "exited", exit: 2, failed: true, containerStatusCall: 1, notes: "failed: exit code 2",
			mutate: func(t *testing.T, rt *fake.Runtime) time.Time {
				id := containerID(t, rt, "app")
				setAttempt(rt, id, 2)
				rt.Exit(id, 2)
				return time.Unix(0, 0).Add(time.Hour)
			}},
		{name: "sandbox stopped", state: "exited", exit: 0, containerStatusCall: 2, podNotes: "sandbox not ready",
			mutate: func(t *testing.T, rt *fake.Runtime) time.Time {
				for id := range rt.Sandboxes {
					_ = rt.StopSandbox(context.Background(), id)
				}
				return time.Unix(0, 0).Add(time.Hour)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt, cfg := applied(t)
			now := tc.mutate(t, rt)
			rt.ResetCalls()
			st, err := inspect.ReadStatus(context.Background(), rt, cfg, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Pods) != 1 || len(st.Pods[0].Containers) != 2 {
				t.Fatalf("status %+v", st)
			}
			pod := st.Pods[0]
			app := pod.Containers[0]
			if app.Name != "app" || app.State != tc.state || app.Failed != tc.failed || app.CrashLoop != tc.crash {
				t.Errorf("app: %+v", app)
			}
			switch {
			case tc.exit < 0 && app.ExitCode != nil:
				t.Errorf("exit code %d, want none", *app.ExitCode)
			case tc.exit >= 0 && (app.ExitCode == nil || *app.ExitCode != tc.exit):
				t.Errorf("exit code %v, want %d", app.ExitCode, tc.exit)
			}
			if got := strings.Join(app.Notes, "; "); got != tc.notes {
				t.Errorf("notes %q, want %q", got, tc.notes)
			}
			if got := strings.Join(pod.Notes, "; "); got != tc.podNotes {
				t.Errorf("pod notes %q, want %q", got, tc.podNotes)
			}
			if app.ImageDigest != "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" || app.ImageID != "sha256:"+image {
				t.Errorf("image %q id %q digest %q", app.Image, app.ImageID, app.ImageDigest)
			}
			if len(pod.Ports) != 1 || pod.Ports[0].String() != "127.0.0.1:18080->8080/tcp" {
				t.Errorf("ports %v", pod.Ports)
			}
			if len(pod.Forwards) != 1 || pod.Forwards[0].String() != "127.0.0.1:16060->6060" {
				t.Errorf("forwards %v", pod.Forwards)
			}
			wantIP, sandboxCalls := "10.88.0.2", 1
			if tc.podNotes != "" {
				wantIP, sandboxCalls = "", 0
			}
			if pod.IP != wantIP {
				t.Errorf("ip %q, want %q", pod.IP, wantIP)
			}
			// A constant number of list calls, and status calls only where
			// the lists do not tell enough.
			want := map[string]int{"ListPodSandbox": 1, "ListContainers": 1, "ListImages": 1, "PodSandboxStatus": sandboxCalls, "ContainerStatus": tc.containerStatusCall}
			calls := rt.Calls()
			for m, n := range want {
				if calls[m] != n {
					t.Errorf("%s called %d times, want %d (all: %v)", m, calls[m], n, calls)
				}
			}
		})
	}
}

// Without a loaded configuration (berth status --stack), there are no
// forwards, and everything else is the same.
func TestReadStatusStackOnly(t *testing.T) {
	rt, _ := applied(t)
	st, err := inspect.ReadStatus(context.Background(), rt, &spec.Config{Berth: spec.Berth{Stack: "test"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pods) != 1 || len(st.Pods[0].Forwards) != 0 || len(st.Pods[0].Ports) != 1 {
		t.Fatalf("%+v", st)
	}
	st, err = inspect.ReadStatus(context.Background(), rt, &spec.Config{Berth: spec.Berth{Stack: "other"}}, time.Now())
	if err != nil || len(st.Pods) != 0 {
		t.Fatalf("another stack: %+v %v", st, err)
	}
	var buf bytes.Buffer
	if err := inspect.WriteJSON(&buf, st); err != nil || !strings.Contains(buf.String(), `"pods": []`) {
		t.Errorf("empty status as JSON: %s", buf.String())
	}
}

func TestWriteStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	code := int32(137)
	st := &inspect.Status{Stack: "shop", Pods: []inspect.PodStatus{
		{Pod: "db", State: "ready", IP: "10.88.0.3", Created: now.Add(-3 * time.Hour), Containers: []inspect.ContainerStatus{
			{Name: "main", State: "running", Restarts: 0, Created: now.Add(-3 * time.Hour), Image: "postgres:16",
				ImageDigest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		}},
		{Pod: "web", State: "ready", IP: "10.88.0.2", Created: now.Add(-90 * time.Second),
			Ports:    []inspect.Port{{Name: "http", HostIP: "127.0.0.1", Host: 80, Container: 8080, Protocol: "tcp"}},
			Forwards: []inspect.Forward{{Name: "debug", Listen: "127.0.0.1:16060", Port: 6060}},
			Containers: []inspect.ContainerStatus{
				{Name: "app", State: "exited", ExitCode: &code, Restarts: 4, Created: now.Add(-5 * time.Second), Image: "web:1.4",
					Failed: true, CrashLoop: true, Notes: []string{"crash-loop (4 restarts)", "failed: exit code 137", "OOMKilled"}},
			}},
		{Pod: "empty", State: "notready", Created: now.Add(-72 * time.Hour), Notes: []string{"sandbox not ready"}},
	}}
	var buf bytes.Buffer
	if err := inspect.WriteStatus(&buf, st, inspect.Style{}, now); err != nil {
		t.Fatal(err)
	}
	want := `POD    CONTAINER  STATE         RESTARTS  AGE  IMAGE        DIGEST        IP         PORTS                   FORWARDS               NOTE
db     main       running       0         3h   postgres:16  0123456789ab  10.88.0.3  -                       -
web    app        exited (137)  4         5s   web:1.4      -             10.88.0.2  127.0.0.1:80->8080/tcp  127.0.0.1:16060->6060  crash-loop (4 restarts); failed: exit code 137; OOMKilled
empty  -          notready      -         3d   -            -             -          -                       -                      sandbox not ready
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}

	// On a terminal the failed row is red, whole, so columns stay aligned.
	buf.Reset()
	if err := inspect.WriteStatus(&buf, st, inspect.Style{Color: true}, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if !strings.HasPrefix(lines[2], "\x1b[31mweb ") || strings.Contains(lines[1], "\x1b[") || !strings.HasPrefix(lines[3], "\x1b[31mempty") {
		t.Errorf("colours:\n%q", lines)
	}
}

func TestShow(t *testing.T) {
	rt, cfg := applied(t)
	certs := t.TempDir()
	if err := hostsfile.Write(hostsfile.Path(certs, "docker.io"), hostsfile.Render("test", cfg.Mirrors[0])); err != nil {
		t.Fatal(err)
	}
	if err := hostsfile.Write(hostsfile.Path(certs, "quay.io"), []byte("server = \"https://quay.io\"\n")); err != nil {
		t.Fatal(err)
	}
	where := inspect.Where{
		CertsDir:   func() (string, error) { return certs, nil },
		CNIConfDir: func() (string, error) { return t.TempDir(), nil },
	}
	show := func(address string) (*inspect.Resource, string, error) {
		t.Helper()
		r, err := inspect.Show(context.Background(), rt, cfg, true, where, address)
		if err != nil {
			return nil, "", err
		}
		var text bytes.Buffer
		if err := inspect.WriteResource(&text, r, inspect.Style{}); err != nil {
			t.Fatal(err)
		}
		return r, text.String(), nil
	}

	rt.Exit(containerID(t, rt, "app"), 2)
	cases := []struct {
		address string
		kind    string
		want    []string // lines the text must hold
	}{
		{"pod.web", "pod", []string{`pod.web (stack "test"): matches the configuration`, "applied spec", `  ports.http.host = 18080`,
			"runtime", `  ip = "10.88.0.2"`, `  state = "ready"`, `  containers.app.state = "exited"`}},
		{"pod.web.container.app", "container", []string{`  args = ["serve"]`, `  image = "docker.io/library/busybox:1.36"`,
			`  state = "exited"`, `  exit_code = 2`, `  reason = "Error"`, `  image_digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`}},
		{"mirror.docker.io", "mirror", []string{"  declared = true", `  written_by = "test"`, "  berth_wrote = true", `    [host."http://127.0.0.1:5000"]`}},
		{"mirror.quay.io", "mirror", []string{`mirror.quay.io (stack "test"): not in the configuration`, `  written_by = ""`, "  berth_wrote = false"}},
		{"image.busybox:1.36", "image", []string{`  used_by = ["pod.web.container.app","pod.web.container.side"]`, `  id = "sha256:docker.io/library/busybox:1.36"`}},
	}
	for _, tc := range cases {
		t.Run(tc.address, func(t *testing.T) {
			r, text, err := show(tc.address)
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != tc.kind || r.Address != tc.address {
				t.Errorf("kind %q address %q", r.Kind, r.Address)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w+"\n") {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
			}
			// JSON carries the same data.
			var buf bytes.Buffer
			if err := inspect.WriteJSON(&buf, r); err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back["applied"] == nil || back["runtime"] == nil {
				t.Errorf("json %s: %v", buf.String(), err)
			}
		})
	}

	errs := []struct {
		address string
		want    []string
	}{
		{"pod.wbe", []string{`pod.wbe: no such resource in stack "test". Did you mean "pod.web"?`, "  pod.web.container.side", "  mirror.docker.io"}},
		{"pod.web.container.nope", []string{"Valid addresses:", "  pod.web.container.app"}},
		{"thing", []string{`thing: no such resource`, "  pod.web"}},
		{"network.lan", []string{"  image.docker.io/library/busybox:1.36"}},
	}
	for _, tc := range errs {
		_, _, err := show(tc.address)
		if !inspect.IsUnknown(err) {
			t.Fatalf("%s: %v", tc.address, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q:\n%v", tc.address, w, err)
			}
		}
	}

	// Declared but not applied: the error says so.
	cfg2 := spectest.Load(t, config+`pod "new" {
  container "x" { image = "docker.io/library/busybox:1.36" }
}`)
	_, err := inspect.Show(context.Background(), rt, cfg2, true, where, "pod.new")
	if err == nil || !strings.Contains(err.Error(), "in the configuration but not on the runtime; berth apply creates it") {
		t.Errorf("pod.new: %v", err)
	}
}

func TestShowNetwork(t *testing.T) {
	rt, _ := applied(t)
	cfg := spectest.Load(t, config+`network "lan" {
  subnet = "10.99.0.0/16"
}`)
	confDir := t.TempDir()
	content, err := cfg.Networks[0].Conflist("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planner.NetworkPath(confDir, "test"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	where := inspect.Where{CNIConfDir: func() (string, error) { return confDir, nil }, CertsDir: func() (string, error) { return "", nil }}
	r, err := inspect.Show(context.Background(), rt, cfg, true, where, "network.lan")
	if err != nil {
		t.Fatal(err)
	}
	f := r.Runtime.(inspect.FileRuntime)
	if r.Configuration != "matches the configuration" || f.Path != filepath.Join(confDir, "10-berth-test.conflist") || !f.BerthWrote || f.Active == nil || !*f.Active {
		t.Errorf("%+v %+v", r, f)
	}
}

// What a container or the runtime says goes to the terminal as text: a
// termination message with escape sequences (clear the screen, set the
// title) is shown escaped, never obeyed.
func TestWriteStatusEscapesControlCharacters(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &inspect.Status{Stack: "shop", Pods: []inspect.PodStatus{
		{Pod: "web", State: "ready", Created: now, Containers: []inspect.ContainerStatus{
			{Name: "app", State: "running", Created: now, Image: "web:1\x1b[2J",
				Notes: []string{"message: \x1b]0;owned\x07done\tnow"}},
		}},
	}}
	var buf bytes.Buffer
	if err := inspect.WriteStatus(&buf, st, inspect.Style{}, now); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `message: \x1b]0;owned\adone\tnow`) || !strings.Contains(out, `web:1\x1b[2J`) {
		t.Errorf("status:\n%q", out)
	}
}
