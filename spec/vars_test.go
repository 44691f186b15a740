package spec

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envPod is a pod whose single container shows the given env expression,
// so a test can observe what an expression evaluates to.
func envPod(envExpr string) string {
	return "pod \"p\" {\n  container \"c\" {\n    image = \"busybox\"\n    env   = " + envExpr + "\n  }\n}\n"
}

func onlyContainer(t *testing.T, cfg *Config) *Container {
	t.Helper()
	if len(cfg.Pods) != 1 || len(cfg.Pods[0].Containers) != 1 {
		t.Fatalf("want one pod with one container, got %d pods", len(cfg.Pods))
	}
	return cfg.Pods[0].Containers[0]
}

// TestVariablePrecedence sets five variables from one more source each, so
// that every source is shown to win over the one below it:
// default < berth.auto.berthvars < --var-file < BERTH_VAR_<name> < --var.
func TestVariablePrecedence(t *testing.T) {
	fs := files{
		"vars.hcl": `variable "l1" { default = "default" }
variable "l2" { default = "default" }
variable "l3" { default = "default" }
variable "l4" { default = "default" }
variable "l5" { default = "default" }
variable "files" { default = "default" }
`,
		"main.hcl": envPod(`{ L1 = var.l1, L2 = var.l2, L3 = var.l3, L4 = var.l4, L5 = var.l5, FILES = var.files }`),
		AutoVarsFile: `l2    = "auto"
l3    = "auto"
l4    = "auto"
l5    = "auto"
files = "auto"
`,
	}
	root := t.TempDir()
	first := filepath.Join(root, "first.berthvars")
	second := filepath.Join(root, "second.berthvars")
	writeDir(t, root, files{
		"first.berthvars": "l3 = \"varfile\"\nl4 = \"varfile\"\nl5 = \"varfile\"\nfiles = \"first\"\n",
		// A later --var-file wins over an earlier one.
		"second.berthvars": "files = \"second\"\n",
	})
	opts := Options{
		VarFiles: []string{first, second},
		Environ: func() []string {
			return []string{
				"BERTH_VAR_l4=env", "BERTH_VAR_l5=env",
				"BERTH_VAR_undeclared=ignored", // not ours to judge
				"HOME=/root", "PATH=/bin",
				"l1=not-prefixed",
			}
		},
		Vars: []string{"l5=cli"},
	}
	c := onlyContainer(t, mustLoad(t, fs, opts))
	requireEqual(t, c.Env, map[string]string{
		"L1": "default", "L2": "auto", "L3": "varfile", "L4": "env", "L5": "cli",
		"FILES": "second",
	})
}

func TestVariables(t *testing.T) {
	// The base declares one variable of every kind of type, with defaults,
	// and shows them all in the container.
	base := func() files {
		return files{
			"vars.hcl": `variable "image" {
  type        = string
  default     = "busybox:1.36"
  description = "The image."
}

variable "timeout" {
  type    = number
  default = 30
}

variable "tty" {
  type    = bool
  default = false
}

variable "args" {
  type    = list(string)
  default = ["-v"]
}

variable "labels" {
  type    = map(string)
  default = { app = "web" }
}

variable "app" {
  type = object({
    user = string
    env  = map(string)
  })
  default = {
    user = "1000"
    env  = { MODE = "dev" }
  }
}

variable "untyped" {
  default = "plain"
}
`,
			"main.hcl": `pod "p" {
  labels = var.labels

  container "c" {
    image        = var.image
    args         = var.args
    tty          = var.tty
    stop_timeout = "${var.timeout}s"
    user         = var.app.user
    env          = merge(var.app.env, { UNTYPED = var.untyped })
  }
}
`,
		}
	}
	type result struct {
		Image       string
		Args        []string
		TTY         bool
		StopTimeout time.Duration
		User        string
		Env         map[string]string
		PodLabels   map[string]string
	}
	baseWant := result{
		Image: "busybox:1.36", Args: []string{"-v"}, StopTimeout: 30 * time.Second,
		User: "1000", Env: map[string]string{"MODE": "dev", "UNTYPED": "plain"},
		PodLabels: map[string]string{"app": "web"},
	}

	tests := []struct {
		name      string
		mutate    func(t *testing.T, fs files)
		opts      Options
		want      func(r *result)
		wantDiags []diagWant
	}{
		{name: "base: defaults of every type"},
		{
			name: "--var of each type; non-string types are parsed as HCL",
			opts: Options{Vars: []string{
				"image=alpine:3",
				"timeout=45",
				"tty=true",
				`args=["-a", "-b"]`,
				`labels={ app = "api", tier = "back" }`,
				`app={ user = "root", env = { MODE = "prod" } }`,
				"untyped=[1, 2]", // untyped: taken as the text itself
			}},
			want: func(r *result) {
				*r = result{
					Image: "alpine:3", Args: []string{"-a", "-b"}, TTY: true, StopTimeout: 45 * time.Second,
					User: "root", Env: map[string]string{"MODE": "prod", "UNTYPED": "[1, 2]"},
					PodLabels: map[string]string{"app": "api", "tier": "back"},
				}
			},
		},
		{
			name: "--var string keeps spaces, quotes and '=' verbatim",
			opts: Options{Vars: []string{`untyped=a "b" = c`}},
			want: func(r *result) { r.Env["UNTYPED"] = `a "b" = c` },
		},
		{
			name: "the last --var of a name wins",
			opts: Options{Vars: []string{"image=one", "image=two"}},
			want: func(r *result) { r.Image = "two" },
		},
		{
			name: "BERTH_VAR_ values of non-string types are parsed as HCL",
			opts: Options{Environ: func() []string {
				return []string{"BERTH_VAR_args=[\"x\"]", "BERTH_VAR_tty=true", "BERTH_VAR_timeout=5"}
			}},
			want: func(r *result) { r.Args = []string{"x"}; r.TTY = true; r.StopTimeout = 5 * time.Second },
		},
		{
			name:   "var file values are converted to the declared type",
			mutate: func(t *testing.T, fs files) { fs[AutoVarsFile] = "tty = \"true\"\ntimeout = \"7\"\nimage = 3\n" },
			want:   func(r *result) { r.TTY = true; r.StopTimeout = 7 * time.Second; r.Image = "3" },
		},
		{
			name:      "a default of the wrong type",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "vars.hcl", "default = 30", "default = \"soon\"") },
			wantDiags: []diagWant{{summary: "Invalid default value for variable", detail: "The default does not fit the variable's type", file: "vars.hcl", at: `"soon"`}},
		},
		{
			name:      "an invalid type expression",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "vars.hcl", "type    = number", "type    = integer") },
			wantDiags: []diagWant{{summary: "Invalid type specification", detail: `The keyword "integer" is not a valid type specification.`, file: "vars.hcl", at: "integer"}},
		},
		{
			name: "missing required variable names it",
			mutate: func(t *testing.T, fs files) {
				fs["token.hcl"] = "\n\nvariable \"token\" {\n  type = string\n}\n"
			},
			wantDiags: []diagWant{{summary: "No value for required variable", detail: `Variable "token" has no default and no value was given. Set it with --var token=..., in berth.auto.berthvars, a --var-file, or the environment variable BERTH_VAR_token.`, file: "token.hcl", at: `variable "token"`}},
		},
		{
			name:      "undeclared --var suggests the closest name",
			opts:      Options{Vars: []string{"imgae=alpine"}},
			wantDiags: []diagWant{{summary: "Undeclared variable", detail: `--var imgae=... sets variable "imgae", but no variable block declares it. Did you mean "image"?`}},
		},
		{
			name:      "undeclared --var with nothing close says how to declare it",
			opts:      Options{Vars: []string{"registry_password=x"}},
			wantDiags: []diagWant{{summary: "Undeclared variable", detail: `Declare it with variable "registry_password" {}.`}},
		},
		{
			name:      "undeclared name in a var file points at the file",
			mutate:    func(t *testing.T, fs files) { fs[AutoVarsFile] = "image = \"x\"\n\nlabel = {}\n" },
			wantDiags: []diagWant{{summary: "Undeclared variable", detail: `sets variable "label", but no variable block declares it. Did you mean "labels"?`, file: AutoVarsFile, at: "label ="}},
		},
		{
			name:      "--var without '='",
			opts:      Options{Vars: []string{"image"}},
			wantDiags: []diagWant{{summary: "Invalid --var option", detail: `"image" is not NAME=VALUE. Write it as --var image=VALUE.`}},
		},
		{
			name:      "--var that is not an HCL expression for a list",
			opts:      Options{Vars: []string{`args=["a",`}},
			wantDiags: []diagWant{{summary: "Invalid value for variable", detail: "The value of --var args is not a valid HCL expression for type list(string)."}},
		},
		{
			name:      "--var of the wrong type",
			opts:      Options{Vars: []string{`args={ a = 1 }`}},
			wantDiags: []diagWant{{summary: "Invalid value for variable", detail: `The value of variable "args" does not fit its type: list of string required.`, file: "vars.hcl", at: `variable "args"`}},
		},
		{
			name:      "bare word for a number",
			opts:      Options{Vars: []string{"timeout=soon"}},
			wantDiags: []diagWant{{summary: "Variables not allowed", detail: "Variables may not be used here.", file: "--var timeout"}},
		},
		{
			name:      "environment value that is not HCL for its type",
			opts:      Options{Environ: func() []string { return []string{"BERTH_VAR_labels={"} }},
			wantDiags: []diagWant{{summary: "Invalid value for variable", detail: "The value of environment variable BERTH_VAR_labels is not a valid HCL expression for type map(string)."}},
		},
		{
			name:      "missing --var-file",
			opts:      Options{VarFiles: []string{"/nonexistent/prod.berthvars"}},
			wantDiags: []diagWant{{summary: "Cannot read configuration file", detail: "open /nonexistent/prod.berthvars: no such file or directory"}},
		},
		{
			name: "duplicate variable",
			mutate: func(t *testing.T, fs files) {
				fs["z.hcl"] = "variable \"tty\" {}\n"
			},
			wantDiags: []diagWant{{summary: "Duplicate variable", detail: `Variable "tty" is already declared at …/stack/vars.hcl:12,1-15.`, file: "z.hcl", at: "variable"}},
		},
		{
			name:      "invalid variable name",
			mutate:    func(t *testing.T, fs files) { fs["z.hcl"] = "variable \"9lives\" {\n  default = 1\n}\n" },
			wantDiags: []diagWant{{summary: "Invalid variable name", detail: "must start with a letter or underscore", file: "z.hcl", at: `"9lives"`}},
		},
		{
			name:      "unknown attribute in a variable",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "vars.hcl", "  description =", "  descripton =") },
			wantDiags: []diagWant{{summary: "Unsupported argument", detail: `Did you mean "description"?`, file: "vars.hcl", at: "descripton"}},
		},
		{
			name:      "a default may not reference other variables",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "vars.hcl", `default = "plain"`, `default = var.image`) },
			wantDiags: []diagWant{{summary: "Variables not allowed", detail: "Variables may not be used here.", file: "vars.hcl", at: "var.image"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			if tt.mutate != nil {
				tt.mutate(t, fs)
			}
			cfg, diags, _ := loadFiles(t, fs, tt.opts)
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				if cfg != nil {
					t.Error("Load returned a Config despite errors")
				}
				return
			}
			requireNoErrors(t, diags)
			c := onlyContainer(t, cfg)
			got := result{
				Image: c.Image, Args: c.Args, TTY: c.TTY, StopTimeout: c.StopTimeout,
				User: c.User, Env: c.Env, PodLabels: cfg.Pods[0].Labels,
			}
			want := baseWant
			want.Env = map[string]string{"MODE": "dev", "UNTYPED": "plain"}
			if tt.want != nil {
				tt.want(&want)
			}
			requireEqual(t, got, want)
		})
	}
}

func TestVariableValidation(t *testing.T) {
	base := func() files {
		return files{
			"vars.hcl": `variable "windows_version" {
  type    = string
  default = "11"

  validation {
    condition     = contains(["10", "11"], var.windows_version)
    error_message = "windows_version must be 10 or 11."
  }
  validation {
    condition     = strlen(var.windows_version) == 2
    error_message = "windows_version has two digits."
  }
}
`,
			"main.hcl": envPod(`{ VERSION = var.windows_version }`),
		}
	}
	tests := []struct {
		name      string
		mutate    func(t *testing.T, fs files)
		vars      []string
		want      string
		wantDiags []diagWant
	}{
		{name: "default passes", want: "11"},
		{name: "--var passes", vars: []string{"windows_version=10"}, want: "10"},
		{
			name:      "first rule fails",
			vars:      []string{"windows_version=12"},
			wantDiags: []diagWant{{summary: "Invalid value for variable", detail: "windows_version must be 10 or 11.\n\nThis was checked by the validation rule at …/stack/vars.hcl:6,21-64.", file: "vars.hcl", at: `variable "windows_version"`}},
		},
		{
			name: "both rules fail, both are reported",
			vars: []string{"windows_version=7"},
			wantDiags: []diagWant{
				{summary: "Invalid value for variable", detail: "windows_version must be 10 or 11.", file: "vars.hcl", at: `variable "windows_version"`},
				{summary: "Invalid value for variable", detail: "windows_version has two digits.", file: "vars.hcl", at: `variable "windows_version"`},
			},
		},
		{
			name:      "the failing default is checked too",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "vars.hcl", `default = "11"`, `default = "95"`) },
			wantDiags: []diagWant{{summary: "Invalid value for variable", detail: "windows_version must be 10 or 11.", file: "vars.hcl", at: `variable "windows_version"`}},
		},
		{
			name: "a condition may only refer to its own variable",
			mutate: func(t *testing.T, fs files) {
				fs["other.hcl"] = "variable \"other\" {\n  default = \"x\"\n}\n"
				fs.replace(t, "vars.hcl", "strlen(var.windows_version) == 2", "var.other == \"x\"")
			},
			wantDiags: []diagWant{{summary: "Unsupported attribute", detail: `This object does not have an attribute named "other".`, file: "vars.hcl", at: "var.other"}},
		},
		{
			name: "error_message may interpolate the value",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "vars.hcl", `"windows_version has two digits."`, `"windows_version has two digits, not ${var.windows_version}."`)
			},
			vars: []string{"windows_version=7"},
			wantDiags: []diagWant{
				{summary: "Invalid value for variable", detail: "windows_version must be 10 or 11.", file: "vars.hcl", at: `variable "windows_version"`},
				{summary: "Invalid value for variable", detail: "windows_version has two digits, not 7.", file: "vars.hcl", at: `variable "windows_version"`},
			},
		},
		{
			name:      "condition that is not a bool",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "vars.hcl", "strlen(var.windows_version) == 2", `"yes"`) },
			wantDiags: []diagWant{{summary: "Invalid validation condition", detail: "The condition must be true or false.", file: "vars.hcl", at: `"yes"`}},
		},
		{
			name: "validation without error_message",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "vars.hcl", "    error_message = \"windows_version has two digits.\"\n", "")
			},
			wantDiags: []diagWant{{summary: "Missing required argument", detail: `"error_message" is required`, file: "vars.hcl", at: "validation {\n    condition     = strlen"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			if tt.mutate != nil {
				tt.mutate(t, fs)
			}
			cfg, diags, _ := loadFiles(t, fs, Options{Vars: tt.vars})
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				return
			}
			requireNoErrors(t, diags)
			if got := onlyContainer(t, cfg).Env["VERSION"]; got != tt.want {
				t.Errorf("VERSION = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSensitiveVariables(t *testing.T) {
	base := func() files {
		return files{
			"vars.hcl": `variable "password" {
  type      = string
  sensitive = true
}

variable "user" {
  default = "admin"
}
`,
			"main.hcl": `pod "p" {
  container "c" {
    image = "postgres:16"
    env = {
      USER     = var.user
      PASSWORD = var.password
      DSN      = "postgres://${var.user}:${var.password}@db/app"
    }
  }
}
`,
		}
	}
	opts := func() Options {
		return Options{Environ: func() []string { return []string{"BERTH_VAR_password=hunter2"} }}
	}

	tests := []struct {
		name          string
		mutate        func(t *testing.T, fs files)
		wantEnv       map[string]string
		wantSensitive []string
		wantRecord    ContainerRecord
		wantDiags     []diagWant
	}{
		{
			name: "env values from a sensitive variable are marked and redacted",
			wantEnv: map[string]string{
				"USER": "admin", "PASSWORD": "hunter2", "DSN": "postgres://admin:hunter2@db/app",
			},
			wantSensitive: []string{"env.DSN", "env.PASSWORD"},
			wantRecord: ContainerRecord{
				ContainerIdentity: ContainerIdentity{
					Image:   "postgres:16",
					Env:     map[string]string{"USER": "admin", "PASSWORD": Redacted, "DSN": Redacted},
					LogPath: "c.log",
				},
				Pull:        "if_not_present",
				Restart:     "always",
				StopTimeout: Duration(DefaultStopTimeout),
				Sensitive:   []string{"env.DSN", "env.PASSWORD"},
			},
		},
		{
			name: "secrets in args and command redact the whole list",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "main.hcl", "    env = {", "    command = [\"psql\", \"--password=${var.password}\"]\n    args = [var.password]\n    env = {")
				fs.replace(t, "main.hcl", "      PASSWORD = var.password\n", "")
				fs.replace(t, "main.hcl", "      DSN      = \"postgres://${var.user}:${var.password}@db/app\"\n", "")
			},
			wantEnv:       map[string]string{"USER": "admin"},
			wantSensitive: []string{"command", "args"},
			wantRecord: ContainerRecord{
				ContainerIdentity: ContainerIdentity{
					Image:   "postgres:16",
					Command: []string{Redacted},
					Args:    []string{Redacted},
					Env:     map[string]string{"USER": "admin"},
					LogPath: "c.log",
				},
				Pull:        "if_not_present",
				Restart:     "always",
				StopTimeout: Duration(DefaultStopTimeout),
				Sensitive:   []string{"command", "args"},
			},
		},
		{
			name: "a whole env map from a sensitive variable",
			mutate: func(t *testing.T, fs files) {
				fs["secrets.hcl"] = "variable \"secrets\" {\n  type      = map(string)\n  sensitive = true\n  default   = { A = \"1\", B = \"2\" }\n}\n"
				fs.replace(t, "main.hcl", "    env = {\n      USER     = var.user\n      PASSWORD = var.password\n      DSN      = \"postgres://${var.user}:${var.password}@db/app\"\n    }\n", "    env = var.secrets\n")
			},
			wantEnv:       map[string]string{"A": "1", "B": "2"},
			wantSensitive: []string{"env.A", "env.B"},
			wantRecord: ContainerRecord{
				ContainerIdentity: ContainerIdentity{
					Image:   "postgres:16",
					Env:     map[string]string{"A": Redacted, "B": Redacted},
					LogPath: "c.log",
				},
				Pull:        "if_not_present",
				Restart:     "always",
				StopTimeout: Duration(DefaultStopTimeout),
				Sensitive:   []string{"env.A", "env.B"},
			},
		},
		{
			name: "sensitivity survives locals and functions",
			mutate: func(t *testing.T, fs files) {
				fs["locals.hcl"] = "locals {\n  pw = upper(var.password)\n}\n"
				fs.replace(t, "main.hcl", "PASSWORD = var.password", "PASSWORD = local.pw")
			},
			wantEnv: map[string]string{
				"USER": "admin", "PASSWORD": "HUNTER2", "DSN": "postgres://admin:hunter2@db/app",
			},
			wantSensitive: []string{"env.DSN", "env.PASSWORD"},
			wantRecord: ContainerRecord{
				ContainerIdentity: ContainerIdentity{
					Image:   "postgres:16",
					Env:     map[string]string{"USER": "admin", "PASSWORD": Redacted, "DSN": Redacted},
					LogPath: "c.log",
				},
				Pull:        "if_not_present",
				Restart:     "always",
				StopTimeout: Duration(DefaultStopTimeout),
				Sensitive:   []string{"env.DSN", "env.PASSWORD"},
			},
		},
		{
			name: "a template rendered with a secret is sensitive",
			mutate: func(t *testing.T, fs files) {
				fs["pgpass.tpl"] = "db:5432:app:${user}:${password}"
				fs.replace(t, "main.hcl", "      DSN      = \"postgres://${var.user}:${var.password}@db/app\"\n", "      PGPASS   = templatefile(\"pgpass.tpl\", { user = var.user, password = var.password })\n")
			},
			wantEnv: map[string]string{
				"USER": "admin", "PASSWORD": "hunter2", "PGPASS": "db:5432:app:admin:hunter2",
			},
			wantSensitive: []string{"env.PASSWORD", "env.PGPASS"},
			wantRecord: ContainerRecord{
				ContainerIdentity: ContainerIdentity{
					Image:   "postgres:16",
					Env:     map[string]string{"USER": "admin", "PASSWORD": Redacted, "PGPASS": Redacted},
					LogPath: "c.log",
				},
				Pull:        "if_not_present",
				Restart:     "always",
				StopTimeout: Duration(DefaultStopTimeout),
				Sensitive:   []string{"env.PASSWORD", "env.PGPASS"},
			},
		},
		{
			name:      "a sensitive value in the image is refused",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "main.hcl", `"postgres:16"`, `"postgres:${var.password}"`) },
			wantDiags: []diagWant{{summary: "Sensitive value not allowed", detail: `"image" is shown in plans and runtime metadata`, file: "main.hcl", at: "postgres:${"}},
		},
		{
			name: "a sensitive value in working_dir is refused",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "main.hcl", "    env = {", "    working_dir = \"/${var.password}\"\n    env = {")
			},
			wantDiags: []diagWant{{summary: "Sensitive value not allowed", detail: `"working_dir"`, file: "main.hcl", at: "/${var.password}"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			if tt.mutate != nil {
				tt.mutate(t, fs)
			}
			cfg, diags, _ := loadFiles(t, fs, opts())
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				return
			}
			requireNoErrors(t, diags)
			c := onlyContainer(t, cfg)
			requireEqual(t, c.Env, tt.wantEnv)
			requireEqual(t, c.Sensitive, tt.wantSensitive)
			requireEqual(t, c.Record(), tt.wantRecord)
			// Record works on a copy: the container keeps its real values.
			requireEqual(t, c.Env, tt.wantEnv)
			for _, d := range diags {
				if strings.Contains(d.Detail, "hunter2") || strings.Contains(d.Summary, "hunter2") {
					t.Errorf("a diagnostic shows the secret: %s", d.Detail)
				}
			}
		})
	}
}

func TestLocals(t *testing.T) {
	base := func() files {
		return files{
			// Locals refer to each other out of order and across blocks and files.
			"a.hcl": `locals {
  full  = "${local.base}-${var.env}"
  words = [local.full, local.base]
}
`,
			"b.hcl": `variable "env" {
  default = "prod"
}

locals {
  base = upper(local.raw)
}

locals {
  raw = "web"
}
`,
			"main.hcl": envPod(`{ FULL = local.full, WORDS = join(",", local.words) }`),
		}
	}
	tests := []struct {
		name      string
		mutate    func(t *testing.T, fs files)
		vars      []string
		want      map[string]string
		wantDiags []diagWant
	}{
		{name: "out of order", want: map[string]string{"FULL": "WEB-prod", "WORDS": "WEB-prod,WEB"}},
		{name: "a variable flows through", vars: []string{"env=dev"}, want: map[string]string{"FULL": "WEB-dev", "WORDS": "WEB-dev,WEB"}},
		{
			name:   "cycle",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "b.hcl", `raw = "web"`, `raw = lower(local.full)`) },
			wantDiags: []diagWant{
				{summary: "Cycle in local values", detail: "local.base depends on itself through other locals. Break the cycle.", file: "b.hcl", at: "upper(local.raw)"},
				{summary: "Cycle in local values", detail: "local.full depends on itself", file: "a.hcl", at: `"${local.base}`},
				{summary: "Cycle in local values", detail: "local.raw depends on itself", file: "b.hcl", at: "lower(local.full)"},
				// words only depends on the cycle, but cannot be evaluated either.
				{summary: "Cycle in local values", detail: "local.words", file: "a.hcl", at: "[local.full"},
			},
		},
		{
			name:   "self reference",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "b.hcl", `raw = "web"`, `raw = local.raw`) },
			wantDiags: []diagWant{
				{summary: "Cycle in local values", detail: "local.raw", file: "b.hcl", at: "= local.raw"},
				{summary: "Cycle in local values", detail: "local.base", file: "b.hcl", at: "upper("},
				{summary: "Cycle in local values", detail: "local.full", file: "a.hcl", at: "full  ="},
				{summary: "Cycle in local values", detail: "local.words", file: "a.hcl", at: "words ="},
			},
		},
		{
			name: "duplicate local",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "b.hcl", `raw = "web"`, "raw = \"web\"\n  base = \"again\"")
			},
			wantDiags: []diagWant{{summary: "Duplicate local value", detail: "local.base is already defined at …/stack/b.hcl:6,3-7.", file: "b.hcl", at: `base = "again"`}},
		},
		{
			name:      "undefined local",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "b.hcl", `upper(local.raw)`, `upper(local.rwa)`) },
			wantDiags: []diagWant{{summary: "Unsupported attribute", detail: `This object does not have an attribute named "rwa".`, file: "b.hcl", at: "local.rwa"}},
		},
		{
			name:      "undeclared variable in a local",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "a.hcl", `${var.env}`, `${var.envv}`) },
			wantDiags: []diagWant{{summary: "Unsupported attribute", detail: `"envv"`, file: "a.hcl", at: "var.envv"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			if tt.mutate != nil {
				tt.mutate(t, fs)
			}
			cfg, diags, _ := loadFiles(t, fs, Options{Vars: tt.vars})
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				return
			}
			requireNoErrors(t, diags)
			requireEqual(t, onlyContainer(t, cfg).Env, tt.want)
		})
	}
}
