package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	ctycrypto "github.com/hashicorp/go-cty-funcs/crypto"
	ctyencoding "github.com/hashicorp/go-cty-funcs/encoding"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions is the function table available to expressions: the cty
// standard library under Terraform's names, plus env and file helpers whose
// relative paths resolve against the configuration directory.
func functions(dir string, lookupEnv func(string) (string, bool), iter *iterations) map[string]function.Function {
	fns := map[string]function.Function{
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"log": stdlib.LogFunc, "max": stdlib.MaxFunc, "min": stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc, "pow": stdlib.PowFunc, "signum": stdlib.SignumFunc,

		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc, "replace": stdlib.ReplaceFunc,
		"split": stdlib.SplitFunc, "strlen": stdlib.StrlenFunc, "strrev": stdlib.ReverseFunc,
		"substr": stdlib.SubstrFunc, "title": stdlib.TitleFunc, "trim": stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc, "trimsuffix": stdlib.TrimSuffixFunc,
		"trimspace": stdlib.TrimSpaceFunc, "upper": stdlib.UpperFunc,

		"chunklist": stdlib.ChunklistFunc, "coalesce": stdlib.CoalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
		"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
		"element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc, "index": stdlib.IndexFunc,
		"keys": stdlib.KeysFunc, "length": lengthFunc, "lookup": stdlib.LookupFunc,
		"merge": stdlib.MergeFunc, "range": stdlib.RangeFunc, "reverse": stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc, "setproduct": stdlib.SetProductFunc,
		"setsubtract": stdlib.SetSubtractFunc, "setunion": stdlib.SetUnionFunc,
		"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "values": stdlib.ValuesFunc,
		"zipmap": stdlib.ZipmapFunc,

		"csvdecode": stdlib.CSVDecodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "base64encode": ctyencoding.Base64EncodeFunc,
		"base64decode": ctyencoding.Base64DecodeFunc, "urlencode": ctyencoding.URLEncodeFunc,
		"md5": ctycrypto.Md5Func, "sha1": ctycrypto.Sha1Func, "sha256": ctycrypto.Sha256Func,
		"sha512": ctycrypto.Sha512Func,

		"formatdate": stdlib.FormatDateFunc, "timeadd": stdlib.TimeAddFunc,

		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),

		"try": tryfunc.TryFunc, "can": tryfunc.CanFunc,

		"env":        envFunc(lookupEnv),
		"file":       fileFunc(dir),
		"filesha256": fileSHA256Func(dir),
		"abspath":    absPathFunc(dir),
	}
	// templatefile may call every other function, but not itself.
	inner := bounded(fns)
	inner[iterateFunc] = iter.function()
	fns["templatefile"] = templateFileFunc(dir, inner)
	out := bounded(fns)
	out[iterateFunc] = iter.function()
	return out
}

// functions are the functions of the running load.
func (l *Loader) functions(dir string) map[string]function.Function {
	return functions(dir, l.opts.LookupEnv, l.iter)
}

// resolve makes a user-given path absolute against the configuration directory.
func resolve(dir, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(dir, path)
}

func envFunc(lookup func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "Returns an environment variable of the berth process, or the default when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default")
			}
			name := args[0].AsString()
			if v, ok := lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, function.NewArgErrorf(0, "environment variable %q is not set; set it or give env() a default: env(%q, \"...\")", name, name)
		},
	})
}

func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a file, relative to the configuration directory, as a UTF-8 string.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := readFile(resolve(dir, args[0].AsString()), MaxFunctionFile)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

func fileSHA256Func(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the hex SHA-256 of a file's content.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := readFile(resolve(dir, args[0].AsString()), MaxFunctionFile)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			sum := sha256.Sum256(b)
			return cty.StringVal(hex.EncodeToString(sum[:])), nil
		},
	})
}

func absPathFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns a path made absolute against the configuration directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(resolve(dir, args[0].AsString())), nil
		},
	})
}

func templateFileFunc(dir string, fns map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Description: "Renders a template file with the given variables.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := resolve(dir, args[0].AsString())
			src, err := readFile(path, MaxFunctionFile)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, function.NewArgErrorf(1, "vars must be an object or a map")
			}
			expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("template %s: %s", args[0].AsString(), diags.Error())
			}
			guardIterations(expr)
			inner := make(map[string]function.Function, len(fns))
			for k, f := range fns {
				if k != "templatefile" {
					inner[k] = f
				}
			}
			val, diags := expr.Value(&hcl.EvalContext{Variables: vars.AsValueMap(), Functions: inner})
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("template %s: %s", args[0].AsString(), diags.Error())
			}
			return val, nil
		},
	})
}

// lengthFunc is Terraform's length: of a collection, or of a string in
// characters (cty's own length takes only collections).
var lengthFunc = function.New(&function.Spec{
	Description: "Returns the number of elements of a collection, or of characters of a string.",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:        function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})
