package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A task running under a container the CRI calls exited, as a start cut
// short can leave: the CRI cannot remove that container ("cannot delete
// running task"). The next apply ends the task through containerd and
// converges in one run.
func TestApplyEndsAnOrphanTask(t *testing.T) {
	s := newStack(t)
	const pod = `
pod "web" {
  container "main" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`
	s.write(pod)
	s.apply()
	id := s.containers()["web/main"].Id
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := rt.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	waitExited(t, id)

	// Start a task under it behind the CRI's back.
	cl, err := containerd.New(strings.TrimPrefix(address, "unix://"), containerd.WithDefaultNamespace("k8s.io"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cont, err := cl.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if old, err := cont.Task(ctx, nil); err == nil {
		old.Delete(ctx)
	}
	task, err := cont.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("start a task behind the CRI: %v", err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: id}); err == nil || !strings.Contains(err.Error(), "running task") {
		t.Fatalf("the CRI removed the container under a running task (%v): the test does not make the state it means to", err)
	}

	s.write(strings.Replace(pod, `"3600"`, `"3601"`, 1))
	s.apply()
	if _, err := cont.Task(ctx, nil); err == nil {
		t.Error("the orphan task is still there")
	}
	if c := s.containers()["web/main"]; !running(c) || c.Id == id {
		t.Errorf("web/main after the apply: %v", c)
	}
}
