package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// stats reports each running container's memory (and limit) and CPU
// use, as JSON and as a table when not on a terminal.
func TestStats(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "app" {
  container "idle" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
    resources {
      memory = "64MiB"
    }
  }
  container "busy" {
    image        = "docker.io/library/busybox:1.36"
    # Busy for a while only: the machine is shared.
    command      = ["sh", "-c", "timeout 30 sh -c 'while :; do :; done'; exec sleep 3600"]
    stop_timeout = "1s"
  }
}`)
	s.apply()

	r := s.mustBerth("stats", "--json", "--stack", s.name)
	var rows []struct {
		Pod         string   `json:"pod"`
		Container   string   `json:"container"`
		ContainerID string   `json:"container_id"`
		CPUPercent  *float64 `json:"cpu_percent"`
		Memory      uint64   `json:"memory_bytes"`
		Limit       *int64   `json:"memory_limit_bytes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, r)
	}
	if len(rows) != 2 || rows[0].Container != "busy" || rows[1].Container != "idle" {
		t.Fatalf("stats --json rows: %s", r.stdout)
	}
	ctrs := s.containers()
	busy, idle := rows[0], rows[1]
	if idle.Pod != "app" || idle.ContainerID != ctrs["app/idle"].Id || idle.Memory == 0 {
		t.Errorf("idle container: %+v", idle)
	}
	if idle.Limit == nil || *idle.Limit != 64<<20 || busy.Limit != nil {
		t.Errorf("memory limits: idle %v, busy %v; want 64MiB and none", idle.Limit, busy.Limit)
	}
	if busy.CPUPercent == nil || idle.CPUPercent == nil || *busy.CPUPercent < 10 || *idle.CPUPercent > *busy.CPUPercent {
		t.Errorf("CPU%%: busy %v, idle %v; want busy ≥ 10 and above idle\n%s", busy.CPUPercent, idle.CPUPercent, r.stdout)
	}

	// Not on a terminal: one table, then exit.
	r = s.mustBerth("stats", "--stack", s.name)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "POD") || !strings.Contains(lines[2], "idle") || !strings.Contains(lines[2], "64MiB") {
		t.Errorf("stats table:\n%s", r)
	}

	// On a terminal: a fresh screen every 2s, until Ctrl-C.
	cmd := exec.Command(berthBin, "stats", "--stack", s.name)
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir)
	term, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	out := &screen{}
	go out.copyFrom(term)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	const clear = "\x1b[H\x1b[2J"
	out.waitFor(t, clear, exited)
	out.waitFor(t, "idle", exited)
	start := time.Now()
	for strings.Count(out.String(), clear) < 2 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("stats on a terminal drew no second frame; output:\n%q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("stats did not stop on Ctrl-C")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("stats ended with %d after Ctrl-C; output:\n%q", code, out)
	}
}

// exec -it gives the command a terminal of the caller's size that follows
// resizes, passes keys on, and exits with the command's code, leaving the
// caller's terminal as it found it; -i alone pipes standard input.
func TestExecInteractive(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "app" {
  container "c" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`)
	s.apply()

	r := runBerth(t, []byte("abc\n"), "exec", "--stack", s.name, "-i", "app/c", "--", "cat")
	if r.code != 0 || r.stdout != "abc\n" {
		t.Errorf("exec -i cat: %s", r)
	}
	r = runBerth(t, []byte("x"), "exec", "--stack", s.name, "-it", "app/c", "--", "sh")
	if r.code != 1 || !strings.Contains(r.stderr, "-t needs a terminal on standard input") {
		t.Errorf("exec -t without a terminal: %s", r)
	}

	cmd := exec.Command(berthBin, "exec", "--stack", s.name, "-it", "app/c", "--", "sh")
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir)
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	out := &screen{}
	go out.copyFrom(term)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()

	out.waitFor(t, "# ", exited) // the shell's prompt
	typeLine(t, term, "stty size")
	out.waitFor(t, "30 100", exited)

	if err := pty.Setsize(term, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	// The resize travels asynchronously: ask until the shell sees it.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "40 120") {
		if time.Now().After(deadline) {
			t.Fatalf("the remote terminal was not resized to 40x120; output:\n%s", out)
		}
		typeLine(t, term, "stty size")
		time.Sleep(300 * time.Millisecond)
	}

	typeLine(t, term, "echo hi-$((1+2))")
	out.waitFor(t, "hi-3", exited)
	typeLine(t, term, "exit 3")
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("berth exec -it did not end after exit; output:\n%s", out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("exit code %d, want 3; output:\n%s", code, out)
	}
	// berth put the terminal in raw mode; it must have restored it.
	tio, err := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("terminal left in raw mode: lflag %#o", tio.Lflag)
	}
}

func typeLine(t *testing.T, term *os.File, line string) {
	t.Helper()
	if _, err := term.Write([]byte(line + "\r")); err != nil {
		t.Fatal(err)
	}
}

// screen collects what a program writes to its terminal.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) copyFrom(f *os.File) {
	b := make([]byte, 4096)
	for {
		n, err := f.Read(b)
		s.mu.Lock()
		s.buf.Write(b[:n])
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the output contains want.
func (s *screen) waitFor(t *testing.T, want string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.String(), want) {
		select {
		case <-exited:
			t.Fatalf("berth ended before printing %q; output:\n%s", want, s)
		case <-deadline:
			t.Fatalf("no %q after 30s; output:\n%s", want, s)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
