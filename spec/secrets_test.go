package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// A sensitive value used where berth does not allow one, or where a check
// fails on it, is reported without ever being printed: neither in the
// diagnostics' text nor in the source snippets and values the CLI's
// diagnostic writer adds.
func TestDiagnosticsNeverPrintSecrets(t *testing.T) {
	const secret = "Hunter2 Secret!"
	pod := func(podBody, ctrBody string) string {
		return "pod \"a\" {\n" + podBody + "\n  container \"c\" {\n    image = \"busybox\"\n" + ctrBody + "\n  }\n}\n"
	}
	tests := map[string]string{
		"hostname":       pod(`  hostname = var.pw`, ""),
		"dns servers":    pod("  dns {\n    servers = [var.pw]\n  }", ""),
		"stop_timeout":   pod("", `    stop_timeout = var.pw`),
		"restart":        pod(`  restart = var.pw`, ""),
		"cpuset":         pod("", `    resources { cpuset = var.pw }`),
		"memory":         pod("", `    resources { memory = var.pw }`),
		"permissions":    pod("", "    device \"/dev/kvm\" {\n      permissions = var.pw\n    }"),
		"host_ip":        pod("  port \"p\" {\n    container = 80\n    host = 8080\n    host_ip = var.pw\n  }", ""),
		"listen":         pod("  forward \"f\" {\n    port = 80\n    listen = var.pw\n  }", ""),
		"capabilities":   pod("", `    capabilities = [var.pw]`),
		"env_file":       pod("", `    env_file = [var.pw]`),
		"parseint":       pod("", `    command = [tostring(parseint(var.pw, 10))]`),
		"tonumber":       pod("", `    command = [tostring(tonumber(var.pw))]`),
		"base64decode":   pod("", `    command = [base64decode(var.pw)]`),
		"depends_on":     pod(`  depends_on = [var.pw]`, ""),
		"error_message":  strings.Replace(pod("", ""), "pod", "locals {}\npod", 1),
		"mirror server":  "mirror \"docker.io\" {\n  server = var.pw\n}\n",
		"image platform": "image \"busybox\" {\n  platform = var.pw\n}\n",
		"probe command":  pod("", "    probe \"liveness\" {\n      exec { command = [\"check\", var.pw] }\n    }"),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "stack")
			os.Mkdir(dir, 0o755)
			condition := "true"
			if name == "error_message" {
				condition = "length(var.pw) > 100"
			}
			vars := "variable \"pw\" {\n  default   = \"" + secret + "\"\n  sensitive = true\n  validation {\n    condition     = " + condition + "\n    error_message = \"bad: ${var.pw}\"\n  }\n}\n"
			os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(vars+body), 0o644)
			l := NewLoader(Options{Environ: func() []string { return nil }})
			_, diags := l.Load(dir)
			if !diags.HasErrors() {
				t.Fatalf("%s: no error for a sensitive value", name)
			}
			var out bytes.Buffer
			_ = hcl.NewDiagnosticTextWriter(&out, l.Files(), 0, false).WriteDiagnostics(diags)
			for _, text := range []string{diags.Error(), out.String()} {
				if strings.Contains(text, "Hunter2") || strings.Contains(text, "Secret!") {
					t.Errorf("%s: the secret is printed:\n%s", name, text)
				}
			}
		})
	}
}

// What a user types as a variable's value is never quoted back when it
// goes wrong: not from the command line, not from a variable file.
func TestVariableInputsNeverPrintSecrets(t *testing.T) {
	const secret = "Hunter2 Secret!"
	for _, tc := range []struct {
		name    string
		vars    []string
		varFile string
	}{
		{name: "--var with a misspelt name", vars: []string{"pwd=" + secret}},
		{name: "a variable file with a misspelt name", varFile: "pwd = \"" + secret + "\"\n"},
		{name: "a variable file that does not parse", varFile: "pw = \"" + secret + "\n"},
		{name: "a variable file with a value of the wrong type", varFile: "n = \"" + secret + "\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "stack")
			os.Mkdir(dir, 0o755)
			main := "variable \"pw\" {\n  sensitive = true\n}\nvariable \"n\" {\n  type = number\n  default = 1\n}\npod \"a\" {\n  container \"c\" {\n    image = \"busybox\"\n    env = { PW = var.pw }\n  }\n}\n"
			os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(main), 0o644)
			if tc.varFile != "" {
				os.WriteFile(filepath.Join(dir, AutoVarsFile), []byte(tc.varFile), 0o600)
			}
			l := NewLoader(Options{Environ: func() []string { return nil }, Vars: tc.vars})
			_, diags := l.Load(dir)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var out bytes.Buffer
			_ = hcl.NewDiagnosticTextWriter(&out, l.Files(), 0, false).WriteDiagnostics(diags)
			for _, text := range []string{diags.Error(), out.String()} {
				if strings.Contains(text, "Hunter2") || strings.Contains(text, "Secret!") {
					t.Errorf("the value is printed:\n%s", text)
				}
			}
		})
	}
}
