package spec

import (
	"path/filepath"
	"testing"
)

// funcFiles are the files the file functions read, relative to the
// configuration directory (never the working directory of the test).
func funcFiles() files {
	return files{
		"files/motd.txt": "hello\n",
		"tpl/app.conf.tpl": `name=${upper(name)}
%{ for p in ports ~}
listen ${p}
%{ endfor ~}
motd=${trimspace(file("files/motd.txt"))}
`,
		"tpl/broken.tpl": "${",
	}
}

func TestFunctions(t *testing.T) {
	lookup := func(name string) (string, bool) {
		switch name {
		case "REGION":
			return "eu-west", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}

	tests := []struct {
		name string
		expr string // a string expression, shown as env V
		// want is the value of V; "$DIR" is replaced by the configuration
		// directory.
		want      string
		wantDiags []diagWant
	}{
		{name: "env set", expr: `env("REGION")`, want: "eu-west"},
		{name: "length of a string counts characters", expr: `tostring(length("héllo"))`, want: "5"},
		{name: "length of a list", expr: `tostring(length(["a", "b"]))`, want: "2"},
		{name: "env set wins over the default", expr: `env("REGION", "us-east")`, want: "eu-west"},
		{name: "env set to empty is set", expr: `env("EMPTY", "fallback")`, want: ""},
		{name: "env unset with default", expr: `env("ZONE", "a")`, want: "a"},
		{
			name:      "env unset without default",
			expr:      `env("ZONE")`,
			wantDiags: []diagWant{{summary: "Invalid function argument", detail: `Invalid value for "name" parameter: environment variable "ZONE" is not set; set it or give env() a default: env("ZONE", "...")`, file: "main.hcl", at: `env("ZONE")`}},
		},
		{
			name:      "env with too many arguments",
			expr:      `env("ZONE", "a", "b")`,
			wantDiags: []diagWant{{summary: "Invalid function argument", detail: "env takes a name and at most one default", file: "main.hcl", at: `"b"`}},
		},
		{name: "file relative to the config dir", expr: `file("files/motd.txt")`, want: "hello\n"},
		{name: "file absolute", expr: `file(abspath("files/motd.txt"))`, want: "hello\n"},
		{
			name:      "file missing",
			expr:      `file("files/nope.txt")`,
			wantDiags: []diagWant{{summary: "Invalid function argument", detail: "files/nope.txt: no such file or directory", file: "main.hcl", at: `"files/nope.txt"`}},
		},
		{name: "filesha256", expr: `filesha256("files/motd.txt")`, want: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},
		{name: "filesha256 equals sha256 of file", expr: `tostring(filesha256("files/motd.txt") == sha256(file("files/motd.txt")))`, want: "true"},
		{
			name:      "filesha256 missing",
			expr:      `filesha256("nope")`,
			wantDiags: []diagWant{{summary: "Invalid function argument", detail: "nope: no such file or directory", file: "main.hcl", at: `"nope"`}},
		},
		{name: "abspath relative", expr: `abspath("data/x")`, want: "$DIR/data/x"},
		{name: "abspath cleans", expr: `abspath("data/../y/./z")`, want: "$DIR/y/z"},
		{name: "abspath absolute", expr: `abspath("/srv//vms/")`, want: "/srv/vms"},
		{
			name: "templatefile relative to the config dir, with functions",
			expr: `templatefile("tpl/app.conf.tpl", { name = "web", ports = [80, 443] })`,
			want: "name=WEB\nlisten 80\nlisten 443\nmotd=hello\n",
		},
		{
			name:      "templatefile with vars that are not an object",
			expr:      `templatefile("tpl/app.conf.tpl", "web")`,
			wantDiags: []diagWant{{summary: "Invalid function argument", detail: "vars must be an object or a map", file: "main.hcl", at: "templatefile("}},
		},
		{
			name:      "templatefile with a missing variable",
			expr:      `templatefile("tpl/app.conf.tpl", { name = "web" })`,
			wantDiags: []diagWant{{summary: "Error in function call", detail: `template tpl/app.conf.tpl: `, file: "main.hcl", at: "templatefile("}},
		},
		{
			name:      "templatefile with a broken template",
			expr:      `templatefile("tpl/broken.tpl", {})`,
			wantDiags: []diagWant{{summary: "Error in function call", detail: "template tpl/broken.tpl: ", file: "main.hcl", at: "templatefile("}},
		},
		{
			name:      "templatefile missing",
			expr:      `templatefile("tpl/nope.tpl", {})`,
			wantDiags: []diagWant{{summary: "Invalid function argument", detail: "tpl/nope.tpl: no such file or directory", file: "main.hcl", at: `"tpl/nope.tpl"`}},
		},
		{name: "format", expr: `format("%s:%03d", "web", 7)`, want: "web:007"},
		{name: "formatlist and join", expr: `join(",", formatlist("%s.lan", ["a", "b"]))`, want: "a.lan,b.lan"},
		{name: "merge and lookup", expr: `lookup(merge({ a = "1" }, { a = "2", b = "3" }), "a", "none")`, want: "2"},
		{name: "lookup default", expr: `lookup({ a = "1" }, "z", "none")`, want: "none"},
		{name: "try falls back", expr: `try(tostring({ a = 1 }.b), "fallback")`, want: "fallback"},
		{name: "can", expr: `format("%v/%v", can(regex("^[a-z]+$", "abc")), can(regex("^[a-z]+$", "ABC")))`, want: "true/false"},
		{name: "upper lower title", expr: `"${upper("a")}${lower("B")}${title("cd")}"`, want: "AbCd"},
		{name: "replace trimspace", expr: `replace(trimspace("  a-b  "), "-", "_")`, want: "a_b"},
		{name: "split and element", expr: `element(split("/", "a/b/c"), 1)`, want: "b"},
		{name: "jsonencode", expr: `jsonencode({ b = [1, true], a = "x" })`, want: `{"a":"x","b":[1,true]}`},
		{name: "jsondecode", expr: `jsondecode("{\"a\": \"x\"}").a`, want: "x"},
		{name: "base64encode", expr: `base64encode(file("files/motd.txt"))`, want: "aGVsbG8K"},
		{name: "sha256", expr: `sha256("hello\n")`, want: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},
		{name: "numeric", expr: `tostring(max(1, 5, 3) + pow(2, 3) + parseint("ff", 16))`, want: "268"},
		{name: "collections", expr: `join(",", sort(distinct(concat(["b", "a"], ["a", "c"]))))`, want: "a,b,c"},
		{name: "length of a list", expr: `tostring(length(keys({ a = 1, b = 2 })))`, want: "2"},
		{name: "conditional and for expression", expr: `join(" ", [for s in ["x", "y"] : s == "x" ? upper(s) : s])`, want: "X y"},
		{
			name:      "unknown function",
			expr:      `uppercase("a")`,
			wantDiags: []diagWant{{summary: "Call to unknown function", detail: `There is no function named "uppercase".`, file: "main.hcl", at: "uppercase"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := funcFiles()
			fs["main.hcl"] = envPod("{ V = " + tt.expr + " }")
			cfg, diags, dir := loadFiles(t, fs, Options{LookupEnv: lookup})
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				return
			}
			requireNoErrors(t, diags)
			want := tt.want
			if len(want) >= 4 && want[:4] == "$DIR" {
				want = filepath.Join(dir, want[4:])
			}
			if got := onlyContainer(t, cfg).Env["V"]; got != want {
				t.Errorf("%s = %q, want %q", tt.expr, got, want)
			}
		})
	}
}

// TestFunctionsUseTheConfigDir loads with a working directory that has its
// own, different files: the config dir's must win.
func TestFunctionsUseTheConfigDir(t *testing.T) {
	cwd := t.TempDir()
	writeDir(t, cwd, files{"files/motd.txt": "wrong\n"})
	t.Chdir(cwd)
	fs := funcFiles()
	fs["main.hcl"] = envPod(`{ V = file("files/motd.txt"), P = abspath("files") }`)
	cfg, diags, dir := loadFiles(t, fs, Options{})
	requireNoErrors(t, diags)
	requireEqual(t, onlyContainer(t, cfg).Env, map[string]string{"V": "hello\n", "P": filepath.Join(dir, "files")})
}

func TestEnvDefaultsToProcessEnvironment(t *testing.T) {
	t.Setenv("BERTH_TEST_REGION", "from-process")
	t.Setenv("BERTH_VAR_region", "from-berth-var")
	dir := filepath.Join(t.TempDir(), "stack")
	writeDir(t, dir, files{
		"main.hcl": "variable \"region\" {}\n" + envPod(`{ E = env("BERTH_TEST_REGION"), V = var.region }`),
	})
	// No LookupEnv and no Environ: the real process environment.
	cfg, diags := NewLoader(Options{}).Load(dir)
	requireNoErrors(t, diags)
	requireEqual(t, onlyContainer(t, cfg).Env, map[string]string{"E": "from-process", "V": "from-berth-var"})
}
