package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/doctor"
)

func newDoctorCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the host and the runtime, and say how to fix what is wrong",
		Long: `doctor checks the runtime (reachable, version, CRI conditions, CNI conf
and bin dirs and plugins, the registry config_path that mirrors need,
deprecated registry settings, the sandbox image, a kubelet on the same
runtime) and the host (/dev/kvm, /dev/net/tun, cgroup version,
CAP_SYS_RESOURCE). Each finding is ok, warn or fail, with its fix. It
exits 1 when a check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			address := g.resolveAddress(nil)
			var rt doctor.Runtime
			client, done, err := g.connect(ctx, address)
			if err == nil {
				defer done()
				rt = client
			}
			findings := doctor.Run(ctx, rt, err, doctor.DefaultHost(), address)
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(findings); err != nil {
					return err
				}
			} else {
				w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				for _, f := range findings {
					fmt.Fprintf(w, "%s\t%s\t%s\n", f.Level, f.Check, f.Message)
					if f.Fix != "" && f.Level != doctor.OK {
						fmt.Fprintf(w, "\t\tfix: %s\n", f.Fix)
					}
				}
				w.Flush()
			}
			for _, f := range findings {
				if f.Level == doctor.Fail {
					return reported(1)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	return cmd
}
