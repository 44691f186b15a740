package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/spec"
)

func newValidateCommand(g *globals) *cobra.Command {
	var v varFlags
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check a configuration without contacting the runtime",
		Long: `validate checks a configuration's syntax, types, references and values
without contacting the runtime. Variables given no value are unknown, as
in Terraform: what is computed from them is checked once they have one
(plan and apply need every value), everything else is checked now.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := v.options(nil) // no hashes compared: no key needed
			opts.UnsetUnknown = true
			cfg, err := g.loadConfigSpec(dirArg(args), opts)
			if err != nil {
				return err
			}
			containers := 0
			for _, p := range cfg.Pods {
				containers += len(p.Containers)
			}
			fmt.Fprintf(g.stdout, "Success! The configuration is valid: stack %q, %s, %s.\n", cfg.Berth.Stack, counted(len(cfg.Pods), "pod"), counted(containers, "container"))
			return nil
		},
	}
	v.register(cmd)
	return cmd
}

func newFmtCommand(g *globals) *cobra.Command {
	var check, recursive bool
	cmd := &cobra.Command{
		Use:   "fmt [-check] [-recursive] [DIR]",
		Short: "Rewrite configuration files in the canonical format",
		Long: `fmt rewrites the directory's *.hcl and *.berthvars files in the canonical
HCL format, and with -recursive those of its subdirectories too (hidden
ones left out). With -check it changes nothing, lists the files that are
not formatted, and exits 1 if there are any. A directory without such
files is an error, so that a check in CI cannot pass on the wrong path.`,
		Example: `  berth fmt .
  berth fmt -check -recursive .`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.format(dirArg(args), check, recursive)
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only check; exit 1 when a file is not formatted")
	cmd.Flags().BoolVar(&recursive, "recursive", false, "format the subdirectories' files too")
	return cmd
}

// formattable reports whether fmt formats a file of this name.
func formattable(name string) bool {
	return !spec.IsIgnored(name) && (strings.HasSuffix(name, ".hcl") || strings.HasSuffix(name, ".berthvars"))
}

// formatPaths lists the files fmt formats in dir, and in its subdirectories
// (not hidden ones, nor linked ones) when recursive.
func formatPaths(dir string, recursive bool) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (!recursive || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if formattable(d.Name()) {
			paths = append(paths, path)
		}
		return nil
	})
	sort.Strings(paths)
	return paths, err
}

func (g *globals) format(dir string, check, recursive bool) error {
	paths, err := formatPaths(dir, recursive)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		hint := ""
		if nested, _ := formatPaths(dir, true); !recursive && len(nested) > 0 {
			hint = fmt.Sprintf("; its subdirectories have %d (add -recursive)", len(nested))
		}
		return usageErrorf("%s has no *.hcl or *.berthvars files%s", dir, hint)
	}

	broken := false
	unformatted := 0
	for _, p := range paths {
		if info, err := os.Lstat(p); err == nil && info.Mode()&os.ModeSymlink != 0 {
			fmt.Fprintf(g.stderr, "%s: skipped, a symbolic link; format the file it points to\n", p)
			continue
		}
		src, diags := spec.ReadConfigSource(p)
		if diags.HasErrors() {
			g.printDiagnostics(nil, diags)
			broken = true
			continue
		}
		if _, diags := hclwrite.ParseConfig(src, p, hcl.InitialPos); diags.HasErrors() {
			g.printDiagnostics(map[string]*hcl.File{p: {Bytes: src}}, diags)
			broken = true // the others are still formatted: one run shows every problem
			continue
		}
		out := hclwrite.Format(src)
		if bytes.Equal(src, out) {
			continue
		}
		unformatted++
		fmt.Fprintln(g.stdout, p)
		if check {
			continue
		}
		if err := replaceKeepingOwner(p, out); err != nil {
			return err
		}
	}
	if broken || (check && unformatted > 0) {
		return reported(1)
	}
	return nil
}

// counted is "1 pod", "2 pods".
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// replaceKeepingOwner replaces the file at p with data atomically (an
// interrupted fmt leaves the old file or the new), with the old file's
// mode and owner: berth runs as root, and a user's file stays the user's.
func replaceKeepingOwner(p string, data []byte) error {
	info, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s: no longer a regular file; left alone", p)
	}
	t, err := renameio.NewPendingFile(p, renameio.WithPermissions(info.Mode().Perm()))
	if err != nil {
		return err
	}
	defer t.Cleanup()
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		if err := t.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if _, err := t.Write(data); err != nil {
		return err
	}
	return t.CloseAtomicallyReplace()
}
