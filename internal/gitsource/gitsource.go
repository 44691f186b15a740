// Package gitsource keeps a configuration from a git repository: a bare
// clone in berth's cache, fetched on demand, and each new commit's files
// exported into a tree of their own, which the watcher then loads. It needs
// no git binary (go-git), and treats the repository as hostile: only
// regular files under the path are exported, within size limits.
package gitsource

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Limits on what one commit may export.
const (
	MaxFileBytes  = 16 << 20  // as the largest file a configuration may read
	MaxTreeBytes  = 256 << 20 // all files together
	MaxTreeFiles  = 10_000
	keepRevisions = 3 // trees kept: the newest, and the ones before it
)

// Source is one repository, branch (or tag) and path.
type Source struct {
	URL string
	// Ref is a branch or a tag name; default "main".
	Ref string
	// Path is the directory within the repository that holds the
	// configuration; "" for its root.
	Path string
	// Dir is where the clone and the exported trees live.
	Dir string
	// Auth is for private repositories (HTTPS basic auth or token, SSH key).
	Auth transport.AuthMethod
	// Keys, when set, are the keys a commit must be signed with; a commit
	// signed by none is refused.
	Keys *Keys

	// mu orders syncs; what it guards is kept between them, so an idle
	// sync is one listing of the remote's refs and nothing else.
	mu   sync.Mutex
	repo *git.Repository
	// last is what the previous sync returned, and the hash the remote
	// advertised for the ref then (an annotated tag's own hash).
	last       Revision
	lastRemote plumbing.Hash
}

// Revision is one commit's configuration, exported.
type Revision struct {
	Commit string // the full hash
	Dir    string // the configuration directory: the exported tree at Path
}

// localRef is where fetches put the wanted ref, whatever its kind.
const localRef = "refs/berth/wanted"

// Sync fetches the ref and exports its commit, unless it is exported
// already; it returns the commit's configuration directory. A ref the
// remote still advertises at the hash of the previous sync costs one
// listing of the remote's refs.
func (s *Source) Sync(ctx context.Context) (Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo, err := s.open()
	if err != nil {
		return Revision{}, err
	}
	remoteRef, advertised, err := s.advertised(ctx, repo)
	if err != nil {
		return Revision{}, err
	}
	if advertised == s.lastRemote && !advertised.IsZero() {
		if _, err := os.Stat(s.last.Dir); err == nil {
			return s.last, nil
		}
	}
	hash, err := s.fetch(ctx, repo, remoteRef)
	if err != nil {
		return Revision{}, err
	}
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return Revision{}, fmt.Errorf("commit %s: %w", hash, err)
	}
	if s.Keys != nil {
		if err := s.Keys.verify(commit); err != nil {
			return Revision{}, err
		}
	}
	tree := filepath.Join(s.Dir, "trees", hash.String())
	if _, err := os.Stat(tree); errors.Is(err, os.ErrNotExist) {
		if err := s.export(commit, tree); err != nil {
			return Revision{}, fmt.Errorf("commit %s: %w", hash.String()[:12], err)
		}
		s.prune(hash.String())
	} else if err != nil {
		return Revision{}, err
	}
	s.last = Revision{Commit: hash.String(), Dir: tree} // the tree holds Path's files only
	s.lastRemote = advertised
	return s.last, nil
}

func (s *Source) ref() string {
	if s.Ref == "" {
		return "main"
	}
	return s.Ref
}

func (s *Source) cleanPath() string {
	return strings.Trim(path.Clean("/"+filepath.ToSlash(s.Path)), "/")
}

// open opens the bare clone, making it on first use, and keeps it open:
// its pack indexes are read once, not on every sync.
func (s *Source) open() (*git.Repository, error) {
	if s.repo != nil {
		return s.repo, nil
	}
	dir := filepath.Join(s.Dir, "repo")
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(s.Dir, 0o700); err != nil {
			return nil, err
		}
		if repo, err = git.PlainInit(dir, true); err != nil {
			return nil, fmt.Errorf("make the clone: %w", err)
		}
		_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.URL}})
	}
	if err != nil {
		return nil, fmt.Errorf("open the clone in %s: %w", dir, err)
	}
	s.repo = repo
	return repo, nil
}

// advertised lists the remote's refs and returns the wanted one, as a
// branch, else as a tag, with the hash the remote has for it.
func (s *Source) advertised(ctx context.Context, repo *git.Repository) (plumbing.ReferenceName, plumbing.Hash, error) {
	// The URL given, not the clone's: it may have been made for another.
	remote := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{s.URL}})
	bound, forget := boundProxy(ctx, s.URL)
	defer forget()
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.Auth, PeelingOption: git.IgnorePeeled, ProxyOptions: bound})
	if err != nil {
		return "", plumbing.ZeroHash, s.remoteError(ctx, "list the refs of", err)
	}
	ref := s.ref()
	for _, want := range []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)} {
		for _, r := range refs {
			if r.Name() == want && r.Type() == plumbing.HashReference {
				return want, r.Hash(), nil
			}
		}
	}
	return "", plumbing.ZeroHash, fmt.Errorf("%s has no branch or tag %q", redact(s.URL), ref)
}

// fetch brings the remote ref's commit into the clone.
func (s *Source) fetch(ctx context.Context, repo *git.Repository, remoteRef plumbing.ReferenceName) (plumbing.Hash, error) {
	bound, forget := boundProxy(ctx, s.URL)
	defer forget()
	err := repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Auth: s.Auth, Force: true, Tags: git.NoTags,
		RemoteURL: s.URL, ProxyOptions: bound, RefSpecs: []config.RefSpec{config.RefSpec("+" + remoteRef.String() + ":" + localRef)}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, s.remoteError(ctx, "fetch "+remoteRef.Short()+" from", err)
	}
	r, err := repo.Reference(plumbing.ReferenceName(localRef), true)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return peel(repo, r.Hash())
}

// peel turns an annotated tag into its commit.
func peel(repo *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	if tag, err := repo.TagObject(h); err == nil {
		c, err := tag.Commit()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return c.Hash, nil
	}
	return h, nil
}

// redact drops credentials from a URL before it is printed: any user
// part of an HTTPS URL (a token alone is a user part), and an SSH URL's
// password; an SSH user name (git@) stays.
func redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	if userinfo := credentials(scheme, rest); userinfo != "" {
		rest = "(credentials)" + rest[len(userinfo):]
	}
	return scheme + "://" + rest
}

// credentials is the user part of a URL (after its scheme) that is
// secret, or "".
func credentials(scheme, rest string) string {
	authority := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		authority = rest[:end]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 || scheme == "ssh" && !strings.Contains(authority[:at], ":") {
		return ""
	}
	return authority[:at]
}

// remoteError is err from the remote, told with the URL redacted (go-git's
// own errors may quote it, and a user part it leaves as it is), and as a
// remote that did not answer in time when ctx ended it.
func (s *Source) remoteError(ctx context.Context, what string, err error) error {
	msg := fmt.Sprintf("%s %s: %v", what, redact(s.URL), err)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = fmt.Sprintf("%s %s: the remote did not answer in time (%v)", what, redact(s.URL), context.Cause(ctx))
	}
	if scheme, rest, ok := strings.Cut(s.URL, "://"); ok {
		if userinfo := credentials(scheme, rest); userinfo != "" {
			forms := []string{userinfo}
			if unescaped, err := url.PathUnescape(userinfo); err == nil && unescaped != userinfo {
				forms = append(forms, unescaped)
			}
			for _, form := range forms {
				msg = strings.ReplaceAll(msg, form+"@", "(credentials)@")
				// A password alone, as some errors quote it; not one so
				// short that it would match any word.
				if _, pass, ok := strings.Cut(form, ":"); ok && len(pass) >= 4 {
					msg = strings.ReplaceAll(msg, pass, "(credentials)")
				}
			}
		}
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError tells its own text and unwraps to the error it tells of,
// for errors.Is.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// export writes the commit's regular files under Path into dir, through a
// temporary directory renamed into place, so a tree is whole or absent.
func (s *Source) export(commit *object.Commit, dir string) error {
	tree, err := commit.Tree()
	if err != nil {
		return err
	}
	if p := s.cleanPath(); p != "" {
		if tree, err = tree.Tree(p); err != nil {
			return fmt.Errorf("no directory %q: %w", p, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var total int64
	files := 0
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil // links, submodules: never followed
		}
		name := path.Clean(f.Name)
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) || strings.Contains(name, "\x00") {
			return fmt.Errorf("file %q: not a path inside the repository", f.Name)
		}
		if files++; files > MaxTreeFiles {
			return fmt.Errorf("more than %d files", MaxTreeFiles)
		}
		if f.Size > MaxFileBytes {
			return fmt.Errorf("file %s is larger than %d MiB", name, MaxFileBytes>>20)
		}
		if total += f.Size; total > MaxTreeBytes {
			return fmt.Errorf("its files are larger than %d MiB together", MaxTreeBytes>>20)
		}
		return writeFile(filepath.Join(tmp, filepath.FromSlash(name)), f)
	})
	if err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func writeFile(dst string, f *object.File) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	r, err := f.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.LimitReader(r, MaxFileBytes+1)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// prune removes all but the newest exported trees (by modification time),
// keeping current whatever its age.
func (s *Source) prune(current string) {
	root := filepath.Join(s.Dir, "trees")
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type tree struct {
		name string
		mod  int64
	}
	var trees []tree
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			trees = append(trees, tree{e.Name(), info.ModTime().UnixNano()})
		}
	}
	slices.SortFunc(trees, func(a, b tree) int { return cmp.Compare(b.mod, a.mod) })
	for i, t := range trees {
		if i >= keepRevisions && t.name != current {
			os.RemoveAll(filepath.Join(root, t.name))
		}
	}
}
