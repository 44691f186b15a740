package runtime_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
)

// hollowCRI answers with what CRI says is always there left out.
type hollowCRI struct {
	cri.UnimplementedRuntimeServiceServer
}

func (hollowCRI) Version(context.Context, *cri.VersionRequest) (*cri.VersionResponse, error) {
	return &cri.VersionResponse{RuntimeName: "hollow", RuntimeVersion: "0", RuntimeApiVersion: "v1"}, nil
}

func (hollowCRI) ListPodSandbox(context.Context, *cri.ListPodSandboxRequest) (*cri.ListPodSandboxResponse, error) {
	return &cri.ListPodSandboxResponse{Items: []*cri.PodSandbox{{Id: "sandbox"}}}, nil
}

func (hollowCRI) ListContainers(context.Context, *cri.ListContainersRequest) (*cri.ListContainersResponse, error) {
	return &cri.ListContainersResponse{Containers: []*cri.Container{{Id: "container"}}}, nil
}

func (hollowCRI) ContainerStatus(context.Context, *cri.ContainerStatusRequest) (*cri.ContainerStatusResponse, error) {
	return &cri.ContainerStatusResponse{}, nil
}

func (hollowCRI) PodSandboxStatus(context.Context, *cri.PodSandboxStatusRequest) (*cri.PodSandboxStatusResponse, error) {
	return &cri.PodSandboxStatusResponse{}, nil
}

// serveCRI serves impl on a socket of the test's and dials it with the
// given timeout for each call; both end with the test.
func serveCRI(t *testing.T, impl cri.RuntimeServiceServer, timeout time.Duration) *runtime.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	cri.RegisterRuntimeServiceServer(s, impl)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	rt, err := runtime.DialTimeout(context.Background(), "unix://"+sock, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// A runtime's answer without a message berth reads is an error or an
// empty message, never a nil that would crash a watcher's goroutine.
func TestHollowAnswers(t *testing.T) {
	rt := serveCRI(t, hollowCRI{}, 5*time.Second)
	ctx := context.Background()

	sandboxes, err := rt.ListSandboxes(ctx, nil)
	if err != nil || len(sandboxes) != 1 || sandboxes[0].Metadata == nil {
		t.Errorf("ListSandboxes = %v, %v; want one sandbox with metadata", sandboxes, err)
	}
	containers, err := rt.ListContainers(ctx, nil)
	if err != nil || len(containers) != 1 || containers[0].Metadata == nil || containers[0].Image == nil {
		t.Errorf("ListContainers = %v, %v; want one container with metadata and image", containers, err)
	}
	if st, err := rt.ContainerStatus(ctx, "container"); err == nil || !strings.Contains(err.Error(), "without a status") {
		t.Errorf("ContainerStatus = %v, %v; want an error", st, err)
	}
	if st, err := rt.SandboxStatus(ctx, "sandbox"); err == nil || !strings.Contains(err.Error(), "without a status") {
		t.Errorf("SandboxStatus = %v, %v; want an error", st, err)
	}
}

// slowExec takes longer than the client's timeout to run a command.
type slowExec struct {
	hollowCRI
	took time.Duration
}

func (s slowExec) ExecSync(ctx context.Context, _ *cri.ExecSyncRequest) (*cri.ExecSyncResponse, error) {
	select {
	case <-time.After(s.took):
		return &cri.ExecSyncResponse{Stdout: []byte("done")}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// berth exec's command (timeout 0) runs as long as it takes, past the
// client's timeout for runtime calls; a caller's timeout still holds.
func TestExecSyncWithoutTimeout(t *testing.T) {
	rt := serveCRI(t, slowExec{took: 600 * time.Millisecond}, 100*time.Millisecond)
	resp, err := rt.ExecSync(context.Background(), "c", []string{"sleep"}, 0)
	if err != nil || string(resp.GetStdout()) != "done" {
		t.Errorf("ExecSync without a timeout = %v, %v; want the command's output", resp, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := rt.ExecSync(ctx, "c", []string{"sleep"}, 0); err == nil {
		t.Error("ExecSync outlived its caller's deadline")
	}
}
