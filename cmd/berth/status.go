package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// podStatus is one row group of `berth status`, shared by the table and --json.
type podStatus struct {
	Pod        string            `json:"pod"`
	State      string            `json:"state"`
	IP         string            `json:"ip,omitempty"`
	Created    time.Time         `json:"created"`
	SandboxID  string            `json:"sandbox_id"`
	Containers []containerStatus `json:"containers"`
}

type containerStatus struct {
	Name        string    `json:"name"`
	State       string    `json:"state"`
	ExitCode    *int32    `json:"exit_code,omitempty"`
	Restarts    uint32    `json:"restarts"`
	Created     time.Time `json:"created"`
	Image       string    `json:"image"`
	ContainerID string    `json:"container_id"`
}

func newStatusCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [DIR]",
		Short: "Show the stack's pods and containers as the runtime reports them",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			cfg := &spec.Config{Berth: spec.Berth{Stack: g.stack}}
			if g.stack == "" {
				loaded, err := g.loadConfig(dir, varFlags{})
				if err != nil {
					return err
				}
				cfg = loaded
			}
			ctx := cmd.Context()
			rt, done, err := g.connect(ctx, g.resolveAddress(cfg))
			if err != nil {
				return err
			}
			defer done()
			snap, err := planner.Observe(ctx, rt, cfg)
			if err != nil {
				return err
			}
			var rows []podStatus
			for _, p := range snap.Pods {
				row := podStatus{Pod: p.Name, State: stateName(p.Sandbox.State.String()), Created: time.Unix(0, p.Sandbox.CreatedAt), SandboxID: p.Sandbox.Id}
				if st, err := rt.SandboxStatus(ctx, p.Sandbox.Id); err == nil {
					row.IP = st.GetNetwork().GetIp()
				}
				for _, c := range p.Containers {
					cs := containerStatus{Name: c.Name, State: stateName(c.Container.State.String()), Restarts: c.Container.Metadata.GetAttempt(),
						Created: time.Unix(0, c.Container.CreatedAt), Image: c.Container.GetImage().GetImage(), ContainerID: c.Container.Id}
					if c.Container.State == cri.ContainerState_CONTAINER_EXITED {
						code := c.ExitCode
						cs.ExitCode = &code
					}
					row.Containers = append(row.Containers, cs)
				}
				sort.Slice(row.Containers, func(i, j int) bool { return row.Containers[i].Name < row.Containers[j].Name })
				rows = append(rows, row)
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Pod < rows[j].Pod })
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"stack": cfg.Berth.Stack, "pods": nonNilRows(rows)})
			}
			if len(rows) == 0 {
				fmt.Fprintf(g.stdout, "Stack %q has no pods on this runtime.\n", cfg.Berth.Stack)
				return nil
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "POD\tCONTAINER\tSTATE\tRESTARTS\tAGE\tIP\tIMAGE")
			for _, r := range rows {
				for _, c := range r.Containers {
					state := c.State
					if c.ExitCode != nil {
						state = fmt.Sprintf("exited (%d)", *c.ExitCode)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Pod, c.Name, state, c.Restarts, age(c.Created), r.IP, c.Image)
				}
				if len(r.Containers) == 0 {
					fmt.Fprintf(w, "%s\t-\t%s\t-\t%s\t%s\t-\n", r.Pod, r.State, age(r.Created), r.IP)
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func nonNilRows(r []podStatus) []podStatus {
	if r == nil {
		return []podStatus{}
	}
	return r
}

// stateName turns CRI's CONTAINER_RUNNING / SANDBOX_READY into "running" / "ready".
func stateName(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "CONTAINER_"), "SANDBOX_")
	return strings.ToLower(s)
}

func age(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
