package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/apply"
	"github.com/berth-dev/berth/internal/hostkey"
	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/planfile"
	"github.com/berth-dev/berth/internal/probe"
	"github.com/berth-dev/berth/internal/render"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/criconfig"
	"github.com/berth-dev/berth/spec"
)

// convergeOptions are the flags of apply and destroy.
type convergeOptions struct {
	autoApprove  bool
	parallelism  int
	allowReplace bool
	adopt        bool
	pruneImages  bool
	replaceNet   bool
	lockTimeout  time.Duration
	destroy      bool
	images       imageCheckFlags
	// saved is the plan file being applied, if any, and the key of its
	// digests.
	saved     *planfile.File
	digestKey []byte
}

func (o *convergeOptions) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.autoApprove, "auto-approve", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&o.lockTimeout, "lock-timeout", 0, "give up waiting for the stack lock after this long (default: wait)")
}

func newApplyCommand(g *globals) *cobra.Command {
	var (
		v    varFlags
		opts convergeOptions
	)
	cmd := &cobra.Command{
		Use:   "apply [DIR or PLANFILE]",
		Short: "Converge the runtime to the configuration",
		Long: `apply plans, shows the plan, asks for confirmation (on a terminal; elsewhere
pass --auto-approve) and then carries it out.

Given a plan file from "berth plan --out", apply carries out exactly that
plan, and refuses when the configuration or the runtime's state changed
since it was made. Pass the same --var options as to plan.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := dirArg(args)
			if info, err := os.Stat(target); err == nil && info.Mode().IsRegular() {
				key, err := hostkey.Load(hostkey.DefaultDir())
				if err != nil {
					return err
				}
				saved, err := planfile.Read(target, key)
				if err != nil {
					return err
				}
				if err := savedFlags(cmd, saved, &opts); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "Applying the saved plan %s%s.\n\n", target, madeWith(saved))
				opts.saved, opts.digestKey, opts.autoApprove = saved, planfile.DigestKey(key, saved.Key), true
				target = saved.Dir
				if len(v.varFiles) == 0 {
					v.varFiles = saved.VarFiles
				}
				if g.stack == "" {
					g.stack = saved.Stack
				}
			}
			cfg, err := g.loadConfig(target, v)
			if err != nil {
				return err
			}
			address := g.resolveAddress(cfg)
			if s := opts.saved; s != nil {
				if s.Address != address {
					return fmt.Errorf("the plan was made against %s, not %s; make a new plan", s.Address, address)
				}
			}
			if opts.parallelism == 0 {
				opts.parallelism = cfg.Berth.Parallelism
			}
			return g.converge(cmd.Context(), cfg, address, opts)
		},
	}
	v.register(cmd)
	opts.register(cmd)
	cmd.Flags().IntVar(&opts.parallelism, "parallelism", 0, "pods worked on at once (default from the berth block, else 8)")
	cmd.Flags().BoolVar(&opts.allowReplace, "allow-replace", false, "allow replacing pods that set prevent_replace")
	cmd.Flags().BoolVar(&opts.adopt, "adopt", false, "take over mirror files that berth did not write")
	cmd.Flags().BoolVar(&opts.pruneImages, "prune-images", false, "remove images the stack's image blocks no longer declare")
	cmd.Flags().BoolVar(&opts.replaceNet, "replace-on-network-change", false, "replace running pods when the stack's network changes")
	opts.images.register(cmd)
	return cmd
}

// imageCheckFlags say how plan checks the images it would pull.
type imageCheckFlags struct{ offline, strict bool }

func (f *imageCheckFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.offline, "offline", false, "ask no registry anything: images to pull are not checked, pull = \"always\" tags keep what runs")
	cmd.Flags().BoolVar(&f.strict, "strict", false, "an image to pull that the registry does not have is an error, not a warning")
}

// decidingFlags are the apply flags that change decisions, and a saved
// plan's value of each.
var decidingFlags = []struct {
	name  string
	saved func(*planfile.File) bool
	opt   func(*convergeOptions) *bool
}{
	{"allow-replace", func(f *planfile.File) bool { return f.AllowReplace }, func(o *convergeOptions) *bool { return &o.allowReplace }},
	{"adopt", func(f *planfile.File) bool { return f.Adopt }, func(o *convergeOptions) *bool { return &o.adopt }},
	{"prune-images", func(f *planfile.File) bool { return f.PruneImages }, func(o *convergeOptions) *bool { return &o.pruneImages }},
	{"replace-on-network-change", func(f *planfile.File) bool { return f.ReplaceOnNetworkChange }, func(o *convergeOptions) *bool { return &o.replaceNet }},
}

// savedFlags takes the deciding flags from a saved plan; one given on the
// command line must say the same.
func savedFlags(cmd *cobra.Command, saved *planfile.File, opts *convergeOptions) error {
	for _, f := range decidingFlags {
		if cmd.Flags().Changed(f.name) && *f.opt(opts) != f.saved(saved) {
			return fmt.Errorf("--%s=%v differs from the saved plan, made with --%s=%v; the plan decides, so drop the flag or make a new plan", f.name, *f.opt(opts), f.name, f.saved(saved))
		}
		*f.opt(opts) = f.saved(saved)
	}
	return nil
}

// madeWith names the deciding flags a saved plan was made with.
func madeWith(saved *planfile.File) string {
	var on []string
	for _, f := range decidingFlags {
		if f.saved(saved) {
			on = append(on, "--"+f.name)
		}
	}
	if len(on) == 0 {
		return ""
	}
	return " (made with " + strings.Join(on, " ") + ")"
}

func newDestroyCommand(g *globals) *cobra.Command {
	var (
		v    varFlags
		opts = convergeOptions{destroy: true, allowReplace: true}
	)
	cmd := &cobra.Command{
		Use:   "destroy [DIR]",
		Short: "Remove everything the stack owns",
		Long: `destroy stops and removes every pod and container labelled with the
stack's name, giving each container its stop_timeout. Nothing else on the
runtime is touched. With --stack, a directory without configuration is
enough.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			cfg := &spec.Config{Dir: dir, Berth: spec.Berth{Stack: g.stack, Parallelism: spec.DefaultParallelism}}
			if files, _ := spec.ConfigFiles(dir); len(files) > 0 || g.stack == "" {
				loaded, err := g.loadConfig(dir, v)
				if err != nil {
					return err
				}
				cfg.Berth = loaded.Berth
			}
			// Nothing is desired: everything owned goes, files included.
			cfg.Pods, cfg.Mirrors, cfg.Networks, cfg.Images = nil, nil, nil, nil
			opts.parallelism = cfg.Berth.Parallelism
			return g.converge(cmd.Context(), cfg, g.resolveAddress(cfg), opts)
		},
	}
	v.register(cmd)
	opts.register(cmd)
	return cmd
}

// converge runs the engine: under the stack lock it plans, shows the
// plan, checks it against a saved one, asks, and executes.
func (g *globals) converge(ctx context.Context, cfg *spec.Config, address string, opts convergeOptions) error {
	// A hang-up (the SSH session that ran apply dropped) stops the apply
	// as Ctrl-C does, cleanly, rather than killing it between a network
	// file's teardown copy and its restore.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	rt, done, err := g.connect(ctx, address)
	if err != nil {
		return err
	}
	defer done()

	cmd := "apply"
	if opts.destroy {
		cmd = "destroy"
	}
	engine := g.engine(rt, address, cfg.Berth.Stack, opts.lockTimeout, cmd)
	planOpts := planner.Options{AllowReplace: opts.allowReplace, Adopt: opts.adopt, PruneImages: opts.pruneImages,
		ReplaceOnNetworkChange: opts.replaceNet, RuntimeSocket: socketPath(address), Destroy: opts.destroy,
		Offline: opts.images.offline, StrictImages: opts.images.strict}
	review := func(d *apply.Decision) error {
		if opts.saved != nil {
			if err := stale(opts.saved, opts.digestKey, d.Plan, cfg); err != nil {
				return err
			}
		}
		render.Text(g.stdout, d.Plan, render.Style{Color: g.color(g.stdout)})
		if len(d.Plan.Errors) > 0 {
			return reported(1)
		}
		if d.Plan.HasChanges() && !opts.autoApprove {
			if err := g.confirm(opts.destroy); err != nil {
				return err
			}
		}
		fmt.Fprintln(g.stdout)
		return nil
	}
	pulls := runtime.PullOptions{Credentials: criconfig.HostCredentials(cfg.Registries),
		Progress: newPullReporter(g.stdout, g.isTerminal(g.stdout)).report, Log: g.log, ProgressTimeout: g.pullProgressTimeout}
	waitReady := func(ctx context.Context, dep *spec.Pod) error { return probe.WaitReady(ctx, rt, cfg.Berth.Stack, dep) }
	progress := newProgressPrinter(g.stdout)
	execOpts := apply.Options{Parallelism: opts.parallelism, Report: progress.event, Pull: pulls, WaitReady: waitReady}
	execOpts.AwaitReady = func(ctx context.Context, pod *spec.Pod, sandboxID string) error {
		return probe.AwaitSandbox(ctx, rt, cfg.Berth.Stack, pod, sandboxID)
	}
	d, res, err := engine.Converge(ctx, cfg, planOpts, review, execOpts)
	progress.close()
	if errors.Is(err, apply.ErrNothingToDo) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		// Each cause once, here on stderr; the progress lines said which
		// steps failed, in order.
		failed := 0
		for _, s := range res.Steps {
			if s.Status == apply.Failed || s.Status == apply.Skipped {
				failed++
			}
			if s.Status == apply.Failed || (s.Status == apply.Skipped && s.Err != nil) {
				fmt.Fprintf(g.stderr, "Error: %s: %v\n", s.Address, s.Err)
			}
		}
		verb, again := "Apply", "apply"
		if opts.destroy {
			verb, again = "Destroy", "destroy"
		}
		fmt.Fprintf(g.stderr, "\n%s failed: %d of %d steps did not converge. Fix the cause and run %s again; it picks up where this one stopped.\n", verb, failed, len(res.Steps), again)
		if isInterrupted(ctx.Err()) {
			fmt.Fprintln(g.stderr, "Interrupted.")
		}
		return &exitError{code: 1, reported: true, err: err}
	}
	s := d.Plan.Summary()
	verb := "Apply"
	if opts.destroy {
		verb = "Destroy"
	}
	fmt.Fprintf(g.stdout, "\n%s complete! Resources: %d added, %d changed, %d destroyed.\n", verb, s.Add, s.Change, s.Destroy)
	return nil
}

// engine is the converge engine on rt, with the CLI's lock settings.
func (g *globals) engine(rt apply.EngineRuntime, address, stack string, lockTimeout time.Duration, cmd string) *apply.Engine {
	return &apply.Engine{Runtime: rt, Address: address, LockDir: lock.DefaultDir(), Holder: lockHolder(cmd), LockTimeout: lockTimeout,
		LockWaiting: func(h lock.Holder) {
			fmt.Fprintf(g.stderr, "Waiting for the lock on stack %q, held by %s...\n", stack, h)
		}}
}

// lockHolder names this process in lock files: berth and its command,
// never the arguments (a --var may hold a secret).
func lockHolder(cmd string) string { return "berth " + cmd }

// stale refuses a saved plan whose decisions no longer match a fresh plan
// of the same configuration and runtime, naming what moved.
func stale(saved *planfile.File, digestKey []byte, plan *planner.Plan, cfg *spec.Config) error {
	moved := planner.Moved(saved.Digests, planner.Digests(plan, cfg, digestKey))
	if len(moved) == 0 {
		return nil
	}
	what := strings.Join(moved, ", ")
	if len(moved) > 6 {
		what = strings.Join(moved[:6], ", ") + fmt.Sprintf(" and %d more", len(moved)-6)
	}
	return fmt.Errorf("the saved plan is stale: %s changed since the plan was made (in the configuration, its variables, or on the runtime); nothing was changed. Pass the same --var and --var-file options, or make a new plan", what)
}

func (g *globals) confirm(destroy bool) error {
	if !g.interactive() {
		return fmt.Errorf("refusing to change the runtime without confirmation: standard input is not a terminal; pass --auto-approve")
	}
	question := "Do you want to perform these actions?"
	if destroy {
		question = "Do you really want to destroy everything this stack owns?"
	}
	fmt.Fprintf(g.stdout, "\n%s\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", question)
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		fmt.Fprintln(g.stdout, "\nCancelled; nothing was changed.")
		return reported(1)
	}
	return nil
}
