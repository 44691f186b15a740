// Command berth is a declarative workload runner for one Linux host:
// Terraform-style plan and apply for containerd.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"syscall"

	_ "github.com/berth-dev/berth/internal/gctune" // before any other initialiser: see there
)

func main() {
	stopProfile := profile(os.Getenv("BERTH_CPUPROFILE"), os.Stderr)
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(code)
}

// profile writes a CPU profile of the whole command to path, when set:
// what the benchmarks read berth's own share of a command from.
func profile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Warning: BERTH_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// exitError carries an exit code other than 1 (e.g. 2 for a plan with
// changes under --detailed-exitcode), or an error already reported.
type exitError struct {
	code     int
	reported bool
	err      error
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// reported marks an error whose explanation is already on stderr.
func reported(code int) error { return &exitError{code: code, reported: true} }

// singleDashLong matches Terraform-style flags such as -check or -out=FILE
// (three letters or more, so that short flag groups like -it stay).
var singleDashLong = regexp.MustCompile(`^-[a-z][a-z-]{2,}(=.*)?$`)

// terraformStyleFlags accepts the single-dash long flags that Terraform
// users type (and the contract shows: fmt -check) by doubling the dash.
// berth has no multi-letter short flags, so nothing else can clash.
func terraformStyleFlags(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		if singleDashLong.MatchString(a) {
			a = "-" + a
		}
		out[i] = a
	}
	return out
}

// run executes one command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(terraformStyleFlags(args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.reported && ee.err != nil {
			fmt.Fprintf(stderr, "Error: %s\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "Error: %s\n", err)
	return 1
}
