package spec

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// Port maps a host port to a pod's port, in the kernel (CNI portmap).
type Port struct {
	Name      string
	Container int
	Host      int
	HostIP    string // "" for every address
	Protocol  string // tcp, udp or sctp

	DeclRange hcl.Range
}

var portSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "container", Required: true}, {Name: "host"}, {Name: "host_ip"}, {Name: "protocol"},
}}

func decodePort(e *evaluator, b *hcl.Block) (Port, bool) {
	p := Port{Name: b.Labels[0], DeclRange: b.DefRange}
	content, d := b.Body.Content(portSchema)
	e.diags = append(e.diags, d...)
	if d.HasErrors() {
		return p, false
	}
	a := content.Attributes
	ok := true
	p.Container = e.integer(a["container"], 0)
	p.Host = e.integer(a["host"], p.Container)
	for _, f := range []struct {
		attr *hcl.Attribute
		v    int
	}{{a["container"], p.Container}, {a["host"], p.Host}} {
		if f.attr != nil && (f.v < 1 || f.v > 65535) {
			e.errorf(f.attr.Expr.Range(), "Invalid port", "A port is a number from 1 to 65535; got %d.", f.v)
			ok = false
		}
	}
	p.HostIP = e.plainStr(a["host_ip"], "")
	if p.HostIP != "" {
		if _, err := netip.ParseAddr(p.HostIP); err != nil {
			e.errorf(a["host_ip"].Expr.Range(), "Invalid host_ip", "host_ip must be an IP address of this host, such as \"127.0.0.1\"; got %q.", p.HostIP)
			ok = false
		}
	}
	p.Protocol = e.enum(a["protocol"], "tcp", "tcp", "udp", "sctp")
	return p, ok
}

// checkPorts rejects two ports, in one pod or two, that claim the same host
// port, protocol and address (an unset host_ip claims every address).
func checkPorts(pods []*Pod) hcl.Diagnostics {
	type claim struct {
		pod  string
		port Port
	}
	byKey := map[string][]claim{}
	for _, p := range pods {
		for _, port := range p.Ports {
			key := fmt.Sprintf("%s/%d", port.Protocol, port.Host)
			byKey[key] = append(byKey[key], claim{p.Name, port})
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var diags hcl.Diagnostics
	for _, k := range keys {
		claims := byKey[k]
		for i := 1; i < len(claims); i++ {
			for j := 0; j < i; j++ {
				a, b := claims[j], claims[i]
				if a.port.HostIP != "" && b.port.HostIP != "" && a.port.HostIP != b.port.HostIP {
					continue
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Host port claimed twice",
					Detail: fmt.Sprintf("pod %q port %q and pod %q port %q both claim host port %d/%s%s. Give one another host port or host_ip.",
						a.pod, a.port.Name, b.pod, b.port.Name, b.port.Host, b.port.Protocol, ipSuffix(a.port.HostIP, b.port.HostIP)),
					Subject: b.port.DeclRange.Ptr()})
			}
		}
	}
	return diags
}

func ipSuffix(a, b string) string {
	switch {
	case a == "" && b == "":
		return " on every address"
	case a == "" || b == "":
		return " (a port without host_ip takes every address)"
	}
	return " on " + a
}
