// Package decide makes a stack's plan: it observes the runtime and the
// stack's host files, diffs them with the configuration, and checks the host
// for what the plan would start. plan, apply and watch all decide here.
package decide

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/preflight"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/criconfig"
	"github.com/berth-dev/berth/spec"
)

// Plan is the whole decision: observe the runtime and the stack's host
// files, diff, then check the host for what the plan would start.
func Plan(ctx context.Context, rt *runtime.Client, cfg *spec.Config, opts planner.Options) (*planner.Plan, error) {
	plan, _, err := PlanObserved(ctx, rt, cfg, opts)
	return plan, err
}

// PlanObserved is Plan that also returns the snapshot the plan was made
// from, for callers that act on what runs (watch probes what it saw).
func PlanObserved(ctx context.Context, rt *runtime.Client, cfg *spec.Config, opts planner.Options) (*planner.Plan, *planner.Snapshot, error) {
	snap, err := planner.Observe(ctx, rt, cfg)
	if err != nil {
		return nil, nil, err
	}
	certsDir := cfg.Berth.CertsDir
	if certsDir == "" {
		configPath, err := rt.RegistryConfigPath(ctx)
		if err != nil {
			return nil, nil, err
		}
		certsDir = runtime.CertsDir(configPath)
	}
	if err := planner.ObserveMirrors(snap, certsDir); err != nil {
		return nil, nil, err
	}
	if opts.PruneImages {
		if snap.StackImages, err = rt.ImagesLabelled(ctx, spec.LabelStack, cfg.Berth.Stack); err != nil {
			return nil, nil, err
		}
	}
	if len(cfg.Images) > 0 {
		planner.ObserveArchives(snap, cfg.Images)
		if snap.Pinned, err = rt.PinnedImages(ctx); err != nil {
			return nil, nil, err
		}
	}
	confDir, binDirs, cniErr := rt.CNIDirs(ctx)
	if cfg.Berth.CNIConfDir != "" {
		confDir = cfg.Berth.CNIConfDir
	}
	if err := planner.ObserveNetworks(snap, confDir); err != nil {
		return nil, nil, err
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
	return plan, snap, nil
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
