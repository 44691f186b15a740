// Package hungcri is a CRI server for tests that answers Version and
// then nothing: every other call waits until its caller gives up, as a
// runtime stuck on a kernel lock or a full disk does.
package hungcri

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type server struct {
	cri.UnimplementedRuntimeServiceServer
}

func (server) Version(context.Context, *cri.VersionRequest) (*cri.VersionResponse, error) {
	return &cri.VersionResponse{RuntimeName: "hung", RuntimeVersion: "0", RuntimeApiVersion: "v1"}, nil
}

// hang waits for the caller to give up.
func hang(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (server) ListPodSandbox(ctx context.Context, _ *cri.ListPodSandboxRequest) (*cri.ListPodSandboxResponse, error) {
	return nil, hang(ctx)
}

func (server) ListContainers(ctx context.Context, _ *cri.ListContainersRequest) (*cri.ListContainersResponse, error) {
	return nil, hang(ctx)
}

func (server) Status(ctx context.Context, _ *cri.StatusRequest) (*cri.StatusResponse, error) {
	return nil, hang(ctx)
}

// Start serves on a socket in a test directory and returns its address;
// the server stops with the test.
func Start(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "hung.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	cri.RegisterRuntimeServiceServer(s, server{})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return "unix://" + sock
}
