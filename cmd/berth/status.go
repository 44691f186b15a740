package main

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/inspect"
	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/watch"
	"github.com/berth-dev/berth/spec"
)

func newStatusCommand(g *globals) *cobra.Command {
	var (
		asJSON bool
		v      varFlags
	)
	cmd := &cobra.Command{
		Use:   "status [DIR]",
		Short: "Show the stack's pods and containers as the runtime reports them",
		Long: `status prints one row per container: its state (with the exit code of an
exited one), restarts (how often berth started it again since its
configuration last changed), age, image and
the image's digest, the pod's IP, host ports and forwards, and a NOTE that
flags what needs attention:

  failed: exit code N      the container exited with a non-zero code
  crash-loop (N restarts)  restarted 3 times or more, and the current
                           attempt failed or has run for less than 60s
  OOMKilled, ...           the runtime's reason for an unusual exit
  sandbox not ready        the pod's sandbox is stopped

With --stack, a directory without configuration is enough; forwards are
shown when the configuration is loaded. When a berth watch of the stack
runs, its state follows the table: its last round (when, why, result), the
revision in force, readiness, and the changes it holds back and until
when (from the state file it keeps beside the stack's lock). --json prints
the same data.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := g.stackConfig(dirArg(args), v)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			address := g.resolveAddress(cfg)
			rt, done, err := g.connect(ctx, address)
			if err != nil {
				return err
			}
			defer done()
			now := time.Now()
			st, err := inspect.ReadStatus(ctx, rt, cfg, now)
			if err != nil {
				return err
			}
			// A watcher of the stack, if one runs, says what it is doing.
			ws, err := watch.ReadState(watch.StatePath(lock.DefaultDir(), cfg.Berth.Stack, address))
			if err != nil {
				g.log.Warn("cannot read the watcher's state", "error", err.Error())
			}
			if asJSON {
				return inspect.WriteJSON(g.stdout, struct {
					*inspect.Status
					Watcher *watch.StateFile `json:"watcher,omitempty"`
				}{st, ws})
			}
			if err := inspect.WriteStatus(g.stdout, st, inspect.Style{Color: g.color(g.stdout)}, now); err != nil {
				return err
			}
			if ws != nil {
				writeWatcher(g.stdout, ws, now)
			}
			return nil
		},
	}
	v.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// writeWatcher says what the stack's watcher is doing, under the table.
func writeWatcher(w io.Writer, ws *watch.StateFile, now time.Time) {
	fmt.Fprintf(w, "\nWatcher: pid %d", ws.PID)
	if ws.Listen != "" {
		fmt.Fprintf(w, ", endpoints on %s", ws.Listen)
	}
	if ws.Revision != "" {
		fmt.Fprintf(w, ", revision %s", ws.Revision[:min(12, len(ws.Revision))])
	}
	if ws.Ready {
		fmt.Fprintln(w, ", ready")
	} else {
		fmt.Fprintf(w, ", not ready: %s\n", ws.NotReady)
	}
	if r := ws.LastRound; r != nil {
		line := fmt.Sprintf("  last round: %s ago (%s), %s", inspect.Age(now, r.At), r.Trigger, r.Result)
		if r.Error != "" {
			line += ": " + r.Error
		}
		fmt.Fprintln(w, line)
	}
	for _, h := range ws.HeldBack {
		line := fmt.Sprintf("  held back: %s: %s", h.Resource, h.Reason)
		if !h.Until.IsZero() {
			line += fmt.Sprintf(" (until %s)", h.Until.Local().Format("15:04:05"))
		}
		fmt.Fprintln(w, line)
	}
	for _, c := range slices.Sorted(maps.Keys(ws.Readiness)) {
		if !ws.Readiness[c] {
			fmt.Fprintf(w, "  not ready: %s (its readiness probe)\n", c)
		}
	}
}

// stackConfig is the configuration that names the stack for commands that
// only read: loaded from dir, except that with --stack a directory
// without *.hcl files is enough (the checkout may be gone). loaded says
// whether its blocks came from files.
func (g *globals) stackConfig(dir string, v varFlags) (cfg *spec.Config, loaded bool, err error) {
	if g.stack != "" {
		if files, _ := filepath.Glob(filepath.Join(dir, "*.hcl")); len(files) == 0 {
			return &spec.Config{Dir: dir, Berth: spec.Berth{Stack: g.stack}}, false, nil
		}
	}
	cfg, err = g.loadConfig(dir, v)
	if err != nil {
		return nil, false, err
	}
	return cfg, true, nil
}
