package apply_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// The fake, as the real runtime, tears a sandbox's network down with the
// configuration of the moment and fails on another than it was set up
// with. Each case makes the pod on one network, changes the network
// without replacing the pod, then replaces or destroys it: one apply must
// do it, with the pod's own network put back for the teardown and the
// stack's file as the configuration says afterwards.
func TestTeardownOnThePodsOwnNetwork(t *testing.T) {
	const runtimeNet = `{"cniVersion":"1.0.0","name":"runtime-net","plugins":[{"type":"bridge"}]}`
	network := func(subnet string) string {
		return "network \"lan\" {\n  bridge = \"lan0\"\n  subnet = \"" + subnet + "\"\n}\n"
	}
	pod := func(hostname string) string {
		return "pod \"web\" {\n  hostname = \"" + hostname + "\"\n  container \"app\" {\n    image   = \"docker.io/library/busybox:1.36\"\n    command = [\"sleep\", \"1000\"]\n  }\n}\n"
	}
	cases := []struct {
		name          string
		made, changed string // configurations: the pod is made, then the network changes
		then          string // the configuration that replaces or destroys the pod; "" destroys the stack
		madeOn        string
	}{
		{"replace after a network was added", pod("a"), network("10.77.0.0/16") + pod("a"), network("10.77.0.0/16") + pod("b"), "runtime-net"},
		{"replace after the subnet changed", network("10.77.0.0/16") + pod("a"), network("10.78.0.0/16") + pod("a"), network("10.78.0.0/16") + pod("b"), "lan"},
		{"remove the pod after a network was added", pod("a"), network("10.77.0.0/16") + pod("a"), network("10.77.0.0/16"), "runtime-net"},
		{"replace after the network was removed", network("10.77.0.0/16") + pod("a"), pod("a"), pod("b"), "lan"},
		{"destroy after a network was added", pod("a"), network("10.77.0.0/16") + pod("a"), "", "runtime-net"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			confDir := t.TempDir()
			if err := os.WriteFile(filepath.Join(confDir, "99-runtime.conflist"), []byte(runtimeNet), 0o644); err != nil {
				t.Fatal(err)
			}
			rt := fake.New(image)
			rt.CNIConfDir = confDir
			e := newEngine(t, rt)
			ctx := context.Background()
			head := "berth { stack = \"eng\" }\n"
			for _, src := range []string{tc.made, tc.changed} {
				if _, res, err := e.Converge(ctx, spectest.Load(t, head+src), planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
					t.Fatalf("apply: %v %v", err, res.Err())
				}
			}
			cfg := &spec.Config{Berth: spec.Berth{Stack: "eng", Parallelism: 2}}
			opts := planner.Options{Destroy: true}
			if tc.then != "" {
				cfg, opts = spectest.Load(t, head+tc.then), planner.Options{}
			}
			d, res, err := e.Converge(ctx, cfg, opts, nil, execOpts(t))
			if err != nil || res.Err() != nil {
				t.Fatalf("apply: %v %v", err, res.Err())
			}
			var pc *planner.PodChange
			for _, p := range d.Plan.Pods {
				if p.Name == "web" && p.SandboxID != "" {
					pc = p
				}
			}
			if pc == nil || pc.MadeOn != tc.madeOn {
				t.Fatalf("plan: %+v, want the pod made on %q", pc, tc.madeOn)
			}
			if !strings.Contains(stepsDetail(res.Steps), "torn down on network \""+tc.madeOn+"\", which it was made on") {
				t.Errorf("no step says the pod was torn down on its own network: %+v", res.Steps)
			}
			// The stack's file is what the configuration says, and a pod
			// made now records it.
			stackFile := planner.NetworkPath(confDir, "eng")
			got, _ := os.ReadFile(stackFile)
			var want []byte
			if cfg.Networks != nil {
				want, _ = cfg.Networks[0].Conflist("eng")
			}
			if !bytes.Equal(got, want) {
				t.Errorf("stack file:\n%s\nwant:\n%s", got, want)
			}
			for id, sb := range rt.Sandboxes {
				if sb.State == 0 && !bytes.Equal([]byte(sb.Annotations[spec.AnnotationNetwork]), rt.MadeOn[id]) {
					t.Errorf("sandbox %s records %q, made on %q", id, sb.Annotations[spec.AnnotationNetwork], rt.MadeOn[id])
				}
			}
			// Nothing is left to do.
			if _, _, err := e.Converge(ctx, cfg, opts, nil, execOpts(t)); !errors.Is(err, apply.ErrNothingToDo) {
				t.Errorf("a second apply: %v, want nothing to do", err)
			}
		})
	}
}

func stepsDetail(steps []apply.Event) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.Detail + "\n")
	}
	return b.String()
}

// A pod left on an old network (the change was applied without
// --replace-on-network-change, or its replace was cut short) stays in
// every later plan's account: a warning, and a replace when asked for,
// though the network file itself has nothing left to change.
func TestAPodOnAnOldNetworkStaysInThePlan(t *testing.T) {
	network := func(subnet string) string {
		return "network \"lan\" {\n  bridge = \"lan0\"\n  subnet = \"" + subnet + "\"\n}\n"
	}
	const pod = "pod \"web\" {\n  container \"app\" {\n    image   = \"docker.io/library/busybox:1.36\"\n    command = [\"sleep\", \"1000\"]\n  }\n}\n"
	rt := fake.New(image)
	rt.CNIConfDir = t.TempDir()
	e := newEngine(t, rt)
	ctx := context.Background()
	head := "berth { stack = \"eng\" }\n"
	for _, src := range []string{network("10.77.0.0/16") + pod, network("10.78.0.0/16") + pod} {
		if _, res, err := e.Converge(ctx, spectest.Load(t, head+src), planner.Options{}, nil, execOpts(t)); err != nil || res.Err() != nil {
			t.Fatalf("apply: %v %v", err, res.Err())
		}
	}
	cfg := spectest.Load(t, head+network("10.78.0.0/16")+pod)
	d, err := e.Plan(ctx, cfg, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(d.Plan.Warnings, "\n"), "pod.web keep their current network until they are replaced") {
		t.Errorf("a later plan does not tell of the pod on the old network: warnings %q", d.Plan.Warnings)
	}
	d, err = e.Plan(ctx, cfg, planner.Options{ReplaceOnNetworkChange: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range d.Plan.Pods {
		if pc.Name == "web" && pc.Action != planner.Replace {
			t.Errorf("with --replace-on-network-change the pod is %s, want replace", pc.Action)
		}
	}
	if _, res, err := e.Converge(ctx, cfg, planner.Options{ReplaceOnNetworkChange: true}, nil, execOpts(t)); err != nil || res.Err() != nil {
		t.Fatalf("apply: %v %v", err, res.Err())
	}
	if d, err := e.Plan(ctx, cfg, planner.Options{ReplaceOnNetworkChange: true}); err != nil || d.Plan.HasChanges() || len(d.Plan.Warnings) > 0 {
		t.Errorf("after the replace: changes %v, warnings %q, %v", d.Plan.HasChanges(), d.Plan.Warnings, err)
	}
}
