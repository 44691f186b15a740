package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// AutoVarsFile is loaded from the configuration directory when present.
const AutoVarsFile = "berth.auto.berthvars"

// EnvVarPrefix prefixes environment variables that set input variables.
const EnvVarPrefix = "BERTH_VAR_"

type variable struct {
	name        string
	ty          cty.Type
	def         cty.Value
	sensitive   bool
	validations []validation
	declRange   hcl.Range
}

type validation struct {
	condition hcl.Expression
	message   hcl.Expression
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "condition", Required: true}, {Name: "error_message", Required: true},
}}

// variables decodes variable blocks and resolves each one's value from, lowest
// precedence first: default, berth.auto.berthvars, --var-file, BERTH_VAR_*, --var.
func (l *Loader) variables(dir string, blocks []*hcl.Block) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	decls := map[string]*variable{}
	var order []string
	for _, b := range blocks {
		v, d := decodeVariable(b, l.iter.context())
		diags = append(diags, d...)
		if prev, dup := decls[v.name]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
				Detail: fmt.Sprintf("Variable %q is already declared at %s.", v.name, prev.declRange), Subject: b.DefRange.Ptr()})
			continue
		}
		decls[v.name] = v
		order = append(order, v.name)
	}
	if diags.HasErrors() {
		return nil, diags
	}

	values := map[string]cty.Value{}
	for name, v := range decls {
		if !v.def.IsNull() {
			values[name] = v.def
		}
	}

	// Variable files: the automatic one, then --var-file in order.
	varFiles := []string{}
	if _, err := os.Stat(filepath.Join(dir, AutoVarsFile)); err == nil {
		varFiles = append(varFiles, filepath.Join(dir, AutoVarsFile))
	}
	varFiles = append(varFiles, l.opts.VarFiles...)
	for _, path := range varFiles {
		diags = append(diags, l.readVarFile(path, decls, values)...)
	}

	// Environment, then the command line, which wins.
	env := l.opts.Environ()
	sort.Strings(env)
	for _, kv := range env {
		k, raw, ok := strings.Cut(kv, "=")
		name := strings.TrimPrefix(k, EnvVarPrefix)
		if !ok || name == k {
			continue
		}
		if v := decls[name]; v != nil { // unknown names in the environment are not ours to judge
			val, d := parseRawValue(raw, v, "environment variable "+k, l.iter.context())
			diags = append(diags, d...)
			values[name] = val
		}
	}
	for _, kv := range l.opts.Vars {
		name, raw, ok := strings.Cut(kv, "=")
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid --var option",
				Detail: fmt.Sprintf("%q is not NAME=VALUE. Write it as --var %s=VALUE.", kv, kv)})
			continue
		}
		v := decls[name]
		if v == nil {
			diags = append(diags, undeclared(name, order, "--var "+name+"=...", nil)) // the value may be a secret
			continue
		}
		val, d := parseRawValue(raw, v, "--var "+name, l.iter.context())
		diags = append(diags, d...)
		values[name] = val
	}
	if diags.HasErrors() {
		return nil, diags
	}

	// Every variable needs a value; convert to its type and mark secrets.
	out := map[string]cty.Value{}
	for _, name := range order {
		v := decls[name]
		val, ok := values[name]
		if (!ok || val.IsNull()) && l.opts.UnsetUnknown {
			val = cty.UnknownVal(v.ty).Mark(unsetMark)
			if v.sensitive {
				val = val.Mark(sensitiveMark)
			}
			out[name] = val
			continue
		}
		if !ok || val.IsNull() {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No value for required variable",
				Detail:  fmt.Sprintf("Variable %q has no default and no value was given. Set it with --var %s=..., in %s, a --var-file, or the environment variable %s%s.", name, name, AutoVarsFile, EnvVarPrefix, name),
				Subject: v.declRange.Ptr()})
			continue
		}
		conv, err := convert.Convert(val, v.ty)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail: fmt.Sprintf("The value of variable %q does not fit its type: %s.", name, err), Subject: v.declRange.Ptr()})
			continue
		}
		if v.sensitive {
			conv = conv.Mark(sensitiveMark)
		}
		out[name] = conv
	}
	if diags.HasErrors() {
		return nil, diags
	}
	for _, name := range order {
		if out[name].HasMark(unsetMark) {
			continue // nothing to check yet
		}
		diags = append(diags, checkValidations(decls[name], out, l.functions(dir))...)
	}
	return out, diags
}

// decodeVariable reads a variable block; ctx is the budget alone, since a
// default may not call functions or name variables.
func decodeVariable(b *hcl.Block, ctx *hcl.EvalContext) (*variable, hcl.Diagnostics) {
	v := &variable{name: b.Labels[0], ty: cty.DynamicPseudoType, def: cty.NullVal(cty.DynamicPseudoType), declRange: b.DefRange}
	content, diags := b.Body.Content(variableSchema)
	if !hclsyntax.ValidIdentifier(v.name) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable name",
			Detail: "A variable name must start with a letter or underscore and contain only letters, digits, underscores and dashes.", Subject: b.LabelRanges[0].Ptr()})
	}
	if a := content.Attributes["type"]; a != nil {
		ty, d := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, d...)
		v.ty = ty
	}
	e := &evaluator{ctx: nil}
	v.sensitive = e.boolean(content.Attributes["sensitive"], false)
	e.str(content.Attributes["description"], "")
	if a := content.Attributes["default"]; a != nil {
		val, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			conv, err := convert.Convert(val, v.ty)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid default value for variable",
					Detail: fmt.Sprintf("The default does not fit the variable's type: %s.", err), Subject: a.Expr.Range().Ptr()})
			}
			v.def = conv
		}
	}
	diags = append(diags, e.diags...)
	for _, vb := range content.Blocks {
		vc, d := vb.Body.Content(validationSchema)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		v.validations = append(v.validations, validation{condition: vc.Attributes["condition"].Expr, message: vc.Attributes["error_message"].Expr})
	}
	return v, diags
}

func checkValidations(v *variable, all map[string]cty.Value, fns map[string]function.Function) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.name: all[v.name]})},
		Functions: fns,
	}
	for _, val := range v.validations {
		res, d := val.condition.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		res, _ = res.Unmark()
		if res.Type() != cty.Bool || res.IsNull() {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid validation condition",
				Detail: "The condition must be true or false.", Subject: val.condition.Range().Ptr()})
			continue
		}
		if res.True() {
			continue
		}
		msg := "The value is not valid."
		if m, d := val.message.Value(ctx); !d.HasErrors() && m.Type() == cty.String && !m.IsNull() {
			if m.ContainsMarked() {
				msg = "The value is not valid. (The rule's error_message uses a sensitive value, so it is not shown.)"
			} else {
				msg = m.AsString()
			}
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
			Detail: fmt.Sprintf("%s\n\nThis was checked by the validation rule at %s.", msg, val.condition.Range()), Subject: v.declRange.Ptr()})
	}
	return diags
}

// readVarFile reads NAME = VALUE assignments into values. Its diagnostics
// come without source lines: a variable file is where secrets are
// written, and any line of it may hold one.
func (l *Loader) readVarFile(path string, decls map[string]*variable, values map[string]cty.Value) hcl.Diagnostics {
	f, diags := l.parseConfigFile(path)
	delete(l.files, path) // Files() feeds the diagnostic writer's snippets
	if diags.HasErrors() {
		return diags
	}
	attrs, d := f.Body.JustAttributes()
	diags = append(diags, d...)
	names := make([]string, 0, len(decls))
	for n := range decls {
		names = append(names, n)
	}
	sort.Strings(names)
	for name, a := range attrs {
		if decls[name] == nil {
			diags = append(diags, undeclared(name, names, path, a.NameRange.Ptr()))
			continue
		}
		val, d := a.Expr.Value(l.iter.context())
		diags = append(diags, d...)
		if !d.HasErrors() {
			values[name] = val
		}
	}
	return diags
}

// parseRawValue reads a value given as text (environment or --var): the
// text itself for string variables, an HCL expression for other types.
func parseRawValue(raw string, v *variable, source string, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if v.ty == cty.String || v.ty == cty.DynamicPseudoType {
		return cty.StringVal(raw), nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), source, hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for variable",
			Detail: fmt.Sprintf("The value of %s is not a valid HCL expression for type %s.", source, typeexpr.TypeString(v.ty))}}
	}
	guardIterations(expr)
	val, diags := expr.Value(ctx)
	return val, diags
}

func undeclared(name string, declared []string, source string, rng *hcl.Range) *hcl.Diagnostic {
	detail := fmt.Sprintf("%s sets variable %q, but no variable block declares it.", source, name)
	if s := Suggest(name, declared); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	} else {
		detail += fmt.Sprintf(" Declare it with variable %q {}.", name)
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable", Detail: detail, Subject: rng}
}

// evalLocals evaluates locals in dependency order: each round evaluates the
// locals whose references to other locals are all known.
func evalLocals(ctx *hcl.EvalContext, blocks []*hcl.Block) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	pending := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		attrs, d := b.Body.JustAttributes()
		diags = append(diags, d...)
		for name, a := range attrs {
			if prev, dup := pending[name]; dup {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate local value",
					Detail: fmt.Sprintf("local.%s is already defined at %s.", name, prev.NameRange), Subject: a.NameRange.Ptr()})
				continue
			}
			pending[name] = a
		}
	}
	done := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for _, name := range sortedKeys(pending) {
			a := pending[name]
			if !localsReady(a.Expr, pending) {
				continue
			}
			lctx := ctx.NewChild()
			lctx.Variables = map[string]cty.Value{"local": cty.ObjectVal(done)}
			val, d := a.Expr.Value(lctx)
			diags = append(diags, d...)
			if why := tooBig(val); why != "" {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value too large",
					Detail: fmt.Sprintf("local.%s %s, the most berth computes. Build it from smaller parts, or read it from a file.", name, why), Subject: a.Expr.Range().Ptr()})
				val = cty.DynamicVal
			}
			done[name] = val
			delete(pending, name)
			progress = true
		}
		if !progress {
			for _, name := range sortedKeys(pending) {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cycle in local values",
					Detail: fmt.Sprintf("local.%s depends on itself through other locals. Break the cycle.", name), Subject: pending[name].Expr.Range().Ptr()})
			}
			break
		}
	}
	return done, diags
}

// localsReady reports whether every local an expression refers to has been
// evaluated. References to undefined locals count as ready so the evaluator
// reports them with its own "unsupported attribute" message.
func localsReady(expr hcl.Expression, pending map[string]*hcl.Attribute) bool {
	for _, t := range expr.Variables() {
		if t.RootName() != "local" || len(t) < 2 {
			continue
		}
		if attr, ok := t[1].(hcl.TraverseAttr); ok {
			if _, isPending := pending[attr.Name]; isPending {
				return false
			}
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
