package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/forward"
	"github.com/berth-dev/berth/internal/gctune"
	"github.com/berth-dev/berth/internal/lock"
	"github.com/berth-dev/berth/internal/serving"
)

func newForwardCommand(g *globals) *cobra.Command {
	var (
		v   varFlags
		via string
	)
	cmd := &cobra.Command{
		Use:   "forward [DIR]",
		Short: "Hold the configuration's forwards open, in the foreground",
		Long: `forward listens on every forward block's listen address and relays each
connection to the pod's port: dialled from inside the pod's network
namespace (needs root), or through the runtime's streaming PortForward
(--via cri, the default without root). A replaced pod is found again on
the next connection. Ctrl-C stops.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			gctune.AsUsual()
			cfg, err := g.loadConfig(dirArg(args), v)
			if err != nil {
				return err
			}
			address := g.resolveAddress(cfg)
			targets := forward.Targets(cfg, serving.Dir(lock.DefaultDir(), cfg.Berth.Stack, address))
			if len(targets) == 0 {
				return fmt.Errorf("the configuration in %s declares no forward blocks", cfg.Dir)
			}
			ctx := cmd.Context()
			rt, done, err := g.connect(ctx, address)
			if err != nil {
				return err
			}
			defer done()
			path, err := forwardPath(via)
			if err != nil {
				return err
			}
			return forward.Serve(ctx, rt, targets, path, g.log, func() {
				for _, t := range targets {
					fmt.Fprintf(g.stdout, "Forwarding %s -> pod.%s:%d (via %s)\n", t.Listen, t.Pod, t.Port, path)
				}
				fmt.Fprintln(g.stdout, "Ctrl-C stops.")
			})
		},
	}
	v.register(cmd)
	cmd.Flags().StringVar(&via, "via", "", "how to reach pods: netns (dial inside the pod's network namespace; the default for root) or cri (the runtime's streaming PortForward)")
	return cmd
}

// forwardPath reads --via: how forwards reach pods.
func forwardPath(via string) (forward.Path, error) {
	switch via {
	case "":
		return forward.DefaultPath(), nil
	case string(forward.Namespace), string(forward.CRI):
		return forward.Path(via), nil
	}
	return "", usageErrorf("--via %q: use netns or cri", via)
}
