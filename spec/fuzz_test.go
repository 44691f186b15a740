package spec

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The loader takes any bytes as a configuration file without panicking;
// what it cannot read is a diagnostic.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"pod \"a\" {\n  container \"c\" {\n    image = \"busybox\"\n  }\n}\n",
		"locals { x = [for i in range(3): i * 2] }\n",
		"variable \"v\" {\n  type = string\n  default = \"x\"\n}\npod \"p\" {\n  hostname = var.v\n}\n",
		"pod \"a\" { container \"c\" { image = \"b\" resources { cpus = 1e309 } } }",
		"((((((((((",
		"mirror \"..\" {}",
		"network \"n\" { subnet = \"10.0.0.0/8\" }",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := filepath.Join(t.TempDir(), "stack")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := NewLoader(Options{Environ: func() []string { return nil }}).Load(dir)
		if cfg == nil && !diags.HasErrors() {
			t.Fatal("no configuration and no error")
		}
	})
}

// The env_file parser takes any bytes.
func FuzzEnvFile(f *testing.F) {
	for _, seed := range []string{"A=1\n# c\nexport B=\"two\"\n", "=x", "A\x00=1", "A='x\n", ""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "e.env")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		env, err := readEnvFile(path)
		if err != nil {
			return
		}
		for k, v := range env {
			if k == "" || containsNUL(k) || containsNUL(v) {
				t.Fatalf("accepted %q=%q", k, v)
			}
		}
	})
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// scanBrackets, where it decides, sees the depth the lexer's tokens give,
// so that skipping the lexer for it never lets a deep file through; and
// the parts between its top-level lines, cut at every one, parse as the
// whole file does, or one of them reports what is wrong.
func FuzzBrackets(f *testing.F) {
	for _, seed := range []string{
		"pod \"a\" {\n  container \"b\" { image = \"x\" }\n}\n",
		"x = [[[[1]]]]\n",
		"x = \"}}}}\" # [[[\ny = [[\n",
		"x = \"a\\\"[[\" /* ]] */ y = {a = [(1)]}\n",
		"x = \"${[[[[]]]]}\"\n",
		"x = <<EOT\n[[[\nEOT\n",
		"// ]]]]\nx = [[[[\n",
		"x = \"\\\\\" [[\n",
		"a = 1\n\nb {\n  c = 2\n}\n# d\ne \"f\" {}\r\na = 3\n",
		"a = 1 +\n2\n/* x\ny */ b {\n}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		shape := scanBrackets(src, 1)
		if !shape.ok {
			return
		}
		tokens, _ := hclsyntax.LexConfig(src, "f.hcl", hcl.InitialPos)
		lexed, _ := tokenNesting(tokens, math.MaxInt)
		if lexed > shape.depth {
			t.Fatalf("scanBrackets: depth %d, the lexer's tokens nest %d deep in %q", shape.depth, lexed, src)
		}
		if shape.depth > MaxNesting || len(shape.tops) == 0 {
			return // the parser recurses once per level
		}
		whole, diags := hclsyntax.ParseConfig(src, "f.hcl", hcl.InitialPos)
		parts, ok := parseParts(src, "f.hcl", shape.tops, false)
		if !ok {
			return // parsed whole, then
		}
		if diags.HasErrors() {
			t.Fatalf("the parts of %q parsed, the whole file did not: %v", src, diags)
		}
		if !reflect.DeepEqual(parts.Body, whole.Body) {
			t.Fatalf("the parts of %q parse to another body than the whole file", src)
		}
	})
}
