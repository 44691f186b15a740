package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/hostkey"
	"github.com/berth-dev/berth/internal/planfile"
	"github.com/berth-dev/berth/internal/render"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

func newPlanCommand(g *globals) *cobra.Command {
	var (
		v            varFlags
		out          string
		asJSON       bool
		detailed     bool
		allowReplace bool
		adopt        bool
		prune        bool
		replaceNet   bool
		images       imageCheckFlags
	)
	cmd := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Show what apply would change, field by field, and why",
		Long: `plan compares the configuration with what the runtime actually runs and
prints every action apply would take, with its reasons. It changes nothing.

Images that apply would pull, because the runtime lacks them, are checked
at their registry (one manifest request each, through the mirrors and
credentials a pull uses): one that does not exist, or a registry that
cannot be reached, is a warning, an error with --strict; --offline skips it.

Exit codes: 0 success, 1 error; with --detailed-exitcode, 0 no changes,
1 error, 2 changes present.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			early := g.earlyReads(cmd.Context())
			defer early.abandon()
			cfg, err := g.loadConfigTelling(dir, v, early.berthDecoded)
			if err != nil {
				return err
			}
			address := g.resolveAddress(cfg)
			plan, err := g.makePlan(cmd.Context(), cfg, address, planner.Options{AllowReplace: allowReplace, Adopt: adopt, PruneImages: prune, ReplaceOnNetworkChange: replaceNet, RuntimeSocket: socketPath(address),
				Offline: images.offline, StrictImages: images.strict}, early)
			if err != nil {
				return err
			}
			if asJSON {
				if err := render.JSON(g.stdout, plan); err != nil {
					return err
				}
			} else {
				render.Text(g.stdout, plan, render.Style{Color: g.color(g.stdout)})
			}
			if len(plan.Errors) > 0 {
				return reported(1)
			}
			if out != "" {
				f := &planfile.File{Dir: absPath(cfg.Dir), Stack: cfg.Berth.Stack, Address: address,
					AllowReplace: allowReplace, Adopt: adopt, PruneImages: prune, ReplaceOnNetworkChange: replaceNet, Key: planfile.NewKey(), Plan: render.ToJSON(plan)}
				for _, vf := range v.varFiles {
					f.VarFiles = append(f.VarFiles, absPath(vf))
				}
				key, err := hostkey.Load(hostkey.DefaultDir())
				if err != nil {
					return err
				}
				f.Digests = planner.Digests(plan, cfg, planfile.DigestKey(key, f.Key))
				if err := planfile.Write(out, f, key); err != nil {
					return fmt.Errorf("save the plan: %w", err)
				}
				if !asJSON {
					fmt.Fprintf(g.stdout, "\nSaved the plan to %s. Apply exactly this plan with: berth apply %s\n", out, out)
				}
			}
			if detailed && plan.HasChanges() {
				return reported(2)
			}
			return nil
		},
	}
	v.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "save the plan to FILE, for berth apply FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	cmd.Flags().BoolVar(&allowReplace, "allow-replace", false, "allow replacing pods that set prevent_replace")
	cmd.Flags().BoolVar(&adopt, "adopt", false, "take over mirror files that berth did not write")
	cmd.Flags().BoolVar(&prune, "prune-images", false, "remove images the stack's image blocks no longer declare")
	cmd.Flags().BoolVar(&replaceNet, "replace-on-network-change", false, "replace running pods when the stack's network changes")
	images.register(cmd)
	return cmd
}

// makePlan observes the stack on the runtime and diffs it with cfg, on
// the connection and reads early started if they are cfg's.
func (g *globals) makePlan(ctx context.Context, cfg *spec.Config, address string, opts planner.Options, early *earlyReads) (*planner.Plan, error) {
	start := time.Now()
	rt, done, reads, err, ok := early.take(address)
	if !ok {
		rt, done, err = g.connect(ctx, address)
	}
	if err != nil {
		return nil, err
	}
	defer done()
	opts.Reads = reads
	connected := time.Now()
	d, err := g.engine(rt, address, cfg.Berth.Stack, 0, "plan").Plan(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	g.log.Debug("planned", "early", ok, "connect", connected.Sub(start).Round(time.Microsecond).String(), "observe_and_plan", time.Since(connected).Round(time.Microsecond).String())
	return d.Plan, nil
}

// absPath is path made absolute, for files a saved plan names: apply may
// run from another directory.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
