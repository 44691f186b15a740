package spec

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/language.md documents every block and argument the decoder takes,
// and nothing else: a section per block, headed by its path in backquotes,
// with a table row per argument.
func TestLanguageDocCoversTheSchema(t *testing.T) {
	raw, err := os.ReadFile("../docs/language.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^#{2,4} `([a-z_.]+)`")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	sections := map[string][]string{} // block path → the arguments its table lists
	var order []string
	current := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			current = m[1]
			if _, dup := sections[current]; dup {
				t.Errorf("block %s has two sections", current)
			}
			sections[current] = []string{}
			order = append(order, current)
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && current != "" {
			sections[current] = append(sections[current], m[1])
		}
	}

	schema := Schema()
	for _, b := range schema {
		documented, ok := sections[b.Path]
		if !ok {
			t.Errorf("block %s has no section (a heading \"## `%s`\")", b.Path, b.Path)
			continue
		}
		var names []string
		for _, a := range b.Attributes {
			names = append(names, a.Name)
			if !slices.Contains(documented, a.Name) {
				t.Errorf("%s: argument %s is not documented", b.Path, a.Name)
			}
		}
		for _, d := range documented {
			if !slices.Contains(names, d) {
				t.Errorf("%s: %s is documented, but the decoder takes no such argument", b.Path, d)
			}
		}
	}
	for _, path := range order {
		if !slices.ContainsFunc(schema, func(b SchemaBlock) bool { return b.Path == path }) {
			t.Errorf("section %s documents a block the decoder does not take", path)
		}
	}
	if len(schema) < 20 {
		t.Fatalf("the schema lists only %d blocks: the walk lost some", len(schema))
	}
}

// Every example in the page is valid berth, checked as a whole
// configuration around it.
func TestLanguageDocExamplesParse(t *testing.T) {
	raw, err := os.ReadFile("../docs/language.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	if len(blocks) < 10 {
		t.Fatalf("found %d examples", len(blocks))
	}
	for i, b := range blocks {
		src := b[1]
		if strings.HasPrefix(src, "mount ") || strings.HasPrefix(src, "probe ") {
			src = "pod \"p\" {\n  container \"c\" {\n    image = \"busybox\"\n" + src + "  }\n}\n"
		}
		if strings.Contains(src, "var.windows_version") && !strings.Contains(src, "variable \"windows_version\"") {
			src = "variable \"windows_version\" { default = \"11\" }\n" + src
		}
		if strings.Contains(src, "var.registry_password") {
			src = "variable \"registry_password\" {\n  default   = \"x\"\n  sensitive = true\n}\n" + src
		}
		if strings.Contains(src, "pod.registry") {
			src += "pod \"registry\" {\n  container \"c\" { image = \"busybox\" }\n}\n"
		}
		dir := t.TempDir()
		if err := os.WriteFile(dir+"/main.hcl", []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(src, "images/busybox.tar") {
			os.Mkdir(dir+"/images", 0o755)
			os.WriteFile(dir+"/images/busybox.tar", nil, 0o644)
		}
		if _, diags := NewLoader(Options{}).Load(dir); diags.HasErrors() {
			t.Errorf("example %d does not load: %s\n%s", i+1, diags.Error(), src)
		}
	}
}
