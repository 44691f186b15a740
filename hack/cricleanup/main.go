// Command cricleanup removes every container and pod sandbox from a CRI
// runtime. hack/runtime.sh down runs it before stopping the private
// containerd, because only a CRI StopPodSandbox runs CNI DEL: that is what
// releases the pod IPs and deletes the iptables/portmap rules. Killing
// containerd instead would leak them on the host.
//
// Usage: go run ./hack/cricleanup [-address unix:///path/containerd.sock]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	address := flag.String("address", os.Getenv("BERTH_ADDRESS"), "CRI endpoint (unix:///path)")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall deadline")
	flag.Parse()
	if *address == "" {
		fmt.Fprintln(os.Stderr, "cricleanup: no -address and no BERTH_ADDRESS")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	failed, err := cleanup(ctx, *address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cricleanup:", err)
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "cricleanup: %d removals failed\n", failed)
		os.Exit(1)
	}
}

func cleanup(ctx context.Context, address string) (failed int, err error) {
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rt := runtime.NewRuntimeServiceClient(conn)

	fail := func(what, id string, err error) {
		fmt.Fprintf(os.Stderr, "cricleanup: %s %s: %v\n", what, id, err)
		failed++
	}

	// Containers first, so no sandbox removal races with a running container,
	// and so containers whose sandbox is already gone are removed too.
	ctrs, err := rt.ListContainers(ctx, &runtime.ListContainersRequest{})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs.Containers {
		if _, err := rt.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: c.Id, Timeout: 0}); err != nil {
			fail("stop container", c.Id, err)
		}
		if _, err := rt.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: c.Id}); err != nil {
			fail("remove container", c.Id, err)
		}
	}

	pods, err := rt.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return failed, fmt.Errorf("list pod sandboxes: %w", err)
	}
	for _, p := range pods.Items {
		// StopPodSandbox tears the network down (CNI DEL); RemovePodSandbox
		// also stops, but stopping first keeps the error messages apart.
		if _, err := rt.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			fail("stop pod", p.Id, err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			fail("remove pod", p.Id, err)
		}
	}
	fmt.Printf("cricleanup: %d containers, %d pod sandboxes, %d errors\n", len(ctrs.Containers), len(pods.Items), failed)
	return failed, nil
}
