package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNetworkConflist(t *testing.T) {
	cases := []struct {
		name string
		net  Network
		want string
	}{
		{"bridge with portmap", Network{Name: "lan", Type: "bridge", Bridge: "berth0", Subnet: "10.88.0.0/16", Gateway: "10.88.0.1", IPMasq: true, MTU: 1400, Portmap: true},
			`{"berth.io/stack":"home","cniVersion":"1.0.0","name":"lan","plugins":[{"bridge":"berth0","ipMasq":true,"ipam":{"ranges":[[{"gateway":"10.88.0.1","subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}],"type":"host-local"},"isGateway":true,"mtu":1400,"type":"bridge"},{"capabilities":{"portMappings":true},"type":"portmap"}]}`},
		{"macvlan without portmap", Network{Name: "wire", Type: "macvlan", Master: "eth0", Subnet: "192.168.5.0/24"},
			`{"berth.io/stack":"home","cniVersion":"1.0.0","name":"wire","plugins":[{"ipam":{"ranges":[[{"subnet":"192.168.5.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"type":"host-local"},"master":"eth0","type":"macvlan"}]}`},
		{"raw", Network{Name: "r", Raw: `{"cniVersion":"0.4.0","name":"r","plugins":[{"type":"ptp"}]}`},
			`{"berth.io/stack":"home","cniVersion":"0.4.0","name":"r","plugins":[{"type":"ptp"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.net.Conflist("home")
			if err != nil {
				t.Fatal(err)
			}
			var compact strings.Builder
			var doc any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(doc)
			compact.Write(b)
			if compact.String() != tc.want {
				t.Errorf("got  %s\nwant %s", compact.String(), tc.want)
			}
		})
	}
}

func TestDecodeNetworks(t *testing.T) {
	cases := []struct {
		name, src string
		diags     []diagWant
	}{
		{"defaults", "network \"lan\" {\n  subnet = \"10.88.0.0/16\"\n}\n", nil},
		{"gateway outside the subnet", "network \"lan\" {\n  subnet = \"10.88.0.0/16\"\n  gateway = \"10.89.0.1\"\n}\n",
			[]diagWant{{summary: "Invalid gateway", detail: "inside 10.88.0.0/16", file: "main.hcl", at: "10.89.0.1"}}},
		{"macvlan without master", "network \"lan\" {\n  type = \"macvlan\"\n  subnet = \"10.88.0.0/16\"\n}\n",
			[]diagWant{{summary: "Missing master", detail: "needs master", file: "main.hcl", at: "network"}}},
		{"raw with fields", "network \"lan\" {\n  raw = \"{}\"\n  subnet = \"10.88.0.0/16\"\n}\n",
			[]diagWant{{summary: "raw with fields", detail: `remove "subnet"`, file: "main.hcl", at: "subnet"}}},
		{"two networks", "network \"a\" {\n  subnet = \"10.88.0.0/16\"\n}\nnetwork \"b\" {\n  subnet = \"10.89.0.0/16\"\n}\n",
			[]diagWant{{summary: "More than one network", detail: "at most one", file: "main.hcl", at: `network "b"`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := files{"main.hcl": tc.src}
			cfg, diags, _ := loadFiles(t, fs, Options{})
			if tc.diags != nil {
				requireDiags(t, fs, diags, tc.diags...)
				return
			}
			requireNoErrors(t, diags)
			n := cfg.Networks[0]
			if n.Type != "bridge" || n.Bridge != "berth-lan" || !n.IPMasq || !n.Portmap {
				t.Errorf("defaults: %+v", n)
			}
		})
	}
}
