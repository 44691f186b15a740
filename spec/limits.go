package spec

import (
	"fmt"
	"math"
	"math/big"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// The most a value computed while loading may hold. A configuration can
// compute values far larger than itself (setproduct, range, a string
// doubled through locals), and berth must refuse those, not run out of
// memory.
const (
	MaxValueBytes = 16 << 20 // bytes of strings in one value
	MaxCollection = 100_000  // elements in one value, counted deeply
)

// valueSize sums a value's string bytes and elements, stopping as soon as
// either limit is passed.
func valueSize(v cty.Value) (bytes, elems int) {
	var walk func(cty.Value) bool
	walk = func(v cty.Value) bool {
		v, _ = v.Unmark()
		if !v.IsKnown() || v.IsNull() {
			return true
		}
		ty := v.Type()
		switch {
		case ty == cty.String:
			bytes += len(v.AsString())
		case ty.IsListType() || ty.IsSetType() || ty.IsTupleType() || ty.IsMapType() || ty.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, el := it.Element()
				elems++
				if ty.IsMapType() {
					bytes += len(k.AsString())
				}
				if bytes > MaxValueBytes || elems > MaxCollection || !walk(el) {
					return false
				}
			}
		}
		return bytes <= MaxValueBytes && elems <= MaxCollection
	}
	walk(v)
	return bytes, elems
}

// tooBig says how a value passes the limits, or "".
func tooBig(v cty.Value) string {
	bytes, elems := valueSize(v)
	switch {
	case bytes > MaxValueBytes:
		return fmt.Sprintf("holds more than %d MiB of text", MaxValueBytes>>20)
	case elems > MaxCollection:
		return fmt.Sprintf("holds more than %d elements", MaxCollection)
	}
	return ""
}

// bounded wraps every function so that one whose result would pass the
// limits fails instead (the functions whose result can be far larger than
// their arguments are checked before they run, every result after), and
// so that an error about a sensitive argument never shows its value: the
// standard functions quote what they could not parse.
func bounded(fns map[string]function.Function) map[string]function.Function {
	out := make(map[string]function.Function, len(fns))
	for name, f := range fns {
		if name == "try" || name == "can" { // they take expressions, not values
			out[name] = f
			continue
		}
		out[name] = boundedFunc(name, f)
	}
	return out
}

func boundedFunc(name string, f function.Function) function.Function {
	params := f.Params()
	for i := range params {
		params[i].AllowMarked = true
	}
	varParam := f.VarParam()
	if varParam != nil {
		vp := *varParam
		vp.AllowMarked = true
		varParam = &vp
	}
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      params,
		VarParam:    varParam,
		Type: func(args []cty.Value) (cty.Type, error) {
			plain, marks := unmarkAll(args)
			ty, err := f.ReturnTypeForValues(plain)
			if err != nil && len(marks) > 0 {
				return cty.NilType, fmt.Errorf("%s cannot take this sensitive value (it is not shown)", name)
			}
			return ty, err
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			plain, marks := unmarkAll(args)
			if err := precheck(name, plain); err != nil {
				return cty.NilVal, err
			}
			v, err := f.Call(plain)
			if err != nil {
				if len(marks) > 0 {
					return cty.NilVal, fmt.Errorf("%s failed on a sensitive value (it is not shown)", name)
				}
				return v, err
			}
			if why := tooBig(v); why != "" {
				return cty.NilVal, fmt.Errorf("the result of %s %s, the most berth computes", name, why)
			}
			return v.WithMarks(marks), nil
		},
	})
}

// unmarkAll strips the marks of args, deeply, and returns them together:
// a result computed from a sensitive value is sensitive as a whole.
func unmarkAll(args []cty.Value) ([]cty.Value, cty.ValueMarks) {
	plain := make([]cty.Value, len(args))
	marks := cty.ValueMarks{}
	for i, a := range args {
		v, pvm := a.UnmarkDeepWithPaths()
		for _, pm := range pvm {
			for m := range pm.Marks {
				marks[m] = struct{}{}
			}
		}
		plain[i] = v
	}
	return plain, marks
}

// precheck refuses the calls whose results would pass the limits, from
// their arguments alone.
func precheck(name string, args []cty.Value) error {
	for _, a := range args {
		if !a.IsWhollyKnown() {
			return nil
		}
	}
	over := func(n float64) error {
		if n > MaxCollection {
			return fmt.Errorf("%s would make %.0f elements, more than the %d berth computes", name, n, MaxCollection)
		}
		return nil
	}
	switch name {
	case "setproduct":
		n := 1.0
		for _, a := range args {
			a, _ = a.UnmarkDeep()
			if a.CanIterateElements() {
				n *= float64(a.LengthInt())
			}
		}
		return over(n)
	case "range":
		nums := make([]float64, len(args))
		for i, a := range args {
			a, _ = a.UnmarkDeep()
			if a.Type() != cty.Number || a.IsNull() {
				return nil
			}
			nums[i], _ = a.AsBigFloat().Float64()
		}
		start, end, step := 0.0, 0.0, 1.0
		switch len(nums) {
		case 1:
			end = nums[0]
		case 2:
			start, end = nums[0], nums[1]
			if end < start {
				step = -1
			}
		case 3:
			start, end, step = nums[0], nums[1], nums[2]
		}
		if step == 0 || math.IsInf(start, 0) || math.IsInf(end, 0) {
			return nil // range reports these itself
		}
		return over(math.Max(0, math.Ceil((end-start)/step)))
	case "join", "replace", "format", "formatlist", "indent":
		// Their results are at most about their arguments' size, times the
		// number of substitutions for replace.
		total := new(big.Int)
		for _, a := range args {
			b, e := valueSize(a)
			total.Add(total, big.NewInt(int64(b+e)))
		}
		if name == "replace" && len(args) == 3 {
			s, _ := args[0].UnmarkDeep()
			repl, _ := args[2].UnmarkDeep()
			if s.Type() == cty.String && repl.Type() == cty.String {
				total.Add(total, new(big.Int).Mul(big.NewInt(int64(len(s.AsString())+1)), big.NewInt(int64(len(repl.AsString())))))
			}
		}
		if total.Cmp(big.NewInt(MaxValueBytes)) > 0 {
			return fmt.Errorf("%s would make more than %d MiB of text, the most berth computes", name, MaxValueBytes>>20)
		}
	}
	return nil
}
