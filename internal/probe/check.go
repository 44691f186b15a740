// Package probe runs containers' health checks (exec, tcp, http) and keeps
// their liveness, readiness and startup verdicts, for berth watch.
package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// Execer runs a command in a container; the runtime client is one.
type Execer interface {
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*cri.ExecSyncResponse, error)
}

// Target is where a probe's check goes: the container, for exec checks, and
// the pod's address, for tcp and http checks.
type Target struct {
	ContainerID string
	// Host is the pod's IP, or 127.0.0.1 for a pod on the host's network.
	Host string
}

// Result is one check's outcome.
type Result struct {
	OK bool
	// Detail says what was seen, for logs: the command's output, the HTTP
	// status, the dial error.
	Detail string
}

// detailLimit keeps a chatty check's output from flooding the log.
const detailLimit = 200

// Check runs p's check once against t, within p's timeout.
func Check(ctx context.Context, ex Execer, p *spec.Probe, t Target) Result {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	switch {
	case len(p.Exec) > 0:
		return checkExec(ctx, ex, p, t)
	case p.TCP != nil:
		return checkTCP(ctx, t, p.TCP.Port)
	case p.HTTP != nil:
		return checkHTTP(ctx, t, p.HTTP)
	}
	return Result{Detail: "the probe has no check"}
}

func checkExec(ctx context.Context, ex Execer, p *spec.Probe, t Target) Result {
	resp, err := ex.ExecSync(ctx, t.ContainerID, p.Exec, p.Timeout)
	if err != nil {
		if ctx.Err() != nil {
			return Result{Detail: fmt.Sprintf("%s did not finish within %s", p.Exec[0], p.Timeout)}
		}
		return Result{Detail: err.Error()}
	}
	out := strings.TrimSpace(string(resp.Stdout) + string(resp.Stderr))
	if resp.ExitCode != 0 {
		detail := fmt.Sprintf("%s exited with code %d", p.Exec[0], resp.ExitCode)
		if out != "" {
			detail += ": " + out
		}
		return Result{Detail: limit(detail)}
	}
	return Result{OK: true, Detail: limit(out)}
}

func checkTCP(ctx context.Context, t Target, port int) Result {
	if t.Host == "" {
		return Result{Detail: "the pod has no IP address"}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(t.Host, strconv.Itoa(port)))
	if err != nil {
		return Result{Detail: err.Error()}
	}
	conn.Close()
	return Result{OK: true, Detail: "connected to port " + strconv.Itoa(port)}
}

func checkHTTP(ctx context.Context, t Target, h *spec.HTTPCheck) Result {
	if t.Host == "" {
		return Result{Detail: "the pod has no IP address"}
	}
	url := h.Scheme + "://" + net.JoinHostPort(t.Host, strconv.Itoa(h.Port)) + h.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Result{Detail: err.Error()}
	}
	req.Header.Set("User-Agent", "berth-probe")
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return Result{Detail: err.Error()}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	detail := fmt.Sprintf("GET %s: %s", h.Path, resp.Status)
	return Result{OK: resp.StatusCode >= 200 && resp.StatusCode < 400, Detail: detail}
}

// probeClient checks like kubelet does: no redirects followed off the pod,
// no certificate verification, no connection kept between checks.
var probeClient = &http.Client{
	Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // pods' own certificates are rarely verifiable
		DisableKeepAlives: true,
		Proxy:             nil,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func limit(s string) string {
	if len(s) > detailLimit {
		return s[:detailLimit] + "..."
	}
	return s
}
