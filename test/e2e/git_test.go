package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// gitUpstream is a repository the test pushes to, served over smart HTTP
// by git's own http-backend behind basic auth, as a private forge would.
type gitUpstream struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	srv  *httptest.Server
}

const gitUser, gitPassword = "ci", "gh0st-T0ken-never-printed"

func newGitUpstream(t *testing.T) *gitUpstream {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "hosts")
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git is needed for its http-backend: %v", err)
	}
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != gitUser || p != gitPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &gitUpstream{t: t, dir: dir, repo: repo, srv: srv}
}

func (u *gitUpstream) url() string { return u.srv.URL + "/hosts/.git" }

// commit writes host/main.hcl and commits it.
func (u *gitUpstream) commit(src string) string {
	u.t.Helper()
	return u.commitAt("host", src)
}

// commitAt writes dir/main.hcl and commits it.
func (u *gitUpstream) commitAt(dir, src string) string {
	u.t.Helper()
	os.MkdirAll(filepath.Join(u.dir, dir), 0o755)
	if err := os.WriteFile(filepath.Join(u.dir, dir, "main.hcl"), []byte(src), 0o644); err != nil {
		u.t.Fatal(err)
	}
	wt, _ := u.repo.Worktree()
	if _, err := wt.Add(dir + "/main.hcl"); err != nil {
		u.t.Fatal(err)
	}
	h, err := wt.Commit("change", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		u.t.Fatal(err)
	}
	return h.String()
}

// berth watch --git on the real runtime: the first commit is applied and
// labelled, a signed webhook brings the next, a broken commit changes
// nothing and readiness names it, and the credentials show nowhere.
func TestWatchFollowsGit(t *testing.T) {
	up := newGitUpstream(t)
	s := newStack(t)
	stack := fmt.Sprintf("berth {\n  stack = %q\n}\n", s.name)
	first := up.commit(stack + fmt.Sprintf(watchedSleeper, "app", "1"))
	s.write(fmt.Sprintf(watchedSleeper, "app", "1")) // the cleanup destroys the stack from here

	t.Setenv("BERTH_GIT_USERNAME", gitUser)
	t.Setenv("BERTH_GIT_PASSWORD", gitPassword)
	t.Setenv("BERTH_WEBHOOK_SECRET", "hook-s3cret")
	w := s.watch("--git", up.url(), "--path", "host", "--interval", "1h", "--listen", "127.0.0.1:0")
	listen := w.waitFor(30*time.Second, map[string]string{"msg": "serving /metrics"})["listen"].(string)
	w.waitFor(60*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})
	if rev := s.pods()["app"].Labels["berth.io/revision"]; rev != first {
		t.Fatalf("the sandbox carries revision %q, want %s", rev, first)
	}
	if st := s.mustBerth("status", s.dir); !strings.Contains(st.stdout, "REVISION") || !strings.Contains(st.stdout, "Watcher: pid ") || !strings.Contains(st.stdout, "revision "+first[:12]) {
		t.Errorf("status does not show the revision:\n%s", st.stdout)
	}

	hook := func(secret string) int {
		body := `{"ref":"refs/heads/main"}`
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		req, _ := http.NewRequest("POST", "http://"+listen+"/hooks/git", strings.NewReader(body))
		req.Header.Set("X-Gitea-Signature", hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	second := up.commit(stack + fmt.Sprintf(watchedSleeper, "app", "2"))
	if code := hook("not the secret"); code != http.StatusUnauthorized {
		t.Errorf("a badly signed webhook: %d", code)
	}
	if code := hook("hook-s3cret"); code != http.StatusAccepted {
		t.Fatalf("the webhook: %d", code)
	}
	w.waitFor(60*time.Second, map[string]string{"msg": "new commit", "revision": second})
	eventually(t, 60*time.Second, "the container of the second commit", func() bool {
		c := s.containers()["app/c"]
		return running(c) && c.Labels["berth.io/revision"] == second
	})

	broken := up.commit(stack + fmt.Sprintf(watchedSleeper, "app", "3") + "\npod \"broken\" {\n")
	hook("hook-s3cret")
	eventually(t, 60*time.Second, "/readyz to name the broken commit", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "commit "+broken+" is invalid (commit "+second+" stays in force)")
	})
	if c := s.containers()["app/c"]; !running(c) || c.Labels["berth.io/revision"] != second {
		t.Errorf("the broken commit changed the workload: %v", c)
	}

	recovered := up.commit(stack + fmt.Sprintf(watchedSleeper, "app", "2"))
	hook("hook-s3cret")
	eventually(t, 60*time.Second, "/readyz to recover", func() bool { code, _ := readyz(); return code == http.StatusOK })

	// A commit whose round fails: its change to app is undone, the last
	// good commit is back in force, and readiness says so.
	failing := up.commit(stack + fmt.Sprintf(watchedSleeper, "app", "4") + `
pod "unpullable" {
  container "c" {
    image = "127.0.0.1:1/berth/missing:1"
  }
}
`)
	hook("hook-s3cret")
	eventually(t, 60*time.Second, "/readyz to name the commit whose round failed", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "the round of commit "+failing+" failed (commit "+recovered+" is back in force)")
	})
	eventually(t, 60*time.Second, "app of the last good commit back", func() bool {
		c := s.containers()["app/c"]
		return running(c) && c.Labels["berth.io/revision"] == recovered && c.Annotations["berth.io/spec"] != "" && strings.Contains(c.Annotations["berth.io/spec"], `"V":"2"`)
	})
	if strings.Contains(w.log(), gitPassword) || strings.Contains(w.log(), "hook-s3cret") {
		t.Error("a credential is in the watcher's log")
	}
}

// The same over file://, with a bare repository made by git itself, as a
// repository on the host's own disk would be.
func TestWatchFollowsGitOverFile(t *testing.T) {
	up := newGitUpstream(t)
	s := newStack(t)
	first := up.commit(fmt.Sprintf("berth {\n  stack = %q\n}\n", s.name) + fmt.Sprintf(watchedSleeper, "app", "1"))
	s.write(fmt.Sprintf(watchedSleeper, "app", "1"))
	bare := filepath.Join(t.TempDir(), "hosts.git")
	if out, err := exec.Command("git", "clone", "-q", "--bare", up.dir, bare).CombinedOutput(); err != nil {
		t.Fatalf("git clone --bare: %v\n%s", err, out)
	}
	w := s.watch("--git", "file://"+bare, "--path", "host", "--interval", "1h")
	w.waitFor(60*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})
	if rev := s.pods()["app"].Labels["berth.io/revision"]; rev != first {
		t.Fatalf("the sandbox carries revision %q, want %s", rev, first)
	}
}

// A repository whose configuration names no stack is the stack of its
// --path's last directory, commit after commit: each commit is loaded
// from a directory named by its hash, which must not name the stack.
func TestWatchGitNamesTheStackAfterThePath(t *testing.T) {
	up := newGitUpstream(t)
	s := newStack(t)
	first := up.commitAt("sites/"+s.name, fmt.Sprintf(watchedSleeper, "app", "1"))
	s.write(fmt.Sprintf(watchedSleeper, "app", "1")) // the cleanup destroys the stack from here

	t.Setenv("BERTH_GIT_USERNAME", gitUser)
	t.Setenv("BERTH_GIT_PASSWORD", gitPassword)
	w := s.watch("--git", up.url(), "--path", "sites/"+s.name, "--interval", "1s")
	w.waitFor(60*time.Second, map[string]string{"msg": "done", "resource": "pod.app", "action": "create"})
	if pod := s.pods()["app"]; pod == nil || pod.Labels["berth.io/revision"] != first {
		t.Fatalf("the stack %s has no sandbox of revision %s", s.name, first)
	}
	second := up.commitAt("sites/"+s.name, fmt.Sprintf(watchedSleeper, "app", "2"))
	eventually(t, 60*time.Second, "the container of the second commit", func() bool {
		c := s.containers()["app/c"]
		return running(c) && c.Labels["berth.io/revision"] == second
	})
}
