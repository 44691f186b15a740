package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/test/criproxy"
)

// berth runs the real binary on one generated configuration.
type berth struct {
	bin, stack, dir string
	// lockDir is where berth keeps the stack's lock file.
	lockDir string
}

// writeConfig writes n pods of one container each. parallelism is set to
// the baseline's concurrency so both sides work on as many pods at once.
func (b *berth) writeConfig(n, parallelism int, command []string, hostNetwork bool) error {
	var s strings.Builder
	fmt.Fprintf(&s, "berth {\n  stack       = %q\n  parallelism = %d\n}\n", b.stack, parallelism)
	quoted := make([]string, len(command))
	for i, arg := range command {
		quoted[i] = strconv.Quote(arg) // Go and HCL quote these strings alike
	}
	network := ""
	if hostNetwork {
		network = "\n  host_network = true"
	}
	for i := range n {
		fmt.Fprintf(&s, `
pod %q {%s
  container "main" {
    image        = %q
    command      = [%s]
    stop_timeout = %q
  }
}
`, podName(i), network, image, strings.Join(quoted, ", "), grace.String())
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.dir, "main.hcl"), []byte(s.String()), 0o644)
}

func podName(i int) string { return fmt.Sprintf("p%03d", i) }

// result is one finished berth command.
type result struct {
	wall           time.Duration
	code           int
	stdout, stderr string
	// calls are the CRI calls the command logged at debug level, or nil.
	calls map[string]int
	// lead is when the first pod (or image) step was printed, or zero;
	// done when the last step's "complete after" line was, or zero.
	lead, done time.Duration
	// maxRSS is the most memory the process held, in KiB (getrusage).
	maxRSS int64
	// cpu is the user and system time the process used (getrusage).
	cpu time.Duration
}

// firstStep is the progress line apply and destroy print as a pod's (or an
// image's) step begins ("pod.p000: Creating...").
var firstStep = regexp.MustCompile(`(?m)^(?:pod\.[a-z0-9-]+|image\.\S+): [A-Z][a-z ]+\.\.\.$`)

// stepDone is the line a finished step prints ("pod.p000: Creation
// complete after 1.2s").
var stepDone = regexp.MustCompile(`(?m)^(?:pod\.[a-z0-9-]+|image\.\S+): [A-Z][a-z]+ complete after \S+`)

// stepWatch keeps berth's stdout and notes when the first step arrives and
// when the last one is complete: berth writes each progress line as it
// happens, so this splits a run into its fixed cost, its pod (or image)
// work, and what follows.
// (The buffer is not embedded: its ReadFrom would let io.Copy bypass Write.)
type stepWatch struct {
	buf         bytes.Buffer
	first, done time.Time
}

func (w *stepWatch) Write(p []byte) (int, error) {
	from := max(0, w.buf.Len()-200) // a line may arrive in two writes
	old := w.buf.Len() - from
	n, err := w.buf.Write(p)
	window := w.buf.Bytes()[from:]
	if w.first.IsZero() && firstStep.Match(window) {
		w.first = time.Now()
	}
	// Only a line that ends in this write counts, not one seen before.
	for _, loc := range stepDone.FindAllIndex(window, -1) {
		if loc[1] > old {
			w.done = time.Now()
		}
	}
	return n, err
}

func (w *stepWatch) String() string { return w.buf.String() }

// mustRun runs berth with args, timing the whole process, and fails unless
// it exits with code want.
func (b *berth) mustRun(ctx context.Context, want int, args ...string) (*result, error) {
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "BERTH_LOCK_DIR="+b.lockDir) // BERTH_ADDRESS passes through
	// On Ctrl-C, interrupt berth rather than kill it, so it stops the way a
	// user's Ctrl-C would stop it; kill only if it does not exit.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	var stdout stepWatch
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	start := time.Now()
	err := cmd.Run()
	r := &result{wall: time.Since(start), stdout: stdout.String(), stderr: stderr.String()}
	if !stdout.first.IsZero() {
		r.lead = stdout.first.Sub(start)
	}
	if !stdout.done.IsZero() {
		r.done = stdout.done.Sub(start)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("berth %s: %w", strings.Join(args, " "), err)
	}
	r.calls = parseCalls(r.stderr)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if r.code != want {
		return nil, fmt.Errorf("berth %s: exit %d, want %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), r.code, want, tail(r.stdout), tail(r.stderr))
	}
	return r, nil
}

// countedPlan runs a plan through a counting proxy in front of the
// runtime and returns the calls it saw, by method; berth's own account
// (its debug line) must agree.
func (b *berth) countedPlan(ctx context.Context, want int) (map[string]int, error) {
	proxy, err := criproxy.Start(os.Getenv("BERTH_ADDRESS"))
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	res, err := b.mustRun(ctx, want, "--address", proxy.Address, "plan", "--detailed-exitcode", "--log-level", "debug", b.dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{} // berth names containerd's own calls by method alone
	for method, n := range proxy.Counts() {
		seen[method[strings.LastIndex(method, "/")+1:]] += n
	}
	if !maps.Equal(seen, res.calls) {
		return nil, fmt.Errorf("berth says it made the calls %v; the proxy saw %v", res.calls, seen)
	}
	return seen, nil
}

// callsLine matches the debug line berth logs when it closes its runtime
// connection: msg="runtime calls" ... calls="map[ListContainers:1 ...]".
var callsLine = regexp.MustCompile(`msg="runtime calls".*calls="map\[([^\]]*)\]"`)

func parseCalls(stderr string) map[string]int {
	m := callsLine.FindStringSubmatch(stderr)
	if m == nil {
		return nil
	}
	calls := map[string]int{}
	for _, field := range strings.Fields(m[1]) {
		name, n, _ := strings.Cut(field, ":")
		calls[name], _ = strconv.Atoi(n)
	}
	return calls
}

// listCalls counts the List* calls (ListPodSandbox, ListContainers, ListImages).
func listCalls(calls map[string]int) int {
	n := 0
	for name, c := range calls {
		if strings.HasPrefix(name, "List") {
			n += c
		}
	}
	return n
}

func formatCalls(calls map[string]int) string {
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s×%d", name, calls[name])
	}
	return fmt.Sprintf("%d list calls (%s)", listCalls(calls), strings.Join(parts, " "))
}

// tail keeps the end of a long output for error messages.
func tail(s string) string {
	const keep = 4000
	if len(s) > keep {
		return "...\n" + s[len(s)-keep:]
	}
	return s
}

// binaryRevision names the commit a berth binary was built from, from
// the VCS stamps Go puts in it (make build stamps them), with "-dirty"
// when the tree had changes: the binary measured, not the checkout the
// benchmark runs in.
func binaryRevision(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown: " + err.Error()
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "unknown: the binary carries no VCS stamp"
	}
	rev = rev[:min(7, len(rev))]
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}
