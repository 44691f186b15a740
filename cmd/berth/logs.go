package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/logs"
	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

// stackTarget resolves the stack and runtime for commands that name a pod:
// --stack, else the configuration in dir.
func (g *globals) stackTarget(dir string) (stack, address string, err error) {
	if g.stack != "" {
		return g.stack, g.resolveAddress(nil), nil
	}
	if files, err := spec.ConfigFiles(dir); err == nil && len(files) == 0 {
		abs, _ := filepath.Abs(dir)
		return "", "", usageErrorf("%s has no *.hcl files, so it does not name a stack: pass the configuration's directory after the pod (for example: berth logs web ./stack), or the stack's name with --stack NAME", abs)
	}
	cfg, err := g.loadConfig(dir, varFlags{})
	if err != nil {
		return "", "", err
	}
	return cfg.Berth.Stack, g.resolveAddress(cfg), nil
}

// trailingDir is the configuration directory of a command that takes it as an
// optional argument after others, or with --dir (the older form).
func trailingDir(cmd *cobra.Command, flagDir string, args []string, at int) (string, error) {
	if len(args) <= at {
		return flagDir, nil
	}
	if cmd.Flags().Changed("dir") {
		return "", usageErrorf("give the configuration directory once: as %s or with --dir, not both", args[at])
	}
	return args[at], nil
}

// connectStack finds the stack as stackTarget does and connects to its
// runtime; done closes the connection.
func (g *globals) connectStack(ctx context.Context, dir string) (stack string, rt *runtime.Client, done func(), err error) {
	stack, address, err := g.stackTarget(dir)
	if err != nil {
		return "", nil, nil, err
	}
	rt, done, err = g.connect(ctx, address)
	return stack, rt, done, err
}

// containersOf lists the newest attempt of each of a pod's containers,
// or of the one named, by name.
func containersOf(ctx context.Context, rt *runtime.Client, stack, pod, container string) (map[string]*cri.Container, error) {
	sel := map[string]string{spec.LabelStack: stack, spec.LabelPod: pod}
	if container != "" {
		sel[spec.LabelContainer] = container
	}
	list, err := rt.ListContainers(ctx, sel)
	if err != nil {
		return nil, err
	}
	out := map[string]*cri.Container{}
	for _, c := range list {
		name := c.Labels[spec.LabelContainer]
		if prev := out[name]; prev == nil || c.CreatedAt > prev.CreatedAt {
			out[name] = c
		}
	}
	if len(out) == 0 {
		what := "pod " + pod
		if container != "" {
			what += " has no container " + container + ";"
		} else {
			what += " has no containers;"
		}
		return nil, fmt.Errorf("%s is it applied in stack %q? (berth status lists what runs)", what, stack)
	}
	return out, nil
}

func splitTarget(arg string) (pod, container string) {
	pod, container, _ = strings.Cut(arg, "/")
	return pod, container
}

func newLogsCommand(g *globals) *cobra.Command {
	var (
		dir        string
		follow     bool
		tail       int
		since      time.Duration
		timestamps bool
	)
	cmd := &cobra.Command{
		Use:   "logs POD[/CONTAINER] [DIR]",
		Short: "Print a pod's or a container's logs",
		Long: `logs prints the logs the runtime keeps for a container, or for every
container of a pod, each line prefixed with its container's name. -f
follows them, across container restarts and replacements. DIR is the
configuration's directory, which names the stack (default: the current
directory); --stack names it instead.`,
		Example: `  berth logs web examples/hello
  berth logs -f web/app examples/hello
  berth logs --stack hello --tail 20 web`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dir, err := trailingDir(cmd, dir, args, 1)
			if err != nil {
				return err
			}
			stack, rt, done, err := g.connectStack(ctx, dir)
			if err != nil {
				return err
			}
			defer done()
			pod, container := splitTarget(args[0])
			ctrs, err := containersOf(ctx, rt, stack, pod, container)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(ctrs))
			for n := range ctrs {
				names = append(names, n)
			}
			sort.Strings(names)
			opts := logs.Options{Tail: tail, Timestamps: timestamps}
			if since > 0 {
				opts.Since = time.Now().Add(-since)
			}
			var mu sync.Mutex
			out := &lockedWriter{w: g.stdout, mu: &mu}
			var wg sync.WaitGroup
			var firstErr error
			for _, name := range names {
				o := opts
				if container == "" && len(names) > 1 {
					o.Prefix = name + " | "
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := printLogs(ctx, rt, stack, pod, name, o, follow, out); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				return nil // Ctrl-C ends a follow
			}
			return firstErr
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "configuration directory that names the stack (or give it as DIR, or use --stack)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVar(&tail, "tail", -1, "print only the last N lines")
	cmd.Flags().DurationVar(&since, "since", 0, "print only lines of the last D, e.g. 10m")
	cmd.Flags().BoolVar(&timestamps, "timestamps", false, "print each line's time")
	return cmd
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// printLogs prints one container's log; following, it polls the file and
// switches to a new one when the container is replaced.
func printLogs(ctx context.Context, rt *runtime.Client, stack, pod, name string, o logs.Options, follow bool, w io.Writer) error {
	path, err := logPath(ctx, rt, stack, pod, name)
	if err != nil {
		return err
	}
	// The runtime names the file: a FIFO there must not hold berth.
	f, err := safefile.Open(path, safefile.Options{})
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	r := logs.NewReader(f)
	if err := logs.Select(r, o, func(l logs.Line) { o.Format(w, l) }); err != nil {
		return err
	}
	if !follow {
		return nil
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for {
			l, err := r.Next()
			if err != nil {
				break
			}
			o.Format(w, l)
		}
		if n%8 != 7 {
			continue
		}
		// Every two seconds: has the container moved to another log file
		// (its pod was replaced)?
		if p, err := logPath(ctx, rt, stack, pod, name); err == nil && p != path {
			if nf, err := safefile.Open(p, safefile.Options{}); err == nil {
				f.Close()
				f, path, r = nf, p, logs.NewReader(nf)
			}
		}
	}
}

func logPath(ctx context.Context, rt *runtime.Client, stack, pod, name string) (string, error) {
	ctrs, err := containersOf(ctx, rt, stack, pod, name)
	if err != nil {
		return "", err
	}
	st, err := rt.ContainerStatus(ctx, ctrs[name].Id)
	if err != nil {
		return "", err
	}
	if st.LogPath == "" {
		return "", fmt.Errorf("container %s/%s has no log file", pod, name)
	}
	return st.LogPath, nil
}
