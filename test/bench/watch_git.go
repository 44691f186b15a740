package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// commitAll makes dir a repository with its files in one commit on main,
// for the served watcher's --git source.
func commitAll(dir string) error {
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.AddGlob("*.hcl"); err != nil {
		return err
	}
	_, err = wt.Commit("bench", &git.CommitOptions{Author: &object.Signature{Name: "bench", Email: "bench@example.com", When: time.Now()}})
	return err
}

// scrape reads a watcher's /metrics once, as Prometheus would.
func scrape(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// serveRepo serves the repository in dir over smart HTTP with git's own
// http-backend until ctx ends, and returns its URL.
func serveRepo(ctx context.Context, dir string) (string, error) {
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "", fmt.Errorf("git is needed for its http-backend: %w", err)
	}
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(dir), "GIT_HTTP_EXPORT_ALL=1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: backend, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return "http://" + ln.Addr().String() + "/" + filepath.Base(dir) + "/.git", nil
}

// webhookSecret signs the benchmark's webhooks to the served watcher.
const webhookSecret = "bench-webhook-secret"

// syncs is how many webhooks syncCost sends.
const syncs = 20

// syncCost sends the served watcher n signed webhooks, each followed by a
// pause in which it fetches and finds nothing new, and returns the CPU
// one such fetch cost it (webhook included): what an --interval fetch of
// an unchanged repository costs. The plain watcher's CPU in the same span
// is its idle cost, taken off.
func syncCost(ctx context.Context, p, plain *watchProc, n int) (time.Duration, error) {
	m := regexp.MustCompile(`listen=(\S+)`).FindStringSubmatch(p.text())
	if m == nil {
		return 0, fmt.Errorf("the served watcher did not say where it listens")
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	before, plainBefore := procCPU(p.pid()), procCPU(plain.pid())
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m[1]+"/hooks/git", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("POST /hooks/git: %s", resp.Status)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil { // the fetch, and then some
			return 0, err
		}
	}
	spent := (procCPU(p.pid()) - before) - (procCPU(plain.pid()) - plainBefore)
	return max(spent, 0) / time.Duration(n), nil
}

// scrapeCost scrapes the watcher's /metrics n times and returns the CPU
// the watcher spent on each, from its threads' run time.
func scrapeCost(ctx context.Context, p *watchProc, n int) (time.Duration, error) {
	m := regexp.MustCompile(`listen=(\S+)`).FindStringSubmatch(p.text())
	if m == nil {
		return 0, fmt.Errorf("the served watcher did not say where it listens")
	}
	before := procCPU(p.pid())
	for range n {
		if err := scrape(ctx, "http://"+m[1]+"/metrics"); err != nil {
			return 0, err
		}
	}
	return (procCPU(p.pid()) - before) / time.Duration(n), nil
}
