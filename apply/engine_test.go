package apply_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/preflight"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// newEngine is an engine on a fake runtime with private lock, log and
// host directories, and a host without devices to check.
func newEngine(t *testing.T, rt *fake.Runtime) *apply.Engine {
	t.Helper()
	host := preflight.Host{Stat: os.Stat, ValidateNetwork: func([]byte) error { return nil }}
	return &apply.Engine{Runtime: rt, Address: "unix:///fake.sock", LockDir: t.TempDir(), Holder: "test", Host: &host}
}

func execOpts(t *testing.T) apply.Options {
	return apply.Options{LogRoot: t.TempDir(), TmpfsRoot: t.TempDir()}
}

const engineStack = `
berth { stack = "eng" }
pod "web" {
  container "app" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "1000"]
  }
}
`

func TestEngineConverges(t *testing.T) {
	rt := fake.New(image)
	e := newEngine(t, rt)
	cfg := spectest.Load(t, engineStack)
	ctx := context.Background()

	var reviewed *apply.Decision
	d, res, err := e.Converge(ctx, cfg, planner.Options{}, func(d *apply.Decision) error { reviewed = d; return nil }, execOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if reviewed != d || d.Snapshot == nil {
		t.Fatal("review did not see the decision that was executed")
	}
	if err := res.Err(); err != nil || len(rt.Sandboxes) != 1 || len(rt.Containers) != 1 {
		t.Fatalf("apply: %v; %d sandboxes, %d containers", err, len(rt.Sandboxes), len(rt.Containers))
	}
	if r := d.Plan.Pods[0].Reasons; len(r) != 1 || r[0].Code != planner.ReasonDeclared {
		t.Errorf("create reasons %v, want declared", r)
	}

	// Converged: the engine plans, finds nothing, executes nothing.
	rt.ResetCalls()
	_, res, err = e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t))
	if !errors.Is(err, apply.ErrNothingToDo) || res != nil {
		t.Fatalf("second converge: %v, result %v; want nothing to do", err, res)
	}
	if n := rt.Calls()["RunPodSandbox"] + rt.Calls()["CreateContainer"]; n != 0 {
		t.Errorf("%d creating calls on a converged stack", n)
	}
}

func TestEngineReviewStops(t *testing.T) {
	rt := fake.New(image)
	e := newEngine(t, rt)
	no := errors.New("no")
	_, res, err := e.Converge(context.Background(), spectest.Load(t, engineStack), planner.Options{}, func(*apply.Decision) error { return no }, execOpts(t))
	if !errors.Is(err, no) || res != nil || len(rt.Sandboxes) != 0 {
		t.Fatalf("err %v, result %v, %d sandboxes; want the review's error and nothing done", err, res, len(rt.Sandboxes))
	}
}

func TestEnginePlanErrorsExecuteNothing(t *testing.T) {
	rt := fake.New() // no image, and pull = "never"
	e := newEngine(t, rt)
	cfg := spectest.Load(t, strings.Replace(engineStack, `command = ["sleep", "1000"]`, `pull = "never"`, 1))
	d, _, err := e.Converge(context.Background(), cfg, planner.Options{}, nil, execOpts(t))
	if !errors.Is(err, apply.ErrNothingToDo) || len(d.Plan.Errors) == 0 || len(rt.Sandboxes) != 0 {
		t.Fatalf("err %v, plan errors %v, %d sandboxes", err, d.Plan.Errors, len(rt.Sandboxes))
	}
}

func TestEngineWaitsForTheLock(t *testing.T) {
	rt := fake.New(image)
	e := newEngine(t, rt)
	e.LockTimeout = 50 * time.Millisecond
	held, err := lock.Acquire(context.Background(), lock.Path(e.LockDir, "eng", e.Address), "someone else", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	var told []string
	e.LockWaiting = func(h lock.Holder) { told = append(told, h.String()) }
	_, _, err = e.Converge(context.Background(), spectest.Load(t, engineStack), planner.Options{}, nil, execOpts(t))
	if !errors.Is(err, lock.ErrTimeout) || len(told) != 1 || !strings.Contains(told[0], "someone else") || len(rt.Sandboxes) != 0 {
		t.Fatalf("err %v, told %q, %d sandboxes", err, told, len(rt.Sandboxes))
	}
}

func TestEngineRuntimeErrors(t *testing.T) {
	for _, method := range []string{"ListPodSandbox", "RegistryConfigPath", "CNI", "PinnedImages"} {
		t.Run(method, func(t *testing.T) {
			rt := fake.New(image)
			rt.Errors[method] = errors.New("the runtime is away")
			e := newEngine(t, rt)
			cfg := spectest.Load(t, engineStack+`image "docker.io/library/busybox:1.36" { pin = true }`)
			d, res, err := e.Converge(context.Background(), cfg, planner.Options{}, nil, execOpts(t))
			if method == "CNI" {
				// A runtime that cannot say where CNI lives plans all the same;
				// only pods with ports need to know.
				if err != nil || res.Err() != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err == nil || d != nil || len(rt.Sandboxes) != 0 {
				t.Fatalf("err %v, decision %v, %d sandboxes; want the error and nothing done", err, d, len(rt.Sandboxes))
			}
		})
	}
}

// A remote registry that cannot answer is a warning, and the plan keeps
// what runs; one that names another digest replaces the container.
func TestEngineRemoteDigests(t *testing.T) {
	rt := fake.New(image)
	e := newEngine(t, rt)
	cfg := spectest.Load(t, strings.Replace(engineStack, `command = ["sleep", "1000"]`, `pull = "always"`, 1))
	d, err := e.Plan(context.Background(), cfg, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Plan.Warnings, func(w string) bool { return strings.Contains(w, "cannot check whether "+image) }) {
		t.Errorf("warnings %q, want one for the registry that did not answer", d.Plan.Warnings)
	}
	rt.Remote[image] = "sha256:feed"
	if d, err = e.Plan(context.Background(), cfg, planner.Options{}); err != nil || d.Snapshot.RemoteDigests[image] != "sha256:feed" {
		t.Fatalf("err %v, remote digests %v", err, d.Snapshot.RemoteDigests)
	}
}

// A saved plan covers everything apply can change: a plan made, then a
// change in the configuration of any kind, makes a fresh plan's digests
// differ at exactly the resource that moved.
func TestDigestsCoverEverything(t *testing.T) {
	certs := t.TempDir()
	cni := t.TempDir()
	src := `
berth {
  stack        = "eng"
  certs_dir    = "` + certs + `"
  cni_conf_dir = "` + cni + `"
}
mirror "docker.io" {
  endpoint "http://127.0.0.1:5000" {}
}
network "lan" {
  type   = "bridge"
  bridge = "eng0"
  subnet = "10.77.0.0/16"
}
image "docker.io/library/busybox:1.36" {
  pin = true
}
registry "registry.example.com" {
  username = "ci"
  password = "first"
}
pod "web" {
  container "app" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "1000"]
  }
}
`
	cases := []struct {
		name, from, to, moved string
	}{
		{"mirror endpoint", `endpoint "http://127.0.0.1:5000"`, `endpoint "http://127.0.0.1:5001"`, "mirror.docker.io"},
		{"network subnet", `subnet = "10.77.0.0/16"`, `subnet = "10.78.0.0/16"`, "network.lan"},
		{"image pin", `pin = true`, `pin = false`, "image.docker.io/library/busybox:1.36"},
		{"registry password", `password = "first"`, `password = "second"`, planner.Credentials},
		{"container", `command = ["sleep", "1000"]`, `command = ["sleep", "1001"]`, "pod.web.container.app"},
	}
	key := []byte("test key")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New(image)
			e := newEngine(t, rt)
			ctx := context.Background()
			cfg := spectest.Load(t, src)
			if d, _, err := e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t)); err != nil {
				t.Fatal(err, d.Plan.Errors)
			}
			saved, err := e.Plan(ctx, cfg, planner.Options{})
			if err != nil {
				t.Fatal(err)
			}
			before := planner.Digests(saved.Plan, cfg, key)
			if !strings.Contains(src, tc.from) {
				t.Fatalf("%q is not in the configuration", tc.from)
			}
			changed := spectest.Load(t, strings.Replace(src, tc.from, tc.to, 1))
			fresh, err := e.Plan(ctx, changed, planner.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if moved := planner.Moved(before, planner.Digests(fresh.Plan, changed, key)); !slices.Equal(moved, []string{tc.moved}) {
				t.Errorf("moved %q, want [%s]", moved, tc.moved)
			}
			if again := planner.Digests(saved.Plan, cfg, key); len(planner.Moved(before, again)) != 0 {
				t.Error("the same plan digests differently twice")
			}
			if other := planner.Digests(saved.Plan, cfg, []byte("another key")); other[planner.Credentials] == before[planner.Credentials] {
				t.Error("the digests do not depend on the key")
			}
		})
	}
}

// The runtime moving under a saved plan is caught too: a container that
// exited since makes its decision a restart.
func TestDigestsSeeTheRuntimeMove(t *testing.T) {
	rt := fake.New(image)
	e := newEngine(t, rt)
	ctx := context.Background()
	cfg := spectest.Load(t, engineStack)
	if _, _, err := e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t)); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	d, _ := e.Plan(ctx, cfg, planner.Options{})
	before := planner.Digests(d.Plan, cfg, key)
	for id := range rt.Containers {
		rt.Exit(id, 1)
	}
	d, _ = e.Plan(ctx, cfg, planner.Options{})
	if moved := planner.Moved(before, planner.Digests(d.Plan, cfg, key)); !slices.Equal(moved, []string{"pod.web.container.app"}) {
		t.Errorf("moved %q", moved)
	}
}

// Destroy removes every pod and the host files the stack wrote, saying
// why, and leaves another stack's alone.
func TestEngineDestroy(t *testing.T) {
	certs := t.TempDir()
	rt := fake.New(image)
	e := newEngine(t, rt)
	ctx := context.Background()
	src := strings.Replace(engineStack, `berth { stack = "eng" }`, `berth {
  stack     = "eng"
  certs_dir = "`+certs+`"
}
mirror "docker.io" {
  endpoint "http://127.0.0.1:5000" {}
}`, 1)
	if _, _, err := e.Converge(ctx, spectest.Load(t, src), planner.Options{}, nil, execOpts(t)); err != nil {
		t.Fatal(err)
	}
	other := spectest.Load(t, strings.Replace(engineStack, `"eng"`, `"other"`, 1))
	if _, _, err := e.Converge(ctx, other, planner.Options{}, nil, execOpts(t)); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(certs, "docker.io", "hosts.toml")
	if _, err := os.Stat(hosts); err != nil {
		t.Fatal(err)
	}

	gone := &spec.Config{Berth: spec.Berth{Stack: "eng", CertsDir: certs, Parallelism: 2}}
	d, res, err := e.Converge(ctx, gone, planner.Options{Destroy: true}, nil, execOpts(t))
	if err != nil || res.Err() != nil {
		t.Fatalf("destroy: %v", err)
	}
	for c := range d.Plan.Changes() {
		if c.Action != planner.Destroy {
			t.Errorf("%s: %s, want destroy", c.Address, c.Action)
		}
		if c.Container == nil && (len(c.Reasons) != 1 || c.Reasons[0].Code != planner.ReasonDestroyRequested) {
			t.Errorf("%s reasons %v, want destroy_requested", c.Address, c.Reasons)
		}
	}
	if _, err := os.Stat(hosts); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stack's hosts.toml is still there: %v", err)
	}
	if len(rt.Sandboxes) != 1 {
		t.Errorf("%d sandboxes left, want the other stack's one", len(rt.Sandboxes))
	}
}

// An image apply would pull, because the runtime lacks it, is checked at
// its registry when planning: one the registry does not give is a warning,
// an error under StrictImages; Offline and present images ask nothing.
func TestPlanChecksImagesToPull(t *testing.T) {
	const missing = "registry.example.com/team/app:v1"
	src := strings.Replace(engineStack, `image   = "docker.io/library/busybox:1.36"`, `image   = "`+missing+`"`, 1) + `
pod "ok" {
  container "main" {
    image = "docker.io/library/busybox:1.36"
  }
}
`
	cases := []struct {
		name    string
		opts    planner.Options
		remote  bool // the registry has the image
		warning bool
		err     bool
		lookups int
	}{
		{name: "missing at the registry", warning: true, lookups: 1},
		{name: "missing, strict", opts: planner.Options{StrictImages: true}, err: true, lookups: 1},
		{name: "at the registry", remote: true, lookups: 1},
		{name: "offline", opts: planner.Options{Offline: true}, lookups: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New(image)
			if tc.remote {
				rt.Remote[missing] = "sha256:feed"
			}
			e := newEngine(t, rt)
			d, err := e.Plan(context.Background(), spectest.Load(t, src), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			has := func(list []string) bool {
				return slices.ContainsFunc(list, func(m string) bool {
					return strings.Contains(m, "pod.web.container.app: image "+missing+" cannot be pulled")
				})
			}
			if has(d.Plan.Warnings) != tc.warning || has(d.Plan.Errors) != tc.err {
				t.Errorf("warnings %q, errors %q", d.Plan.Warnings, d.Plan.Errors)
			}
			if n := rt.Calls()["RemoteDigest"]; n != tc.lookups {
				t.Errorf("%d registry lookups, want %d (the present image needs none)", n, tc.lookups)
			}
		})
	}
}

// A plan made from reads of one pod that reaches past it is made again
// from a full observation; one that stays within it is kept.
func TestEnginePlansAgainPastPodReads(t *testing.T) {
	rt := fake.New(image)
	e := newEngine(t, rt)
	ctx := context.Background()
	cfg := spectest.Load(t, engineStack)
	d, _, err := e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rt.Containers {
		rt.Exit(c.Id, 1)
	}
	more := spectest.Load(t, engineStack+`
pod "db" {
  container "main" { image = "docker.io/library/busybox:1.36" }
}`)
	for _, tc := range []struct {
		name string
		cfg  *spec.Config
		full bool // planned again from a full observation
		want []string
	}{
		{"within the pod", cfg, false, []string{"pod.web.container.app restart"}},
		{"past it", more, true, []string{"pod.db create", "pod.db.container.main create", "pod.web.container.app restart"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads := planner.StartPodReads(ctx, rt, d.Snapshot, []string{"web"}, "", nil)
			got, err := e.Plan(ctx, tc.cfg, planner.Options{Reads: reads})
			if err != nil {
				t.Fatal(err)
			}
			if got.Snapshot.Partial() == tc.full {
				t.Errorf("planned from a partial observation: %v, want %v", got.Snapshot.Partial(), !tc.full)
			}
			var changes []string
			for c := range got.Plan.Changes() {
				if c.Action.Changes() {
					changes = append(changes, c.Address.String()+" "+string(c.Action))
				}
			}
			if !slices.Equal(changes, tc.want) {
				t.Errorf("changes %v, want %v", changes, tc.want)
			}
		})
	}
}

// An image archive put in the place of the one a plan was made with moves
// the image's digest: the plan names the file, and a docker archive has
// no digest of its own to pin.
func TestDigestsSeeAReplacedArchive(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "app.tar")
	write := func(content string) {
		t.Helper()
		tmp := archive + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, archive); err != nil { // as a build puts a new archive in place
			t.Fatal(err)
		}
	}
	write("the first archive")
	cfg := spectest.Load(t, "berth { stack = \"eng\" }\nimage \"berth/app:v1\" {\n  source = \""+archive+"\"\n}\n")
	e := newEngine(t, fake.New(image))
	ctx := context.Background()
	key := []byte("test key")
	plan := func() map[string]string {
		d, err := e.Plan(ctx, cfg, planner.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return planner.Digests(d.Plan, cfg, key)
	}
	before := plan()
	if moved := planner.Moved(before, plan()); len(moved) != 0 {
		t.Fatalf("the same archive moved %q", moved)
	}
	write("another archive")
	if moved := planner.Moved(before, plan()); !slices.Equal(moved, []string{"image.docker.io/berth/app:v1"}) {
		t.Errorf("moved %q, want the image", moved)
	}
}

// A sandbox of the stack whose metadata the runtime reports as something
// berth never makes (a path, not a name) is removed, but the host paths
// built from that metadata are left alone, and the destroy says why.
func TestDestroyLeavesHostPathsOfForeignMetadata(t *testing.T) {
	rt := fake.New(image)
	e := newEngine(t, rt)
	ctx := context.Background()
	opts := execOpts(t)
	cfg := spectest.Load(t, engineStack)
	if _, res, err := e.Converge(ctx, cfg, planner.Options{}, nil, opts); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	outside := filepath.Join(filepath.Dir(opts.LogRoot), "keep")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sb := range rt.Sandboxes {
		sb.Metadata = &cri.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "/../../../keep"} // the log directory would be the log root's sibling
	}
	_, res, err := e.Converge(ctx, &spec.Config{Berth: spec.Berth{Stack: "eng", Parallelism: 2}}, planner.Options{Destroy: true}, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Err() == nil || !strings.Contains(res.Err().Error(), "its host directories are left alone") {
		t.Errorf("destroy: %v, want the metadata refused", res.Err())
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a directory outside the log root is gone: %v", err)
	}
}

// A create cut short after the sandbox (berth killed before its first
// container) is finished in that sandbox on the rerun, init container
// first: nothing ran in it, so it is no replace, and prevent_replace does
// not stand in the way.
func TestRerunFinishesAPodCutShortAfterItsSandbox(t *testing.T) {
	const src = `
berth { stack = "eng" }
pod "vm" {
  prevent_replace = true
  container "setup" {
    image   = "docker.io/library/busybox:1.36"
    command = ["true"]
    init    = true
  }
  container "app" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "1000"]
  }
}
`
	rt := fake.New(image)
	rt.ExitCodes["setup"] = 0
	e := newEngine(t, rt)
	ctx := context.Background()
	cfg := spectest.Load(t, src)
	if _, res, err := e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	sandboxes := len(rt.Sandboxes)
	for id := range rt.Containers { // as if berth died right after RunPodSandbox
		if err := rt.RemoveContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	d, err := e.Plan(ctx, cfg, planner.Options{})
	if err != nil || len(d.Plan.Errors) > 0 {
		t.Fatalf("plan: %v %q", err, d.Plan.Errors)
	}
	for _, pc := range d.Plan.Pods {
		if pc.Action == planner.Replace {
			t.Fatalf("the pod is replaced: %v", pc.Reasons)
		}
	}
	if _, res, err := e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if len(rt.Sandboxes) != sandboxes {
		t.Errorf("%d sandboxes, want the one there was", len(rt.Sandboxes))
	}
	if d, err := e.Plan(ctx, cfg, planner.Options{}); err != nil || d.Plan.HasChanges() {
		t.Errorf("after the rerun: changes %v, %v", d.Plan.HasChanges(), err)
	}
}

// cutShortReplace applies cfg's one pod, then leaves the runtime as a
// replace cut short after its new sandbox would: a newer sandbox of the
// pod without containers beside the old one, which it returns.
func cutShortReplace(t *testing.T, e *apply.Engine, rt *fake.Runtime, cfg *spec.Config) *cri.PodSandbox {
	t.Helper()
	if _, res, err := e.Converge(context.Background(), cfg, planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if len(rt.Sandboxes) != 1 {
		t.Fatalf("%d sandboxes, want the pod's one", len(rt.Sandboxes))
	}
	var old *cri.PodSandbox
	for _, sb := range rt.Sandboxes {
		old = sb
	}
	newer := proto.Clone(old).(*cri.PodSandbox)
	newer.Id, newer.CreatedAt = "newer-sandbox", old.CreatedAt+1
	newer.Metadata.Uid, newer.Metadata.Attempt = old.Metadata.Uid+"-2", old.Metadata.Attempt+1
	rt.Sandboxes[newer.Id] = newer
	return old
}

// The older sandbox an interrupted start-first replace left beside the new
// one may still serve: its containers are stopped with the grace they were
// made with before it goes, never killed with it.
func TestADuplicateSandboxsContainersGetTheirGrace(t *testing.T) {
	const src = `
berth { stack = "eng" }
pod "vm" {
  container "qemu" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "1000"]
    stop_timeout = "2m"
  }
}
`
	rt := fake.New(image)
	e := newEngine(t, rt)
	ctx := context.Background()
	cfg := spectest.Load(t, src)
	old := cutShortReplace(t, e, rt, cfg)
	var serving string
	for id := range rt.Containers {
		if rt.Containers[id].PodSandboxId == old.Id {
			serving = id
		}
	}

	if _, res, err := e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if grace, stopped := rt.Stops[serving]; !stopped || grace != 2*time.Minute {
		t.Errorf("the old sandbox's container was stopped %v with a grace of %s, want 2m", stopped, grace)
	}
	if _, left := rt.Sandboxes[old.Id]; left {
		t.Error("the old sandbox is left")
	}
}

// The older sandbox of a start-first pod whose replace was cut short after
// the new sandbox still serves: the rerun starts the new one's containers
// first, then removes it, as the replace would have; and keeps it when the
// new one fails.
func TestAStartFirstDuplicateGoesAfterTheNewOneRuns(t *testing.T) {
	const src = `
berth { stack = "eng" }
pod "web" {
  update_order = "start_first"
  container "httpd" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "1000"]
  }
}
`
	for _, fails := range []bool{false, true} {
		rt := fake.New(image)
		e := newEngine(t, rt)
		ctx := context.Background()
		cfg := spectest.Load(t, src)
		old := cutShortReplace(t, e, rt, cfg)
		if fails {
			rt.Errors["StartContainer"] = errors.New("the runtime refuses")
		}
		rt.ResetCalls()
		_, res, err := e.Converge(ctx, cfg, planner.Options{}, nil, execOpts(t))
		if err != nil {
			t.Fatal(err)
		}
		log := strings.Join(rt.Log(), "\n")
		_, kept := rt.Sandboxes[old.Id]
		switch {
		case fails && (!kept || res.Err() == nil):
			t.Errorf("the new sandbox failed: old kept %v, result %v", kept, res.Err())
		case !fails && (kept || res.Err() != nil):
			t.Errorf("old kept %v, result %v", kept, res.Err())
		case !fails && strings.Index(log, "StopPodSandbox "+old.Id) < strings.Index(log, "StartContainer "):
			t.Errorf("the old sandbox went before the new one's container started:\n%s", log)
		}
	}
}
