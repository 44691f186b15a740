package spec

import (
	"math"
	"os"
	"path/filepath"
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

// bracketDepth, where it decides, sees the depth the lexer's tokens give,
// so that skipping the lexer for it never lets a deep file through.
func FuzzBracketDepth(f *testing.F) {
	for _, seed := range []string{
		"pod \"a\" {\n  container \"b\" { image = \"x\" }\n}\n",
		"x = [[[[1]]]]\n",
		"x = \"}}}}\" # [[[\ny = [[\n",
		"x = \"a\\\"[[\" /* ]] */ y = {a = [(1)]}\n",
		"x = \"${[[[[]]]]}\"\n",
		"x = <<EOT\n[[[\nEOT\n",
		"// ]]]]\nx = [[[[\n",
		"x = \"\\\\\" [[\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		depth, ok := bracketDepth(src)
		if !ok {
			return
		}
		tokens, _ := hclsyntax.LexConfig(src, "f.hcl", hcl.InitialPos)
		lexed, _ := tokenNesting(tokens, math.MaxInt)
		if lexed > depth {
			t.Fatalf("bracketDepth = %d, the lexer's tokens nest %d deep in %q", depth, lexed, src)
		}
	})
}
