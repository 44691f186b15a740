package spec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// diagWant describes one expected error diagnostic.
type diagWant struct {
	summary string // exact summary
	detail  string // substring of the detail; "…" separates substrings that must appear in order
	// file is the base name of the subject's file; "" means the diagnostic
	// must have no subject.
	file string
	// at is a text fragment of that file; the subject must start on the
	// first line holding it. Empty: any line of file.
	at string
}

// files is a configuration directory's content: base name -> text.
type files map[string]string

// replace replaces old by new in file name, failing unless old occurs
// exactly once, so a mutation can never silently miss its target.
func (fs files) replace(t *testing.T, name, old, new string) {
	t.Helper()
	src, ok := fs[name]
	if !ok {
		t.Fatalf("mutation: no file %q", name)
	}
	if n := strings.Count(src, old); n != 1 {
		t.Fatalf("mutation: %q occurs %d times in %s, want 1", old, n, name)
	}
	fs[name] = strings.Replace(src, old, new, 1)
}

// writeDir writes fs into dir (created if missing).
func writeDir(t *testing.T, dir string, fs files) {
	t.Helper()
	for name, src := range fs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// noEnv is an empty environment, so tests never see the real one.
func noEnv() []string { return nil }

func noLookup(string) (string, bool) { return "", false }

// isolated fills in an empty environment where opts leave it unset.
func isolated(opts Options) Options {
	if opts.Environ == nil {
		opts.Environ = noEnv
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = noLookup
	}
	return opts
}

// loadFiles writes fs into a fresh directory named "stack" and loads it.
func loadFiles(t *testing.T, fs files, opts Options) (*Config, hcl.Diagnostics, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "stack")
	writeDir(t, dir, fs)
	cfg, diags := NewLoader(isolated(opts)).Load(dir)
	return cfg, diags, dir
}

// mustLoad loads fs and fails on any error diagnostic.
func mustLoad(t *testing.T, fs files, opts Options) *Config {
	t.Helper()
	cfg, diags, _ := loadFiles(t, fs, opts)
	requireNoErrors(t, diags)
	if cfg == nil {
		t.Fatal("Load returned a nil Config without errors")
	}
	return cfg
}

func requireNoErrors(t *testing.T, diags hcl.Diagnostics) {
	t.Helper()
	if diags.HasErrors() {
		t.Fatalf("unexpected errors:\n%s", formatDiags(diags))
	}
}

func formatDiags(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		at := "<no subject>"
		if d.Subject != nil {
			at = fmt.Sprintf("%s:%d", filepath.Base(d.Subject.Filename), d.Subject.Start.Line)
		}
		fmt.Fprintf(&b, "  [%v] %s | %s | %s\n", d.Severity, d.Summary, d.Detail, at)
	}
	return b.String()
}

// lineOf returns the 1-based line of the first occurrence of frag in src.
func lineOf(t *testing.T, src, frag string) int {
	t.Helper()
	i := strings.Index(src, frag)
	if i < 0 {
		t.Fatalf("fragment %q not in source:\n%s", frag, src)
	}
	return strings.Count(src[:i], "\n") + 1
}

// requireDiags checks that the error diagnostics are exactly wants (in any
// order). fs is the directory content, for resolving want.at to a line.
func requireDiags(t *testing.T, fs files, diags hcl.Diagnostics, wants ...diagWant) {
	t.Helper()
	errs := diags.Errs()
	if len(errs) != len(wants) {
		t.Errorf("got %d errors, want %d:\n%s", len(errs), len(wants), formatDiags(diags))
	}
	used := map[int]bool{}
	for _, w := range wants {
		wantLine := 0
		if w.at != "" {
			src, ok := fs[w.file]
			if !ok {
				t.Fatalf("want.file %q is not in the test's files", w.file)
			}
			wantLine = lineOf(t, src, w.at)
		}
		found := false
		for i, d := range diags {
			if used[i] || d.Severity != hcl.DiagError || d.Summary != w.summary || !containsInOrder(d.Detail, w.detail) {
				continue
			}
			switch {
			case w.file == "":
				if d.Subject != nil {
					continue
				}
			case d.Subject == nil || filepath.Base(d.Subject.Filename) != w.file:
				continue
			case wantLine != 0 && d.Subject.Start.Line != wantLine:
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			where := "no subject"
			if w.file != "" {
				where = fmt.Sprintf("%s:%d", w.file, wantLine)
			}
			t.Errorf("missing error %q (detail containing %q, at %s); got:\n%s", w.summary, w.detail, where, formatDiags(diags))
		}
	}
}

// stripRanges zeroes the source ranges, and drops the kept hashes, so
// configs can be compared by value.
func stripRanges(cfg *Config) {
	for _, p := range cfg.Pods {
		p.DeclRange, p.DependsOnRange, p.hash = hcl.Range{}, hcl.Range{}, nil
		for i := range p.Ports {
			p.Ports[i].DeclRange = hcl.Range{}
		}
		for i := range p.Forwards {
			p.Forwards[i].DeclRange = hcl.Range{}
		}
		for _, c := range p.Containers {
			c.DeclRange, c.hash = hcl.Range{}, nil
			for i := range c.Probes {
				c.Probes[i].DeclRange = hcl.Range{}
			}
			for i := range c.Devices {
				c.Devices[i].DeclRange = hcl.Range{}
			}
			for i := range c.Mounts {
				c.Mounts[i].DeclRange = hcl.Range{}
				// Relative host paths resolve against the temporary config dir.
				c.Mounts[i].HostPath = strings.Replace(c.Mounts[i].HostPath, cfg.Dir, "<dir>", 1)
			}
		}
	}
}

// requireEqual compares with reflect.DeepEqual and prints both as JSON.
func requireEqual(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("mismatch (-want +got):\n%s", lineDiff(string(w), string(g)))
	}
}

// lineDiff shows the lines between the common prefix and suffix of a and b.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	pre := 0
	for pre < len(al) && pre < len(bl) && al[pre] == bl[pre] {
		pre++
	}
	suf := 0
	for suf < len(al)-pre && suf < len(bl)-pre && al[len(al)-1-suf] == bl[len(bl)-1-suf] {
		suf++
	}
	var out strings.Builder
	from := max(0, pre-3)
	for _, l := range al[from:pre] {
		fmt.Fprintf(&out, "  %s\n", l)
	}
	for _, l := range al[pre : len(al)-suf] {
		fmt.Fprintf(&out, "- %s\n", l)
	}
	for _, l := range bl[pre : len(bl)-suf] {
		fmt.Fprintf(&out, "+ %s\n", l)
	}
	if a == b {
		out.WriteString("(same JSON: the difference is nil versus empty, or in unexported state)\n")
	}
	return out.String()
}

// containsInOrder reports whether s holds the "…"-separated parts of frags,
// in that order.
func containsInOrder(s, frags string) bool {
	for _, f := range strings.Split(frags, "…") {
		i := strings.Index(s, f)
		if i < 0 {
			return false
		}
		s = s[i+len(f):]
	}
	return true
}
