package watch

import (
	"context"
	"fmt"
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
	// The settle and the debounce are far longer than the burst's gaps,
	// so that a slow moment of the machine does not split the burst.
	ch, err := watchFiles(ctx, dir, 200*time.Millisecond, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A burst that lasts past the settle time (a slow copy): eleven
	// files 40ms apart, a rename over one of them.
	for _, name := range []string{"a.hcl", "b.hcl", "c.hcl", "d.env", "e.hcl", "f.hcl", "g.hcl", "h.hcl", "i.hcl", "j.hcl", "k.hcl"} {
		write(name)
		time.Sleep(40 * time.Millisecond)
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
	ch, err := watchFiles(ctx, dir, 50*time.Millisecond, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
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

// A save (a temporary file renamed over the old one) ends its burst after
// the settle time, not the debounce; writes that go on past the settle
// time wait for the debounce.
func TestWatchFilesSettlesASaveAtOnce(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	save := func(dir, name string) {
		tmp := filepath.Join(dir, ".tmp-"+name)
		if err := os.WriteFile(tmp, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("one save", func(t *testing.T) {
		dir := t.TempDir()
		const settle, debounce = 50 * time.Millisecond, 3 * time.Second
		ch, err := watchFiles(ctx, dir, settle, debounce, discard)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		save(dir, "main.hcl")
		select {
		case <-ch:
			if took := time.Since(start); took >= debounce {
				t.Errorf("a save signalled after %s: the debounce (%s), not the settle time (%s)", took, debounce, settle)
			}
		case <-time.After(debounce):
			t.Fatalf("no signal within the debounce (%s) for a save", debounce)
		}
	})

	t.Run("saves past the settle time", func(t *testing.T) {
		dir := t.TempDir()
		const settle, debounce = 200 * time.Millisecond, 1500 * time.Millisecond
		ch, err := watchFiles(ctx, dir, settle, debounce, discard)
		if err != nil {
			t.Fatal(err)
		}
		// 30 saves 20ms apart: 600ms, far past the settle time, with no
		// gap near it.
		for i := range 30 {
			save(dir, fmt.Sprintf("f%02d.hcl", i))
			time.Sleep(20 * time.Millisecond)
		}

		if n := signals(ch, debounce/2); n != 0 {
			t.Fatalf("%d signals within half the debounce of the last save, want 0 (the burst outlasted the settle time)", n)
		}
		if n := signals(ch, debounce+time.Second); n != 1 {
			t.Errorf("%d signals for the burst, want 1", n)
		}
	})
}
