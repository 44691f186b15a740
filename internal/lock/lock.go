// Package lock serialises the commands that change a stack: only one
// apply, destroy or watch of a stack on a runtime runs at a time.
//
// The lock is an flock(2) on a file, so it is released by the kernel when
// its holder dies; the file also names the holder for whoever waits.
package lock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/safefile"
)

// Holder describes the process holding a lock.
type Holder struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "another berth process"
	}
	return fmt.Sprintf("pid %d (%s) since %s", h.PID, h.Command, h.Since.Format(time.RFC3339))
}

// ErrTimeout means the lock was still held when the wait ran out.
var ErrTimeout = errors.New("timed out waiting for the stack lock")

// Lock is a held stack lock.
type Lock struct{ f *os.File }

// DefaultDir is where lock files live: /run/berth for root, else the
// user's runtime directory.
func DefaultDir() string {
	if d := os.Getenv("BERTH_LOCK_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/berth"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "berth")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("berth-%d", os.Geteuid()))
}

// Path is the lock file of a stack on a runtime address: the same stack name
// on two runtimes is two stacks, and one runtime however its socket is
// written is one.
func Path(dir, stack, address string) string {
	sum := sha256.Sum256([]byte(Socket(address)))
	return filepath.Join(dir, stack+"-"+hex.EncodeToString(sum[:4])+".lock")
}

// Socket is the one name of a runtime's socket, however an address writes
// it: "unix://" or not, "/var/run" for "/run" (a link on Debian), a
// trailing slash or a "..".
func Socket(address string) string {
	path := filepath.Clean(strings.TrimPrefix(address, "unix://"))
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real
	}
	return path
}

// Acquire takes the lock at path. While another process holds it, Acquire
// calls waiting once with that holder and retries until ctx ends; a
// timeout of zero waits as long as ctx allows. command names the holder
// for whoever waits: a command name, never its arguments, which may hold
// secrets.
//
// The directory is made 0700 and must belong to this user and be writable
// by nobody else; the file is opened without following a symlink, so a
// link planted there cannot make berth truncate another file.
func Acquire(ctx context.Context, path, command string, timeout time.Duration, waiting func(Holder)) (*Lock, error) {
	if err := safeDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w (if it is a symbolic link, remove it)", err)
	}
	if err := ownedFile(f); err != nil {
		f.Close()
		return nil, err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	told := false
	interval := 50 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder := readHolder(path)
		if !told && waiting != nil {
			waiting(holder)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: held by %s", ErrTimeout, holder)
			}
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*2, 500*time.Millisecond)
	}
	h := Holder{PID: os.Getpid(), Command: command, Since: time.Now().UTC().Truncate(time.Second)}
	b, _ := json.Marshal(h)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(b, '\n'), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error {
	_ = l.f.Truncate(0)
	err := unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	return errors.Join(err, l.f.Close())
}

func readHolder(path string) Holder {
	var h Holder
	if b, err := safefile.Read(path, 4096, safefile.Options{NoFollow: true}); err == nil {
		_ = json.Unmarshal([]byte(strings.TrimSpace(string(b))), &h)
	}
	return h
}

// safeDir makes the lock directory, 0700, and checks that it is a real
// directory of this user that nobody else can write to.
func safeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("lock directory: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("lock directory: %w", err)
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	switch {
	case !info.IsDir():
		return fmt.Errorf("lock directory %s is not a directory (a symbolic link?); remove it, or set BERTH_LOCK_DIR", dir)
	case st != nil && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("lock directory %s belongs to uid %d, not to this user (%d); remove it, or set BERTH_LOCK_DIR", dir, st.Uid, os.Geteuid())
	case info.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("lock directory %s is writable by others (mode %04o); chmod go-w it, or set BERTH_LOCK_DIR", dir, info.Mode().Perm())
	}
	return nil
}

// ownedFile checks that an opened lock file is a regular file of this user.
func ownedFile(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); !info.Mode().IsRegular() || ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("lock file %s is not a regular file of this user; remove it", f.Name())
	}
	return nil
}
