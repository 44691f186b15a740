package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// logs shows what containers wrote, joins partial lines, tails, follows;
// exec returns a command's output and exit code.
func TestLogsAndExec(t *testing.T) {
	s := newStack(t)
	s.write(`
pod "app" {
  container "talker" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "echo first; echo second; printf 'no newline yet'; sleep 1; echo ' and done'; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done"]
    stop_timeout = "1s"
  }
  container "quiet" {
    image        = "docker.io/library/busybox:1.36"
    command      = ["sh", "-c", "echo quiet here; exec sleep 3600"]
    stop_timeout = "1s"
  }
}`)
	s.apply()
	time.Sleep(1500 * time.Millisecond)

	r := s.mustBerth("logs", "--stack", s.name, "app/talker")
	for _, want := range []string{"first\nsecond\nno newline yet and done\n", "tick 1\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("logs lack %q:\n%s", want, r.stdout)
		}
	}
	r = s.mustBerth("logs", "--stack", s.name, "--tail", "1", "app/quiet")
	if r.stdout != "quiet here\n" {
		t.Errorf("--tail 1 of quiet = %q", r.stdout)
	}
	r = s.mustBerth("logs", "--stack", s.name, "app")
	if !strings.Contains(r.stdout, "quiet | quiet here\n") || !strings.Contains(r.stdout, "talker | first\n") {
		t.Errorf("pod logs without prefixes:\n%s", r.stdout)
	}

	// -f sees lines written after it started.
	cmd := exec.Command(berthBin, "logs", "-f", "--stack", s.name, "--tail", "0", "app/talker")
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			got <- sc.Text()
		}
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "tick ") {
			t.Errorf("followed line %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f printed nothing new")
	}

	r = s.berth("exec", "--stack", s.name, "app/quiet", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("exec: %s", r)
	}
	if r := s.berth("exec", "--stack", s.name, "app/missing", "--", "true"); r.code != 1 || !strings.Contains(r.stderr, "has no container missing") {
		t.Fatalf("exec in a missing container: %s", r)
	}
}
