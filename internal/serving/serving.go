// Package serving says which of a pod's sandboxes takes new connections
// while a start-first replace runs two of them: apply marks the old one
// while the new one gets ready, then the new one, and forwards (those of
// berth forward and berth watch, in any process) read the mark for each
// connection. Without a mark a forward takes the newest ready sandbox.
package serving

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/safefile"
)

// Dir is where a stack's marks live: beside its lock, one file a pod.
func Dir(lockDir, stack, address string) string {
	return strings.TrimSuffix(lock.Path(lockDir, stack, address), ".lock") + ".serving"
}

// maxMark bounds what is read of a mark: a sandbox ID and a newline.
const maxMark = 128

// validSandboxID says what a mark may hold: the runtime's IDs are up to 64
// hex digits. (As a loop: a pattern's {1,64} would compile, at every
// command's start, into 64 states.)
func validSandboxID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Set marks sandbox as the one of pod that takes new connections; an
// empty sandbox removes the mark.
func Set(dir, pod, sandbox string) error {
	path := filepath.Join(dir, pod)
	if sandbox == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		_ = os.Remove(dir) // once its last mark is gone; fails while others remain
		return nil
	}
	if !validSandboxID(sandbox) {
		return fmt.Errorf("mark pod %s as served by %q: not a sandbox ID", pod, sandbox)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if info, err := os.Lstat(dir); err != nil || !info.IsDir() {
		return fmt.Errorf("%s is not a directory (a symbolic link?): remove it", dir)
	}
	return renameio.WriteFile(path, []byte(sandbox+"\n"), 0o600)
}

// Mark reads one pod's mark, again only when its file changed, so that a
// forward can look for each connection at the cost of a stat.
type Mark struct {
	path string

	mu      sync.Mutex
	seen    fileStamp
	sandbox string
}

// fileStamp tells one version of a file from another: a rewrite is a
// rename, so a new inode.
type fileStamp struct {
	ino, size int64
	mod       time.Time
}

// NewMark reads pod's mark in dir.
func NewMark(dir, pod string) *Mark { return &Mark{path: filepath.Join(dir, pod)} }

// Sandbox returns the marked sandbox ("" when there is no mark, or it is
// not one berth wrote) and whether that changed since the last call.
func (m *Mark) Sandbox() (sandbox string, changed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var stamp fileStamp
	if info, err := os.Lstat(m.path); err == nil {
		stamp.size, stamp.mod = info.Size(), info.ModTime()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			stamp.ino = int64(st.Ino)
		}
	}
	if stamp == m.seen {
		return m.sandbox, false
	}
	m.seen = stamp
	id := ""
	if stamp != (fileStamp{}) {
		if b, err := safefile.Read(m.path, maxMark, safefile.Options{NoFollow: true}); err == nil {
			if s := strings.TrimSpace(string(b)); validSandboxID(s) {
				id = s
			}
		}
	}
	changed = id != m.sandbox
	m.sandbox = id
	return id, changed
}
