package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/execstream"
	"github.com/berth-dev/berth/runtime"
)

func newExecCommand(g *globals) *cobra.Command {
	var (
		dir         string
		interactive bool
		tty         bool
	)
	cmd := &cobra.Command{
		Use:   "exec POD/CONTAINER [DIR] [-it] -- CMD [ARG...]",
		Short: "Run a command in a container",
		Long: `exec runs a command in a running container and prints its output; berth
exits with the command's exit code. -i passes standard input on; -t gives
the command a terminal (standard input must be one), sized like yours and
resized with it. DIR, before --, is the configuration's directory, which
names the stack (default: the current directory); --stack names it
instead.`,
		Example: `  berth exec web/app -- ls /
  berth exec web/app examples/hello -- cat /etc/hostname
  berth exec -it web/app -- sh
  echo hello | berth exec -i web/app -- cat`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			command := args[1:]
			switch dash := cmd.ArgsLenAtDash(); {
			case dash == 2:
				var err error
				if dir, err = trailingDir(cmd, dir, args, 1); err != nil {
					return err
				}
				command = args[2:]
			case dash > 2:
				return usageErrorf("expected POD/CONTAINER [DIR] -- CMD, got %d arguments before --", dash)
			}
			if len(command) == 0 {
				return usageErrorf("name the command to run after --")
			}
			pod, container := splitTarget(args[0])
			if container == "" {
				return usageErrorf("name the container: %s/CONTAINER", pod)
			}
			if tty && !g.interactive() {
				return usageErrorf("-t needs a terminal on standard input; without one, leave out -t (add -i to pass input on)")
			}
			ctx := cmd.Context()
			stack, rt, done, err := g.connectStack(ctx, dir)
			if err != nil {
				return err
			}
			defer done()
			ctrs, err := containersOf(ctx, rt, stack, pod, container)
			if err != nil {
				return err
			}
			id := ctrs[container].Id
			if interactive || tty {
				return g.execStream(ctx, rt, id, command, interactive, tty)
			}
			resp, err := rt.ExecSync(ctx, id, command, 0)
			if err != nil {
				return err
			}
			g.stdout.Write(resp.Stdout)
			g.stderr.Write(resp.Stderr)
			if resp.ExitCode != 0 {
				return reported(int(resp.ExitCode))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "configuration directory that names the stack (or give it as DIR, or use --stack)")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "pass standard input on to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal (standard input must be a terminal)")
	return cmd
}

// execStream runs cmd through the runtime's streaming Exec, with the
// local terminal in raw mode when the command gets a terminal and input.
func (g *globals) execStream(ctx context.Context, rt *runtime.Client, id string, cmd []string, interactive, tty bool) error {
	url, err := rt.Exec(ctx, id, cmd, tty, interactive)
	if err != nil {
		return err
	}
	o := execstream.Options{Stdout: g.stdout, Stderr: g.stderr, TTY: tty}
	if interactive {
		o.Stdin = g.stdin
	}
	if tty {
		in := g.stdin.(*os.File) // g.interactive() checked it is a terminal
		sizeCtx, stopSizes := context.WithCancel(ctx)
		defer stopSizes()
		o.Sizes = execstream.WatchSize(sizeCtx, in)
		if interactive {
			restore, err := execstream.Raw(in)
			if err != nil {
				return err
			}
			defer restore()
		}
	}
	code, err := execstream.Run(ctx, url, o)
	if err != nil {
		if ctx.Err() != nil {
			return reported(130) // interrupted: nothing more to say
		}
		return err
	}
	if code != 0 {
		return reported(code)
	}
	return nil
}
