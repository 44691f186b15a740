package main

import (
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/inspect"
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
exited one), restarts (the attempt number berth gave it), age, image and
the image's digest, the pod's IP, host ports and forwards, and a NOTE that
flags what needs attention:

  failed: exit code N      the container exited with a non-zero code
  crash-loop (N restarts)  restarted 3 times or more, and the current
                           attempt failed or has run for less than 60s
  OOMKilled, ...           the runtime's reason for an unusual exit
  sandbox not ready        the pod's sandbox is stopped

With --stack, a directory without configuration is enough; forwards are
shown when the configuration is loaded. --json prints the same data.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := g.stackConfig(dirArg(args), v)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rt, done, err := g.connect(ctx, g.resolveAddress(cfg))
			if err != nil {
				return err
			}
			defer done()
			now := time.Now()
			st, err := inspect.ReadStatus(ctx, rt, cfg, now)
			if err != nil {
				return err
			}
			if asJSON {
				return inspect.WriteJSON(g.stdout, st)
			}
			return inspect.WriteStatus(g.stdout, st, inspect.Style{Color: g.color(g.stdout)}, now)
		},
	}
	v.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
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
