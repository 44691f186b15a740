package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	clog "github.com/containerd/log"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

// globals are the flags every command takes.
type globals struct {
	address   string
	stack     string
	noColor   bool
	logFormat string
	logLevel  string
	// runtimeTimeout bounds each runtime call.
	runtimeTimeout time.Duration
	// pullProgressTimeout bounds a pull's silence, not its length.
	pullProgressTimeout time.Duration

	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "berth",
		Short: "Declarative workloads on containerd: plan and apply pods from HCL",
		Long: `berth runs the pods and containers described in a directory of HCL files
on one host's containerd. It shows what would change before it changes it.

  berth validate          check the configuration (no runtime needed)
  berth plan              show what apply would do
  berth apply             converge the runtime to the configuration
  berth destroy           remove everything the stack owns

The configuration directory is the positional argument (default ".").`,
		Example: `  berth plan examples/hello
  berth apply --auto-approve examples/hello
  berth plan --out hello.plan examples/hello && berth apply hello.plan
  berth destroy --auto-approve examples/hello`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// The stack names lock files, log directories and labels.
			if g.stack != "" && !spec.ValidStackName(g.stack) {
				return fmt.Errorf("--stack %q: a stack name is 1-63 lower-case letters, digits, '-', '_' or '.', starting and ending with a letter or digit", g.stack)
			}
			if g.runtimeTimeout <= 0 {
				return fmt.Errorf("--runtime-timeout %s: give a positive duration, such as 30s", g.runtimeTimeout)
			}
			if g.pullProgressTimeout < 0 {
				return fmt.Errorf("--pull-progress-timeout %s: give a duration, such as 5m, or 0 to wait for ever", g.pullProgressTimeout)
			}
			return g.setup()
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	f := root.PersistentFlags()
	f.DurationVar(&g.runtimeTimeout, "runtime-timeout", runtime.DefaultTimeout, "give up on a runtime call that gets no answer for this long (pulls excepted)")
	f.DurationVar(&g.pullProgressTimeout, "pull-progress-timeout", runtime.DefaultPullProgressTimeout, "cancel a pull that reports no progress for this long (0: wait for ever)")
	f.StringVar(&g.address, "address", "", "containerd socket (env BERTH_ADDRESS; default from the berth block, else unix:///run/containerd/containerd.sock)")
	f.StringVar(&g.stack, "stack", "", "stack name (default from the berth block, else the directory's name)")
	f.BoolVar(&g.noColor, "no-color", false, "no colours in output (also NO_COLOR)")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn or error")

	root.AddCommand(
		newValidateCommand(g),
		newFmtCommand(g),
		newPlanCommand(g),
		newApplyCommand(g),
		newDestroyCommand(g),
		newStatusCommand(g),
		newShowCommand(g),
		newDoctorCommand(g),
		newForwardCommand(g),
		newWatchCommand(g),
		newLogsCommand(g),
		newExecCommand(g),
		newStatsCommand(g),
		newImportCommand(g),
		newExportCommand(g),
		newVersionCommand(g),
	)
	for _, extra := range buildCommands {
		root.AddCommand(extra(g))
	}
	return root
}

// buildCommands are the commands only some builds carry: man.go's, with
// -tags manpages, for packages.
var buildCommands []func(*globals) *cobra.Command

func (g *globals) setup() error {
	if g.stack != "" && !spec.ValidStackName(g.stack) {
		return usageErrorf("--stack %q: a stack name is 1-63 lower-case letters, digits, '-', '_' or '.', starting and ending with a letter or digit", g.stack)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return usageErrorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	// The containerd client logs through logrus; keep it to errors unless
	// debugging, so its notes do not interleave with berth's output.
	clevel := "error"
	if level <= slog.LevelDebug {
		clevel = "debug"
	}
	_ = clog.SetLevel(clevel)
	switch g.logFormat {
	case "text":
		g.log = slog.New(slog.NewTextHandler(g.stderr, opts))
	case "json":
		g.log = slog.New(slog.NewJSONHandler(g.stderr, opts))
	default:
		return usageErrorf("--log-format %q: use text or json", g.logFormat)
	}
	return nil
}

// color reports whether to colour output written to w.
func (g *globals) color(w io.Writer) bool {
	if g.noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	return g.isTerminal(w)
}

// isTerminal reports whether w is a terminal.
func (g *globals) isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// interactive reports whether the user can answer a question on stdin.
func (g *globals) interactive() bool {
	f, ok := g.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func usageErrorf(format string, args ...any) error {
	return &exitError{code: 1, err: errorf(format, args...)}
}
