package spec

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Mirror is a containerd hosts.toml for one registry host: where pulls of
// that host's images go, in order.
type Mirror struct {
	// Host is the registry host ("docker.io", "registry.example.com:5000"),
	// or "_default" for every registry without a file of its own.
	Host string
	// Server is the upstream, tried after the endpoints; "" for none.
	Server    string
	Endpoints []Endpoint

	DeclRange hcl.Range
}

// Endpoint is one mirror of a registry.
type Endpoint struct {
	URL          string
	Capabilities []string
	SkipVerify   bool
	CAFile       string
	ClientCert   string
	ClientKey    string
	Header       map[string]string
	OverridePath bool
}

// Registry holds the credentials for pulls from one registry host. Every
// value but the host is secret.
type Registry struct {
	Host          string
	Username      string
	Password      string
	Auth          string // base64 of user:password
	IdentityToken string

	DeclRange hcl.Range
}

// DefaultMirrorServer is the upstream of a registry host when a mirror
// block does not name one: Docker Hub's API host for docker.io, the host
// itself over HTTPS otherwise, and none for _default.
func DefaultMirrorServer(host string) string {
	switch host {
	case "_default":
		return ""
	case "docker.io":
		return "https://registry-1.docker.io"
	}
	return "https://" + host
}

var mirrorSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "server"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "endpoint", LabelNames: []string{"url"}}},
}

var endpointSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "capabilities"}, {Name: "skip_verify"}, {Name: "ca_file"}, {Name: "client_cert"},
	{Name: "client_key"}, {Name: "header"}, {Name: "override_path"},
}}

var registrySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "username"}, {Name: "password"}, {Name: "auth"}, {Name: "identity_token"},
}}

var capabilityValues = []string{"pull", "resolve", "push"}

func decodeMirrors(ctx *hcl.EvalContext, dir string, blocks []*hcl.Block) ([]*Mirror, hcl.Diagnostics) {
	e := &evaluator{ctx: ctx}
	var out []*Mirror
	seen := map[string]*Mirror{}
	for _, b := range blocks {
		m := &Mirror{Host: b.Labels[0], DeclRange: b.DefRange}
		if err := checkRegistryHost(m.Host, true); err != nil {
			e.errorf(b.LabelRanges[0], "Invalid mirror host", "%s", err)
		}
		content, d := b.Body.Content(mirrorSchema)
		e.diags = append(e.diags, d...)
		m.Server = e.plainStr(content.Attributes["server"], DefaultMirrorServer(m.Host))
		if m.Server != "" {
			checkURL(e, content.Attributes["server"], b.DefRange, m.Server)
		}
		for _, eb := range content.Blocks {
			m.Endpoints = append(m.Endpoints, decodeEndpoint(e, dir, eb))
		}
		if prev := seen[m.Host]; prev != nil {
			e.errorf(b.DefRange, "Duplicate mirror", "mirror %q is already declared at %s.", m.Host, prev.DeclRange)
			continue
		}
		seen[m.Host] = m
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, e.diags
}

func decodeEndpoint(e *evaluator, dir string, b *hcl.Block) Endpoint {
	ep := Endpoint{URL: b.Labels[0]}
	checkURL(e, nil, b.LabelRanges[0], ep.URL)
	content, d := b.Body.Content(endpointSchema)
	e.diags = append(e.diags, d...)
	a := content.Attributes
	ep.Capabilities = []string{"pull", "resolve"}
	if attr := a["capabilities"]; attr != nil {
		ep.Capabilities = e.plainList(attr)
		for _, c := range ep.Capabilities {
			if !slices.Contains(capabilityValues, c) {
				e.errorf(attr.Expr.Range(), "Invalid capability", "A mirror endpoint's capabilities are %s; got %q.", quoteList(capabilityValues), c)
			}
		}
	}
	ep.SkipVerify = e.boolean(a["skip_verify"], false)
	path := func(name string) string {
		if p := e.plainStr(a[name], ""); p != "" {
			return resolve(dir, p)
		}
		return ""
	}
	ep.CAFile, ep.ClientCert, ep.ClientKey = path("ca_file"), path("client_cert"), path("client_key")
	if (ep.ClientCert == "") != (ep.ClientKey == "") && ep.ClientKey != "" {
		e.errorf(a["client_key"].Expr.Range(), "client_key without client_cert", "Give client_cert too: the key is the certificate's.")
	}
	ep.Header = e.plainMap(a["header"])
	ep.OverridePath = e.boolean(a["override_path"], false)
	return ep
}

func checkURL(e *evaluator, attr *hcl.Attribute, fallback hcl.Range, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.errorf(rangeOr(attr, fallback), "Invalid URL", "%q must be an http:// or https:// URL, such as \"https://mirror.example.com\".", raw)
	}
}

// checkRegistryHost accepts "host", "host:port" and, for mirrors, "_default".
func checkRegistryHost(host string, allowDefault bool) error {
	if allowDefault && host == "_default" {
		return nil
	}
	// The host names a directory under the certs dir: only a DNS name, an
	// IPv4 or a bracketed IPv6 address, with an optional port, may reach it.
	if validRegistryHost(host) {
		return nil
	}
	return fmt.Errorf("%q is not a registry host; write the host (and port), such as \"docker.io\" or \"registry.example.com:5000\"", host)
}

// validRegistryHost accepts host[:port]: DNS labels (an IPv4 address is
// four), or a bracketed IPv6 address; the port 1-65535.
func validRegistryHost(host string) bool {
	name, port, hasPort := strings.Cut(host, ":")
	if rest, bracketed := strings.CutPrefix(host, "["); bracketed {
		addr, after, closed := strings.Cut(rest, "]")
		if !closed || !ipv6Chars.MatchString(addr) {
			return false
		}
		if port, hasPort = strings.CutPrefix(after, ":"); !hasPort && after != "" {
			return false
		}
	} else if !validDNSName(name) {
		return false
	}
	if !hasPort {
		return true
	}
	n, err := strconv.Atoi(port)
	return len(port) <= 5 && digits.MatchString(port) && err == nil && n > 0 && n <= 65535
}

var (
	ipv6Chars = regexp.MustCompile(`^[0-9A-Fa-f:.]+$`)
	digits    = regexp.MustCompile(`^[0-9]+$`)
)

func decodeRegistries(ctx *hcl.EvalContext, blocks []*hcl.Block) ([]*Registry, hcl.Diagnostics) {
	e := &evaluator{ctx: ctx}
	var out []*Registry
	seen := map[string]*Registry{}
	for _, b := range blocks {
		r := &Registry{Host: b.Labels[0], DeclRange: b.DefRange}
		if err := checkRegistryHost(r.Host, false); err != nil {
			e.errorf(b.LabelRanges[0], "Invalid registry host", "%s", err)
		}
		content, d := b.Body.Content(registrySchema)
		e.diags = append(e.diags, d...)
		a := content.Attributes
		// Credentials are secret whether or not their variables say so.
		r.Username, _ = e.str(a["username"], "")
		r.Password, _ = e.str(a["password"], "")
		r.Auth, _ = e.str(a["auth"], "")
		r.IdentityToken, _ = e.str(a["identity_token"], "")
		if r.Username == "" && r.Password == "" && r.Auth == "" && r.IdentityToken == "" {
			e.errorf(b.DefRange, "Registry without credentials", "registry %q sets no credentials. Give username and password, auth, or identity_token.", r.Host)
		}
		if prev := seen[r.Host]; prev != nil {
			e.errorf(b.DefRange, "Duplicate registry", "registry %q is already declared at %s.", r.Host, prev.DeclRange)
			continue
		}
		seen[r.Host] = r
		out = append(out, r)
	}
	return out, e.diags
}
