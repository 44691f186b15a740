package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/convert/kube"
)

func newExportCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the configuration in another tool's format",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newExportKubernetesCommand(g))
	return cmd
}

func newExportKubernetesCommand(g *globals) *cobra.Command {
	var v varFlags
	var out string
	cmd := &cobra.Command{
		Use:     "kubernetes [DIR]",
		Aliases: []string{"k8s"},
		Short:   "Write the stack as Kubernetes manifests (YAML)",
		Long: `export kubernetes writes every pod of the configuration as a Kubernetes
manifest: a Deployment of one replica when all its containers restart
always, else a Pod. The documents are separated by ---; what Kubernetes
cannot express as berth does (mirrors, networks, forwards, pids, ...) is
listed in comments at the top. Sensitive values are never written: env
values from sensitive variables come from a Secret the comments name.`,
		Example: `  berth export kubernetes examples/hello
  berth export kubernetes --var password=... -o windows.yaml examples/windows`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig(dirArg(args), v)
			if err != nil {
				return err
			}
			res := kube.Convert(cfg)
			data, err := res.YAML()
			if err != nil {
				return err
			}
			if out != "" && out != "-" && len(res.Notes) > 0 {
				fmt.Fprintf(g.stderr, "%d settings are not expressed as in berth; the comments at the top of %s list them.\n", len(res.Notes), out)
			}
			return g.writeOutput(out, data)
		},
	}
	v.register(cmd)
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of stdout")
	return cmd
}
