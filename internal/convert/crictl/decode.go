package crictl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

// A document is one decoded crictl file: the CRI value, as crictl itself
// would read it, and every field the file sets, so that nothing the
// conversion does not carry over goes unreported.
type document struct {
	file string
	// set are the fields with a non-zero value, by path
	// ("port_mappings[1].host_port"); maps are one entry each.
	set []field
	// unknown are keys that match no field of the CRI type: crictl ignores
	// them too, which is usually a misspelling.
	unknown []string
}

type field struct {
	path    string // with indexes: mounts[0].host_path
	pattern string // without: mounts[].host_path
	value   any    // the decoded JSON value
}

// decode reads a crictl pod or container config (JSON, or YAML turned into
// JSON, as crictl's decoder does) into out.
func decode(file string, data []byte, out any) (*document, error) {
	raw := bytes.TrimSpace(data)
	if !bytes.HasPrefix(raw, []byte("{")) {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: not JSON or YAML: %w", file, err)
		}
		raw = j
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	doc := &document{file: file}
	doc.walk(tree, reflect.TypeOf(out), "", "")
	return doc, nil
}

// walk follows the JSON tree along the Go type, the way encoding/json
// matches keys to fields (exact name, else case-insensitive).
func (d *document) walk(v any, t reflect.Type, path, pattern string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return
	}
	switch {
	case t.Kind() == reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := jsonField(t, k)
			if !ok {
				d.unknown = append(d.unknown, join(path, k))
				continue
			}
			d.walk(obj[k], f.Type, join(path, f.name), join(pattern, f.name))
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		list, _ := v.([]any)
		for i, e := range list {
			d.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), pattern+"[]")
		}
	case t.Kind() == reflect.Map:
		if obj, ok := v.(map[string]any); ok && len(obj) > 0 {
			d.set = append(d.set, field{path, pattern, v})
		}
	default:
		if !isZero(v) {
			d.set = append(d.set, field{path, pattern, v})
		}
	}
}

type namedField struct {
	reflect.StructField
	name string
}

func jsonField(t reflect.Type, key string) (namedField, bool) {
	var fold *namedField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		if name == key {
			return namedField{f, name}, true
		}
		if fold == nil && strings.EqualFold(name, key) {
			fold = &namedField{f, name}
		}
	}
	if fold != nil {
		return *fold, true
	}
	return namedField{}, false
}

func isZero(v any) bool {
	switch v := v.(type) {
	case bool:
		return !v
	case string:
		return v == ""
	case json.Number:
		return strings.Trim(string(v), "0.-+eE") == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return v == nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decodePod reads a PodSandboxConfig.
func decodePod(file string, data []byte) (*cri.PodSandboxConfig, *document, error) {
	cfg := &cri.PodSandboxConfig{}
	doc, err := decode(file, data, cfg)
	return cfg, doc, err
}

// decodeContainer reads a ContainerConfig.
func decodeContainer(file string, data []byte) (*cri.ContainerConfig, *document, error) {
	cfg := &cri.ContainerConfig{}
	doc, err := decode(file, data, cfg)
	return cfg, doc, err
}
