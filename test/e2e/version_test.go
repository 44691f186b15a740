package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The binary make builds names the commit it was built from (Go's build
// info, so a plain go build in a checkout does too).
func TestVersionNamesItsCommit(t *testing.T) {
	r := runBerth(t, nil, "version", "--json")
	var v struct{ Version, Commit, Go string }
	if err := json.Unmarshal([]byte(r.stdout), &v); r.code != 0 || err != nil {
		t.Fatalf("version --json: %v\n%s", err, r)
	}
	if v.Version == "" || !strings.HasPrefix(v.Go, "go1.") {
		t.Errorf("version --json = %+v", v)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(root, ".git")); err != nil || !st.IsDir() {
		// Go stamps the commit only in a checkout's own .git directory
		// (not a git worktree's link to one, nor a tarball).
		t.Logf("%s is not a git checkout: the commit is not compared", root)
		return
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(head)); v.Commit != want {
		t.Errorf("version names commit %q, the checkout is at %q", v.Commit, want)
	}
}

// A short command collects no garbage, not even while Go initialises the
// packages before main: the first collection would come there, at 4 MiB.
func TestShortCommandCollectsNoGarbage(t *testing.T) {
	cmd := exec.Command(berthBin, "version")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("berth version: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "gc ") {
			t.Errorf("berth version collected garbage: %s", line)
		}
	}
}
