package stats

import (
	"fmt"
	"io"
	"text/tabwriter"

	units "github.com/docker/go-units"
)

// WriteTable prints rows as a table; "-" marks what is not known (yet).
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tCONTAINER\tCPU%\tMEMORY\tLIMIT")
	for _, r := range rows {
		cpu, mem, limit := "-", "-", "-"
		if r.CPUPercent != nil {
			cpu = fmt.Sprintf("%.2f%%", *r.CPUPercent)
		}
		if r.MemoryBytes != nil {
			mem = units.BytesSize(float64(*r.MemoryBytes))
		}
		if r.MemoryLimitBytes != nil {
			limit = units.BytesSize(float64(*r.MemoryLimitBytes))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Pod, r.Container, cpu, mem, limit)
	}
	return tw.Flush()
}
