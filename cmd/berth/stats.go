package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/stats"
)

// statsInterval is how often the terminal view refreshes.
const statsInterval = 2 * time.Second

func newStatsCommand(g *globals) *cobra.Command {
	var asJSON, noStream bool
	cmd := &cobra.Command{
		Use:   "stats [DIR]",
		Short: "Show the CPU and memory use of the stack's running containers",
		Long: `stats shows each running container's CPU use (100% is one busy core),
memory (working set) and memory limit, as the runtime measures them. On a
terminal it refreshes every 2s until Ctrl-C; otherwise, or with
--no-stream, it prints once. --json prints the rows once as JSON.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			stack, rt, done, err := g.connectStack(ctx, dirArg(args))
			if err != nil {
				return err
			}
			defer done()
			meter := stats.NewMeter(rt, stack)
			if asJSON || noStream || !g.isTerminal(g.stdout) {
				rows, err := readMeasured(ctx, meter)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(g.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(rows)
				}
				return writeStats(g.stdout, stack, rows)
			}
			return watchStats(ctx, g.stdout, stack, meter)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rows once, as JSON")
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print once, even on a terminal")
	return cmd
}

// readMeasured reads the stack's rows; CPU use needs two samples unless
// the runtime reports its own rate, so it reads again a second later if
// some are missing.
func readMeasured(ctx context.Context, m *stats.Meter) ([]stats.Row, error) {
	rows, err := m.Read(ctx)
	if err != nil || stats.Measured(rows) {
		return rows, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Second):
	}
	return m.Read(ctx)
}

// watchStats redraws the table every statsInterval, like top, until ctx ends.
func watchStats(ctx context.Context, w io.Writer, stack string, m *stats.Meter) error {
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		rows, err := m.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var frame bytes.Buffer
		frame.WriteString("\x1b[H\x1b[2J") // home, clear screen
		fmt.Fprintf(&frame, "berth stats %s, every %s (Ctrl-C to stop)  %s\n\n", stack, statsInterval, time.Now().Format("15:04:05"))
		if err := writeStats(&frame, stack, rows); err != nil {
			return err
		}
		if _, err := w.Write(frame.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func writeStats(w io.Writer, stack string, rows []stats.Row) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintf(w, "Stack %q has no running containers on this runtime.\n", stack)
		return err
	}
	return stats.WriteTable(w, rows)
}
