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
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

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
}

// Revision is one commit's configuration, exported.
type Revision struct {
	Commit string // the full hash
	Dir    string // the configuration directory: the exported tree at Path
}

// localRef is where fetches put the wanted ref, whatever its kind.
const localRef = "refs/berth/wanted"

// Sync fetches the ref and exports its commit, unless it is exported
// already; it returns the commit's configuration directory.
func (s *Source) Sync(ctx context.Context) (Revision, error) {
	repo, err := s.open()
	if err != nil {
		return Revision{}, err
	}
	hash, err := s.fetch(ctx, repo)
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
	return Revision{Commit: hash.String(), Dir: tree}, nil // the tree holds Path's files only
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

// open opens the bare clone, making it on first use.
func (s *Source) open() (*git.Repository, error) {
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
	return repo, nil
}

// fetch brings the ref's newest commit, as a branch, else as a tag.
func (s *Source) fetch(ctx context.Context, repo *git.Repository) (plumbing.Hash, error) {
	ref := s.ref()
	var firstErr error
	for _, remote := range []string{"refs/heads/" + ref, "refs/tags/" + ref} {
		err := repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Auth: s.Auth, Force: true, Tags: git.NoTags,
			RemoteURL: s.URL, RefSpecs: []config.RefSpec{config.RefSpec("+" + remote + ":" + localRef)}})
		if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
			r, err := repo.Reference(plumbing.ReferenceName(localRef), true)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			return peel(repo, r.Hash())
		}
		if firstErr == nil {
			firstErr = err
		}
		if !isMissingRef(err) {
			break
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("fetch %s from %s: %w", ref, redact(s.URL), firstErr)
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

func isMissingRef(err error) bool {
	var noMatch git.NoMatchingRefSpecError
	return errors.As(err, &noMatch) || strings.Contains(err.Error(), "couldn't find remote ref")
}

// redact drops credentials from a URL before it is printed.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 && strings.Contains(rest[:at], ":") {
		rest = "(credentials)@" + rest[at+1:]
	}
	return scheme + "://" + rest
}

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
