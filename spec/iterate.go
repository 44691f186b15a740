package spec

import (
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// MaxIterations bounds the steps that the for expressions of one load
// take, all together: nested for expressions multiply (three over
// range(1000) are a billion steps) while every value stays small.
const MaxIterations = 1_000_000

// iterateFunc counts the steps of for expressions: each one's "if" clause
// (made "if true" where it has none) passes through it. "for" is the word
// users see in its error.
const iterateFunc = "for"

// guardIterations makes every for expression in node, templates' %{ for }
// included, count its steps against its load's budget, in the "if" clause
// that HCL evaluates before each element's value: once the budget is
// spent, each step fails before its value, which may hold a further for
// expression, is computed.
func guardIterations(node hclsyntax.Node) {
	hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
		fe, ok := n.(*hclsyntax.ForExpr)
		if !ok {
			return nil
		}
		if call, ok := fe.CondExpr.(*hclsyntax.FunctionCallExpr); ok && call.Name == iterateFunc {
			return nil // guarded already: a cached file
		}
		r := fe.CollExpr.Range()
		call := &hclsyntax.FunctionCallExpr{Name: iterateFunc, NameRange: r, OpenParenRange: r, CloseParenRange: r}
		if fe.CondExpr != nil {
			call.Args = []hclsyntax.Expression{fe.CondExpr}
		}
		fe.CondExpr = call
		return nil
	})
}

// iterations is one load's budget of for-expression steps.
type iterations struct {
	used atomic.Int64
	// max is the budget: MaxIterations, or less in tests.
	max int64
}

// spent says whether a step past the budget was asked for.
func (it *iterations) spent() bool { return it.used.Load() > it.max }

// function counts a step and passes the "if" clause through (true without
// one).
func (it *iterations) function() function.Function {
	return function.New(&function.Spec{
		VarParam: &function.Parameter{Name: "condition", Type: cty.DynamicPseudoType,
			AllowNull: true, AllowUnknown: true, AllowMarked: true, AllowDynamicType: true},
		Type: func(args []cty.Value) (cty.Type, error) {
			if len(args) == 0 {
				return cty.Bool, nil
			}
			return args[0].Type(), nil
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			switch n := it.used.Add(1); {
			case n == it.max+1:
				return cty.NilVal, fmt.Errorf("the for expressions of this configuration take more than %d steps in all; iterate over less", it.max)
			case n > it.max:
				// Said once: the steps left are skipped without a word (HCL
				// skips an element whose "if" is unknown).
				return cty.UnknownVal(cty.Bool), nil
			}
			if len(args) == 0 {
				return cty.True, nil
			}
			return args[0], nil
		},
	})
}

// context is an evaluation context with nothing but the budget, for the
// places where a configuration may not call functions or name variables.
func (it *iterations) context() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{iterateFunc: it.function()}}
}
