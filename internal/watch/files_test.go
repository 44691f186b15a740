package watch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// signals counts what arrives on ch within d.
func signals(ch <-chan struct{}, d time.Duration) int {
	n := 0
	deadline := time.After(d)
	for {
		select {
		case <-ch:
			n++
		case <-deadline:
			return n
		}
	}
}

func TestWatchFilesDebouncesAndIgnoresLeftovers(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The debounce is far longer than the burst's gaps, so that a slow
	// moment of the machine does not split the burst.
	ch, err := watchFiles(ctx, dir, 500*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A burst: five files, a rename over one of them.
	for _, name := range []string{"a.hcl", "b.hcl", "c.hcl", "d.env", "e.hcl"} {
		write(name)
		time.Sleep(10 * time.Millisecond)
	}
	write("tmp")
	if err := os.Rename(filepath.Join(dir, "tmp"), filepath.Join(dir, "a.hcl")); err != nil {
		t.Fatal(err)
	}
	if n := signals(ch, 2*time.Second); n != 1 {
		t.Errorf("%d signals for one burst, want 1", n)
	}

	// Leftovers alone: nothing.
	for _, name := range []string{"a.hcl~", ".a.hcl.swp", "#a.hcl#", "x.orig"} {
		write(name)
	}
	if n := signals(ch, time.Second); n != 0 {
		t.Errorf("%d signals for editor leftovers, want 0", n)
	}
}

func TestWatchFilesFollowsARecreatedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := watchFiles(ctx, dir, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	signals(ch, 300*time.Millisecond) // the removal itself may or may not signal
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if n := signals(ch, 2*time.Second); n != 1 {
		t.Fatalf("%d signals once the directory is back, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := signals(ch, time.Second); n != 1 {
		t.Errorf("%d signals for a file in the recreated directory, want 1", n)
	}
}
