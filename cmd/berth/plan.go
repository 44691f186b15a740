package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/criconfig"
	"github.com/berth-dev/berth/planfile"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/preflight"
	"github.com/berth-dev/berth/render"
	"github.com/berth-dev/berth/runtime"
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
	)
	cmd := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Show what apply would change, field by field, and why",
		Long: `plan compares the configuration with what the runtime actually runs and
prints every action apply would take, with its reasons. It changes nothing.

Exit codes: 0 success, 1 error; with --detailed-exitcode, 0 no changes,
1 error, 2 changes present.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			cfg, err := g.loadConfig(dir, v)
			if err != nil {
				return err
			}
			address := g.resolveAddress(cfg)
			plan, err := g.makePlan(cmd.Context(), cfg, address, planner.Options{AllowReplace: allowReplace, Adopt: adopt, PruneImages: prune, ReplaceOnNetworkChange: replaceNet, RuntimeSocket: socketPath(address)})
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
				f := &planfile.File{Dir: cfg.Dir, Stack: cfg.Berth.Stack, Address: address, VarFiles: v.varFiles,
					AllowReplace: allowReplace, Adopt: adopt, PruneImages: prune, ReplaceOnNetworkChange: replaceNet, Desired: planner.DesiredDigest(cfg), Observed: plan.Observed, Plan: render.ToJSON(plan)}
				if err := planfile.Write(out, f); err != nil {
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
	return cmd
}

// makePlan observes the stack on the runtime and diffs it with cfg.
func (g *globals) makePlan(ctx context.Context, cfg *spec.Config, address string, opts planner.Options) (*planner.Plan, error) {
	rt, done, err := g.connect(ctx, address)
	if err != nil {
		return nil, err
	}
	defer done()
	return decide(ctx, rt, cfg, opts)
}

// decide is the whole decision: observe the runtime and the stack's host
// files, diff, then check the host for what the plan would start.
func decide(ctx context.Context, rt *runtime.Client, cfg *spec.Config, opts planner.Options) (*planner.Plan, error) {
	snap, err := planner.Observe(ctx, rt, cfg)
	if err != nil {
		return nil, err
	}
	certsDir := cfg.Berth.CertsDir
	if certsDir == "" {
		if certsDir, err = rt.RegistryConfigPath(ctx); err != nil {
			return nil, err
		}
	}
	if err := planner.ObserveMirrors(snap, certsDir); err != nil {
		return nil, err
	}
	if opts.PruneImages {
		if snap.StackImages, err = rt.ImagesLabelled(ctx, runtime.LabelStack, cfg.Berth.Stack); err != nil {
			return nil, err
		}
	}
	if len(cfg.Images) > 0 {
		planner.ObserveArchives(snap, cfg.Images)
		if snap.Pinned, err = rt.PinnedImages(ctx); err != nil {
			return nil, err
		}
	}
	confDir, binDirs, cniErr := rt.CNIDirs(ctx)
	if cfg.Berth.CNIConfDir != "" {
		confDir = cfg.Berth.CNIConfDir
	}
	if err := planner.ObserveNetworks(snap, confDir); err != nil {
		return nil, err
	}
	var warnings []string
	snap.RemoteDigests, warnings = remoteDigests(ctx, rt, cfg, certsDir)
	plan := planner.Diff(cfg, snap, opts)
	plan.Warnings = append(plan.Warnings, warnings...)
	host := preflight.DefaultHost()
	host.PodNetwork = func() (string, bool, error) {
		if len(binDirs) == 0 && confDir == "" {
			return "", false, cniErr
		}
		return preflight.PodNetwork(confDir)
	}
	host.ValidateNetwork = func(conflist []byte) error { return preflight.ValidateNetwork(ctx, conflist, binDirs) }
	pf := preflight.Check(plan, host)
	plan.Errors = append(plan.Errors, pf.Errors...)
	plan.Warnings = append(plan.Warnings, pf.Warnings...)
	return plan, nil
}

// remoteDigests asks the registries what the tags of pull = "always"
// containers and image blocks name now. A registry that cannot be reached
// is a warning: the plan then keeps what runs.
func remoteDigests(ctx context.Context, rt *runtime.Client, cfg *spec.Config, certsDir string) (map[string]string, []string) {
	refs := map[string]bool{}
	for _, p := range cfg.Pods {
		for _, c := range p.Containers {
			if c.Pull == spec.PullAlways {
				refs[planner.NormalizeImage(c.Image)] = true
			}
		}
	}
	for _, img := range cfg.Images {
		if img.Pull == spec.PullAlways && img.Source == "" {
			refs[img.Ref] = true
		}
	}
	out := map[string]string{}
	var warnings []string
	creds := criconfig.HostCredentials(cfg.Registries)
	for ref := range refs {
		d, err := rt.RemoteDigest(ctx, ref, certsDir, creds)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("cannot check whether %s names a newer image: %v", ref, err))
			continue
		}
		out[ref] = d
	}
	return out, warnings
}
