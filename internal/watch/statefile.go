package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/safefile"
)

// StateFile is what a running watcher tells berth status, through a small
// file beside the stack's lock: written atomically after every round, so
// that status never needs the watcher to answer.
type StateFile struct {
	PID     int       `json:"pid"`
	Listen  string    `json:"listen,omitempty"`
	Written time.Time `json:"written"`
	WatcherReport
	// Readiness is each pod's readiness, as its readiness probes last said.
	Readiness map[string]bool `json:"readiness,omitempty"`
}

// maxStateFile bounds what status reads: the file is small, and not read
// blindly even so.
const maxStateFile = 1 << 20

// StatePath is the watcher state file of a stack on a runtime.
func StatePath(lockDir, stack, address string) string {
	return strings.TrimSuffix(lock.Path(lockDir, stack, address), ".lock") + ".watch.json"
}

// ReadState reads the state file of a running watcher. It returns nil
// without an error when no watcher runs: no file, or the process that
// wrote it is gone.
func ReadState(path string) (*StateFile, error) {
	raw, err := safefile.Read(path, maxStateFile, safefile.Options{NoFollow: true})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st StateFile
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.PID <= 0 || syscall.Kill(st.PID, 0) == syscall.ESRCH {
		return nil, nil // left by a watcher that is gone
	}
	return &st, nil
}

// writeState writes the state file, mode 0600, atomically.
func writeState(path string, st *StateFile) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(path, append(b, '\n'), 0o600)
}
