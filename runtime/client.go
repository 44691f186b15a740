// Package runtime talks to containerd through the Kubernetes CRI API.
//
// Client is a thin, typed wrapper over the CRI gRPC services: the planner
// and apply packages declare the small interfaces they need and Client
// satisfies them; package fake satisfies them in unit tests.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrUnreachable means the runtime's socket did not answer.
var ErrUnreachable = errors.New("container runtime unreachable")

// Client is a CRI client for one runtime socket.
type Client struct {
	conn    *grpc.ClientConn
	runtime cri.RuntimeServiceClient
	images  cri.ImageServiceClient

	introspection introspection.IntrospectionClient
	address       string
	ctrd          containerdClient

	// timeout bounds each call that carries no deadline of its own.
	timeout time.Duration

	mu    sync.Mutex
	calls map[string]int
}

// DefaultTimeout is how long berth waits for the runtime to answer one
// call (pulls and imports excepted: they report progress instead).
const DefaultTimeout = 30 * time.Second

// ErrNoAnswer means the runtime did not answer a call within its deadline.
var ErrNoAnswer = errors.New("the runtime did not answer")

// Dial connects to the runtime at address ("unix:///path" or a plain path)
// and checks that it answers, with DefaultTimeout for every call.
func Dial(ctx context.Context, address string) (*Client, error) {
	return DialTimeout(ctx, address, DefaultTimeout)
}

// DialTimeout is Dial with timeout bounding each call: an unresponsive
// runtime fails the call, naming it, rather than hanging berth (and the
// stack lock it holds).
func DialTimeout(ctx context.Context, address string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	target := address
	if strings.HasPrefix(target, "/") {
		target = "unix://" + target
	}
	if !strings.HasPrefix(target, "unix://") {
		return nil, fmt.Errorf("runtime address %q: only unix sockets are supported (unix:///run/containerd/containerd.sock)", address)
	}
	c := &Client{calls: map[string]int{}, address: target, timeout: timeout}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		grpc.WithUnaryInterceptor(c.count),
	)
	if err != nil {
		return nil, fmt.Errorf("runtime address %q: %w", address, err)
	}
	c.conn, c.runtime, c.images = conn, cri.NewRuntimeServiceClient(conn), cri.NewImageServiceClient(conn)
	c.introspection = introspection.NewIntrospectionClient(conn)

	if _, err := c.Version(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w at %s: %v (is containerd running with its CRI plugin? set --address or BERTH_ADDRESS)", ErrUnreachable, address, status.Convert(err).Message())
	}
	return c, nil
}

// Close releases the connections.
func (c *Client) Close() error {
	if c.ctrd.c != nil {
		c.ctrd.c.Close()
	}
	return c.conn.Close()
}

// count is a gRPC interceptor that tallies calls per method, so tests and
// benchmarks can check that planning costs a constant number of calls. It
// is also the boundary where the runtime's errors become errdefs errors,
// so callers classify them with errdefs and never with gRPC codes.
func (c *Client) count(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	name := method[strings.LastIndex(method, "/")+1:]
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
	ctx, cancel := c.deadline(ctx, method)
	defer cancel()
	return c.answered(ctx, name, native(invoker(ctx, method, req, reply, cc, opts...)))
}

// noAnswerMargin is how close to its deadline a failed call counts as
// unanswered: the server, told the deadline, may give up a moment before
// the client does.
const noAnswerMargin = 100 * time.Millisecond

// deadline gives a call without a deadline of its own the client's
// timeout. A transfer (a pull or an import through containerd's transfer
// service) is one call for the whole transfer, and applying a layer takes
// as long as the layer is big: those are bounded only by ctx.
func (c *Client) deadline(ctx context.Context, method string) (context.Context, context.CancelFunc) {
	_, has := ctx.Deadline()
	if has || ctx.Value(untimedKey{}) != nil || method == "/containerd.services.transfer.v1.Transfer/Transfer" || method == "/containerd.services.diff.v1.Diff/Apply" {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// bounded is the containerd client's interceptor: the same deadlines as
// CRI calls, for its image, lease and introspection calls.
func (c *Client) bounded(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := c.deadline(ctx, method)
	defer cancel()
	return c.answered(ctx, method[strings.LastIndex(method, "/")+1:], invoker(ctx, method, req, reply, cc, opts...))
}

// answered turns a call's expired deadline into an error that names the
// call and the wait, so that a hung runtime says what hung.
func (c *Client) answered(ctx context.Context, name string, err error) error {
	if err == nil {
		return nil
	}
	d, ok := ctx.Deadline()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || ok && time.Until(d) < noAnswerMargin && (errdefs.IsDeadlineExceeded(err) || errdefs.IsCanceled(err)) {
		return fmt.Errorf("%w %s within %s (see --runtime-timeout): %w", ErrNoAnswer, name, c.timeout, context.DeadlineExceeded)
	}
	return err
}

// within gives a call that waits on purpose (a stop's grace, an exec's
// timeout) that long on top of the client's timeout.
func (c *Client) within(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, wait+c.timeout)
}

// ErrStarting means the runtime refuses to act on a container that is
// still being started, as happens for a moment after a client died in the
// middle of StartContainer. containerd says so only in the message.
var ErrStarting = errors.New("container is still starting")

// ErrStillRunning means CRI refuses to remove a container it still lists
// as running. containerd's stop can return before its event loop has
// handled the exit (a stop retried after the shim closed finds no task
// and stops nothing); CRI lists the exit, and removes, once it has.
var ErrStillRunning = errors.New("the runtime has not yet handled the container's exit")

// ErrSandboxGone means a sandbox the runtime still lists has lost its
// task (its pause process or shim), as a destroy killed halfway leaves it:
// nothing more can start in it.
var ErrSandboxGone = errors.New("the pod's sandbox is gone on the runtime")

// NameReservedError is the runtime refusing to create an object because
// another, ID, holds its name: a create that was interrupted on berth's
// side and finished on the runtime's after berth looked.
type NameReservedError struct {
	ID  string
	msg string
}

func (e *NameReservedError) Error() string { return e.msg }

// NameReserved is the error the runtime gives for a name id holds, as a
// fake runtime gives it.
func NameReserved(kind, name, id string) error {
	return &NameReservedError{ID: id, msg: fmt.Sprintf("failed to reserve %s name %q: name %q is reserved for %q", kind, name, name, id)}
}

// Is makes a name conflict an errdefs.ErrAlreadyExists.
func (e *NameReservedError) Is(target error) bool { return target == errdefs.ErrAlreadyExists }

// reservedFor finds the holder's ID in containerd's "is reserved for"
// message; reservedID checks its length (a {12,64} in the pattern would
// compile, at every command's start, into 64 states).
var reservedFor = regexp.MustCompile(`failed to reserve (?:sandbox|container) name .* is reserved for "?([0-9a-f]+)"?`)

// reservedID is the ID that holds a name, from containerd's message, or "".
func reservedID(msg string) string {
	if m := reservedFor.FindStringSubmatch(msg); m != nil && len(m[1]) >= 12 && len(m[1]) <= 64 {
		return m[1]
	}
	return ""
}

// native maps a gRPC error to its errdefs kind, keeping the message, and
// to berth's own kinds where containerd says them only in words.
func native(err error) error {
	if err == nil {
		return nil
	}
	msg := status.Convert(err).Message()
	switch {
	case strings.Contains(msg, "in starting state"):
		return fmt.Errorf("%w: %s", ErrStarting, msg)
	case strings.Contains(msg, "is still running, to stop first"):
		return fmt.Errorf("%w: %s", ErrStillRunning, msg)
	case reservedID(msg) != "":
		return &NameReservedError{ID: reservedID(msg), msg: msg}
	case strings.Contains(msg, "ttrpc: closed") || strings.Contains(msg, "sandbox container") && strings.Contains(msg, "is not running"):
		return fmt.Errorf("%w: %s", ErrSandboxGone, msg)
	}
	return errgrpc.ToNative(err)
}

// Calls returns how many times each CRI method was called.
func (c *Client) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// Version reports the runtime's name and version.
func (c *Client) Version(ctx context.Context) (*cri.VersionResponse, error) {
	return c.runtime.Version(ctx, &cri.VersionRequest{})
}

// CertsDir is the directory berth writes hosts.toml files into, out of a
// registry config_path: containerd reads a ':'-separated list of them in
// order (2.x defaults to "/etc/containerd/certs.d:/etc/docker/certs.d"),
// so the first is the one that wins. "" stays "": mirrors are off.
func CertsDir(configPath string) string {
	if dirs := filepath.SplitList(configPath); len(dirs) > 0 {
		return dirs[0]
	}
	return ""
}

// RegistryConfigPath is the CRI image service's registry config_path: the
// certs directory whose hosts.toml files say which mirrors pulls use. ""
// when the runtime has none. containerd exports it through introspection;
// CRI itself does not tell.
func (c *Client) RegistryConfigPath(ctx context.Context) (string, error) {
	resp, err := c.introspection.Plugins(ctx, &introspection.PluginsRequest{Filters: []string{`type=="io.containerd.cri.v1",id=="images"`}})
	if err != nil {
		return "", fmt.Errorf("introspect the CRI image plugin: %w", err)
	}
	for _, p := range resp.Plugins {
		return p.Exports["RegistryConfigPath"], nil
	}
	return "", fmt.Errorf("the runtime has no CRI image plugin (io.containerd.cri.v1 images)")
}

// Status reports the runtime's conditions and, verbosely, its CRI
// configuration (CNI directories among it).
func (c *Client) Status(ctx context.Context) (*cri.StatusResponse, error) {
	resp, err := c.runtime.Status(ctx, &cri.StatusRequest{Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("runtime status: %w", err)
	}
	return resp, nil
}

// CNI is what the CRI plugin reports of pod networking.
type CNI struct {
	// ConfDir is where it reads pod networks; BinDirs where it finds plugins.
	ConfDir string
	BinDirs []string
	// PodNetwork is the configuration it sets pods up and tears them down
	// with now: the source of the first network it loaded from ConfDir
	// (nil when it loaded none).
	PodNetwork []byte
}

// CNI reports the CRI plugin's CNI directories and the network it uses now.
func (c *Client) CNI(ctx context.Context) (CNI, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return CNI{}, err
	}
	return parseCNI(st.Info)
}

// parseCNI reads the verbose status: "config" has the directories, and
// "cniconfig" the networks loaded, loopback first.
func parseCNI(info map[string]string) (CNI, error) {
	var config struct {
		CNI struct {
			ConfDir string   `json:"confDir"`
			BinDirs []string `json:"binDirs"`
			BinDir  string   `json:"binDir"`
		} `json:"cni"`
	}
	if err := json.Unmarshal([]byte(info["config"]), &config); err != nil || config.CNI.ConfDir == "" {
		return CNI{}, fmt.Errorf("the runtime does not report its CNI directories")
	}
	out := CNI{ConfDir: config.CNI.ConfDir, BinDirs: config.CNI.BinDirs}
	if config.CNI.BinDir != "" {
		out.BinDirs = append(out.BinDirs, config.CNI.BinDir)
	}
	var loaded struct {
		Networks []struct {
			Config struct {
				Source string
			}
			IFName string
		}
	}
	if json.Unmarshal([]byte(info["cniconfig"]), &loaded) == nil {
		for _, n := range loaded.Networks {
			if n.IFName != "lo" && n.Config.Source != "" {
				out.PodNetwork = []byte(n.Config.Source)
				break
			}
		}
	}
	return out, nil
}

// Deprecation is a deprecated setting or feature the runtime reports.
type Deprecation struct{ ID, Message string }

// Deprecations lists the deprecated settings and features containerd saw
// in use.
func (c *Client) Deprecations(ctx context.Context) ([]Deprecation, error) {
	resp, err := c.introspection.Server(ctx, &emptypb.Empty{})
	if err != nil {
		return nil, fmt.Errorf("introspect the server: %w", err)
	}
	var out []Deprecation
	for _, d := range resp.Deprecations {
		out = append(out, Deprecation{ID: d.ID, Message: d.Message})
	}
	return out, nil
}

// ListSandboxes lists the sandboxes carrying all the given labels.
func (c *Client) ListSandboxes(ctx context.Context, labels map[string]string) ([]*cri.PodSandbox, error) {
	resp, err := c.runtime.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{LabelSelector: labels}})
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	for _, sb := range resp.Items { // what CRI says is always there, berth reads without asking
		if sb.Metadata == nil {
			sb.Metadata = &cri.PodSandboxMetadata{}
		}
	}
	return resp.Items, nil
}

// ListContainers lists the containers carrying all the given labels.
func (c *Client) ListContainers(ctx context.Context, labels map[string]string) ([]*cri.Container, error) {
	resp, err := c.runtime.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{LabelSelector: labels}})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range resp.Containers {
		fillContainer(&c.Metadata, &c.Image)
	}
	return resp.Containers, nil
}

// fillContainer puts empty messages where a container's answer left out
// what CRI says is always there: berth reads them without asking, and a
// runtime (or a proxy in front of it) that leaves one out must not crash
// it.
func fillContainer(md **cri.ContainerMetadata, img **cri.ImageSpec) {
	if *md == nil {
		*md = &cri.ContainerMetadata{}
	}
	if *img == nil {
		*img = &cri.ImageSpec{}
	}
}

// errNoStatus is a status call's answer without the status.
var errNoStatus = errors.New("the runtime answered without a status")

// ListImages lists every image the runtime has.
func (c *Client) ListImages(ctx context.Context) ([]*cri.Image, error) {
	resp, err := c.images.ListImages(ctx, &cri.ListImagesRequest{})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return resp.Images, nil
}

// ContainerStatus returns a container's detailed status (exit code, times).
func (c *Client) ContainerStatus(ctx context.Context, id string) (*cri.ContainerStatus, error) {
	resp, err := c.runtime.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return nil, fmt.Errorf("container %s status: %w", short(id), err)
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("container %s status: %w", short(id), errNoStatus)
	}
	fillContainer(&resp.Status.Metadata, &resp.Status.Image)
	return resp.Status, nil
}

// SandboxStatus returns a sandbox's detailed status (IP addresses).
func (c *Client) SandboxStatus(ctx context.Context, id string) (*cri.PodSandboxStatus, error) {
	resp, err := c.runtime.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil, fmt.Errorf("sandbox %s status: %w", short(id), err)
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("sandbox %s status: %w", short(id), errNoStatus)
	}
	if resp.Status.Metadata == nil {
		resp.Status.Metadata = &cri.PodSandboxMetadata{}
	}
	return resp.Status, nil
}

// SandboxNetNS is the path of a sandbox's network namespace, from the
// runtime spec the CRI plugin reports verbosely.
func (c *Client) SandboxNetNS(ctx context.Context, id string) (string, error) {
	resp, err := c.runtime.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return "", fmt.Errorf("sandbox %s status: %w", short(id), err)
	}
	var info struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct {
					Type string `json:"type"`
					Path string `json:"path"`
				} `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		return "", fmt.Errorf("sandbox %s: the runtime reports no spec: %w", short(id), err)
	}
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" {
			return ns.Path, nil
		}
	}
	return "", fmt.Errorf("sandbox %s has no network namespace of its own", short(id))
}

// PortForward asks the runtime for a streaming URL that forwards to port in
// a sandbox (the path crictl port-forward takes).
func (c *Client) PortForward(ctx context.Context, id string, port int32) (string, error) {
	resp, err := c.runtime.PortForward(ctx, &cri.PortForwardRequest{PodSandboxId: id, Port: []int32{port}})
	if err != nil {
		return "", fmt.Errorf("port-forward to sandbox %s: %w", short(id), err)
	}
	return resp.Url, nil
}

// untimedKey marks a call that is bounded only by its context: one a
// person waits on and ends with Ctrl-C (berth exec).
type untimedKey struct{}

// ExecSync runs a command in a container to completion and returns its
// output and exit code. A timeout of 0 sets no limit, for berth exec:
// the command takes as long as it takes, and ctx ends the wait.
func (c *Client) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*cri.ExecSyncResponse, error) {
	cancel := context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = c.within(ctx, timeout)
	} else {
		ctx = context.WithValue(ctx, untimedKey{}, true)
	}
	defer cancel()
	resp, err := c.runtime.ExecSync(ctx, &cri.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: int64(timeout / time.Second)})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", short(id), err)
	}
	return resp, nil
}

// Exec asks the runtime for a streaming URL that runs cmd in a container
// with stdin attached (stdin) and a terminal (tty); a terminal carries
// stdout and stderr together.
func (c *Client) Exec(ctx context.Context, id string, cmd []string, tty, stdin bool) (string, error) {
	resp, err := c.runtime.Exec(ctx, &cri.ExecRequest{ContainerId: id, Cmd: cmd, Tty: tty, Stdin: stdin, Stdout: true, Stderr: !tty})
	if err != nil {
		return "", fmt.Errorf("exec in container %s: %w", short(id), err)
	}
	return resp.Url, nil
}

// ListContainerStats reports the CPU and memory counters of the containers
// carrying all the given labels.
func (c *Client) ListContainerStats(ctx context.Context, labels map[string]string) ([]*cri.ContainerStats, error) {
	resp, err := c.runtime.ListContainerStats(ctx, &cri.ListContainerStatsRequest{Filter: &cri.ContainerStatsFilter{LabelSelector: labels}})
	if err != nil {
		return nil, fmt.Errorf("list container stats: %w", err)
	}
	return resp.Stats, nil
}

// RunSandbox creates and starts a pod sandbox.
func (c *Client) RunSandbox(ctx context.Context, cfg *cri.PodSandboxConfig, handler string) (string, error) {
	resp, err := c.runtime.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		return "", fmt.Errorf("run pod sandbox: %w", err)
	}
	return resp.PodSandboxId, nil
}

// StopSandbox stops a sandbox's containers and tears down its network; a
// sandbox that is already gone counts as stopped.
func (c *Client) StopSandbox(ctx context.Context, id string) error {
	_, err := c.runtime.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: id})
	return ignoreNotFound(err, "stop sandbox", id)
}

// RemoveSandbox removes a stopped sandbox; gone already counts as removed.
func (c *Client) RemoveSandbox(ctx context.Context, id string) error {
	_, err := c.runtime.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: id})
	return ignoreNotFound(err, "remove sandbox", id)
}

// CreateContainer creates a container in a sandbox.
func (c *Client) CreateContainer(ctx context.Context, podID string, cfg *cri.ContainerConfig, pod *cri.PodSandboxConfig) (string, error) {
	resp, err := c.runtime.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", cfg.GetMetadata().GetName(), err)
	}
	return resp.ContainerId, nil
}

// StartContainer starts a created container.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	if _, err := c.runtime.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	return nil
}

// StopContainer sends the container's stop signal and kills it after grace.
func (c *Client) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx, cancel := c.within(ctx, grace)
	defer cancel()
	_, err := c.runtime.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: id, Timeout: int64(grace.Round(time.Second) / time.Second)})
	return ignoreNotFound(err, "stop container", id)
}

// UpdateResources changes a running container's cgroup limits in place.
func (c *Client) UpdateResources(ctx context.Context, id string, r *cri.LinuxContainerResources) error {
	if _, err := c.runtime.UpdateContainerResources(ctx, &cri.UpdateContainerResourcesRequest{ContainerId: id, Linux: r}); err != nil {
		return fmt.Errorf("update container %s resources: %w", short(id), err)
	}
	return nil
}

// RemoveContainer removes a container; gone already counts as removed.
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	_, err := c.runtime.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: id})
	return ignoreNotFound(err, "remove container", id)
}

func ignoreNotFound(err error, what, id string) error {
	if err == nil || errdefs.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("%s %s: %w", what, short(id), err)
}

// short abbreviates a runtime ID the way other container tools print them.
func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
