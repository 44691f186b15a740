package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	path := StatePath(dir, "shop", "unix:///run/containerd/containerd.sock")
	if st, err := ReadState(path); st != nil || err != nil {
		t.Fatalf("no file: %v %v, want nothing", st, err)
	}
	mine := &StateFile{PID: os.Getpid(), Written: time.Now(), WatcherReport: WatcherReport{Ready: true, WatcherState: WatcherState{Stack: "shop", Revision: "abc"}}}
	if err := writeState(path, mine); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	st, err := ReadState(path)
	if err != nil || st == nil || st.Stack != "shop" || st.Revision != "abc" || !st.Ready {
		t.Fatalf("read back %+v %v", st, err)
	}

	gone := &StateFile{PID: 1 << 22, Written: time.Now()} // beyond pid_max: no such process
	if err := writeState(path, gone); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadState(path); st != nil || err != nil {
		t.Errorf("a file of a process that is gone: %+v %v, want nothing", st, err)
	}

	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := ReadState(path); err == nil {
		t.Error("a broken file reads without an error")
	}
	link := filepath.Join(dir, "link.watch.json")
	os.Symlink(path, link)
	if _, err := ReadState(link); err == nil {
		t.Error("a state file behind a symbolic link is read")
	}
}
