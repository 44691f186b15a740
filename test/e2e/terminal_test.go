package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// On a terminal, apply asks; anything but "yes" cancels and changes
// nothing, "yes" applies.
func TestConfirmOnTerminal(t *testing.T) {
	s := newStack(t)
	s.write(`pod "web" {
  container "main" {
    image   = "docker.io/library/busybox:1.36"
    command = ["sleep", "3600"]
    stop_timeout = "1s"
  }
}`)
	for _, answer := range []string{"no", "yes"} {
		out := runOnTerminal(t, answer, "apply", s.dir)
		switch answer {
		case "no":
			if !strings.Contains(out, "Cancelled; nothing was changed.") || len(s.pods()) != 0 {
				t.Fatalf("answering no: %d pods, output:\n%s", len(s.pods()), out)
			}
		case "yes":
			if !strings.Contains(out, "Apply complete!") || len(s.pods()) != 1 {
				t.Fatalf("answering yes: %d pods, output:\n%s", len(s.pods()), out)
			}
		}
	}
}

// runOnTerminal runs berth with a pseudo-terminal as its standard streams,
// answers the confirmation prompt (unless answer is ""), and returns
// everything it printed.
func runOnTerminal(t *testing.T, answer string, args ...string) string {
	t.Helper()
	cmd := exec.Command(berthBin, args...)
	cmd.Env = append(os.Environ(), "BERTH_ADDRESS="+address, "BERTH_LOCK_DIR="+lockDir, "NO_COLOR=1")
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()

	var out strings.Builder
	prompted := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(tty)
		once := false
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			out.WriteByte(b)
			if !once && strings.HasSuffix(out.String(), "Enter a value: ") {
				once = true
				close(prompted)
			}
		}
	}()
	if answer != "" { // "": the command asks nothing
		select {
		case <-prompted:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("no prompt; output:\n%s", out.String())
		}
		if _, err := tty.Write([]byte(answer + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	cmd.Wait()
	tty.Close()
	<-done
	return out.String()
}
