package gitsource

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// upstream is a repository the test commits to, as a user pushes.
type upstream struct {
	t    testing.TB
	dir  string
	repo *git.Repository
}

func newUpstream(t testing.TB) *upstream {
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &upstream{t: t, dir: dir, repo: repo}
}

// commit writes files and commits them.
func (u *upstream) commit(files map[string]string) string {
	u.t.Helper()
	return u.commitWith(files, nil)
}

// commitWith is commit with its options set by with (a signer, say).
func (u *upstream) commitWith(files map[string]string, with func(*git.CommitOptions)) string {
	u.t.Helper()
	wt, err := u.repo.Worktree()
	if err != nil {
		u.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(u.dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			u.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			u.t.Fatal(err)
		}
	}
	opts := &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}}
	if with != nil {
		with(opts)
	}
	h, err := wt.Commit("change", opts)
	if err != nil {
		u.t.Fatal(err)
	}
	return h.String()
}

func TestSyncFollowsTheBranch(t *testing.T) {
	up := newUpstream(t)
	first := up.commit(map[string]string{"host/main.hcl": "pod \"a\" {}\n", "host/env/app.env": "A=1\n", "other/x.hcl": "x\n"})
	src := &Source{URL: "file://" + up.dir, Ref: "main", Path: "host", Dir: t.TempDir()}
	ctx := context.Background()

	rev, err := src.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Commit != first {
		t.Fatalf("commit %s, want %s", rev.Commit, first)
	}
	if b, err := os.ReadFile(filepath.Join(rev.Dir, "main.hcl")); err != nil || string(b) != "pod \"a\" {}\n" {
		t.Fatalf("main.hcl: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(rev.Dir, "env", "app.env")); err != nil {
		t.Errorf("a subdirectory's file is not exported: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rev.Dir, "..", "other")); err == nil {
		t.Error("files outside the path are exported")
	}

	again, err := src.Sync(ctx)
	if err != nil || again != rev {
		t.Fatalf("a sync without a new commit: %+v %v, want %+v", again, err, rev)
	}
	second := up.commit(map[string]string{"host/main.hcl": "pod \"b\" {}\n"})
	rev2, err := src.Sync(ctx)
	if err != nil || rev2.Commit != second || rev2.Dir == rev.Dir {
		t.Fatalf("after a new commit: %+v %v", rev2, err)
	}
	if b, _ := os.ReadFile(filepath.Join(rev2.Dir, "main.hcl")); !strings.Contains(string(b), `"b"`) {
		t.Errorf("the new tree holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(rev.Dir, "main.hcl")); !strings.Contains(string(b), `"a"`) {
		t.Error("the previous tree changed: the last good revision must stay as it was")
	}
}

func TestSyncErrors(t *testing.T) {
	up := newUpstream(t)
	up.commit(map[string]string{"main.hcl": "x\n"})
	ctx := context.Background()
	for name, src := range map[string]*Source{
		"no such branch": {URL: "file://" + up.dir, Ref: "nope"},
		"no such path":   {URL: "file://" + up.dir, Path: "missing"},
		"no repository":  {URL: "file://" + filepath.Join(t.TempDir(), "none")},
	} {
		src.Dir = t.TempDir()
		if _, err := src.Sync(ctx); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSyncSkipsLinksAndBoundsSizes(t *testing.T) {
	up := newUpstream(t)
	os.Symlink("/etc/shadow", filepath.Join(up.dir, "link.hcl"))
	wt, _ := up.repo.Worktree()
	wt.Add("link.hcl")
	up.commit(map[string]string{"main.hcl": "ok\n"})
	src := &Source{URL: "file://" + up.dir, Dir: t.TempDir()}
	rev, err := src.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(rev.Dir, "link.hcl")); err == nil {
		t.Error("a symbolic link was exported")
	}

	up.commit(map[string]string{"big.hcl": strings.Repeat("x", MaxFileBytes+1)})
	if _, err := src.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Errorf("a file over the limit: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:token@git.example.com/x.git":   "https://(credentials)@git.example.com/x.git",
		"https://ghp_token123@git.example.com/x.git": "https://(credentials)@git.example.com/x.git",
		"https://git.example.com/x.git":              "https://git.example.com/x.git",
		"https://git.example.com/a@b/x.git":          "https://git.example.com/a@b/x.git",
		"ssh://git@git.example.com/x.git":            "ssh://git@git.example.com/x.git",
		"ssh://git:hunter22@git.example.com/x.git":   "ssh://(credentials)@git.example.com/x.git",
		"file:///srv/repo.git":                       "file:///srv/repo.git",
		"git@git.example.com:x.git":                  "git@git.example.com:x.git",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// An error from the remote never repeats the URL's credentials, however
// the transport quoted them, and still unwraps to its cause.
func TestRemoteErrorHidesCredentials(t *testing.T) {
	cause := errors.New("cause")
	for _, tc := range []struct{ url, quoted string }{
		{"https://ghp_token123@git.example.com/x.git", `Get "https://ghp_token123@git.example.com/x.git/info/refs": refused`},
		{"https://bot:s3cr%21t@git.example.com/x.git", `Get "https://bot:s3cr!t@git.example.com/x.git": refused; password s3cr!t`},
		{"https://bot:s3cr%21t@git.example.com/x.git", `Get "https://bot:s3cr%21t@git.example.com/x.git": refused`},
	} {
		s := &Source{URL: tc.url}
		err := s.remoteError(context.Background(), "list the refs of", fmt.Errorf("%s: %w", tc.quoted, cause))
		for _, secret := range []string{"ghp_token123", "s3cr"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error quotes the credentials: %v", tc.url, err)
			}
		}
		if !errors.Is(err, cause) {
			t.Errorf("%s: %v does not unwrap to its cause", tc.url, err)
		}
	}
}

// With a keyring, only commits signed by one of its keys are taken.
func TestSyncVerifiesSignatures(t *testing.T) {
	trusted, err := openpgp.NewEntity("trusted", "", "trusted@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := openpgp.NewEntity("stranger", "", "stranger@example.com", nil)
	var ring strings.Builder
	w, _ := armor.Encode(&ring, openpgp.PublicKeyType, nil)
	trusted.Serialize(w)
	w.Close()

	up := newUpstream(t)
	commit := func(by *openpgp.Entity, content string) string {
		return up.commitWith(map[string]string{"main.hcl": content}, func(o *git.CommitOptions) { o.SignKey = by })
	}
	keys, err := ParseKeys([]byte(ring.String()))
	if err != nil {
		t.Fatal(err)
	}
	src := &Source{URL: "file://" + up.dir, Dir: t.TempDir(), Keys: keys}
	good := commit(trusted, "a\n")
	if rev, err := src.Sync(context.Background()); err != nil || rev.Commit != good {
		t.Fatalf("a commit signed by the trusted key: %+v %v", rev, err)
	}
	bad := commit(stranger, "b\n")
	if _, err := src.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "commit "+bad+" is not signed by a key of --verify-keys") {
		t.Errorf("a commit signed by another key: %v", err)
	}
	unsigned := commit(nil, "c\n")
	if _, err := src.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "commit "+unsigned+" is not signed") {
		t.Errorf("an unsigned commit: %v", err)
	}
}

// sshSigner signs commits as git does with gpg.format = ssh.
type sshSigner struct{ key ssh.Signer }

func (s sshSigner) Sign(message io.Reader) ([]byte, error) {
	sig, err := sshsig.Sign(message, s.key, sshsig.HashSHA512, "git")
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

func newSSHSigner(t *testing.T) (sshSigner, string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sshSigner{signer}, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

func TestSyncVerifiesSSHSignatures(t *testing.T) {
	trusted, line := newSSHSigner(t)
	stranger, _ := newSSHSigner(t)
	keys, err := ParseKeys([]byte("# the deploy keys\nops@example.com " + line))
	if err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t)
	commit := func(by git.Signer, content string) string {
		return up.commitWith(map[string]string{"main.hcl": content}, func(o *git.CommitOptions) { o.Signer = by })
	}
	src := &Source{URL: "file://" + up.dir, Dir: t.TempDir(), Keys: keys}
	good := commit(trusted, "a\n")
	if rev, err := src.Sync(context.Background()); err != nil || rev.Commit != good {
		t.Fatalf("a commit signed by the trusted SSH key: %+v %v", rev, err)
	}
	bad := commit(stranger, "b\n")
	if _, err := src.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "commit "+bad+" is not signed by a key of --verify-keys (SSH signature by SHA256:") {
		t.Errorf("a commit signed by another SSH key: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	_, line := newSSHSigner(t)
	for name, tc := range map[string]struct {
		in  string
		err bool
	}{
		"ssh line":        {line, false},
		"allowed_signers": {"* " + line, false},
		"garbage":         {"not a key\n", true},
		"empty":           {"# nothing\n", true},
		"unended block":   {"-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n", true},
	} {
		if _, err := ParseKeys([]byte(tc.in)); (err != nil) != tc.err {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// An SSH remote that accepts and then stops answering, at any step of the
// protocol, holds a sync only until its context ends.
func TestSyncOutlastsAHangingSSHRemote(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		serve func(net.Conn) // holds the connection, saying as much as it will
	}{
		{"no banner", func(net.Conn) {}},
		{"a banner, then nothing", func(c net.Conn) { io.WriteString(c, "SSH-2.0-hung\r\n") }},
		{"a session that never starts the command", func(c net.Conn) {
			cfg := &ssh.ServerConfig{NoClientAuth: true}
			cfg.AddHostKey(hostKey)
			_, chans, reqs, err := ssh.NewServerConn(c, cfg)
			if err != nil {
				return
			}
			go ssh.DiscardRequests(reqs)
			for nc := range chans {
				ch, chReqs, err := nc.Accept()
				if err != nil {
					return
				}
				defer ch.Close()
				go func() {
					for range chReqs { // the exec request: never answered
					}
				}()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			held := make(chan net.Conn, 4)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					held <- c
					go tc.serve(c)
				}
			}()
			defer func() {
				for len(held) > 0 {
					(<-held).Close()
				}
			}()

			_, clientKey, _ := ed25519.GenerateKey(rand.Reader)
			signer, _ := ssh.NewSignerFromKey(clientKey)
			auth := &gitssh.PublicKeys{User: "git", Signer: signer}
			auth.HostKeyCallback = ssh.InsecureIgnoreHostKey()
			src := &Source{URL: "ssh://git@" + ln.Addr().String() + "/x.git", Dir: t.TempDir(), Auth: auth}

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := src.Sync(ctx); done <- err }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a sync against a hung remote succeeded")
				}
				t.Logf("sync: %v", err)
			case <-time.After(20 * time.Second): // far beyond the context: a sync that waits on
				t.Fatal("the sync still waits on the remote after its context ended")
			}
		})
	}
}
