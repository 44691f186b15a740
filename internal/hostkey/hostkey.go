// Package hostkey keeps the host's secret key, with which berth
// authenticates what it writes and reads back later: saved plans today.
// The key is 32 random bytes, made on first use, in a file only its owner
// can read. Losing it only makes saved plans stale; back it up with the
// host's other secrets if plans are kept across reinstalls.
package hostkey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Size is the key's length in bytes.
const Size = 32

// FileName is the key's file in the state directory.
const FileName = "host.key"

// DefaultDir is berth's state directory: BERTH_STATE_DIR, else
// /var/lib/berth for root, else the user's state directory.
func DefaultDir() string {
	if d := os.Getenv("BERTH_STATE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "berth")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "berth")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("berth-state-%d", os.Geteuid()))
}

// Load reads the key in dir, making it first if there is none. The
// directory is made 0700; the key file must be a regular file of this
// user that nobody else can read.
func Load(dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	key, err := read(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = create(path)
		if errors.Is(err, fs.ErrExist) { // another berth made it meanwhile
			key, err = read(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return key, nil
}

func read(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	switch {
	case !info.Mode().IsRegular():
		return nil, errors.New("not a regular file; remove it, and berth makes a new key")
	case st != nil && int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("belongs to uid %d, not to this user; remove it, and berth makes a new key", st.Uid)
	case info.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("others can read it (mode %04o); chmod 600 it", info.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, Size+1))
	if err != nil {
		return nil, err
	}
	if len(key) != Size {
		return nil, fmt.Errorf("holds %d bytes, not %d; remove it, and berth makes a new key", len(key), Size)
	}
	return key, nil
}

// create writes a new key beside path and links it into place, which
// fails if path exists: a berth that starts at the same moment reads
// either no key or the whole key, never a part of one.
func create(path string) ([]byte, error) {
	key := make([]byte, Size)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".host.key-*") // 0600
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); err != nil {
		return nil, err // fs.ErrExist: another berth's key is there
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the new name outlives a crash
		d.Close()
	}
	return key, nil
}

// Sum is the key's HMAC-SHA256 of data, under a purpose that keeps the
// sums of different uses apart.
func Sum(key []byte, purpose string, data []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(purpose))
	mac.Write([]byte{0})
	mac.Write(data)
	return mac.Sum(nil)
}
