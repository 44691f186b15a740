package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels. berth's stack label is spelled out here rather than imported, so
// that the benchmark shares no code with berth; it is only used to observe
// and clean up berth's pods. The baseline's pods carry labels of their own.
const (
	labelStack = "berth.io/stack"
	labelRun   = "bench.berth.dev/run"
	labelRound = "bench.berth.dev/round"
	labelPod   = "bench.berth.dev/pod"
	labelHash  = "bench.berth.dev/spec-hash"
)

// raw is the baseline: a CRI client with nothing of berth's in it.
type raw struct {
	conn *grpc.ClientConn
	rs   cri.RuntimeServiceClient
	is   cri.ImageServiceClient
	// runID labels every pod the baseline makes; logRoot holds their log
	// directories.
	runID, logRoot string
	// seccomp asks for the runtime's default seccomp profile, as berth does.
	seccomp bool
	// hostNetwork puts the pods on the host's network, as berth's
	// host_network = true does.
	hostNetwork bool
}

func dialRaw(ctx context.Context, address string) (*raw, error) {
	if strings.HasPrefix(address, "/") {
		address = "unix://" + address
	}
	conn, err := grpc.NewClient(address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("runtime %s: %w", address, err)
	}
	return &raw{conn: conn, rs: cri.NewRuntimeServiceClient(conn), is: cri.NewImageServiceClient(conn)}, nil
}

func (r *raw) close() { r.conn.Close() }

type versionInfo struct {
	name, version, apiVersion string
	// statsPeriod is how often CRI reads every container's CPU through its
	// shim (containerd's stats_collect_period), or "" when it does not say:
	// a cost of the runtime's own that grows with the pods.
	statsPeriod string
}

func (r *raw) version(ctx context.Context) (versionInfo, error) {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := r.rs.Version(vctx, &cri.VersionRequest{})
	if err != nil {
		return versionInfo{}, fmt.Errorf("CRI Version: %w (is the private runtime up? source /tmp/berth-runtime/env)", err)
	}
	info := versionInfo{name: v.RuntimeName, version: v.RuntimeVersion, apiVersion: v.RuntimeApiVersion}
	if st, err := r.rs.Status(vctx, &cri.StatusRequest{Verbose: true}); err == nil {
		var config struct {
			StatsCollectPeriod string `json:"statsCollectPeriod"`
		}
		if json.Unmarshal([]byte(st.Info["config"]), &config) == nil {
			info.statsPeriod = config.StatsCollectPeriod
		}
	}
	return info, nil
}

// rawPod is what the baseline needs to tear a pod down again.
type rawPod struct {
	sandboxID, containerID, logDir string
}

// apply runs n pods at the given concurrency, each with the calls berth
// makes for a new pod: a log directory, RunPodSandbox, CreateContainer,
// StartContainer. It returns the wall time of the whole loop.
// network is the pods' network namespace mode.
func (r *raw) network() cri.NamespaceMode {
	if r.hostNetwork {
		return cri.NamespaceMode_NODE
	}
	return cri.NamespaceMode_POD
}

func (r *raw) apply(ctx context.Context, round string, n, concurrency int, command []string) ([]rawPod, time.Duration, error) {
	pods := make([]rawPod, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	start := time.Now()
	for i := range n {
		g.Go(func() (err error) {
			pods[i], err = r.runPod(gctx, round, podName(i), command)
			return err
		})
	}
	err := g.Wait()
	return pods, time.Since(start), err
}

func (r *raw) runPod(ctx context.Context, round, name string, command []string) (rawPod, error) {
	uid := randomHex(16)
	p := rawPod{logDir: filepath.Join(r.logRoot, round, "default_"+name+"_"+uid)}
	if err := os.MkdirAll(p.logDir, 0o755); err != nil {
		return p, err
	}
	// The same kind of configuration criconfig builds: metadata, a log
	// directory, labels and a JSON annotation of about the size of berth's
	// spec record, a pod network namespace and a private PID one, repeated
	// on the container (so its command is PID 1 of its own PID namespace)
	// and, unless -seccomp=false, the default seccomp profile.
	sandbox := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Namespace: "default", Uid: uid},
		LogDirectory: p.logDir,
		Labels:       map[string]string{labelRun: r.runID, labelRound: round, labelPod: name, labelHash: hash(name)},
		Annotations:  map[string]string{"bench.berth.dev/spec": jsonString(map[string]any{"namespace": "default", "restart": "always"})},
		Linux: &cri.LinuxPodSandboxConfig{
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: r.network(), Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
			},
		},
	}
	sb, err := r.rs.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: sandbox})
	if err != nil {
		return p, fmt.Errorf("run pod sandbox %s: %w", name, err)
	}
	p.sandboxID = sb.PodSandboxId

	container := &cri.ContainerConfig{
		Metadata:    &cri.ContainerMetadata{Name: "main"},
		Image:       &cri.ImageSpec{Image: image},
		Command:     command,
		Labels:      map[string]string{labelRun: r.runID, labelRound: round, labelPod: name, labelHash: hash(name + "/main")},
		Annotations: map[string]string{"bench.berth.dev/spec": jsonString(map[string]any{"image": image, "command": command, "log_path": "main.log", "pull": "if_not_present", "restart": "always", "stop_timeout": grace.String()})},
		LogPath:     "main.log",
		Linux: &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: r.network(), Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
		}},
	}
	if r.seccomp {
		// berth asks for the runtime's default seccomp profile when a
		// container sets none, and installing it is a large part of a
		// start on a small machine (see BENCHMARKS.md).
		container.Linux.SecurityContext.Seccomp = &cri.SecurityProfile{ProfileType: cri.SecurityProfile_RuntimeDefault}
	}
	c, err := r.rs.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: p.sandboxID, Config: container, SandboxConfig: sandbox})
	if err != nil {
		return p, fmt.Errorf("create container in %s: %w", name, err)
	}
	p.containerID = c.ContainerId
	if _, err := r.rs.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: p.containerID}); err != nil {
		return p, fmt.Errorf("start container in %s: %w", name, err)
	}
	return p, nil
}

// destroy tears pods down the way berth's destroy does: StopContainer with
// the grace, StopPodSandbox, RemovePodSandbox, then the log directory.
func (r *raw) destroy(ctx context.Context, pods []rawPod, grace time.Duration, concurrency int) (time.Duration, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	start := time.Now()
	for _, p := range pods {
		g.Go(func() error {
			if _, err := r.rs.StopContainer(gctx, &cri.StopContainerRequest{ContainerId: p.containerID, Timeout: int64(grace / time.Second)}); err != nil {
				return fmt.Errorf("stop container: %w", err)
			}
			if _, err := r.rs.StopPodSandbox(gctx, &cri.StopPodSandboxRequest{PodSandboxId: p.sandboxID}); err != nil {
				return fmt.Errorf("stop sandbox: %w", err)
			}
			if _, err := r.rs.RemovePodSandbox(gctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.sandboxID}); err != nil {
				return fmt.Errorf("remove sandbox: %w", err)
			}
			return os.RemoveAll(p.logDir)
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// lists makes the list calls a plan needs, one after another as berth's
// Observe does, and returns their wall time.
func (r *raw) lists(ctx context.Context, sel map[string]string) (time.Duration, error) {
	start := time.Now()
	if _, err := r.rs.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{LabelSelector: sel}}); err != nil {
		return 0, fmt.Errorf("list pod sandboxes: %w", err)
	}
	if _, err := r.rs.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{LabelSelector: sel}}); err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	if _, err := r.is.ListImages(ctx, &cri.ListImagesRequest{}); err != nil { // CRI filters images by reference only
		return 0, fmt.Errorf("list images: %w", err)
	}
	return time.Since(start), nil
}

// expectRunning checks that exactly n ready sandboxes and n running
// containers carry the labels: a step that "succeeded" did its work.
func (r *raw) expectRunning(ctx context.Context, sel map[string]string, n int) error {
	sbs, ctrs, err := r.list(ctx, sel)
	if err != nil {
		return err
	}
	ready, running := 0, 0
	for _, sb := range sbs {
		if sb.State == cri.PodSandboxState_SANDBOX_READY {
			ready++
		}
	}
	for _, c := range ctrs {
		if c.State == cri.ContainerState_CONTAINER_RUNNING {
			running++
		}
	}
	if len(sbs) != n || ready != n || len(ctrs) != n || running != n {
		return fmt.Errorf("want %d ready sandboxes and %d running containers; have %d sandboxes (%d ready), %d containers (%d running)", n, n, len(sbs), ready, len(ctrs), running)
	}
	return nil
}

// expectNone checks that nothing carries the labels any more.
func (r *raw) expectNone(ctx context.Context, sel map[string]string) error {
	sbs, ctrs, err := r.list(ctx, sel)
	if err != nil {
		return err
	}
	if len(sbs)+len(ctrs) > 0 {
		return fmt.Errorf("%d sandboxes and %d containers are left", len(sbs), len(ctrs))
	}
	return nil
}

func (r *raw) list(ctx context.Context, sel map[string]string) ([]*cri.PodSandbox, []*cri.Container, error) {
	sbs, err := r.rs.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	ctrs, err := r.rs.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, nil, fmt.Errorf("list containers: %w", err)
	}
	return sbs.Items, ctrs.Containers, nil
}

// sweep removes every container and sandbox carrying the labels, without
// grace. It is the untimed cleanup; it goes on past failures and reports
// them all, and treats "not found" as done.
func (r *raw) sweep(ctx context.Context, sel map[string]string) error {
	sbs, ctrs, err := r.list(ctx, sel)
	if err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(4)
	errs := make([]error, len(ctrs)+len(sbs))
	for i, c := range ctrs { // containers first, in case their sandbox is gone
		g.Go(func() error {
			_, err1 := r.rs.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: c.Id})
			_, err2 := r.rs.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: c.Id})
			errs[i] = errors.Join(ignoreNotFound(err1), ignoreNotFound(err2))
			return nil
		})
	}
	_ = g.Wait()
	for i, sb := range sbs {
		g.Go(func() error {
			// StopPodSandbox runs CNI DEL, which frees the pod's IP.
			_, err1 := r.rs.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: sb.Id})
			_, err2 := r.rs.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb.Id})
			errs[len(ctrs)+i] = errors.Join(ignoreNotFound(err1), ignoreNotFound(err2))
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

func ignoreNotFound(err error) error {
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16]) // as long as berth's spec hashes
}

func jsonString(v any) string {
	raw, _ := json.Marshal(v) // plain maps of strings
	return string(raw)
}
