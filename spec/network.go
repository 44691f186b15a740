package spec

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// Network is a CNI network berth writes into the runtime's conf dir.
type Network struct {
	Name    string
	Type    string // bridge, macvlan, ipvlan or ptp
	Bridge  string
	Subnet  string
	Gateway string
	IPMasq  bool
	MTU     int
	Master  string
	Portmap bool
	// Raw is a whole conflist given as JSON, instead of the fields above.
	Raw string

	DeclRange hcl.Range
}

var networkSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type"}, {Name: "bridge"}, {Name: "subnet"}, {Name: "gateway"}, {Name: "ip_masq"},
	{Name: "mtu"}, {Name: "master"}, {Name: "portmap"}, {Name: "raw"},
}}

// ifNamePattern is a Linux interface name, of at most 15 characters (see
// names.go).
var ifNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func validIfName(name string) bool { return len(name) <= 15 && ifNamePattern.MatchString(name) }

func decodeNetworks(ctx *hcl.EvalContext, blocks []*hcl.Block) ([]*Network, hcl.Diagnostics) {
	e := &evaluator{ctx: ctx}
	var out []*Network
	seen := map[string]*Network{}
	for _, b := range blocks {
		n := &Network{Name: b.Labels[0], DeclRange: b.DefRange}
		checkName(e, "network", n.Name, b.LabelRanges[0])
		content, d := b.Body.Content(networkSchema)
		e.diags = append(e.diags, d...)
		a := content.Attributes
		n.Raw = e.plainStr(a["raw"], "")
		if n.Raw != "" {
			for _, other := range []string{"type", "bridge", "subnet", "gateway", "ip_masq", "mtu", "master", "portmap"} {
				if a[other] != nil {
					e.errorf(a[other].NameRange, "raw with fields", "A network with raw JSON takes its settings from it; remove %q, or raw.", other)
				}
			}
			var probe map[string]any
			if err := json.Unmarshal([]byte(n.Raw), &probe); err != nil {
				e.errorf(a["raw"].Expr.Range(), "Invalid raw network", "raw must be a CNI conflist in JSON: %s.", err)
			}
		} else {
			n.Type = e.enum(a["type"], "bridge", "bridge", "macvlan", "ipvlan", "ptp")
			n.Bridge = e.plainStr(a["bridge"], "")
			if n.Type == "bridge" && n.Bridge == "" {
				n.Bridge = "berth-" + n.Name
				if len(n.Bridge) > 15 {
					n.Bridge = n.Bridge[:15]
				}
			}
			if n.Bridge != "" && !validIfName(n.Bridge) {
				e.errorf(rangeOr(a["bridge"], b.DefRange), "Invalid bridge", "A bridge is an interface name of 1-15 letters, digits, '.', '-' or '_'; got %q.", n.Bridge)
			}
			n.Subnet = e.plainStr(a["subnet"], "")
			prefix, err := netip.ParsePrefix(n.Subnet)
			if err != nil {
				e.errorf(rangeOr(a["subnet"], b.DefRange), "Invalid subnet", "network %q needs a subnet in CIDR form, such as \"10.88.0.0/16\".", n.Name)
			}
			n.Gateway = e.plainStr(a["gateway"], "")
			if n.Gateway != "" {
				gw, err := netip.ParseAddr(n.Gateway)
				if err != nil || (prefix.IsValid() && !prefix.Contains(gw)) {
					e.errorf(a["gateway"].Expr.Range(), "Invalid gateway", "gateway must be an address inside %s; got %q.", n.Subnet, n.Gateway)
				}
			}
			n.IPMasq = e.boolean(a["ip_masq"], true)
			n.MTU = e.integer(a["mtu"], 0)
			n.Master = e.plainStr(a["master"], "")
			if (n.Type == "macvlan" || n.Type == "ipvlan") && n.Master == "" {
				e.errorf(b.DefRange, "Missing master", "A %s network needs master, the host interface it attaches to.", n.Type)
			}
			n.Portmap = e.boolean(a["portmap"], true)
		}
		if prev := seen[n.Name]; prev != nil {
			e.errorf(b.DefRange, "Duplicate network", "network %q is already declared at %s.", n.Name, prev.DeclRange)
			continue
		}
		seen[n.Name] = n
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) > 1 {
		e.errorf(out[1].DeclRange, "More than one network", "The runtime gives every pod the first network of its conf dir, so a stack declares at most one; %q is already declared at %s.", out[0].Name, out[0].DeclRange)
	}
	return out, e.diags
}

// Conflist renders the network as a CNI conflist, marked with the stack.
func (n *Network) Conflist(stack string) ([]byte, error) {
	var doc map[string]any
	if n.Raw != "" {
		if err := json.Unmarshal([]byte(n.Raw), &doc); err != nil {
			return nil, err
		}
	} else {
		ipam := map[string]any{"type": "host-local", "ranges": [][]map[string]any{{rangeOf(n)}},
			"routes": []map[string]any{{"dst": "0.0.0.0/0"}}}
		main := map[string]any{"type": n.Type, "ipam": ipam}
		switch n.Type {
		case "bridge":
			main["bridge"], main["isGateway"], main["ipMasq"] = n.Bridge, true, n.IPMasq
		case "ptp":
			main["ipMasq"] = n.IPMasq
		case "macvlan", "ipvlan":
			main["master"] = n.Master
		}
		if n.MTU > 0 {
			main["mtu"] = n.MTU
		}
		plugins := []any{main}
		if n.Portmap {
			plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
		}
		doc = map[string]any{"cniVersion": "1.0.0", "name": n.Name, "plugins": plugins}
	}
	doc[NetworkStackKey] = stack
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	return append(out, '\n'), nil
}

// NetworkStackKey marks a conflist as a stack's; CNI ignores unknown keys.
const NetworkStackKey = LabelStack

func rangeOf(n *Network) map[string]any {
	r := map[string]any{"subnet": n.Subnet}
	if n.Gateway != "" {
		r["gateway"] = n.Gateway
	}
	return r
}
