//go:build manpages

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// The man pages are written by a build of their own (hack/package/build.sh
// builds one with -tags manpages): the Markdown renderer behind them would
// otherwise initialise on every command, for a command users never run.
func init() { buildCommands = append(buildCommands, newManCommand) }

// newManCommand writes man pages for every command, for packages; it is
// hidden from help.
func newManCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write man pages for every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			header := &doc.GenManHeader{Title: "BERTH", Section: "1", Source: "berth " + readVersion().Version, Manual: "berth manual"}
			root := cmd.Root()
			root.DisableAutoGenTag = true // the pages stay the same from build to build
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "man pages written to %s\n", args[0])
			return nil
		},
	}
}
