package gitsource

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A commit signed by git itself (gpg.format = ssh, with ssh-keygen) is
// verified: the payload berth checks is the one git signed.
func TestSyncVerifiesGitsOwnSSHSignature(t *testing.T) {
	for _, tool := range []string{"git", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BERTH_E2E_REQUIRED") == "1" {
				t.Fatalf("%s is needed: %v", tool, err)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	repo := filepath.Join(dir, "repo")
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	run("git", "init", "-q", "-b", "main", repo)
	os.WriteFile(filepath.Join(repo, "main.hcl"), []byte("a\n"), 0o644)
	run("git", "-C", repo, "add", "main.hcl")
	run("git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "gpg.format=ssh",
		"-c", "user.signingkey="+key, "commit", "-q", "-S", "-m", "signed")
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	src := &Source{URL: "file://" + repo, Dir: t.TempDir(), Keys: keys}
	if _, err := src.Sync(context.Background()); err != nil {
		t.Fatalf("git's own SSH signature: %v", err)
	}
}
