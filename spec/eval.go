package spec

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// sensitiveMark is the cty mark carried by values of sensitive variables and
// everything computed from them.
const sensitiveMark = "sensitive"

// unsetMark is carried by the unknown value of a variable given no value
// (Options.UnsetUnknown) and by everything computed from it.
const unsetMark = "unset"

// evaluator turns attribute expressions into Go values. It collects
// diagnostics instead of stopping at the first one, so a user sees every
// problem of a file in one run.
type evaluator struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
	// seen indexes the ranges of e.diags' errors, up to seenUpTo.
	seen     map[rangeKey]bool
	seenUpTo int
	// unset are the expressions computed from variables given no value
	// (validate): no check reports on them.
	unset map[rangeKey]bool
}

type rangeKey struct {
	file       string
	start, end int
}

// eval evaluates an attribute and converts it to ty. It returns a null value
// (and records a diagnostic when the conversion fails) so callers can use the
// zero value and carry on.
func (e *evaluator) eval(attr *hcl.Attribute, ty cty.Type) cty.Value {
	if attr == nil {
		return cty.NullVal(ty)
	}
	v, diags := attr.Expr.Value(e.ctx)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return cty.NullVal(ty)
	}
	if !v.IsWhollyKnown() {
		if _, marks := v.UnmarkDeep(); marks.Has(unsetMark) {
			if e.unset == nil {
				e.unset = map[rangeKey]bool{}
			}
			r := attr.Expr.Range()
			e.unset[rangeKey{r.Filename, r.Start.Byte, r.End.Byte}] = true
			return cty.NullVal(ty) // computed from a variable validate was given no value for
		}
		e.errorf(attr.Expr.Range(), "Value not known", "The value of %q cannot be determined when the configuration is loaded.", attr.Name)
		return cty.NullVal(ty)
	}
	conv, err := convert.Convert(v, ty)
	if err != nil {
		e.errorf(attr.Expr.Range(), "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", attr.Name, err)
		return cty.NullVal(ty)
	}
	return conv
}

// quotedLiteral is the string a quoted string without interpolations
// stands for, which needs no evaluation: most strings of a large
// configuration are such, and evaluating and converting them through cty
// was a fifth of its load.
func quotedLiteral(expr hcl.Expression) (string, bool) {
	t, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || !t.IsStringLiteral() {
		return "", false
	}
	lit := t.Parts[0].(*hclsyntax.LiteralValueExpr) // what IsStringLiteral checked
	if lit.Val.Type() != cty.String || lit.Val.IsNull() || lit.Val.IsMarked() {
		return "", false
	}
	return lit.Val.AsString(), true
}

// quotedLiterals is quotedLiteral for a list of quoted strings.
func quotedLiterals(expr hcl.Expression) ([]string, bool) {
	tuple, ok := expr.(*hclsyntax.TupleConsExpr)
	if !ok {
		return nil, false
	}
	out := make([]string, len(tuple.Exprs))
	for i, el := range tuple.Exprs {
		if out[i], ok = quotedLiteral(el); !ok {
			return nil, false
		}
	}
	return out, true
}

// An expression reports one error: a check that runs on the value an
// earlier error replaced (a default, a zero) would only confuse, and could
// print a value the first error withheld.
func (e *evaluator) errorf(rng hcl.Range, summary, format string, args ...any) {
	if e.seen == nil {
		e.seen = map[rangeKey]bool{}
	}
	for ; e.seenUpTo < len(e.diags); e.seenUpTo++ { // the diagnostics appended since
		if d := e.diags[e.seenUpTo]; d.Severity == hcl.DiagError && d.Subject != nil {
			e.seen[rangeKey{d.Subject.Filename, d.Subject.Start.Byte, d.Subject.End.Byte}] = true
		}
	}
	if key := (rangeKey{rng.Filename, rng.Start.Byte, rng.End.Byte}); e.seen[key] || e.unset[key] {
		return
	}
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

// str evaluates a string attribute; sensitive values are allowed but the
// caller is told through the second result.
func (e *evaluator) str(attr *hcl.Attribute, def string) (string, bool) {
	if attr != nil {
		if s, ok := quotedLiteral(attr.Expr); ok {
			return s, false
		}
	}
	v := e.eval(attr, cty.String)
	sensitive := v.ContainsMarked()
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return def, sensitive
	}
	return v.AsString(), sensitive
}

// plainStr evaluates a string attribute that must not hold a secret, because
// it ends up in names, labels or plan output.
//
// A sensitive value is reported and replaced by def, so that no check
// after this one can print it.
func (e *evaluator) plainStr(attr *hcl.Attribute, def string) string {
	s, sensitive := e.str(attr, def)
	if sensitive {
		e.sensitiveNotAllowed(attr)
		return def
	}
	return s
}

// plainList is plainStr for a list of strings.
func (e *evaluator) plainList(attr *hcl.Attribute) []string {
	list, sensitive := e.strList(attr)
	if sensitive {
		e.sensitiveNotAllowed(attr)
		return nil
	}
	return list
}

func (e *evaluator) sensitiveNotAllowed(attr *hcl.Attribute) {
	e.errorf(attr.Expr.Range(), "Sensitive value not allowed", "%q is shown in plans and runtime metadata, so it cannot be computed from a sensitive variable.", attr.Name)
}

func (e *evaluator) boolean(attr *hcl.Attribute, def bool) bool {
	v := e.eval(attr, cty.Bool)
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return def
	}
	return v.True()
}

func (e *evaluator) integer(attr *hcl.Attribute, def int) int {
	v := e.eval(attr, cty.Number)
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return def
	}
	var n int
	if err := gocty.FromCtyValue(v, &n); err != nil {
		e.errorf(attr.Expr.Range(), "Invalid number", "%q must be a whole number: %s.", attr.Name, err)
		return def
	}
	return n
}

// strList evaluates a list of strings and says whether any element is sensitive.
func (e *evaluator) strList(attr *hcl.Attribute) ([]string, bool) {
	if attr != nil {
		if list, ok := quotedLiterals(attr.Expr); ok {
			return list, false
		}
	}
	v := e.eval(attr, cty.List(cty.String))
	sensitive := v.ContainsMarked()
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return nil, sensitive
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if el.IsNull() {
			e.errorf(attr.Expr.Range(), "Null list element", "%q cannot contain null.", attr.Name)
			continue
		}
		out = append(out, el.AsString())
	}
	return out, sensitive
}

// strMap evaluates a map of strings and returns the keys whose values are
// sensitive, sorted.
func (e *evaluator) strMap(attr *hcl.Attribute) (map[string]string, []string) {
	v := e.eval(attr, cty.Map(cty.String))
	v, marks := v.UnmarkDeepWithPaths()
	if v.IsNull() {
		return nil, nil
	}
	out := make(map[string]string, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		k, el := it.Element()
		if el.IsNull() {
			e.errorf(attr.Expr.Range(), "Null map value", "%q cannot contain null (key %q).", attr.Name, k.AsString())
			continue
		}
		out[k.AsString()] = el.AsString()
	}
	var sensitive []string
	for _, pm := range marks {
		if _, ok := pm.Marks[sensitiveMark]; !ok {
			continue
		}
		if len(pm.Path) == 0 { // the whole map
			for k := range out {
				sensitive = append(sensitive, k)
			}
			continue
		}
		if idx, ok := pm.Path[0].(cty.IndexStep); ok && idx.Key.Type() == cty.String {
			sensitive = append(sensitive, idx.Key.AsString())
		}
	}
	sort.Strings(sensitive)
	return out, dedupe(sensitive)
}

// plainMap is strMap for maps that must not hold secrets.
func (e *evaluator) plainMap(attr *hcl.Attribute) map[string]string {
	m, sensitive := e.strMap(attr)
	if len(sensitive) > 0 {
		e.errorf(attr.Expr.Range(), "Sensitive value not allowed", "%q is stored as runtime metadata and shown in plans, so it cannot be computed from a sensitive variable.", attr.Name)
	}
	return m
}

func (e *evaluator) duration(attr *hcl.Attribute, def time.Duration) time.Duration {
	s := e.plainStr(attr, "")
	if attr == nil || s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		e.errorf(attr.Expr.Range(), "Invalid duration", "%q must be a duration such as \"30s\", \"2m\" or \"1h30m\"; got %q.", attr.Name, s)
		return def
	}
	return d
}

// enum evaluates a string that must be one of allowed.
func (e *evaluator) enum(attr *hcl.Attribute, def string, allowed ...string) string {
	s := e.plainStr(attr, def)
	if attr == nil || s == def {
		return s
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	detail := fmt.Sprintf("%q must be one of %s; got %q.", attr.Name, quoteList(allowed), s)
	if sug := Suggest(s, allowed); sug != "" {
		detail += fmt.Sprintf(" Did you mean %q?", sug)
	}
	e.errorf(attr.Expr.Range(), "Invalid value", "%s", detail)
	return def
}

// Suggest returns the option closest to given, if it is close enough to be
// a likely misspelling: what "did you mean" offers.
func Suggest(given string, options []string) string {
	best, bestDist := "", 4
	for _, o := range options {
		if d := levenshtein.Distance(given, o, nil); d < bestDist {
			best, bestDist = o, d
		}
	}
	return best
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}
