package spec

import (
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// MinProbePeriod is the shortest interval and timeout a probe may have.
const MinProbePeriod = 10 * time.Millisecond

// ProbeKind says what a probe's verdict is used for.
type ProbeKind string

// The kinds of probe, as in Kubernetes.
const (
	// Liveness failures restart the container.
	Liveness ProbeKind = "liveness"
	// Readiness gates the pods that depend on this one.
	Readiness ProbeKind = "readiness"
	// Startup holds liveness and readiness back until it first succeeds;
	// its failures restart the container.
	Startup ProbeKind = "startup"
)

// Probe is a health check that `berth watch` runs against a container.
// Probes are berth's own behaviour, not the runtime's, so they are not part
// of the container's record: changing one never replaces a container.
type Probe struct {
	Kind ProbeKind
	// Exactly one of Exec, TCP and HTTP is set.
	Exec []string
	TCP  *TCPCheck
	HTTP *HTTPCheck

	Interval         time.Duration
	Timeout          time.Duration
	FailureThreshold int
	SuccessThreshold int
	// StartPeriod is a grace time after the container starts during which
	// failures do not count.
	StartPeriod time.Duration

	DeclRange hcl.Range
}

// TCPCheck succeeds when a TCP connection to the pod's port opens.
type TCPCheck struct{ Port int }

// HTTPCheck succeeds when a GET of the pod's port and path answers with a
// status from 200 to 399.
type HTTPCheck struct {
	Port    int
	Path    string
	Scheme  string // "http" or "https" (certificates are not verified, as kubelet does)
	Headers map[string]string
}

// Probe defaults, as Kubernetes has them except the timeout, which a VM
// guest or a loaded host often needs longer than one second for.
const (
	DefaultProbeInterval  = 10 * time.Second
	DefaultProbeTimeout   = 2 * time.Second
	DefaultProbeFailures  = 3
	DefaultProbeSuccesses = 1
)

var probeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "interval"}, {Name: "timeout"}, {Name: "failure_threshold"},
		{Name: "success_threshold"}, {Name: "start_period"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "exec"}, {Type: "tcp"}, {Type: "http"}},
}

var (
	execCheckSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "command", Required: true}}}
	tcpCheckSchema  = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "port", Required: true}}}
	httpCheckSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "port", Required: true}, {Name: "path"}, {Name: "scheme"}, {Name: "headers"},
	}}
)

func decodeProbe(e *evaluator, b *hcl.Block) (Probe, bool) {
	p := Probe{Kind: ProbeKind(b.Labels[0]), DeclRange: b.DefRange}
	switch p.Kind {
	case Liveness, Readiness, Startup:
	default:
		detail := "A probe is \"liveness\", \"readiness\" or \"startup\"; got " + quote(string(p.Kind)) + "."
		if sug := Suggest(string(p.Kind), []string{string(Liveness), string(Readiness), string(Startup)}); sug != "" {
			detail += " Did you mean " + quote(sug) + "?"
		}
		e.errorf(b.LabelRanges[0], "Invalid probe kind", "%s", detail)
		return p, false
	}
	content, d := b.Body.Content(probeSchema)
	e.diags = append(e.diags, d...)
	if d.HasErrors() {
		return p, false
	}
	a := content.Attributes
	p.Interval = e.duration(a["interval"], DefaultProbeInterval)
	p.Timeout = e.duration(a["timeout"], DefaultProbeTimeout)
	p.StartPeriod = e.duration(a["start_period"], 0)
	p.FailureThreshold = e.integer(a["failure_threshold"], DefaultProbeFailures)
	p.SuccessThreshold = e.integer(a["success_threshold"], DefaultProbeSuccesses)
	ok := true
	for _, attr := range []*hcl.Attribute{a["interval"], a["timeout"]} {
		if attr != nil && e.duration(attr, time.Second) < MinProbePeriod {
			e.errorf(attr.Expr.Range(), "Invalid duration", "%q must be at least %s: a probe runs a check each time.", attr.Name, MinProbePeriod)
			ok = false
		}
	}
	for _, attr := range []*hcl.Attribute{a["failure_threshold"], a["success_threshold"]} {
		if attr != nil && e.integer(attr, 1) < 1 {
			e.errorf(attr.Expr.Range(), "Invalid threshold", "%q is a count of consecutive results and must be at least 1.", attr.Name)
			ok = false
		}
	}
	if a["success_threshold"] != nil && p.Kind != Readiness && p.SuccessThreshold != 1 {
		e.errorf(a["success_threshold"].Expr.Range(), "Invalid threshold", "Only readiness probes take a success_threshold other than 1: one success is enough to end a %s probe's failures.", p.Kind)
		ok = false
	}

	if len(content.Blocks) != 1 {
		e.errorf(b.DefRange, "One check per probe", "A probe has exactly one check: exec { command = [...] }, tcp { port = N } or http { port = N path = \"/\" }; this one has %d.", len(content.Blocks))
		return p, false
	}
	check := content.Blocks[0]
	switch check.Type {
	case "exec":
		c, d := check.Body.Content(execCheckSchema)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			return p, false
		}
		var sensitive bool
		if p.Exec, sensitive = e.strList(c.Attributes["command"]); sensitive {
			// The command line of every check shows in the host's process
			// list, in the probe's result and in an export.
			e.errorf(c.Attributes["command"].Expr.Range(), "Sensitive value not allowed", "A probe's command is shown in the host's process list and in the probe's results, so it cannot be computed from a sensitive variable. Give the value to the container's env and read it there, such as [\"sh\", \"-c\", \"check --password=$PASSWORD\"]: the check runs with the container's environment.")
			return p, false
		}
		if len(p.Exec) == 0 {
			e.errorf(c.Attributes["command"].Expr.Range(), "Empty command", "An exec check runs a command in the container; give it one, such as [\"sh\", \"-c\", \"test -f /run/ok\"].")
			ok = false
		}
	case "tcp":
		c, d := check.Body.Content(tcpCheckSchema)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			return p, false
		}
		port, valid := probePort(e, c.Attributes["port"])
		p.TCP, ok = &TCPCheck{Port: port}, ok && valid
	case "http":
		c, d := check.Body.Content(httpCheckSchema)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			return p, false
		}
		port, valid := probePort(e, c.Attributes["port"])
		h := &HTTPCheck{Port: port, Path: e.plainStr(c.Attributes["path"], "/"),
			Scheme: e.enum(c.Attributes["scheme"], "http", "http", "https"), Headers: e.plainMap(c.Attributes["headers"])}
		if !strings.HasPrefix(h.Path, "/") {
			e.errorf(c.Attributes["path"].Expr.Range(), "Invalid path", "An HTTP check's path starts with \"/\"; got %q.", h.Path)
			valid = false
		}
		p.HTTP, ok = h, ok && valid
	}
	return p, ok
}

func probePort(e *evaluator, attr *hcl.Attribute) (int, bool) {
	port := e.integer(attr, 0)
	if port < 1 || port > 65535 {
		e.errorf(attr.Expr.Range(), "Invalid port", "A port is a number from 1 to 65535; got %d.", port)
		return port, false
	}
	return port, true
}

// Probe returns the container's probe of the given kind, or nil.
func (c *Container) Probe(kind ProbeKind) *Probe { return ProbeOf(c.Probes, kind) }

// ProbeOf returns the probe of the given kind among probes, or nil.
func ProbeOf(probes []Probe, kind ProbeKind) *Probe {
	for i := range probes {
		if probes[i].Kind == kind {
			return &probes[i]
		}
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

func decodeProbes(e *evaluator, c *Container, content *hcl.BodyContent) {
	seen := map[ProbeKind]hcl.Range{}
	for _, b := range content.Blocks {
		if b.Type != "probe" {
			continue
		}
		p, ok := decodeProbe(e, b)
		if !ok {
			continue
		}
		if prev, dup := seen[p.Kind]; dup {
			e.errorf(b.DefRange, "Duplicate probe", "container %q already has a %s probe at %s.", c.Name, p.Kind, prev)
			continue
		}
		seen[p.Kind] = b.DefRange
		if c.Init {
			e.errorf(b.DefRange, "Probe on an init container", "An init container runs to completion before the others start, so it is never probed; remove the probe, or init = true.")
			continue
		}
		c.Probes = append(c.Probes, p)
	}
}
