package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A network block writes the pod network: new pods get addresses in its
// subnet; pods already running keep theirs until replaced, which
// --replace-on-network-change does; removing the block removes the file.
// networkTestPod is the one pod the network tests move between networks.
const networkTestPod = `
pod "web" {
  container "main" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`

func TestNetwork(t *testing.T) {
	const subnet, bridge = "10.214.7.0/24", "berthnet7"
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	s := newStack(t)
	pod := networkTestPod
	s.write(pod)
	s.apply()
	before := podIP(t, s.pods()["web"].Id)

	network := fmt.Sprintf("network \"custom\" {\n  bridge = %q\n  subnet = %q\n}\n", bridge, subnet)
	s.write(network + pod)
	p := s.berth("plan", "--detailed-exitcode", s.dir)
	for _, want := range []string{"# network.custom will be written", `+  "cniVersion": "1.0.0"`, `"subnet": "` + subnet + `"`,
		"pod.web keep their current network until they are replaced"} {
		if !strings.Contains(p.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, p.stdout)
		}
	}
	r := s.mustBerth("apply", "--auto-approve", "--replace-on-network-change", s.dir)
	if !strings.Contains(r.stdout, "the pod network changed (--replace-on-network-change)") {
		t.Fatalf("apply: %s", r)
	}
	after := podIP(t, s.pods()["web"].Id)
	if !netip.MustParsePrefix(subnet).Contains(netip.MustParseAddr(after)) {
		t.Fatalf("the replaced pod got %s (was %s), not an address in %s", after, before, subnet)
	}
	if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
		t.Fatalf("plan after apply: %s", p)
	}

	s.write(pod)
	r = s.mustBerth("apply", "--auto-approve", "--replace-on-network-change", s.dir)
	if !strings.Contains(r.stdout, "# network.custom will be removed") || !netip.MustParsePrefix("10.213.0.0/16").Contains(netip.MustParseAddr(podIP(t, s.pods()["web"].Id))) {
		t.Fatalf("apply without the network: %s", r)
	}
	files, _ := os.ReadDir(os.Getenv("BERTH_RUNTIME_DIR") + "/cni/net.d")
	for _, f := range files {
		if strings.Contains(f.Name(), s.name) {
			t.Fatalf("the network file %s is left", f.Name())
		}
	}
}

// A network whose plugin does not exist fails the plan, before anything
// is written.
func TestNetworkValidated(t *testing.T) {
	s := newStack(t)
	s.write(`network "odd" {
  raw = "{\"cniVersion\":\"1.0.0\",\"name\":\"odd\",\"plugins\":[{\"type\":\"no-such-plugin\"}]}"
}`)
	p := s.berth("plan", s.dir)
	if p.code != 1 || !strings.Contains(p.stdout, "the runtime could not use this network") || !strings.Contains(p.stdout, "no-such-plugin") {
		t.Fatalf("plan: %s", p)
	}
}

func podIP(t *testing.T, id string) string {
	t.Helper()
	st, err := rt.PodSandboxStatus(context.Background(), &cri.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		t.Fatal(err)
	}
	return st.Status.GetNetwork().GetIp()
}

// A pod made on the runtime's network before the stack declared its own
// is destroyed in one go: the runtime tears a pod's network down with the
// file of the moment, so berth removes the stack's file and tries again.
func TestDestroyAfterANetworkWasAdded(t *testing.T) {
	const subnet, bridge = "10.214.8.0/24", "berthnet8"
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	s := newStack(t)
	pod := networkTestPod
	s.write(pod)
	s.apply()
	s.write(fmt.Sprintf("network \"late\" {\n  bridge = %q\n  subnet = %q\n}\n", bridge, subnet) + pod)
	s.apply() // the file is written; the pod keeps the runtime's network
	r := s.berth("destroy", "--auto-approve", s.dir)
	if r.code != 0 {
		t.Fatalf("destroy: %s", r)
	}
	if len(s.pods()) != 0 {
		t.Fatalf("pods left after destroy: %v", keys(s.pods()))
	}
	if strings.Contains(r.stdout, "Destruction failed") && !strings.Contains(r.stdout, "retried after removing the stack's network file") {
		t.Errorf("destroy failed a pod and did not say it retried:\n%s", r)
	}
}
