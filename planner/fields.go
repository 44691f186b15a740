package planner

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sort"

	"github.com/berth-dev/berth/spec"
)

// podFields lists the fields that differ between the applied and the
// desired pod records. before may be nil when the record was not readable.
func podFields(before *spec.PodRecord, after spec.PodRecord) []FieldChange {
	if before == nil {
		return nil
	}
	return diffRecords(*before, after, spec.PodReplaceFields, nil)
}

// containerFields is podFields for containers. When only sensitive values
// changed, the records look equal (both redacted); the hash says otherwise,
// so the sensitive paths are listed without their values.
func containerFields(before *spec.ContainerRecord, after spec.ContainerRecord) []FieldChange {
	if before == nil {
		return nil
	}
	fields := diffRecords(*before, after, spec.ContainerReplaceFields, []string{"sensitive"})
	for _, f := range fields {
		if f.ForcesReplace {
			return fields
		}
	}
	paths := append(append([]string(nil), before.Sensitive...), after.Sensitive...)
	sort.Strings(paths)
	for i, p := range paths {
		if i > 0 && p == paths[i-1] {
			continue
		}
		fields = append(fields, FieldChange{Path: displayPath(p), Before: spec.Redacted, After: spec.Redacted, ForcesReplace: true})
	}
	return fields
}

// diffRecords flattens two records to path → value and returns the paths
// whose values differ, in path order.
func diffRecords(before, after any, replaceKeys, skip []string) []FieldChange {
	b, a := flatten(before), flatten(after)
	for _, k := range skip {
		delete(b, k)
		delete(a, k)
	}
	paths := map[string]bool{}
	for p := range b {
		paths[p] = true
	}
	for p := range a {
		paths[p] = true
	}
	var out []FieldChange
	for _, p := range sortedNames(paths) {
		bv, av := b[p], a[p]
		if reflect.DeepEqual(bv, av) {
			continue
		}
		out = append(out, FieldChange{Path: p, Before: bv, After: av, ForcesReplace: forcing(p, replaceKeys)})
	}
	return out
}

// flatten turns a record into path → JSON value. Objects are walked (so a
// map shows the one key that changed); lists and scalars are leaves.
func flatten(record any) map[string]any {
	raw, err := json.Marshal(record)
	if err != nil {
		panic("planner: encoding a record: " + err.Error()) // records are plain data
	}
	var tree map[string]any
	_ = json.Unmarshal(raw, &tree)
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			out[prefix] = v
			return
		}
		for k, child := range obj {
			walk(joinPath(prefix, k), child)
		}
	}
	for k, v := range tree {
		walk(k, v)
	}
	return out
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// joinPath writes map keys that are not plain identifiers in brackets, as
// labels["app.kubernetes.io/name"].
func joinPath(prefix, key string) string {
	if identifier.MatchString(key) {
		return prefix + "." + key
	}
	q, _ := json.Marshal(key)
	return prefix + "[" + string(q) + "]"
}

// displayPath turns a recorded sensitive path ("env.KEY") into the same form
// joinPath gives.
func displayPath(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			return joinPath(p[:i], p[i+1:])
		}
	}
	return p
}
