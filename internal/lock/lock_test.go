package lock

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAcquire(t *testing.T) {
	path := Path(t.TempDir(), "web", "unix:///run/containerd/containerd.sock")
	ctx := context.Background()

	first, err := Acquire(ctx, path, "berth apply one", 0, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A second holder waits, is told who holds the lock, and times out.
	var told Holder
	_, err = Acquire(ctx, path, "berth apply two", 200*time.Millisecond, func(h Holder) { told = h })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("second Acquire = %v, want ErrTimeout", err)
	}
	if told.Command != "berth apply one" || told.PID == 0 || !strings.Contains(err.Error(), "berth apply one") {
		t.Fatalf("holder = %+v, error %q; want the first holder named", told, err)
	}

	// Released while another waits: the waiter gets it.
	got := make(chan error, 1)
	go func() {
		l, err := Acquire(ctx, path, "berth apply three", 5*time.Second, nil)
		if err == nil {
			err = l.Release()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

func TestAcquireCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	held, err := Acquire(context.Background(), path, "holder", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := Acquire(ctx, path, "waiter", 0, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire after cancel = %v", err)
	}
}

func TestPath(t *testing.T) {
	a := Path("/run/berth", "web", "unix:///a.sock")
	b := Path("/run/berth", "web", "unix:///b.sock")
	if a == b || !strings.HasPrefix(filepath.Base(a), "web-") || filepath.Dir(a) != "/run/berth" {
		t.Fatalf("paths %q and %q: want one per stack and runtime", a, b)
	}
}
