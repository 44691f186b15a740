package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/gctune"
	"github.com/berth-dev/berth/internal/hostkey"
	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/notify"
	"github.com/berth-dev/berth/internal/watch"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

func newWatchCommand(g *globals) *cobra.Command {
	var (
		v           varFlags
		resync      time.Duration
		debounce    time.Duration
		parallelism int
		via         string
		onlyResync  bool
		listen      string
		notifyURL   string
		git         gitFlags
		backoff     = planner.DefaultBackoff
	)
	cmd := &cobra.Command{
		Use:   "watch [DIR | --git URL]",
		Short: "Apply, then keep the stack converged as files change and containers die",
		Long: `watch applies the configuration without asking, then keeps the runtime
equal to it: it re-plans and applies whenever a file in DIR changes (a burst
of changes, such as a git pull, gives one round), the runtime reports that a
container or pod of the stack exited or was removed, a probe gives a
verdict, and every --resync period as a safety net.

Exited containers restart as their restart policy says, with a backoff per
container: at once, then 1s doubling to 5m, reset after 10m of running.
Liveness and startup probes that keep failing restart their container;
readiness probes hold back the pods that depend on theirs. Forward blocks
are held open. An invalid configuration is logged and changes nothing: the
last good one stays in force until the files are fixed.

Logs are structured (--log-format text|json), one line per decision.
SIGTERM or Ctrl-C stop watching and leave the workloads running; SIGHUP
forces a round that re-reads everything. A manual apply waits for the
round under way.

--listen ADDR (HOST:PORT, or a port on 127.0.0.1) serves /metrics
(Prometheus), /healthz (the runtime answers), /readyz (the newest
configuration loaded and the last round converged) and /status (berth
status --json of the stack, with the watcher's state). Under systemd with
Type=notify, berth says READY=1 once its first round has finished and
pings the watchdog (WatchdogSec=) while rounds keep finishing.

--git URL takes the configuration from a git repository instead of DIR:
berth clones it into its state directory (no git binary needed), fetches
--ref every --interval and on POST /hooks/git (signed with
BERTH_WEBHOOK_SECRET, as GitHub, Gitea and Forgejo sign webhooks), and
runs a round for each new commit, on the files under --path. What it makes
carries the commit in the label berth.io/revision. A commit whose
configuration is invalid changes nothing: the last good one stays in
force, and /readyz says why. Private repositories: BERTH_GIT_USERNAME and
BERTH_GIT_PASSWORD (or a token as the password) over HTTPS, --git-ssh-key
FILE over SSH; credentials are never printed.

--notify URL (or BERTH_NOTIFY_URL, for a URL that holds a token) posts a
JSON event ({"event": "round_failed" | "recovered" | "crash_loop", "stack",
"resource", "message", "revision", "time"}) when a round fails after one
that did not, when one succeeds again, and when a container's restarts are
first held back by its crash backoff. Delivery is retried with backoff in
the background and never holds up a round.`,
		Example: `  berth watch /srv/gitops/host1
  berth watch --resync 5m --log-format json .
  berth watch --listen 9090 /srv/gitops/host1   # then: curl 127.0.0.1:9090/metrics
  berth watch --git https://git.example.com/ops/hosts.git --path host1 --listen 9090`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			gctune.AsUsual()
			if !cmd.Flags().Changed("log-level") && !cmd.Root().PersistentFlags().Changed("log-level") {
				g.logLevel = "info"
				if err := g.setup(); err != nil {
					return err
				}
			}
			dir := dirArg(args)
			source, err := git.source()
			if err != nil {
				return err
			}
			switch {
			case source != nil && len(args) > 0:
				return usageErrorf("give a directory or --git, not both")
			case source != nil:
				dir = ""
			default:
				if info, err := os.Stat(dir); err != nil || !info.IsDir() {
					return usageErrorf("%s is not a configuration directory", dir)
				}
			}
			path, err := forwardPath(via)
			if err != nil {
				return err
			}
			if resync <= 0 {
				return usageErrorf("--resync %s: give a period above zero, such as 1m", resync)
			}
			// The same key as apply's: the watcher compares the same hashes.
			key, err := hostkey.Load(hostkey.DefaultDir())
			if err != nil {
				return err
			}
			parsed := spec.NewParseCache() // a save of one file parses that one again
			opts := v.options(key)
			opts.Parsed = parsed
			if source != nil {
				opts.DefaultStack = git.stackName()
			}
			load := func(dir string) (*spec.Config, hcl.Diagnostics) {
				cfg, diags := spec.NewLoader(opts).Load(dir)
				if cfg != nil && g.stack != "" {
					cfg.Berth.Stack = g.stack
				}
				return cfg, diags
			}
			// The address comes from the first load; a broken configuration
			// at start is reported by watch itself.
			var first *spec.Config
			if cfg, diags := load(dir); dir != "" && !diags.HasErrors() {
				first = cfg
				if parallelism == 0 {
					parallelism = cfg.Berth.Parallelism
				}
			}
			ctx := cmd.Context()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						select {
						case reload <- struct{}{}:
						default:
						}
					}
				}
			}()
			tel := watch.NewTelemetry()
			listenAddr := ""
			var notifier func(notify.Event)
			if notifyURL == "" {
				notifyURL = os.Getenv("BERTH_NOTIFY_URL") // a URL with a token stays out of process listings
			}
			if notifyURL != "" {
				n, err := notify.New(notifyURL, g.log)
				if err != nil {
					return usageErrorf("%v", err)
				}
				go n.Run(ctx)
				notifier = n.Send
			}
			syncNow := make(chan struct{}, 1)
			if source != nil {
				if secret := os.Getenv("BERTH_WEBHOOK_SECRET"); secret != "" {
					tel.SetHook([]byte(secret), syncNow)
				}
			}
			if listen != "" {
				addr, err := listenAddress(listen)
				if err != nil {
					return err
				}
				serving, stopServing := context.WithCancel(ctx)
				wait, bound, err := serveTelemetry(serving, addr, tel, g.log)
				listenAddr = bound
				if err != nil {
					stopServing()
					return err
				}
				defer wait()        // second: until the server has shut down
				defer stopServing() // first, however watch ends
			}
			return watch.Run(ctx, watch.Options{
				Dir: dir, Load: load, Address: g.resolveAddress(first), LockDir: lock.DefaultDir(),
				Resync: resync, Debounce: debounce, Backoff: backoff, Parallelism: parallelism,
				Forward: path, Reload: reload, Log: g.log, Command: lockHolder("watch"),
				OnlyResync: onlyResync, RuntimeTimeout: g.runtimeTimeout, PullProgressTimeout: g.pullProgressTimeout,
				Telemetry: tel, Version: readVersion().Version, Started: notifySystemd(ctx, tel),
				SyncNow: syncNow, SourceInterval: git.interval, Source: sourceOrNil(source),
				KeepState: true, Listen: listenAddr, Notify: notifier,
			})
		},
	}
	v.register(cmd)
	f := cmd.Flags()
	f.DurationVar(&resync, "resync", watch.DefaultResync, "re-plan at least this often, whatever happens")
	f.DurationVar(&debounce, "debounce", watch.DefaultDebounce, "quiet time that ends a burst of file changes lasting over 25ms (a save ends after 25ms quiet)")
	f.IntVar(&parallelism, "parallelism", 0, "pods worked on at once (default from the berth block, else 8)")
	f.StringVar(&via, "via", "", "how forwards reach pods: netns or cri (as berth forward)")
	f.StringVar(&listen, "listen", "", "serve /metrics, /healthz, /readyz and /status on HOST:PORT (a bare port: 127.0.0.1)")
	f.StringVar(&notifyURL, "notify", "", "post a JSON event to this URL when a round fails, when it recovers, and when a container starts crash-looping (or BERTH_NOTIFY_URL)")
	git.register(f)
	f.DurationVar(&backoff.Initial, "backoff-initial", backoff.Initial, "wait before a container's second restart in a row; doubles each time")
	f.DurationVar(&backoff.Max, "backoff-max", backoff.Max, "longest wait between restarts")
	f.DurationVar(&backoff.Reset, "backoff-reset", backoff.Reset, "running this long forgets a container's earlier crashes")
	// For the benchmark (BENCHMARKS.md), not for users: the same watcher
	// blind to file and runtime events, to compare with the resync alone.
	f.BoolVar(&onlyResync, "only-resync", false, "ignore file changes and runtime events; converge on --resync only")
	_ = f.MarkHidden("only-resync") // the flag exists: MarkHidden cannot fail
	return cmd
}
