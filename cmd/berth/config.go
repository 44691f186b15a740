package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/internal/hostkey"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// varFlags are the flags that feed variables.
type varFlags struct {
	vars     []string
	varFiles []string
}

func (v *varFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&v.vars, "var", nil, "set a variable: --var NAME=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&v.varFiles, "var-file", nil, "read variables from a .berthvars file (repeatable)")
}

// loadConfig reads and evaluates a configuration directory, printing any
// diagnostics with source snippets. An invalid configuration is an error.
//
// The host key keys the spec hashes' digests of secrets; commands that
// compare hashes with the runtime's need it, validate does not.
func (g *globals) loadConfig(dir string, v varFlags) (*spec.Config, error) {
	return g.loadConfigTelling(dir, v, nil)
}

// loadConfigTelling is loadConfig that tells berthDecoded the berth
// block's settings before the pods are decoded (see spec.Options).
func (g *globals) loadConfigTelling(dir string, v varFlags, berthDecoded func(spec.Berth)) (*spec.Config, error) {
	key, err := hostkey.Load(hostkey.DefaultDir())
	if err != nil {
		return nil, fmt.Errorf("%w (berth keeps its key in BERTH_STATE_DIR, default %s)", err, hostkey.DefaultDir())
	}
	opts := v.options(key)
	opts.BerthDecoded = berthDecoded
	return g.loadConfigSpec(dir, opts)
}

// options are the loader's options for these flags and the secret key
// (nil for none).
func (v varFlags) options(key []byte) spec.Options {
	return spec.Options{Vars: v.vars, VarFiles: v.varFiles, SecretKey: key}
}

// loadConfigSpec loads dir with the loader options given.
func (g *globals) loadConfigSpec(dir string, opts spec.Options) (*spec.Config, error) {
	loader := spec.NewLoader(opts)
	start := time.Now()
	cfg, diags := loader.Load(dir)
	g.log.Debug("configuration loaded", "dir", dir, "files", len(loader.Files()), "took", time.Since(start).Round(time.Microsecond).String())
	if len(diags) > 0 {
		g.printDiagnostics(loader.Files(), diags)
	}
	if diags.HasErrors() {
		return nil, reported(1)
	}
	if g.stack != "" {
		cfg.Berth.Stack = g.stack
	}
	return cfg, nil
}

func (g *globals) printDiagnostics(files map[string]*hcl.File, diags hcl.Diagnostics) {
	width := 0
	if f, ok := g.stderr.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	wr := hcl.NewDiagnosticTextWriter(g.stderr, files, uint(width), g.color(g.stderr))
	if len(diags) > maxDiagnostics {
		_ = wr.WriteDiagnostics(diags[:maxDiagnostics])
		fmt.Fprintf(g.stderr, "\n... and %d more diagnostics; fix these first.\n", len(diags)-maxDiagnostics)
		return
	}
	_ = wr.WriteDiagnostics(diags)
}

// maxDiagnostics is how many diagnostics are printed: a file of random
// bytes makes thousands, and each prints a snippet of its file.
const maxDiagnostics = 50

// resolveAddress picks the runtime socket: flag, environment, berth block,
// default, in that order.
func (g *globals) resolveAddress(cfg *spec.Config) string {
	if cfg == nil {
		return g.addressOf(spec.Berth{})
	}
	return g.addressOf(cfg.Berth)
}

// addressOf is resolveAddress with the berth block b.
func (g *globals) addressOf(b spec.Berth) string {
	switch {
	case g.address != "":
		return g.address
	case os.Getenv("BERTH_ADDRESS") != "":
		return os.Getenv("BERTH_ADDRESS")
	case b.Address != "":
		return b.Address
	}
	return spec.DefaultAddress
}

// connect dials the runtime and logs call counts when the command ends.
func (g *globals) connect(ctx context.Context, address string) (*runtime.Client, func(), error) {
	rt, err := runtime.DialTimeout(ctx, address, g.runtimeTimeout)
	if err != nil {
		return nil, nil, err
	}
	done := func() {
		g.log.Debug("runtime calls", "address", address, "calls", rt.Calls())
		rt.Close()
	}
	return rt, done, nil
}

// socketPath is the file system path of a unix:// runtime address.
func socketPath(address string) string {
	return strings.TrimPrefix(address, "unix://")
}

func dirArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "."
}

// isInterrupted reports whether err is the user's Ctrl-C.
func isInterrupted(err error) bool {
	return errors.Is(err, context.Canceled)
}
