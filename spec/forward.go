package spec

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/hashicorp/hcl/v2"
)

// Forward is a user-space TCP forward from a host address into a pod's
// port, held open by `berth forward` (like crictl port-forward).
type Forward struct {
	Name   string
	Port   int    // the pod's port
	Listen string // host:port where berth listens

	DeclRange hcl.Range
}

var forwardSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "port", Required: true}, {Name: "listen", Required: true},
}}

func decodeForward(e *evaluator, b *hcl.Block) (Forward, bool) {
	f := Forward{Name: b.Labels[0], DeclRange: b.DefRange}
	content, d := b.Body.Content(forwardSchema)
	e.diags = append(e.diags, d...)
	if d.HasErrors() {
		return f, false
	}
	a := content.Attributes
	f.Port = e.integer(a["port"], 0)
	if f.Port < 1 || f.Port > 65535 {
		e.errorf(a["port"].Expr.Range(), "Invalid port", "A port is a number from 1 to 65535; got %d.", f.Port)
		return f, false
	}
	f.Listen = e.plainStr(a["listen"], "")
	host, port, err := net.SplitHostPort(f.Listen)
	n, perr := strconv.Atoi(port)
	_, aerr := netip.ParseAddr(host)
	if err != nil || perr != nil || n < 1 || n > 65535 || aerr != nil {
		e.errorf(a["listen"].Expr.Range(), "Invalid listen", "listen is an IP address and port where berth listens, such as \"127.0.0.1:13389\"; got %q.", f.Listen)
		return f, false
	}
	return f, true
}

// checkForwards rejects two forwards that listen on one address.
func checkForwards(pods []*Pod) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[string]string{}
	for _, p := range pods {
		for _, f := range p.Forwards {
			if prev, dup := seen[f.Listen]; dup {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Listen address used twice",
					Detail: fmt.Sprintf("%s and pod %q forward %q both listen on %s. Give one another address.", prev, p.Name, f.Name, f.Listen), Subject: f.DeclRange.Ptr()})
				continue
			}
			seen[f.Listen] = fmt.Sprintf("pod %q forward %q", p.Name, f.Name)
		}
	}
	return diags
}
