package main

import (
	"fmt"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/convert/crictl"
	"github.com/berth-dev/berth/internal/safefile"
)

func newImportCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Write a berth configuration from another tool's files",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newImportCrictlCommand(g))
	return cmd
}

func newImportCrictlCommand(g *globals) *cobra.Command {
	var out, pod string
	cmd := &cobra.Command{
		Use:   "crictl POD.json [CONTAINER.json ...]",
		Short: "Convert crictl pod and container configs (JSON or YAML) to a berth pod",
		Long: `import crictl reads the pod config of ` + "`crictl runp`" + ` and the container configs
of ` + "`crictl create`" + ` (CRI PodSandboxConfig and ContainerConfig, in JSON or YAML)
and writes one berth pod with those containers, in canonical HCL.

Fields that berth does not carry over, or carries differently, are listed
on stderr as warnings with their paths; nothing is dropped silently.
--stack writes a berth block with that stack name.`,
		Example: `  berth import crictl pod.json container.json > main.hcl
  berth import crictl --stack vms --pod win11 -o vms/main.hcl pod.yaml windows.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files := make([]crictl.File, len(args))
			for i, path := range args {
				data, err := safefile.Read(path, maxImportFile, safefile.Options{})
				if err != nil {
					return err
				}
				files[i] = crictl.File{Name: path, Data: data}
			}
			res, err := crictl.Convert(files[0], files[1:], crictl.Options{Stack: g.stack, Pod: pod})
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(g.stderr, "Warning: %s\n", w)
			}
			return g.writeOutput(out, res.HCL)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&pod, "pod", "", "name of the pod (default: the pod config's metadata.name)")
	return cmd
}

// maxImportFile bounds a crictl config read: they are a few KiB.
const maxImportFile = 4 << 20

// writeOutput writes a command's result to a file, or to stdout for "" or
// "-". The file is replaced whole (a link there is replaced, not written
// through; an interrupted write leaves the old file).
func (g *globals) writeOutput(path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := g.stdout.Write(data)
		return err
	}
	return renameio.WriteFile(path, data, 0o644)
}
