package spec

import (
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Quoted strings are taken without evaluation where that gives what
// evaluation gives, and only there.
func TestQuotedLiterals(t *testing.T) {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"x": cty.StringVal("y")}}
	for _, tc := range []struct {
		expr string
		str  bool // quotedLiteral takes it
		list bool // quotedLiterals takes it
	}{
		{`"abc"`, true, false},
		{`""`, true, false},
		{"\"e\u0301\"", true, false}, // normalised by the parser, as by evaluation
		{`"a\"b\n"`, true, false},
		{`"a${x}"`, false, false},
		{`"${x}"`, false, false},
		{`"%{ if true }a%{ endif }"`, false, false},
		{"<<EOT\nline\nEOT\n", true, false},
		{`5`, false, false},
		{`x`, false, false},
		{`["a", "b"]`, false, true},
		{`[]`, false, true},
		{`["a", x]`, false, false},
		{`["a", 1]`, false, false},
		{`["a", ["b"]]`, false, false},
		{`tolist(["a"])`, false, false},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			expr, diags := hclsyntax.ParseExpression([]byte(tc.expr), "t.hcl", hcl.InitialPos)
			requireNoErrors(t, diags)
			attr := &hcl.Attribute{Name: "a", Expr: expr}
			if s, ok := quotedLiteral(expr); ok != tc.str {
				t.Errorf("quotedLiteral takes it: %v, want %v", ok, tc.str)
			} else if ok {
				if want, _ := (&evaluator{ctx: ctx}).eval(attr, cty.String).Unmark(); s != want.AsString() {
					t.Errorf("quotedLiteral = %q, evaluated %q", s, want.AsString())
				}
			}
			list, ok := quotedLiterals(expr)
			if ok != tc.list {
				t.Fatalf("quotedLiterals takes it: %v, want %v", ok, tc.list)
			}
			if !ok {
				return
			}
			e := &evaluator{ctx: ctx}
			v := e.eval(attr, cty.List(cty.String))
			want := make([]string, 0)
			for it := v.ElementIterator(); it.Next(); {
				_, el := it.Element()
				want = append(want, el.AsString())
			}
			if !reflect.DeepEqual(list, want) {
				t.Errorf("quotedLiterals = %#v, evaluated %#v", list, want)
			}
		})
	}
}
