package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/inspect"
	"github.com/berth-dev/berth/runtime"
)

func newShowCommand(g *globals) *cobra.Command {
	var (
		asJSON bool
		v      varFlags
	)
	cmd := &cobra.Command{
		Use:   "show RESOURCE [DIR]",
		Short: "Show one resource's applied spec beside its live state",
		Long: `show prints one resource, addressed as plans print it, in two sections:

  applied spec  what berth stored when it created the resource (the
                berth.io/spec annotation), or for a mirror or network what
                the configuration's block makes of its file
  runtime       what the runtime reports now: IDs, state, times, exit
                code and reason, IP, mounts, resources; for a mirror or
                network the file on disk and whether berth wrote it

Addresses: pod.NAME, pod.NAME.container.NAME, mirror.HOST, network.NAME,
image.REF. An unknown address lists the valid ones. --json prints the same
data.`,
		Example: `  berth show pod.web examples/hello
  berth show pod.web.container.app --json examples/hello
  berth show --stack hello mirror.docker.io`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, loaded, err := g.stackConfig(dirArg(args[1:]), v)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rt, done, err := g.connect(ctx, g.resolveAddress(cfg))
			if err != nil {
				return err
			}
			defer done()
			where := inspect.Where{
				CertsDir: func() (string, error) {
					if cfg.Berth.CertsDir != "" {
						return cfg.Berth.CertsDir, nil
					}
					path, err := rt.RegistryConfigPath(ctx)
					return runtime.CertsDir(path), err
				},
				CNIConfDir: func() (string, error) {
					if cfg.Berth.CNIConfDir != "" {
						return cfg.Berth.CNIConfDir, nil
					}
					cni, err := rt.CNI(ctx)
					return cni.ConfDir, err
				},
			}
			r, err := inspect.Show(ctx, rt, cfg, loaded, where, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return inspect.WriteJSON(g.stdout, r)
			}
			return inspect.WriteResource(g.stdout, r, inspect.Style{Color: g.color(g.stdout)})
		},
	}
	v.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
