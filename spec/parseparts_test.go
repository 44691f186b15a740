package spec

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// manyPods is a configuration of n pods in one file, as large
// configurations are written, with comments and a variable between them.
func manyPods(n int) string {
	var s strings.Builder
	s.WriteString("# generated\nvariable \"tag\" { default = \"1.36\" }\n")
	for i := range n {
		fmt.Fprintf(&s, `
pod "p%03d" {
  host_network = true // shared
  container "main" {
    image   = "busybox:1.36"
    command = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    env     = { N = "%d", BRACES = "}{][" }
  }
}
`, i, i)
	}
	return s.String()
}

func TestPartCuts(t *testing.T) {
	tops := []hcl.Pos{{Line: 10, Column: 1, Byte: 40 << 10}, {Line: 20, Column: 1, Byte: 70 << 10}, {Line: 30, Column: 1, Byte: 100 << 10}}
	for _, tc := range []struct {
		name  string
		size  int
		shape brackets
		cpus  int
		want  []int // the cuts' bytes
	}{
		{"one CPU", 128 << 10, brackets{ok: true, tops: tops}, 1, nil},
		{"too small to cut", 7 << 10, brackets{ok: true, tops: tops}, 4, nil},
		{"the scan gave up", 128 << 10, brackets{tops: tops}, 4, nil},
		{"no top-level lines", 128 << 10, brackets{ok: true}, 4, nil},
		{"halves", 128 << 10, brackets{ok: true, tops: tops}, 2, []int{70 << 10}},
		{"quarters, at the lines after", 128 << 10, brackets{ok: true, tops: tops}, 4, []int{40 << 10, 70 << 10, 100 << 10}},
		{"no line past the middle", 200 << 10, brackets{ok: true, tops: tops[:1]}, 2, nil},
		{"one line for two cuts", 96 << 10, brackets{ok: true, tops: tops[1:2]}, 3, []int{70 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for _, c := range partCuts(tc.size, tc.shape, tc.cpus) {
				got = append(got, c.Byte)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cuts at %v, want %v", got, tc.want)
			}
		})
	}
}

// A large file parsed in parts gives the body the whole file parses to,
// says where a diagnostic is in the same words, and a file the parser
// would complain of gets the parser's own diagnostics.
func TestParseInParts(t *testing.T) {
	src := []byte(manyPods(1000))
	shape := scanBrackets(src, topGap)
	cuts := partCuts(len(src), shape, 4)
	if len(cuts) != 3 {
		t.Fatalf("a file of %d bytes is cut at %v, want 3 places", len(src), cuts)
	}
	whole, diags := hclsyntax.ParseConfig(src, "main.hcl", hcl.InitialPos)
	requireNoErrors(t, diags)
	parts, ok := parseParts(src, "main.hcl", cuts, false)
	if !ok {
		t.Fatal("the parts did not parse")
	}
	if !reflect.DeepEqual(parts.Body, whole.Body) {
		t.Fatal("the parts parse to another body than the whole file")
	}
	for _, at := range []int{0, cuts[0].Byte - 1, cuts[0].Byte, cuts[1].Byte + 200, len(src) - 1} {
		type nav interface{ ContextString(int) string }
		got, want := parts.Nav.(nav).ContextString(at), whole.Nav.(nav).ContextString(at)
		if got != want {
			t.Errorf("offset %d: context %q, the whole file's %q", at, got, want)
		}
	}

	for name, broken := range map[string][]byte{
		"an error in the last part": bytes.Replace(src, []byte(`pod "p990" {`), []byte(`pod "p990" { =`), 1),
		"an attribute set twice":    append(bytes.Replace(src, []byte("# generated\n"), []byte("tag = 1\n"), 1), "tag = 2\n"...),
	} {
		t.Run(name, func(t *testing.T) {
			shape := scanBrackets(broken, topGap)
			if _, ok := parseParts(broken, "main.hcl", partCuts(len(broken), shape, 4), false); ok {
				t.Fatal("the parts parsed")
			}
			_, got := parseHCL(broken, "main.hcl", shape)
			_, want := hclsyntax.ParseConfig(broken, "main.hcl", hcl.InitialPos)
			if !got.HasErrors() || got.Error() != want.Error() {
				t.Errorf("diagnostics\n%v\nwant the parser's\n%v", got, want)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	src := []byte(manyPods(500))
	shape := scanBrackets(src, topGap)
	b.SetBytes(int64(len(src)))
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			hclsyntax.ParseConfig(src, "main.hcl", hcl.InitialPos)
		}
	})
	b.Run("parts", func(b *testing.B) {
		for b.Loop() {
			parseHCL(src, "main.hcl", shape)
		}
	})
}

// A load of a file parsed in parts places a decoding error as a load of
// the whole file would: its line, and the block it is in when printed.
func TestLoadInParts(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	src := strings.Replace(manyPods(1000), `pod "p990" {`, `pod "p990" {
  colour = "blue"`, 1)
	if cuts := partCuts(len(src), scanBrackets([]byte(src), topGap), runtime.GOMAXPROCS(0)); len(cuts) != 3 {
		t.Fatalf("the file is cut at %v, want 3 places", cuts)
	}
	dir := filepath.Join(t.TempDir(), "stack")
	writeDir(t, dir, files{"main.hcl": src})
	loader := NewLoader(isolated(Options{}))
	_, diags := loader.Load(dir)
	requireDiags(t, files{"main.hcl": src}, diags, diagWant{summary: "Unsupported argument", detail: `"colour"`, file: "main.hcl", at: "colour"})
	var out strings.Builder
	if err := hcl.NewDiagnosticTextWriter(&out, loader.Files(), 0, false).WriteDiagnostics(diags); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("on %s line %d, in pod \"p990\":", filepath.Join(dir, "main.hcl"), lineOf(t, src, "colour")); !strings.Contains(out.String(), want) {
		t.Errorf("printed\n%s\nwant it to say %q", out.String(), want)
	}
}

// The for expressions of a file parsed in parts count against the load's
// budget, in whichever part they are.
func TestLoadInPartsGuardsIterations(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	src := strings.Replace(manyPods(1000), `env     = { N = "990"`, `env     = { N = tostring(length([for i in range(20) : i]))`, 1)
	dir := filepath.Join(t.TempDir(), "stack")
	writeDir(t, dir, files{"main.hcl": src})
	l := NewLoader(isolated(Options{}))
	l.maxIterations = 10
	_, diags := l.Load(dir)
	for _, d := range diags {
		if strings.Contains(d.Detail, "take more than") && d.Subject != nil && d.Subject.Start.Line == lineOf(t, src, "range(20)") {
			return
		}
	}
	t.Errorf("the budget of 10 steps was not told at the 20-step for expression; got:\n%s", formatDiags(diags))
}
