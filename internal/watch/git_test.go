package watch

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/gitsource"
	"github.com/berth-dev/berth/spec"
)

// commitTo commits main.hcl with src to the repository in dir.
func commitTo(t *testing.T, repo *git.Repository, dir, src string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "host", "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	if _, err := wt.Add("host/main.hcl"); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("change", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// A git source: each new commit is a round, and what it makes carries the
// commit; a commit whose configuration is invalid changes nothing and
// readiness says so; the webhook fetches at once.
func TestWatchFollowsGit(t *testing.T) {
	up := t.TempDir()
	repo, err := git.PlainInitWithOptions(up, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(up, "host"), 0o755)
	first := commitTo(t, repo, up, "berth { stack = \"test\" }\n"+webPod)

	h := newHarness(t, webPod)
	h.opts.Dir = ""
	h.opts.Source = &gitsource.Source{URL: "file://" + up, Ref: "main", Path: "host", Dir: t.TempDir()}
	h.opts.SourceInterval = time.Hour // only the webhook fetches
	syncNow := make(chan struct{}, 1)
	h.opts.SyncNow = syncNow
	tel := NewTelemetry()
	tel.SetHook([]byte("s3cret"), syncNow)
	h.opts.Telemetry = tel
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()
	h.start()
	h.waitFor(1, map[string]string{"msg": "watching", "revision": first})
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	if sb := h.sandbox("web"); sb == nil || sb.Labels[spec.LabelRevision] != first {
		t.Fatalf("the sandbox does not carry the commit: %v", sb)
	}
	if c := h.container("web", "app"); c == nil || c.Labels[spec.LabelRevision] != first {
		t.Fatalf("the container does not carry the commit: %v", c)
	}

	hook := func(secret, body string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/hooks/git", strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", "sha256="+sign([]byte(secret), []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	second := commitTo(t, repo, up, "berth { stack = \"test\" }\n"+strings.Replace(webPod, `"prod"`, `"dev"`, 1))
	if code := hook("wrong", `{"ref":"refs/heads/main"}`); code != http.StatusUnauthorized {
		t.Errorf("a wrongly signed webhook: %d, want 401", code)
	}
	if code := hook("s3cret", `{"ref":"refs/heads/main"}`); code != http.StatusAccepted {
		t.Fatalf("the webhook: %d, want 202", code)
	}
	h.waitFor(1, map[string]string{"msg": "new commit", "revision": second})
	h.waitFor(1, map[string]string{"msg": "converging", "trigger": "git: commit " + second[:12]})
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "converge"})
	if c := h.container("web", "app"); c == nil || c.Labels[spec.LabelRevision] != second {
		t.Fatalf("the replaced container does not carry the new commit: %v", c)
	}

	bad := commitTo(t, repo, up, webPod+"\npod \"broken\" {\n")
	hook("s3cret", "{}")
	h.waitFor(1, map[string]string{"msg": "configuration invalid", "revision": bad, "revision_in_force": second})
	eventually(t, "/readyz to name the bad commit", func() bool {
		code, body := get(t, srv, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "the configuration of commit "+bad+" is invalid (commit "+second+" stays in force): main.hcl:11: ")
	})
	if c := h.container("web", "app"); c == nil || c.Labels[spec.LabelRevision] != second {
		t.Fatalf("the bad commit changed the workload: %v", c)
	}
	if got := value(scrape(t, srv), "berth_watch_revision_info", map[string]string{"revision": second}); got != 1 {
		t.Errorf("revision info for %s = %v, want 1", second, got)
	}

	// A commit whose round fails (an image that cannot be pulled) is
	// refused until the next commit; the last good one is put back.
	h.rt.Errors["PullImage registry.example.com/nope:1"] = errors.New("manifest unknown")
	failing := commitTo(t, repo, up, "berth { stack = \"test\" }\n"+strings.Replace(webPod, `"prod"`, `"broke"`, 1)+`
pod "extra" {
  container "c" {
    image = "registry.example.com/nope:1"
  }
}
`)
	hook("s3cret", "{}")
	h.waitFor(1, map[string]string{"msg": "the round of a new commit failed; the last good commit is put back", "revision": failing, "revision_in_force": second})
	eventually(t, "/readyz to name the commit that failed", func() bool {
		code, body := get(t, srv, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "the round of commit "+failing+" failed (commit "+second+" is back in force)")
	})
	// web was replaced by the failed commit's round, then put back.
	eventually(t, "the last good commit's web back", func() bool {
		c := h.container("web", "app")
		return c != nil && c.Labels[spec.LabelRevision] == second && c.State == cri.ContainerState_CONTAINER_RUNNING
	})
	third := commitTo(t, repo, up, "berth { stack = \"test\" }\n"+strings.Replace(webPod, `"prod"`, `"test"`, 1))
	hook("s3cret", "{}")
	eventually(t, "the next good commit to recover", func() bool {
		code, _ := get(t, srv, "/readyz")
		c := h.container("web", "app")
		return code == http.StatusOK && c != nil && c.Labels[spec.LabelRevision] == third
	})
}

func TestHookNeedsASecret(t *testing.T) {
	srv := httptest.NewServer(NewTelemetry().Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/hooks/git", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without a secret the hook answers %d, want 404", resp.StatusCode)
	}
}

// sign is a webhook's signature, as forges compute it.
func sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// sandbox is the pod's newest sandbox on the fake runtime.
func (h *harness) sandbox(pod string) *cri.PodSandbox {
	h.t.Helper()
	list, err := h.rt.ListSandboxes(context.Background(), map[string]string{spec.LabelPod: pod})
	if err != nil {
		h.t.Fatal(err)
	}
	var newest *cri.PodSandbox
	for _, sb := range list {
		if newest == nil || sb.CreatedAt > newest.CreatedAt {
			newest = sb
		}
	}
	return newest
}

// hangingSource answers its first sync with dir, then hangs every later
// one until its context ends, as a server that accepts and never answers.
type hangingSource struct {
	dir   string
	calls atomic.Int32
}

func (s *hangingSource) Sync(ctx context.Context) (gitsource.Revision, error) {
	if s.calls.Add(1) == 1 {
		return gitsource.Revision{Commit: strings.Repeat("ab", 20), Dir: s.dir}, nil
	}
	<-ctx.Done()
	return gitsource.Revision{}, ctx.Err()
}

// A remote that hangs holds back neither the rounds nor the watcher: the
// fetch runs beside the resync's round and ends at the source's timeout.
func TestWatchOutlastsAHangingRemote(t *testing.T) {
	h := newHarness(t, "berth { stack = \"test\" }\n"+webPod)
	src := &hangingSource{dir: h.dir}
	h.opts.Dir, h.opts.Source = "", src
	// The periods agree: every resync fetches too.
	h.opts.Resync, h.opts.SourceInterval, h.opts.SourceTimeout = 100*time.Millisecond, 100*time.Millisecond, 500*time.Millisecond
	h.start()
	h.waitFor(1, map[string]string{"msg": "done", "resource": "pod.web", "action": "create"})
	// Resync rounds go on while the first fetch after the start hangs.
	h.waitFor(3, map[string]string{"msg": "converged", "trigger": "resync"})
	h.waitFor(1, map[string]string{"msg": "cannot fetch the configuration's repository; the revision in force stays", "error": "context deadline exceeded"})
	// One fetch at a time: resyncs during a hanging one do not pile up.
	if calls, rounds := src.calls.Load(), h.count(map[string]string{"msg": "converged", "trigger": "resync"}); int(calls) > rounds/2+2 {
		t.Errorf("%d syncs for %d resync rounds: fetches piled up behind the hanging one", calls, rounds)
	}
}
