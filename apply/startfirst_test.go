package apply_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// startFirstStack is a served pod that asks for start-first replaces,
// and a pod that depends on it.
func startFirstStack(hostname, image, initCmd string) string {
	return `
pod "web" {
  hostname     = "` + hostname + `"
  update_order = "start_first"
  port "http" {
    container = 80
    host      = 8080
  }
  container "setup" {
    image   = "docker.io/library/busybox:1.36"
    init    = true
    command = ["` + initCmd + `"]
  }
  container "app" { image = "` + image + `" }
}
pod "client" {
  depends_on = ["pod.web"]
  container "main" { image = "docker.io/library/busybox:1.36" }
}
`
}

// recorder keeps what a start-first replace asks beside the runtime.
type recorder struct {
	rt       *fake.Runtime
	marks    []string // sandbox IDs marked as serving, "" for a cleared mark
	awaited  []string // sandboxes whose readiness was awaited
	notReady error
	// running, at each wait, are the sandboxes of the pod that are ready
	running [][]string
}

func (r *recorder) options(t *testing.T) apply.Options {
	return apply.Options{LogRoot: t.TempDir(), TmpfsRoot: t.TempDir(), Parallelism: 2,
		Serving: func(pod, id string) error {
			r.marks = append(r.marks, id)
			return nil
		},
		AwaitReady: func(_ context.Context, pod *spec.Pod, id string) error {
			r.awaited = append(r.awaited, id)
			r.running = append(r.running, readySandboxes(r.rt, pod.Name))
			return r.notReady
		},
	}
}

func readySandboxes(rt *fake.Runtime, pod string) []string {
	var ids []string
	for id, sb := range rt.Sandboxes {
		if sb.Labels[spec.LabelPod] == pod && sb.State == cri.PodSandboxState_SANDBOX_READY {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func plan(t *testing.T, rt *fake.Runtime, cfg *spec.Config) *planner.Plan {
	t.Helper()
	snap, err := planner.ObserveWorkloads(context.Background(), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return planner.Diff(cfg, snap, planner.Options{})
}

func sandboxOf(t *testing.T, rt *fake.Runtime, pod string) string {
	t.Helper()
	ids := readySandboxes(rt, pod)
	if len(ids) != 1 {
		t.Fatalf("pod %s has %d ready sandboxes, want 1", pod, len(ids))
	}
	return ids[0]
}

// A start-first replace makes the new pod while the old one runs, waits
// for the new one, marks it as serving, and only then stops the old one;
// the pod that depends on it is left alone. It holds for a pod-level
// change, for a container's new image, and for an init container's
// change, whose pod keeps the same spec hash (and so needs another UID).
func TestStartFirstReplace(t *testing.T) {
	const before = "web"
	tests := []struct {
		name                     string
		hostname, image, initCmd string
		wantReason               string
	}{
		{"pod field", "web2", "docker.io/library/busybox:1.36", "true", "changed: hostname"},
		{"container image", before, "docker.io/library/busybox:1.37", "true", `container app changed: update_order = "start_first" replaces the pod`},
		{"init container, same pod hash", before, "docker.io/library/busybox:1.36", "false", `init container "setup" changed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := fake.New(image, "docker.io/library/busybox:1.37")
			rt.ExitCodes["setup"] = 0
			rec := &recorder{rt: rt}
			if res := apply.Execute(context.Background(), plan(t, rt, spectest.Load(t, startFirstStack(before, image, "true"))), rt, rec.options(t)); res.Err() != nil {
				t.Fatal(res.Err())
			}
			oldWeb, oldClient := sandboxOf(t, rt, "web"), sandboxOf(t, rt, "client")
			oldUID := rt.Sandboxes[oldWeb].Metadata.Uid
			rt.ResetCalls()

			cfg := spectest.Load(t, startFirstStack(tt.hostname, tt.image, tt.initCmd))
			p := plan(t, rt, cfg)
			web := p.Pods[slices.IndexFunc(p.Pods, func(pc *planner.PodChange) bool { return pc.Name == "web" })]
			if web.Action != planner.Replace || !web.StartFirst {
				t.Fatalf("pod.web: %s, start first %v (%s); want a start-first replace", web.Action, web.StartFirst, web.StopFirstBecause)
			}
			if !slices.ContainsFunc(web.Reasons, func(r planner.Reason) bool { return strings.Contains(r.Text, tt.wantReason) }) {
				t.Errorf("reasons %v, want one saying %q", web.Reasons, tt.wantReason)
			}
			res := apply.Execute(context.Background(), p, rt, rec.options(t))
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}

			newWeb := sandboxOf(t, rt, "web")
			if newWeb == oldWeb {
				t.Fatal("pod.web was not replaced")
			}
			if rt.Sandboxes[newWeb].Metadata.Uid == oldUID {
				t.Error("the new sandbox has the old one's UID: they would share log and tmpfs directories")
			}
			if len(rec.running) != 1 || !slices.Equal(rec.running[0], sorted(oldWeb, newWeb)) {
				t.Errorf("while the new pod was awaited, ready sandboxes were %v; want the old and the new", rec.running)
			}
			if !slices.Equal(rec.awaited, []string{newWeb}) {
				t.Errorf("awaited %v, want the new sandbox %s", rec.awaited, newWeb)
			}
			if !slices.Equal(rec.marks, []string{oldWeb, newWeb, ""}) {
				t.Errorf("serving marks %v, want old, new, cleared", rec.marks)
			}
			log := strings.Join(rt.Log(), "\n")
			run, stop := strings.Index(log, "RunPodSandbox web"), strings.Index(log, "StopPodSandbox "+oldWeb)
			if run < 0 || stop < 0 || run > stop {
				t.Errorf("the new sandbox was not made before the old one stopped:\n%s", log)
			}
			if got := sandboxOf(t, rt, "client"); got != oldClient {
				t.Errorf("pod.client, which depends on pod.web, was replaced too")
			}
			if p := plan(t, rt, cfg); p.HasChanges() {
				t.Errorf("a plan after the replace still has changes")
			}
		})
	}
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// A new pod that does not get ready, or does not even start, is removed,
// and the old one keeps serving; the apply fails saying so, and a rerun
// once the cause is gone converges.
func TestStartFirstNewPodNotReady(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(rt *fake.Runtime, rec *recorder)
		wantErr string
	}{
		{"not ready", func(_ *fake.Runtime, rec *recorder) {
			rec.notReady = errors.New("readiness probe did not pass within 3s")
		},
			"the new pod did not get ready: readiness probe did not pass within 3s; the old pod keeps serving"},
		{"container fails to start", func(rt *fake.Runtime, _ *recorder) { rt.Errors["StartContainer"] = errors.New("exec: no such file") },
			"no such file; the old pod keeps serving"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := fake.New(image, "docker.io/library/busybox:1.37")
			rt.ExitCodes["setup"] = 0
			rec := &recorder{rt: rt}
			if res := apply.Execute(context.Background(), plan(t, rt, spectest.Load(t, startFirstStack("web", image, "true"))), rt, rec.options(t)); res.Err() != nil {
				t.Fatal(res.Err())
			}
			oldWeb := sandboxOf(t, rt, "web")
			oldContainers := map[string]bool{}
			for id := range rt.Containers {
				oldContainers[id] = true
			}
			rec.marks = nil
			tt.break_(rt, rec)

			cfg := spectest.Load(t, startFirstStack("web", "docker.io/library/busybox:1.37", "true"))
			res := apply.Execute(context.Background(), plan(t, rt, cfg), rt, rec.options(t))
			if err := res.Err(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if got := sandboxOf(t, rt, "web"); got != oldWeb {
				t.Fatalf("the old pod does not serve: ready sandbox %s, want %s", got, oldWeb)
			}
			if len(rt.Sandboxes) != 2 || len(rt.Containers) != len(oldContainers) {
				t.Errorf("left %d sandboxes and %d containers, want 2 and %d (the new pod removed)", len(rt.Sandboxes), len(rt.Containers), len(oldContainers))
			}
			for id := range oldContainers {
				if c := rt.Containers[id]; c == nil || c.Labels[spec.LabelContainer] != "setup" && c.State != cri.ContainerState_CONTAINER_RUNNING {
					t.Errorf("old container %s does not run any more", id)
				}
			}
			if !slices.Equal(rec.marks, []string{oldWeb, ""}) {
				t.Errorf("serving marks %v, want the old one, then cleared", rec.marks)
			}

			delete(rt.Errors, "StartContainer")
			rec.notReady = nil
			if res := apply.Execute(context.Background(), plan(t, rt, cfg), rt, rec.options(t)); res.Err() != nil {
				t.Fatalf("rerun: %v", res.Err())
			}
			if p := plan(t, rt, cfg); p.HasChanges() {
				t.Errorf("a plan after the rerun still has changes")
			}
		})
	}
}

// A start_first pod is replaced stop-first when its old sandbox serves
// nothing, and the plan says why.
func TestStartFirstFallsBackWhenTheOldPodIsDown(t *testing.T) {
	rt := fake.New(image)
	rt.ExitCodes["setup"] = 0
	rec := &recorder{rt: rt}
	if res := apply.Execute(context.Background(), plan(t, rt, spectest.Load(t, startFirstStack("web", image, "true"))), rt, rec.options(t)); res.Err() != nil {
		t.Fatal(res.Err())
	}
	old := sandboxOf(t, rt, "web")
	rt.Sandboxes[old].State = cri.PodSandboxState_SANDBOX_NOTREADY
	p := plan(t, rt, spectest.Load(t, startFirstStack("web2", image, "true")))
	web := p.Pods[slices.IndexFunc(p.Pods, func(pc *planner.PodChange) bool { return pc.Name == "web" })]
	if web.Action != planner.Replace || web.StartFirst || !strings.Contains(web.StopFirstBecause, "not ready") {
		t.Fatalf("pod.web: %s, start first %v, because %q; want a stop-first replace because the old one is not ready", web.Action, web.StartFirst, web.StopFirstBecause)
	}
	rec.marks = nil
	if res := apply.Execute(context.Background(), p, rt, rec.options(t)); res.Err() != nil {
		t.Fatal(res.Err())
	}
	if len(rec.awaited) != 0 || len(rec.marks) != 0 {
		t.Errorf("a stop-first replace awaited %v and marked %v", rec.awaited, rec.marks)
	}
}

// When the stack's network changes in the same plan, old pods must leave
// it first: a start_first pod is replaced stop-first, and a container
// change stays in place, each saying why; the Engine also marks nothing.
func TestStartFirstYieldsToANetworkChange(t *testing.T) {
	const runtimeNet = `{"cniVersion":"1.0.0","name":"runtime-net","plugins":[{"type":"bridge"}]}`
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "99-runtime.conflist"), []byte(runtimeNet), 0o644); err != nil {
		t.Fatal(err)
	}
	const head = "berth { stack = \"eng\" }\n"
	const lan = "network \"lan\" {\n  bridge = \"lan0\"\n  subnet = \"10.77.0.0/16\"\n}\n"
	web := func(hostname, image string) string {
		return `pod "web" {
  hostname     = "` + hostname + `"
  update_order = "start_first"
  container "app" { image = "` + image + `" }
}
`
	}
	tests := []struct {
		name, then string
		check      func(t *testing.T, pc *planner.PodChange)
	}{
		{"pod replace", lan + web("b", image), func(t *testing.T, pc *planner.PodChange) {
			if pc.Action != planner.Replace || pc.StartFirst || !strings.Contains(pc.StopFirstBecause, "network") {
				t.Errorf("pod.web: %s, start first %v, because %q; want stop-first because of the network", pc.Action, pc.StartFirst, pc.StopFirstBecause)
			}
		}},
		{"container replace", lan + web("a", "docker.io/library/busybox:1.37"), func(t *testing.T, pc *planner.PodChange) {
			if pc.Action != planner.NoOp || pc.Containers[0].Action != planner.Replace {
				t.Fatalf("pod.web: %s, container %s; want the container replaced in place", pc.Action, pc.Containers[0].Action)
			}
			if r := pc.Containers[0].Reasons; !slices.ContainsFunc(r, func(r planner.Reason) bool { return r.Code == planner.ReasonStopFirst }) {
				t.Errorf("container reasons %v, want one saying why it is not start-first", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := fake.New(image, "docker.io/library/busybox:1.37")
			rt.CNIConfDir = confDir
			e := newEngine(t, rt)
			ctx := context.Background()
			if _, res, err := e.Converge(ctx, spectest.Load(t, head+web("a", image)), planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
				t.Fatalf("apply: %v %v", err, res.Err())
			}
			rec := &recorder{rt: rt}
			opts := rec.options(t)
			d, res, err := e.Converge(ctx, spectest.Load(t, head+tt.then), planner.Options{}, nil, opts)
			if err != nil || res.Err() != nil {
				t.Fatalf("apply: %v %v", err, res.Err())
			}
			tt.check(t, d.Plan.Pods[0])
			if len(rec.awaited)+len(rec.marks) != 0 {
				t.Errorf("a stop-first change awaited %v and marked %v", rec.awaited, rec.marks)
			}
		})
	}
}

// An apply interrupted while the new pod gets ready (Ctrl-C) removes the
// new pod, leaves the old one serving, and a rerun converges.
func TestStartFirstInterrupted(t *testing.T) {
	rt := fake.New(image, "docker.io/library/busybox:1.37")
	rt.ExitCodes["setup"] = 0
	rec := &recorder{rt: rt}
	if res := apply.Execute(context.Background(), plan(t, rt, spectest.Load(t, startFirstStack("web", image, "true"))), rt, rec.options(t)); res.Err() != nil {
		t.Fatal(res.Err())
	}
	old := sandboxOf(t, rt, "web")
	cfg := spectest.Load(t, startFirstStack("web", "docker.io/library/busybox:1.37", "true"))
	ctx, cancel := context.WithCancel(context.Background())
	opts := rec.options(t)
	opts.AwaitReady = func(ctx context.Context, _ *spec.Pod, _ string) error {
		cancel() // the user's Ctrl-C, while the new pod is awaited
		<-ctx.Done()
		return ctx.Err()
	}
	res := apply.Execute(ctx, plan(t, rt, cfg), rt, opts)
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "the old pod keeps serving") {
		t.Fatalf("error = %v", err)
	}
	if got := sandboxOf(t, rt, "web"); got != old || len(rt.Sandboxes) != 2 {
		t.Fatalf("after the interrupt: ready sandbox %s (want the old %s), %d sandboxes in all (want 2)", got, old, len(rt.Sandboxes))
	}
	if res := apply.Execute(context.Background(), plan(t, rt, cfg), rt, rec.options(t)); res.Err() != nil {
		t.Fatalf("rerun: %v", res.Err())
	}
	if p := plan(t, rt, cfg); p.HasChanges() {
		t.Error("a plan after the rerun still has changes")
	}
}
