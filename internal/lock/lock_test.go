package lock

import (
	"context"
	"errors"
	"os"
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

// A lock in a place others can tamper with is refused, and a symlink
// planted as the lock file never truncates its target.
func TestAcquireRefusesUnsafePlaces(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the lock path
		want  string
	}{
		{"a symlink as the lock file", func(t *testing.T, dir string) string {
			target := filepath.Join(t.TempDir(), "precious")
			if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if b, _ := os.ReadFile(target); string(b) != "keep me" {
					t.Errorf("the symlink's target was changed: %q", b)
				}
			})
			path := filepath.Join(dir, "s.lock")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return path
		}, "symbolic link"},
		{"a directory others can write to", func(t *testing.T, dir string) string {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "s.lock")
		}, "writable by others"},
		{"a directory of another user", func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a directory away")
			}
			if err := os.Chown(dir, 4242, 4242); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "s.lock")
		}, "belongs to uid 4242"},
		{"a symlink as the directory", func(t *testing.T, dir string) string {
			link := filepath.Join(t.TempDir(), "linked")
			if err := os.Symlink(dir, link); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(link, "s.lock")
		}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "locks")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := tt.setup(t, dir)
			l, err := Acquire(context.Background(), path, "berth test", 0, nil)
			if err == nil {
				l.Release()
				t.Fatal("acquired")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// The lock file is private and names the holder without arguments.
func TestLockFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks", "s.lock")
	l, err := Acquire(context.Background(), path, "berth apply", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", info.Mode(), err)
	}
	if dir, _ := os.Stat(filepath.Dir(path)); dir.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", dir.Mode())
	}
	if h := readHolder(path); h.Command != "berth apply" || h.PID != os.Getpid() {
		t.Errorf("holder %+v", h)
	}
}

// One runtime is one lock, however its socket is written.
func TestPathNamesTheSocketOnce(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	os.MkdirAll(filepath.Join(run, "containerd"), 0o755)
	os.WriteFile(filepath.Join(run, "containerd", "containerd.sock"), nil, 0o600)
	os.Symlink("run", filepath.Join(dir, "varrun")) // as /var/run is /run
	sock := filepath.Join(run, "containerd", "containerd.sock")
	want := Path("/locks", "web", sock)
	for _, address := range []string{
		"unix://" + sock,
		filepath.Join(dir, "varrun", "containerd", "containerd.sock"),
		"unix://" + filepath.Join(run, "containerd", "..", "containerd", "containerd.sock"),
	} {
		if got := Path("/locks", "web", address); got != want {
			t.Errorf("Path(%q) = %s, want %s", address, got, want)
		}
	}
	if Path("/locks", "web", filepath.Join(dir, "other.sock")) == want {
		t.Error("another runtime has the same lock")
	}
}
