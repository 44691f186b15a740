package spec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/berth-dev/berth/internal/safefile"
)

// The most berth reads of one file: configuration and variable files,
// env files, and files read by functions (file, filesha256, templatefile).
// berth runs as root and its files come from whoever can commit: a FIFO, a
// device or a huge file must fail with a message, not hang or exhaust
// memory.
const (
	MaxConfigFile   = 4 << 20
	MaxEnvFile      = 1 << 20
	MaxFunctionFile = 16 << 20
	// MaxNesting bounds how deep brackets, braces and interpolations nest
	// in a file; the HCL parser recurses once per level.
	MaxNesting = 100
)

// readFile reads a regular file of at most max bytes, never blocking on
// a FIFO; symbolic links are followed (a configuration may link its files).
func readFile(path string, max int64) ([]byte, error) {
	return safefile.Read(path, max, safefile.Options{})
}

// bytesText writes a byte count for messages.
func bytesText(n int64) string { return safefile.Size(n) }

// ReadConfigSource reads one configuration or variable file for parsing:
// a regular file of at most MaxConfigFile bytes, nested at most
// MaxNesting deep.
func ReadConfigSource(path string) ([]byte, hcl.Diagnostics) {
	src, err := readFile(path, MaxConfigFile)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration file",
			Detail: fmt.Sprintf("%v. Configuration and variable files must be regular files of at most %s.", err, bytesText(MaxConfigFile))}}
	}
	if d := checkNesting(src, path); d.HasErrors() {
		return nil, d
	}
	return src, nil
}

// parseConfigFile reads and parses one HCL file of a configuration.
func (l *Loader) parseConfigFile(path string) (*hcl.File, hcl.Diagnostics) {
	src, diags := ReadConfigSource(path)
	if diags.HasErrors() {
		return nil, diags
	}
	f, diags := l.parser.ParseHCL(src, path)
	if f != nil {
		if body, ok := f.Body.(*hclsyntax.Body); ok {
			guardIterations(body)
		}
	}
	return f, diags
}

// checkNesting refuses a file whose brackets nest deeper than MaxNesting,
// before the parser, which recurses once per level, meets it. The lexer it
// uses does not recurse.
func checkNesting(src []byte, path string) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, path, hcl.InitialPos) // lexing errors are the parser's to report
	depth := 0
	for _, t := range tokens {
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
			if depth > MaxNesting {
				r := t.Range
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Nested too deeply", Subject: &r,
					Detail: fmt.Sprintf("Brackets, braces and interpolations nest more than %d levels deep here. Flatten the expression, or move data into locals.", MaxNesting)}}
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenTemplateSeqEnd:
			depth = max(depth-1, 0)
		}
	}
	return nil
}
