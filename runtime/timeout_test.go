package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/test/hungcri"
)

// A runtime that answers Version and then nothing fails the next call
// once its deadline passes, naming the call, instead of hanging.
func TestHungRuntimeCallsTimeOut(t *testing.T) {
	addr := hungcri.Start(t)
	rt, err := runtime.DialTimeout(context.Background(), addr, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	start := time.Now()
	_, err = rt.ListSandboxes(context.Background(), nil)
	if !errors.Is(err, runtime.ErrNoAnswer) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "the runtime did not answer ListPodSandbox within 200ms") {
		t.Fatalf("ListSandboxes = %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s, want about the 200ms deadline", took)
	}

	// A stop waits its grace on top of the deadline; a caller's own
	// deadline wins over the client's.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := rt.ListContainers(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ListContainers with the caller's deadline = %v", err)
	}
}
