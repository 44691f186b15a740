package spec

import (
	"fmt"
	"unicode/utf8"

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
	src, diags := readConfigFile(path)
	if diags.HasErrors() {
		return nil, diags
	}
	if d := checkNesting(src, path, scanBrackets(src, topGap)); d.HasErrors() {
		return nil, d
	}
	return src, nil
}

// readConfigFile reads a configuration or variable file, within its size
// limit.
func readConfigFile(path string) ([]byte, hcl.Diagnostics) {
	src, err := readFile(path, MaxConfigFile)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration file",
			Detail: fmt.Sprintf("%v. Configuration and variable files must be regular files of at most %s.", err, bytesText(MaxConfigFile))}}
	}
	return src, nil
}

// parseConfigFile reads and parses one HCL file of a configuration, or
// takes it from the ParseCache when its bytes are the ones parsed before.
func (l *Loader) parseConfigFile(path string) (*hcl.File, hcl.Diagnostics) {
	if f := l.files[path]; f != nil {
		return f, nil // a load reads a file once
	}
	src, diags := readConfigFile(path)
	if diags.HasErrors() {
		return nil, diags
	}
	var sum [32]byte
	if c := l.opts.Parsed; c != nil {
		var f *hcl.File
		if f, sum = c.get(path, src); f != nil {
			l.files[path] = f
			return f, nil
		}
	}
	shape := scanBrackets(src, topGap)
	if d := checkNesting(src, path, shape); d.HasErrors() {
		return nil, d
	}
	f, diags := parseHCL(src, path, shape)
	if f != nil {
		l.files[path] = f
		if l.opts.Parsed != nil && len(diags) == 0 {
			l.opts.Parsed.put(path, sum, f)
		}
	}
	return f, diags
}

// checkNesting refuses a file whose brackets nest deeper than MaxNesting,
// before the parser, which recurses once per level, meets it. The lexer it
// uses does not recurse.
func checkNesting(src []byte, path string, shape brackets) hcl.Diagnostics {
	if shape.ok && shape.depth <= MaxNesting {
		return nil // no template or heredoc: the brackets alone tell
	}
	tokens, _ := hclsyntax.LexConfig(src, path, hcl.InitialPos) // lexing errors are the parser's to report
	if _, at := tokenNesting(tokens, MaxNesting); at >= 0 {
		r := tokens[at].Range
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Nested too deeply", Subject: &r,
			Detail: fmt.Sprintf("Brackets, braces and interpolations nest more than %d levels deep here. Flatten the expression, or move data into locals.", MaxNesting)}}
	}
	return nil
}

// tokenNesting is how deep the tokens' brackets, braces and
// interpolations nest, up to the first token that goes deeper than limit,
// whose index it returns (-1 when none does).
func tokenNesting(tokens hclsyntax.Tokens, limit int) (deepest, at int) {
	depth := 0
	for i, t := range tokens {
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
			deepest = max(deepest, depth)
			if depth > limit {
				return deepest, i
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenTemplateSeqEnd:
			depth = max(depth-1, 0)
		}
	}
	return deepest, -1
}

// brackets is what one pass over a file's bytes tells of it.
type brackets struct {
	// depth is the deepest its brackets nest outside quoted strings and
	// comments.
	depth int
	// tops are lines that begin outside any bracket, string or comment,
	// at least the scan's gap apart: where the file may be cut into parts
	// that parse alone (a newline there ends whatever came before).
	tops []hcl.Pos
	// ok is false where the scan gave up and the lexer must decide.
	ok bool
}

// minPart is the least a part of a file parsed on its own should hold:
// parsing 4 KiB takes about a millisecond, against microseconds to start
// a goroutine. topGap is the gap between the tops a scan keeps, which
// bounds how many a hostile file of blank lines makes it keep.
const (
	minPart = 4 << 10
	topGap  = 4 << 10
)

// scanBrackets finds how deep the brackets of src nest outside quoted
// strings and comments, and where its top-level lines begin, without
// lexing: lexing a 500-pod file only to count its brackets was a third of
// its load. It gives up (ok false) at what it does not model, where the
// lexer must decide: a template interpolation or directive, a heredoc, a
// quoted string that runs into a line end, a carriage return outside a
// line end, a string or comment the file ends in, bytes that are not
// UTF-8. Where it does not give up, it sees the bracket tokens the lexer
// would (FuzzBrackets checks that against the lexer, and that the parts
// between its tops parse as the whole file does).
func scanBrackets(src []byte, gap int) brackets {
	var b brackets
	if !utf8.Valid(src) {
		return b // the lexer's characters may then swallow a bracket
	}
	const (
		code = iota
		quoted
		lineComment
		blockComment
	)
	state, cur, line, last := code, 0, 1, 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		next := byte(0)
		if i+1 < len(src) {
			next = src[i+1]
		}
		if c == '\n' {
			if state == quoted {
				return brackets{} // a string the lexer ends at the line's end
			}
			line++
			if state == lineComment {
				state = code
			}
			if state == code && cur == 0 && i+1-last >= gap && i+1 < len(src) {
				last = i + 1
				b.tops = append(b.tops, hcl.Pos{Line: line, Column: 1, Byte: last})
			}
			continue
		}
		if c == '\r' && next != '\n' && state != quoted {
			return brackets{} // the lexer's newline rules for a lone one are its own
		}
		switch state {
		case code:
			switch {
			case c == '"':
				state = quoted
			case c == '#', c == '/' && next == '/':
				state = lineComment
			case c == '/' && next == '*':
				state, i = blockComment, i+1
			case (c == '$' || c == '%') && next == '{', c == '<' && next == '<':
				return brackets{}
			case c == '{' || c == '[' || c == '(':
				cur++
				b.depth = max(b.depth, cur)
			case c == '}' || c == ']' || c == ')':
				cur = max(cur-1, 0)
			}
		case quoted:
			switch {
			case c == '\\':
				if next == '\n' || next == '\r' {
					return brackets{}
				}
				i++
			case c == '"':
				state = code
			case c == '\r', (c == '$' || c == '%') && next == '{':
				return brackets{}
			}
		case blockComment:
			if c == '*' && next == '/' {
				state, i = code, i+1
			}
		}
	}
	// A string or comment still open at the end is not one to the lexer,
	// which reads on as code.
	b.ok = state == code
	if !b.ok {
		return brackets{}
	}
	return b
}
