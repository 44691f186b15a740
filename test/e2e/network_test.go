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
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run(); removeIPAM("custom") })
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
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run(); removeIPAM("late") })
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

// A pod made on one network and replaced after the network changed under
// it is torn down on the network it was made on, which berth recorded and
// puts back for the teardown: one apply, and the old address is released.
// (The stack, named after the test, must sort before the runtime's own
// network file, 10-berth-test.conflist, for its network to be the first.)
func TestAReplacedPodIsTornDownOnItsOwnNetwork(t *testing.T) {
	cases := []struct {
		name          string
		made, changed string // the network blocks the pod is made on, then moved to
		madeOn        string
		ipamDir       string // where the old address was allocated
	}{
		{"a network was added", "", "network \"late\" {\n  bridge = \"berthnet9\"\n  subnet = \"10.214.9.0/24\"\n}\n",
			"berth-test", os.Getenv("BERTH_RUNTIME_DIR") + "/cni/ipam/berth-test"},
		{"the subnet changed", "network \"moved\" {\n  bridge = \"berthnet10\"\n  subnet = \"10.214.10.0/24\"\n}\n",
			// A bridge keeps its first address: a new subnet needs a new bridge.
			"network \"moved\" {\n  bridge = \"berthnet11\"\n  subnet = \"10.214.11.0/24\"\n}\n",
			"moved", "/var/lib/cni/networks/moved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				exec.Command("ip", "link", "del", "berthnet9").Run()
				exec.Command("ip", "link", "del", "berthnet10").Run()
				exec.Command("ip", "link", "del", "berthnet11").Run()
				removeIPAM("late")
				removeIPAM("moved")
			})
			s := newStack(t)
			s.write(tc.made + networkTestPod)
			s.apply()
			old := podIP(t, s.pods()["web"].Id)
			if _, err := os.Stat(tc.ipamDir + "/" + old); err != nil {
				t.Fatalf("the pod's address is not where the test looks: %v", err)
			}
			s.write(tc.changed + networkTestPod)
			s.apply() // the file changes; the pod keeps its network

			s.write(tc.changed + strings.Replace(networkTestPod, `pod "web" {`, `pod "web" {`+"\n  hostname = \"moved\"", 1))
			p := s.mustBerth("plan", s.dir)
			if want := fmt.Sprintf("# made on network %q", tc.madeOn); !strings.Contains(p.stdout, want) {
				t.Errorf("plan lacks %q:\n%s", want, p.stdout)
			}
			r := s.apply()
			if !strings.Contains(r.stdout, fmt.Sprintf("torn down on network %q", tc.madeOn)) {
				t.Errorf("apply does not say where it tore the pod down:\n%s", r)
			}
			if pods := s.pods(); len(pods) != 1 {
				t.Fatalf("pods after the replace: %v", keys(pods))
			}
			if _, err := os.Stat(tc.ipamDir + "/" + old); !os.IsNotExist(err) {
				t.Errorf("the old address %s is still allocated in %s (%v)", old, tc.ipamDir, err)
			}
			if p := s.berth("plan", "--detailed-exitcode", s.dir); p.code != 0 {
				t.Errorf("plan after the replace: %s", p)
			}
			s.mustBerth("destroy", "--auto-approve", s.dir)
		})
	}
}

// removeIPAM removes the address store host-local keeps for a test's
// network (its default dataDir), and its parents once they are empty.
func removeIPAM(network string) {
	os.RemoveAll("/var/lib/cni/networks/" + network)
	os.Remove("/var/lib/cni/networks")
	os.Remove("/var/lib/cni")
}
