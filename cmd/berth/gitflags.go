package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/internal/gitsource"
	"github.com/berth-dev/berth/internal/hostkey"
	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/internal/watch"
)

// gitFlags are berth watch's git source options.
type gitFlags struct {
	url, ref, path, sshKey, verifyKeys string
	interval                           time.Duration
}

func (g *gitFlags) register(f *pflag.FlagSet) {
	f.StringVar(&g.url, "git", "", "take the configuration from this git repository (https://, ssh:// or file://) instead of DIR")
	f.StringVar(&g.ref, "ref", "main", "with --git: the branch or tag to follow")
	f.StringVar(&g.path, "path", "", "with --git: the directory of the repository that holds the configuration")
	f.DurationVar(&g.interval, "interval", watch.DefaultSourceInterval, "with --git: how often to fetch")
	f.StringVar(&g.sshKey, "git-ssh-key", "", "with --git over SSH: the private key file")
	f.StringVar(&g.verifyKeys, "verify-keys", "", "with --git: accept only commits signed by one of the keys in this file (armored OpenPGP public keys, SSH public key lines)")
}

// source is the git source the flags describe, or nil without --git. Its
// clone lives in berth's state directory, one per repository and path.
func (g *gitFlags) source() (*gitsource.Source, error) {
	if g.url == "" {
		return nil, nil
	}
	if g.interval <= 0 {
		return nil, usageErrorf("--interval %s: give a period above zero, such as 1m", g.interval)
	}
	sum := sha256.Sum256([]byte(g.url + "\n" + g.ref + "\n" + g.path))
	src := &gitsource.Source{URL: g.url, Ref: g.ref, Path: g.path,
		Dir: filepath.Join(hostkey.DefaultDir(), "git", hex.EncodeToString(sum[:8]))}
	auth, err := g.auth()
	if err != nil {
		return nil, err
	}
	src.Auth = auth
	if g.verifyKeys != "" {
		raw, err := safefile.Read(g.verifyKeys, 1<<20, safefile.Options{})
		if err != nil {
			return nil, usageErrorf("--verify-keys: %v", err)
		}
		keys, err := gitsource.ParseKeys(raw)
		if err != nil {
			return nil, usageErrorf("--verify-keys %s: %v; give armored OpenPGP public keys (gpg --armor --export KEY) or SSH public key lines", g.verifyKeys, err)
		}
		src.Keys = keys
	}
	return src, nil
}

// stackName names the stack when the repository's berth block does not:
// after the last directory of --path, else after the repository, as a
// checkout of it would be named. (Each commit is loaded from a directory
// named by its hash, which would make every commit a stack of its own.)
func (g *gitFlags) stackName() string {
	if p := strings.Trim(path.Clean("/"+g.path), "/"); p != "" {
		return path.Base(p)
	}
	repo := strings.TrimSuffix(strings.TrimRight(g.url, "/"), ".git")
	return repo[strings.LastIndexAny(repo, "/:")+1:]
}

// auth reads the credentials for a private repository; they come from the
// environment or a key file, never from flags, so that no process listing
// shows them.
func (g *gitFlags) auth() (transport.AuthMethod, error) {
	if g.sshKey != "" {
		pem, err := safefile.Read(g.sshKey, 64<<10, safefile.Options{})
		if err != nil {
			return nil, usageErrorf("--git-ssh-key: %v", err)
		}
		keys, err := gitssh.NewPublicKeys("git", pem, os.Getenv("BERTH_GIT_SSH_PASSPHRASE"))
		if err != nil {
			return nil, usageErrorf("--git-ssh-key %s: %v", g.sshKey, err)
		}
		return keys, nil
	}
	if user, pass := os.Getenv("BERTH_GIT_USERNAME"), os.Getenv("BERTH_GIT_PASSWORD"); pass != "" {
		if user == "" {
			user = "berth" // a token as the password: forges ignore the name
		}
		return &githttp.BasicAuth{Username: user, Password: pass}, nil
	}
	return nil, nil
}

// sourceOrNil keeps a nil *Source out of the interface.
func sourceOrNil(s *gitsource.Source) watch.Source {
	if s == nil {
		return nil
	}
	return s
}
