package spec

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podBase is a fully populated configuration: every implemented pod and
// container setting is set in pod "web", and pod "db" shows the defaults.
func podBase() files {
	return files{
		"db.hcl": `pod "db" {
  container "postgres" {
    image = "docker.io/library/postgres:16"
  }
}
`,
		"web.hcl": `pod "web" {
  namespace       = "apps"
  hostname        = "web-host"
  labels          = { app = "web", tier = "front" }
  annotations     = { "example.com/owner" = "ops" }
  runtime         = "runc"
  restart         = "on_failure"
  depends_on      = ["pod.db"]
  prevent_replace = true

  dns {
    servers  = ["192.0.2.53", "192.0.2.54"]
    searches = ["lan"]
    options  = ["ndots:2"]
  }

  container "app" {
    image        = "docker.io/library/nginx:1.27"
    pull         = "always"
    command      = ["nginx"]
    args         = ["-g", "daemon off;"]
    env          = { MODE = "prod", SHARED = "from-env" }
    env_file     = ["app.env"]
    working_dir  = "/srv"
    user         = "1000:1000"
    tty          = true
    stdin        = true
    restart      = "always"
    stop_signal  = "SIGQUIT"
    stop_timeout = "2m"
    labels       = { role = "app" }
    annotations  = { note = "x" }
    log_path     = "app/out.log"
  }

  container "setup" {
    image = "docker.io/library/busybox:1.36"
    init  = true
  }
}
`,
		"app.env": `# settings shared with docker compose
SHARED=from-file

export FILE_ONLY="quoted value"
SINGLE='single'
  SPACED = padded  
EMPTY=
`,
	}
}

// podBaseWant is what podBase decodes to, without source ranges.
func podBaseWant() []*Pod {
	return []*Pod{
		{
			Name:      "db",
			Namespace: "default",
			Restart:   RestartAlways,
			Containers: []*Container{{
				Name:        "postgres",
				Image:       "docker.io/library/postgres:16",
				Pull:        PullIfNotPresent,
				Restart:     RestartAlways,
				StopTimeout: DefaultStopTimeout,
				LogPath:     "postgres.log",
			}},
		},
		{
			Name:           "web",
			Namespace:      "apps",
			Hostname:       "web-host",
			Labels:         map[string]string{"app": "web", "tier": "front"},
			Annotations:    map[string]string{"example.com/owner": "ops"},
			Runtime:        "runc",
			Restart:        RestartOnFailure,
			DependsOn:      []string{"db"},
			PreventReplace: true,
			DNS: &DNS{
				Servers:  []string{"192.0.2.53", "192.0.2.54"},
				Searches: []string{"lan"},
				Options:  []string{"ndots:2"},
			},
			Containers: []*Container{
				{
					Name:    "app",
					Image:   "docker.io/library/nginx:1.27",
					Pull:    PullAlways,
					Command: []string{"nginx"},
					Args:    []string{"-g", "daemon off;"},
					Env: map[string]string{
						"MODE":      "prod",
						"SHARED":    "from-env", // env wins over env_file
						"FILE_ONLY": "quoted value",
						"SINGLE":    "single",
						"SPACED":    "padded",
						"EMPTY":     "",
					},
					EnvFiles:    []string{"app.env"},
					WorkingDir:  "/srv",
					User:        "1000:1000",
					TTY:         true,
					Stdin:       true,
					Restart:     RestartAlways,
					StopSignal:  "SIGQUIT",
					StopTimeout: 2 * time.Minute,
					Labels:      map[string]string{"role": "app"},
					Annotations: map[string]string{"note": "x"},
					LogPath:     "app/out.log",
					// env_file values are secrets unless env overrides them.
					Sensitive: []string{"env.EMPTY", "env.FILE_ONLY", "env.SINGLE", "env.SPACED"},
				},
				{
					Name:        "setup",
					Image:       "docker.io/library/busybox:1.36",
					Pull:        PullIfNotPresent,
					Init:        true,
					Restart:     RestartOnFailure, // inherited from the pod
					StopTimeout: 10 * time.Second,
					LogPath:     "setup.log",
				},
			},
		},
	}
}

func TestDecodePods(t *testing.T) {
	type testCase struct {
		name   string
		mutate func(t *testing.T, fs files)
		// want edits the expected pods (nil: the base result).
		want      func(pods []*Pod) []*Pod
		wantDiags []diagWant
	}
	web := func(pods []*Pod) *Pod { return pods[1] }
	app := func(pods []*Pod) *Container { return pods[1].Containers[0] }

	tests := []testCase{
		{name: "base"},

		// Defaults and inheritance.
		{
			name:   "container restart inherited from the pod when not overridden",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", "    restart      = \"always\"\n", "") },
			want: func(pods []*Pod) []*Pod {
				app(pods).Restart = RestartOnFailure
				return pods
			},
		},
		{
			name: "container overrides the pod's restart with never",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", "restart      = \"always\"", "restart = \"never\"")
			},
			want: func(pods []*Pod) []*Pod {
				app(pods).Restart = RestartNever
				return pods
			},
		},
		{
			name:   "pod restart defaults to always",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", "  restart         = \"on_failure\"\n", "") },
			want: func(pods []*Pod) []*Pod {
				web(pods).Restart = RestartAlways
				web(pods).Containers[1].Restart = RestartAlways
				return pods
			},
		},
		{
			name:   "stop_timeout parsed as a Go duration",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"2m"`, `"1h30m5s"`) },
			want: func(pods []*Pod) []*Pod {
				app(pods).StopTimeout = time.Hour + 30*time.Minute + 5*time.Second
				return pods
			},
		},
		{
			name:   "stop_timeout zero is allowed",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"2m"`, `"0s"`) },
			want: func(pods []*Pod) []*Pod {
				app(pods).StopTimeout = 0 // an explicit zero is kept, not replaced by the default
				return pods
			},
		},
		{
			name:   "env alone without env_file",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", "    env_file     = [\"app.env\"]\n", "") },
			want: func(pods []*Pod) []*Pod {
				app(pods).EnvFiles = nil
				app(pods).Env = map[string]string{"MODE": "prod", "SHARED": "from-env"}
				app(pods).Sensitive = nil
				return pods
			},
		},
		{
			name: "env_file alone, two files, later file wins",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", "    env          = { MODE = \"prod\", SHARED = \"from-env\" }\n", "")
				fs.replace(t, "web.hcl", `["app.env"]`, `["app.env", "sub/over.env"]`)
				fs["sub/over.env"] = "SINGLE=overridden\n"
			},
			want: func(pods []*Pod) []*Pod {
				app(pods).EnvFiles = []string{"app.env", "sub/over.env"}
				app(pods).Env = map[string]string{"SHARED": "from-file", "FILE_ONLY": "quoted value", "SINGLE": "overridden", "SPACED": "padded", "EMPTY": ""}
				app(pods).Sensitive = []string{"env.EMPTY", "env.FILE_ONLY", "env.SHARED", "env.SINGLE", "env.SPACED"}
				return pods
			},
		},
		{
			name:   "empty env map is nil",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", "image", "env = {}\n    image") },
		},
		{
			name:   "log_path default follows the container name",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", "    log_path     = \"app/out.log\"\n", "") },
			want: func(pods []*Pod) []*Pod {
				app(pods).LogPath = "app.log"
				return pods
			},
		},
		{
			name:   "empty log_path means the default, as in the language reference",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"app/out.log"`, `""`) },
			want: func(pods []*Pod) []*Pod {
				app(pods).LogPath = "app.log"
				return pods
			},
		},
		{
			name: "empty stop_timeout and stop_signal mean the defaults",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", `"2m"`, `""`)
				fs.replace(t, "web.hcl", `"SIGQUIT"`, `""`)
			},
			want: func(pods []*Pod) []*Pod {
				app(pods).StopTimeout = DefaultStopTimeout
				app(pods).StopSignal = ""
				return pods
			},
		},
		{
			name:   "empty dns block",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", "  container", "  dns {}\n  container") },
			want: func(pods []*Pod) []*Pod {
				pods[0].DNS = &DNS{}
				return pods
			},
		},
		{
			name:   "user names and uid:gid forms",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"1000:1000"`, `"www-data:33"`) },
			want: func(pods []*Pod) []*Pod {
				app(pods).User = "www-data:33"
				return pods
			},
		},

		// Errors in pods.
		{
			name:      "pod without containers",
			mutate:    func(t *testing.T, fs files) { fs["empty.hcl"] = "\npod \"empty\" {\n  hostname = \"e\"\n}\n" },
			wantDiags: []diagWant{{summary: "Pod without containers", detail: `pod "empty" has no container blocks`, file: "empty.hcl", at: `pod "empty"`}},
		},
		{
			name: "duplicate pod across two files points at the second",
			mutate: func(t *testing.T, fs files) {
				fs["z.hcl"] = "# again\npod \"db\" {\n  container \"c\" { image = \"busybox\" }\n}\n"
			},
			wantDiags: []diagWant{{summary: "Duplicate pod", detail: `pod "db" is already declared at …/stack/db.hcl:1,1-9. Pod names must be unique in a configuration.`, file: "z.hcl", at: `pod "db"`}},
		},
		{
			name: "duplicate container",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "}\n}\n", "}\n  container \"postgres\" { image = \"x\" }\n}\n")
			},
			wantDiags: []diagWant{{summary: "Duplicate container", detail: `container "postgres" is already declared in pod "db" at …/stack/db.hcl:2,3-23.`, file: "db.hcl", at: `container "postgres" { image`}},
		},
		{
			name: "duplicate dns block",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", "  container \"app\"", "  dns {}\n  container \"app\"")
			},
			wantDiags: []diagWant{{summary: "Duplicate dns block", detail: "at most one dns block", file: "web.hcl", at: "dns {}"}},
		},
		{
			name:   "invalid pod name",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", `pod "db"`, `pod "Data_Base"`) },
			wantDiags: []diagWant{
				{summary: "Invalid pod name", detail: `pod name "Data_Base" must be 1-63 lower-case letters, digits or '-'`, file: "db.hcl", at: "Data_Base"},
				{summary: "Unknown dependency", detail: `pod "web" depends on pod.db, which is not declared.`, file: "web.hcl", at: "depends_on"},
			},
		},
		{
			name:   "pod name too long",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", `pod "db"`, `pod "`+strings.Repeat("d", 64)+`"`) },
			wantDiags: []diagWant{
				{summary: "Invalid pod name", detail: "must be 1-63", file: "db.hcl", at: "ddd"},
				{summary: "Unknown dependency", detail: "pod.db", file: "web.hcl", at: "depends_on"},
			},
		},
		{
			name:      "invalid container name",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "db.hcl", `"postgres"`, `"-pg"`) },
			wantDiags: []diagWant{{summary: "Invalid container name", detail: `container name "-pg" must be`, file: "db.hcl", at: `"-pg"`}},
		},
		{
			name:   "container name with dots cannot escape the log directory",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", `"postgres"`, `"a..b"`) },
			wantDiags: []diagWant{
				// Reported once, as a name error; the default log_path
				// derived from it must not crash the loader.
				{summary: "Invalid container name", detail: `container name "a..b"`, file: "db.hcl", at: `"a..b"`},
			},
		},
		{
			name:      "invalid pod restart suggests the closest value",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"on_failure"`, `"on-failure"`) },
			wantDiags: []diagWant{{summary: "Invalid value", detail: `"restart" must be one of "always", "on_failure", "never"; got "on-failure". Did you mean "on_failure"?`, file: "web.hcl", at: "on-failure"}},
		},
		{
			name: "invalid container restart suggests the closest value",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", `restart      = "always"`, `restart      = "alway"`)
			},
			wantDiags: []diagWant{{summary: "Invalid value", detail: `got "alway". Did you mean "always"?`, file: "web.hcl", at: `"alway"`}},
		},
		{
			name: "restart far from every value: no suggestion",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", `restart      = "always"`, `restart      = "sometimes"`)
			},
			wantDiags: []diagWant{{summary: "Invalid value", detail: `got "sometimes".`, file: "web.hcl", at: "sometimes"}},
		},
		{
			name: "invalid pull",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", `pull         = "always"`, `pull         = "allways"`)
			},
			wantDiags: []diagWant{{summary: "Invalid value", detail: `"pull" must be one of "if_not_present", "always", "never"; got "allways". Did you mean "always"?`, file: "web.hcl", at: "allways"}},
		},
		{
			name:      "invalid stop_signal",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"SIGQUIT"`, `"SIGQUT"`) },
			wantDiags: []diagWant{{summary: "Invalid value", detail: `Did you mean "SIGQUIT"?`, file: "web.hcl", at: "SIGQUT"}},
		},
		{
			name:      "invalid stop_timeout",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"2m"`, `"2 minutes"`) },
			wantDiags: []diagWant{{summary: "Invalid duration", detail: `"stop_timeout" must be a duration such as "30s", "2m" or "1h30m"; got "2 minutes".`, file: "web.hcl", at: "2 minutes"}},
		},
		{
			name:      "negative stop_timeout",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"2m"`, `"-1s"`) },
			wantDiags: []diagWant{{summary: "Invalid duration", detail: `got "-1s"`, file: "web.hcl", at: "-1s"}},
		},
		{
			name:      "invalid user",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"1000:1000"`, `"1000:staff"`) },
			wantDiags: []diagWant{{summary: "Invalid user", detail: `got "1000:staff"`, file: "web.hcl", at: "1000:staff"}},
		},
		{
			name: "invalid image reference",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", `"docker.io/library/nginx:1.27"`, `"Nginx:latest"`)
			},
			wantDiags: []diagWant{{summary: "Invalid image reference", detail: `"Nginx:latest" is not an image reference`, file: "web.hcl", at: "Nginx:latest"}},
		},
		{
			name:      "relative working_dir",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"/srv"`, `"srv"`) },
			wantDiags: []diagWant{{summary: "Invalid working_dir", detail: `absolute path inside the container; got "srv"`, file: "web.hcl", at: `"srv"`}},
		},
		{
			name:      "invalid hostname",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"web-host"`, `"web_01"`) },
			wantDiags: []diagWant{{summary: "Invalid hostname", detail: `got "web_01"`, file: "web.hcl", at: "web_01"}},
		},
		{
			name:      "absolute log_path",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"app/out.log"`, `"/var/log/app.log"`) },
			wantDiags: []diagWant{{summary: "Invalid log_path", detail: `cannot leave it; got "/var/log/app.log"`, file: "web.hcl", at: "/var/log/app.log"}},
		},
		{
			name:      "log_path escaping the log directory",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"app/out.log"`, `"../other/app.log"`) },
			wantDiags: []diagWant{{summary: "Invalid log_path", detail: `got "../other/app.log"`, file: "web.hcl", at: "../other"}},
		},
		{
			name:      "empty image",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "db.hcl", `"docker.io/library/postgres:16"`, `""`) },
			wantDiags: []diagWant{{summary: "Empty image", detail: `container "postgres" needs an image reference`, file: "db.hcl", at: "image"}},
		},
		{
			name: "missing image",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image = \"docker.io/library/postgres:16\"\n", "")
			},
			wantDiags: []diagWant{{summary: "Missing required argument", detail: `The argument "image" is required`, file: "db.hcl", at: `container "postgres"`}},
		},
		{
			// Only the suggestion: "image is missing" would send the user
			// to add what the misspelling already means.
			name:   "misspelt attribute gets HCL's suggestion, and nothing about the missing one",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", "image =", "imgae =") },
			wantDiags: []diagWant{
				{summary: "Unsupported argument", detail: `An argument named "imgae" is not expected here. Did you mean "image"?`, file: "db.hcl", at: "imgae"},
			},
		},
		{
			name:   "a missing argument is still reported where nothing suggests it",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", "image =", "labels = {}\n    # image =") },
			wantDiags: []diagWant{
				{summary: "Missing required argument", detail: `"image" is required`, file: "db.hcl", at: `container "postgres"`},
			},
		},
		{
			name:      "misspelt pod attribute",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", "hostname  ", "host_name ") },
			wantDiags: []diagWant{{summary: "Unsupported argument", detail: `Did you mean "hostname"?`, file: "web.hcl", at: "host_name"}},
		},
		{
			name:   "misspelt block type",
			mutate: func(t *testing.T, fs files) { fs.replace(t, "db.hcl", `container "postgres"`, `containers "postgres"`) },
			wantDiags: []diagWant{
				{summary: "Unsupported block type", detail: `Did you mean "container"?`, file: "db.hcl", at: "containers"},
				{summary: "Pod without containers", detail: `pod "db"`, file: "db.hcl", at: `pod "db"`},
			},
		},
		{
			name: "wrong attribute type",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", "tty          = true", "tty          = \"yes\"")
			},
			wantDiags: []diagWant{{summary: "Incorrect attribute value type", detail: `Inappropriate value for attribute "tty"`, file: "web.hcl", at: `"yes"`}},
		},
		{
			name:      "command must be a list",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `["nginx"]`, `{ a = "nginx" }`) },
			wantDiags: []diagWant{{summary: "Incorrect attribute value type", detail: `attribute "command"`, file: "web.hcl", at: "command "}},
		},
		{
			name:      "null list element",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `["-g", "daemon off;"]`, `["-g", null]`) },
			wantDiags: []diagWant{{summary: "Null list element", detail: `"args" cannot contain null.`, file: "web.hcl", at: "null"}},
		},
		{
			name:      "null map value",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `role = "app"`, `role = null`) },
			wantDiags: []diagWant{{summary: "Null map value", detail: `"labels" cannot contain null (key "role").`, file: "web.hcl", at: "role = null"}},
		},
		{
			name:      "reserved label key on a pod",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", "tier = \"front\"", `"berth.io/stack" = "x"`) },
			wantDiags: []diagWant{{summary: "Reserved key", detail: `"berth.io/stack" uses the prefix "berth.io/"`, file: "web.hcl", at: "berth.io/stack"}},
		},
		{
			name:      "reserved annotation key on a pod",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"example.com/owner"`, `"berth.io/spec"`) },
			wantDiags: []diagWant{{summary: "Reserved key", detail: `"berth.io/spec" uses the prefix`, file: "web.hcl", at: "berth.io/spec"}},
		},
		{
			name: "reserved label and annotation keys on a container",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", `{ role = "app" }`, `{ "berth.io/hash" = "x" }`)
				fs.replace(t, "web.hcl", `{ note = "x" }`, `{ "berth.io/record" = "x" }`)
			},
			wantDiags: []diagWant{
				{summary: "Reserved key", detail: `"berth.io/hash"`, file: "web.hcl", at: "berth.io/hash"},
				{summary: "Reserved key", detail: `"berth.io/record"`, file: "web.hcl", at: "berth.io/record"},
			},
		},
		{
			name: "a key merely containing berth.io is fine",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", `"example.com/owner"`, `"example.berth.io/owner"`)
			},
			want: func(pods []*Pod) []*Pod {
				web(pods).Annotations = map[string]string{"example.berth.io/owner": "ops"}
				return pods
			},
		},
		{
			name:      "missing env_file",
			mutate:    func(t *testing.T, fs files) { delete(fs, "app.env") },
			wantDiags: []diagWant{{summary: "Cannot read env_file", detail: "app.env: no such file or directory", file: "web.hcl", at: "env_file"}},
		},
		{
			name:      "malformed env_file",
			mutate:    func(t *testing.T, fs files) { fs["app.env"] = "GOOD=1\nthis is not an assignment\n" },
			wantDiags: []diagWant{{summary: "Cannot read env_file", detail: `app.env:2: expected KEY=VALUE (the line is not shown: it may hold a secret)`, file: "web.hcl", at: "env_file"}},
		},
		{
			name:      "depends_on an unknown pod suggests the closest",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"pod.db"`, `"pod.dbb"`) },
			wantDiags: []diagWant{{summary: "Unknown dependency", detail: `pod "web" depends on pod.dbb, which is not declared. Did you mean "pod.db"?`, file: "web.hcl", at: "depends_on"}},
		},
		{
			name:      "depends_on an unknown pod with nothing close",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"pod.db"`, `"pod.elasticsearch"`) },
			wantDiags: []diagWant{{summary: "Unknown dependency", detail: "pod.elasticsearch, which is not declared.", file: "web.hcl", at: "depends_on"}},
		},
		{
			name:      "depends_on without the pod. prefix",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "web.hcl", `"pod.db"`, `"db"`) },
			wantDiags: []diagWant{{summary: "Invalid depends_on reference", detail: `"db" is not a pod reference. Write depends_on = ["pod.NAME"].`, file: "web.hcl", at: "depends_on"}},
		},
		{
			name: "depends_on cycle",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  depends_on = [\"pod.web\"]\n  container")
			},
			wantDiags: []diagWant{{summary: "Dependency cycle", detail: "pods depend on each other in a cycle: db -> web -> db. Remove one of the depends_on entries.", file: "db.hcl", at: `pod "db"`}},
		},
		{
			name: "depends_on itself",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  depends_on = [\"pod.db\"]\n  container")
			},
			wantDiags: []diagWant{{summary: "Dependency cycle", detail: "cycle: db -> db.", file: "db.hcl", at: `pod "db"`}},
		},

		// Parts of the language that are not implemented must be refused,
		// never silently ignored.
		{
			name: "pod host settings",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", `  host_pid     = true
  host_ipc     = true
  privileged   = true
  sysctls      = { "net.ipv4.ip_forward" = "1" }
  container`)
			},
			want: func(pods []*Pod) []*Pod {
				db := pods[0]
				db.HostPID, db.HostIPC, db.Privileged = true, true, true
				db.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
				return pods
			},
		},
		{
			name: "hostname with host_network",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", "  runtime ", "  host_network = true\n  runtime ")
			},
			wantDiags: []diagWant{{summary: "hostname with host_network", detail: "cannot set a hostname without a private UTS namespace", file: "web.hcl", at: "web-host"}},
		},
		{
			name: "start_first with min_ready",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  update_order = \"start_first\"\n  min_ready = \"3s\"\n  container")
			},
			want: func(pods []*Pod) []*Pod {
				pods[0].UpdateOrder, pods[0].MinReady = StartFirst, 3*time.Second
				return pods
			},
		},
		{
			name: "stop_first said outright",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  update_order = \"stop_first\"\n  container")
			},
			want: func(pods []*Pod) []*Pod {
				pods[0].UpdateOrder = StopFirst
				return pods
			},
		},
		{
			name: "update_order and min_ready checked",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  update_order = \"blue_green\"\n  min_ready = \"-1s\"\n  container")
			},
			wantDiags: []diagWant{
				{summary: "Invalid value", detail: `"stop_first", "start_first"`, file: "db.hcl", at: "blue_green"},
				{summary: "Invalid duration", detail: `"min_ready" must be a duration`, file: "db.hcl", at: "-1s"},
			},
		},
		{
			name: "start_first refused with host_network",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  host_network = true\n  update_order = \"start_first\"\n  container")
			},
			wantDiags: []diagWant{{summary: "start_first with host_network", detail: "could not bind the ports the old one holds", file: "db.hcl", at: "start_first"}},
		},
		{
			name: "start_first refused with devices",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  update_order = \"start_first\"\n  container")
				fs.replace(t, "db.hcl", "    image", "    device \"/dev/kvm\" {}\n    image")
			},
			wantDiags: []diagWant{{summary: "start_first with devices", detail: `container "postgres" of pod "db" uses host devices`, file: "db.hcl", at: "start_first"}},
		},
		{
			name: "forwards",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  forward \"pg\" {\n    port = 5432\n    listen = \"127.0.0.1:15432\"\n  }\n  container")
			},
			want: func(pods []*Pod) []*Pod {
				pods[0].Forwards = []Forward{{Name: "pg", Port: 5432, Listen: "127.0.0.1:15432"}}
				return pods
			},
		},
		{
			name: "invalid forwards",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  forward \"a\" {\n    port = 70000\n    listen = \"127.0.0.1:1\"\n  }\n  forward \"b\" {\n    port = 1\n    listen = \"localhost:99\"\n  }\n  container")
			},
			wantDiags: []diagWant{
				{summary: "Invalid port", detail: "got 70000", file: "db.hcl", at: "70000"},
				{summary: "Invalid listen", detail: `got "localhost:99"`, file: "db.hcl", at: "localhost:99"},
			},
		},
		{
			name: "ports",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  port \"pg\" {\n    container = 5432\n    host_ip = \"127.0.0.1\"\n  }\n  port \"dns\" {\n    container = 53\n    host = 5353\n    protocol = \"udp\"\n  }\n  container")
			},
			want: func(pods []*Pod) []*Pod {
				pods[0].Ports = []Port{
					{Name: "pg", Container: 5432, Host: 5432, HostIP: "127.0.0.1", Protocol: "tcp"},
					{Name: "dns", Container: 53, Host: 5353, Protocol: "udp"},
				}
				return pods
			},
		},
		{
			name: "a host port claimed by two pods",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  port \"a\" {\n    container = 80\n    host = 8080\n  }\n  container")
				fs.replace(t, "web.hcl", "  dns {", "  port \"b\" {\n    container = 8080\n    host_ip = \"127.0.0.1\"\n  }\n  dns {")
			},
			wantDiags: []diagWant{{summary: "Host port claimed twice", detail: `pod "db" port "a" and pod "web" port "b" both claim host port 8080/tcp (a port without host_ip takes every address)`, file: "web.hcl", at: `port "b"`}},
		},
		{
			name: "invalid ports",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  port \"a\" {\n    container = 0\n    host_ip = \"localhost\"\n    protocol = \"tpc\"\n  }\n  container")
			},
			wantDiags: []diagWant{
				{summary: "Invalid port", detail: "from 1 to 65535; got 0", file: "db.hcl", at: "0"},
				{summary: "Invalid host_ip", detail: `got "localhost"`, file: "db.hcl", at: "localhost"},
				{summary: "Invalid value", detail: `Did you mean "tcp"?`, file: "db.hcl", at: "tpc"},
			},
		},
		{
			name: "container host settings",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "  container", "  privileged = true\n  container")
				fs.replace(t, "db.hcl", "    image", `    privileged        = true
    read_only_root    = true
    no_new_privileges = true
    seccomp           = "unconfined"
    apparmor          = "localhost/vm"
    cdi_devices       = ["nvidia.com/gpu=all"]
    capabilities {
      add  = ["net_admin", "CAP_SYS_NICE"]
      drop = ["ALL"]
    }
    resources {
      cpus       = 1.5
      cpu_shares = 512
      cpuset     = "0-1"
      memory     = "8GiB"
      pids       = 100
    }
    device "/dev/kvm" {}
    device "/dev/net/tun" {
      container_path = "/dev/tun"
      permissions    = "rw"
      optional       = true
    }
    mount "/data" {
      host_path   = "data"
      read_only   = true
      propagation = "host_to_container"
      create      = false
    }
    tmpfs "/run" {
      size = "64Mi"
    }
    tmpfs "/tmp" {}
    image`)
			},
			want: func(pods []*Pod) []*Pod {
				db := pods[0]
				db.Privileged = true
				c := db.Containers[0]
				c.Privileged, c.ReadOnlyRoot, c.NoNewPrivileges = true, true, true
				c.Seccomp, c.AppArmor = "unconfined", "localhost/vm"
				c.CDIDevices = []string{"nvidia.com/gpu=all"}
				c.CapAdd, c.CapDrop = []string{"NET_ADMIN", "SYS_NICE"}, []string{"ALL"}
				c.Resources = Resources{CPUs: 1.5, CPUShares: 512, Cpuset: "0-1", Memory: 8 << 30, Pids: 100}
				c.Devices = []Device{
					{HostPath: "/dev/kvm", ContainerPath: "/dev/kvm", Permissions: "rwm"},
					{HostPath: "/dev/net/tun", ContainerPath: "/dev/tun", Permissions: "rw", Optional: true},
				}
				c.Mounts = []Mount{{ContainerPath: "/data", HostPath: "<dir>/data", ReadOnly: true, Propagation: PropagationHostToContainer}}
				c.Tmpfs = []Tmpfs{{Path: "/run", Size: 64 << 20}, {Path: "/tmp"}}
				return pods
			},
		},
		{
			name: "invalid host settings are each reported",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", `    seccomp = "strict"
    capabilities {
      add = ["NET_ADMN"]
    }
    resources {
      cpus   = 0
      memory = "lots"
      cpuset = "a-b"
    }
    device "dev/kvm" {
      permissions = "rwx"
    }
    mount "data" {
      host_path = "/srv"
    }
    image`)
			},
			wantDiags: []diagWant{
				{summary: "Invalid profile", detail: `"seccomp" must be "runtime/default", "unconfined" or "localhost/<profile>"; got "strict"`, file: "db.hcl", at: "strict"},
				{summary: "Unknown capability", detail: `"NET_ADMN" is not a Linux capability. Did you mean "NET_ADMIN"?`, file: "db.hcl", at: "NET_ADMN"},
				{summary: "Invalid cpus", detail: "between 0.01 and 1024", file: "db.hcl", at: "cpus"},
				{summary: "Invalid cpuset", detail: `got "a-b"`, file: "db.hcl", at: "a-b"},
				{summary: "Invalid size", detail: `got "lots"`, file: "db.hcl", at: "lots"},
				{summary: "Invalid device", detail: `absolute host path`, file: "db.hcl", at: "dev/kvm"},
				{summary: "Invalid container_path", detail: `got "dev/kvm"`, file: "db.hcl", at: "dev/kvm"},
				{summary: "Invalid permissions", detail: `got "rwx"`, file: "db.hcl", at: "rwx"},
				{summary: "Invalid mount", detail: `absolute path in the container`, file: "db.hcl", at: `mount "data"`},
			},
		},
		{
			name: "a privileged container needs a privileged pod",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    privileged = true\n    image")
			},
			wantDiags: []diagWant{{summary: "Privileged container in an unprivileged pod", detail: `Add privileged = true to pod "db"`, file: "db.hcl", at: `container "postgres"`}},
		},
		{
			name: "probes of each kind and check",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", `    probe "liveness" {
      exec { command = ["pg_isready"] }
      interval          = "5s"
      failure_threshold = 2
      start_period      = "1m"
    }
    probe "readiness" {
      http {
        port    = 8080
        path    = "/ready"
        headers = { Host = "db" }
      }
      success_threshold = 2
    }
    probe "startup" {
      tcp { port = 5432 }
      timeout = "500ms"
    }
    image`)
			},
			want: func(pods []*Pod) []*Pod {
				pods[0].Containers[0].Probes = []Probe{
					{Kind: Liveness, Exec: []string{"pg_isready"}, Interval: 5 * time.Second, Timeout: DefaultProbeTimeout, FailureThreshold: 2, SuccessThreshold: 1, StartPeriod: time.Minute},
					{Kind: Readiness, HTTP: &HTTPCheck{Port: 8080, Path: "/ready", Scheme: "http", Headers: map[string]string{"Host": "db"}}, Interval: DefaultProbeInterval, Timeout: DefaultProbeTimeout, FailureThreshold: 3, SuccessThreshold: 2},
					{Kind: Startup, TCP: &TCPCheck{Port: 5432}, Interval: DefaultProbeInterval, Timeout: 500 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 1},
				}
				return pods
			},
		},
		{
			name: "probe kind misspelt",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"liveliness\" {\n      tcp { port = 1 }\n    }\n    image")
			},
			wantDiags: []diagWant{{summary: "Invalid probe kind", detail: `Did you mean "liveness"?`, file: "db.hcl", at: `"liveliness"`}},
		},
		{
			name: "probe without a check",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"liveness\" {}\n    image")
			},
			wantDiags: []diagWant{{summary: "One check per probe", detail: "this one has 0", file: "db.hcl", at: `probe "liveness"`}},
		},
		{
			name: "probe with two checks",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"liveness\" {\n      tcp { port = 1 }\n      exec { command = [\"true\"] }\n    }\n    image")
			},
			wantDiags: []diagWant{{summary: "One check per probe", detail: "this one has 2", file: "db.hcl", at: `probe "liveness"`}},
		},
		{
			name: "two probes of one kind",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"liveness\" {\n      tcp { port = 1 }\n    }\n    probe liveness {\n      tcp { port = 2 }\n    }\n    image")
			},
			wantDiags: []diagWant{{summary: "Duplicate probe", detail: "already has a liveness probe", file: "db.hcl", at: `probe liveness`}},
		},
		{
			name: "probe on an init container",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "web.hcl", "    init  = true\n", "    init  = true\n    probe \"readiness\" {\n      tcp { port = 1 }\n    }\n")
			},
			wantDiags: []diagWant{{summary: "Probe on an init container", detail: "never probed", file: "web.hcl", at: `probe "readiness"`}},
		},
		{
			name: "probe port out of range",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"startup\" {\n      http { port = 70000 }\n    }\n    image")
			},
			wantDiags: []diagWant{{summary: "Invalid port", detail: "got 70000", file: "db.hcl", at: "70000"}},
		},
		{
			name: "probe interval of zero",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"liveness\" {\n      tcp { port = 1 }\n      interval = \"0s\"\n    }\n    image")
			},
			wantDiags: []diagWant{{summary: "Invalid duration", detail: "must be at least 10ms", file: "db.hcl", at: `"0s"`}},
		},
		{
			name: "success_threshold on a liveness probe",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"liveness\" {\n      tcp { port = 1 }\n      success_threshold = 2\n    }\n    image")
			},
			wantDiags: []diagWant{{summary: "Invalid threshold", detail: "Only readiness probes", file: "db.hcl", at: "2"}},
		},
		{
			name: "http probe path without a slash",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "db.hcl", "    image", "    probe \"readiness\" {\n      http {\n        port = 80\n        path = \"ready\"\n      }\n    }\n    image")
			},
			wantDiags: []diagWant{{summary: "Invalid path", detail: `starts with "/"`, file: "db.hcl", at: `"ready"`}},
		},
		{
			name: "image from a sensitive variable",
			mutate: func(t *testing.T, fs files) {
				fs["v.hcl"] = "variable \"img\" {\n  default   = \"registry.example.com/private:1\"\n  sensitive = true\n}\n"
				fs.replace(t, "db.hcl", `"docker.io/library/postgres:16"`, "var.img")
			},
			wantDiags: []diagWant{{summary: "Sensitive value not allowed", detail: `"image" is shown in plans and runtime metadata`, file: "db.hcl", at: "var.img"}},
		},
		{
			name: "labels from a sensitive variable",
			mutate: func(t *testing.T, fs files) {
				fs["v.hcl"] = "variable \"s\" {\n  default   = \"x\"\n  sensitive = true\n}\n"
				fs.replace(t, "web.hcl", `tier = "front"`, `tier = var.s`)
			},
			wantDiags: []diagWant{{summary: "Sensitive value not allowed", detail: `"labels" is stored as runtime metadata`, file: "web.hcl", at: "labels"}},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := podBase()
			if tt.mutate != nil {
				tt.mutate(t, fs)
			}
			cfg, diags, _ := loadFiles(t, fs, Options{})
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				if cfg != nil {
					t.Error("Load returned a Config despite errors")
				}
				return
			}
			requireNoErrors(t, diags)
			stripRanges(cfg)
			want := podBaseWant()
			if tt.want != nil {
				want = tt.want(want)
			}
			requireEqual(t, cfg.Pods, want)
		})
	}
}

func TestDynamicBlocks(t *testing.T) {
	base := func() files {
		return files{
			"main.hcl": `locals {
  workers = {
    alpha = "registry.example.com/alpha:1"
    beta  = "registry.example.com/beta:2"
  }
}

pod "workers" {
  container "main" {
    image = "busybox"
  }

  dynamic "container" {
    for_each = local.workers
    content {
      image = container.value
      env   = { ROLE = container.key }
    }
    labels = [container.key]
  }

  dynamic "dns" {
    for_each = ["lan"]
    content {
      searches = [dns.value]
    }
  }
}
`,
		}
	}
	type result struct {
		Name, Image string
		Env         map[string]string
	}
	baseWant := []result{
		{"main", "busybox", nil},
		{"alpha", "registry.example.com/alpha:1", map[string]string{"ROLE": "alpha"}},
		{"beta", "registry.example.com/beta:2", map[string]string{"ROLE": "beta"}},
	}

	tests := []struct {
		name      string
		mutate    func(t *testing.T, fs files)
		want      []result
		wantDNS   *DNS
		wantDiags []diagWant
		check     func(*testing.T, *Config) // instead of want
	}{
		{name: "base", want: baseWant, wantDNS: &DNS{Searches: []string{"lan"}}},
		{
			name: "iterator renamed, list for_each",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "main.hcl", "for_each = local.workers", "for_each = [\"x\", \"y\"]\n    iterator = w")
				fs.replace(t, "main.hcl", "image = container.value\n      env   = { ROLE = container.key }", "image = \"img-${w.value}\"\n      env   = { INDEX = tostring(w.key) }")
				fs.replace(t, "main.hcl", "labels = [container.key]", "labels = [\"c-${w.value}\"]")
			},
			want: []result{
				{"main", "busybox", nil},
				{"c-x", "img-x", map[string]string{"INDEX": "0"}},
				{"c-y", "img-y", map[string]string{"INDEX": "1"}},
			},
			wantDNS: &DNS{Searches: []string{"lan"}},
		},
		{
			name:    "empty for_each produces nothing",
			mutate:  func(t *testing.T, fs files) { fs.replace(t, "main.hcl", "for_each = local.workers", "for_each = {}") },
			want:    baseWant[:1],
			wantDNS: &DNS{Searches: []string{"lan"}},
		},
		{
			name: "only dynamic containers",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "main.hcl", "  container \"main\" {\n    image = \"busybox\"\n  }\n", "")
			},
			want:    baseWant[1:],
			wantDNS: &DNS{Searches: []string{"lan"}},
		},
		{
			name:      "dynamic container colliding with a static one",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "main.hcl", "alpha = ", "main  = ") },
			wantDiags: []diagWant{{summary: "Duplicate container", detail: `container "main" is already declared in pod "workers"`, file: "main.hcl", at: `dynamic "container"`}},
		},
		{
			name:      "dynamic container with an invalid generated name",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "main.hcl", "beta  = ", "Beta  = ") },
			wantDiags: []diagWant{{summary: "Invalid container name", detail: `container name "Beta"`, file: "main.hcl", at: "[container.key]"}},
		},
		{
			name: "dynamic ports",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "main.hcl", "  dynamic \"dns\"", "  dynamic \"port\" {\n    for_each = { http = 80, https = 443 }\n    labels   = [port.key]\n    content {\n      container = port.value\n      host      = port.value + 8000\n    }\n  }\n\n  dynamic \"dns\"")
			},
			check: func(t *testing.T, cfg *Config) {
				got := cfg.Pod("workers").Ports
				if len(got) != 2 || got[0].Name != "http" || got[0].Host != 8080 || got[1].Name != "https" || got[1].Container != 443 || got[1].Host != 8443 {
					t.Errorf("ports = %+v", got)
				}
			},
		},
		{
			name: "dynamic mounts inside a container",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "main.hcl", "    image = \"busybox\"\n", "    image = \"busybox\"\n    dynamic \"mount\" {\n      for_each = [\"/data\"]\n      labels   = [mount.value]\n      content {\n        host_path = \"/srv${mount.value}\"\n      }\n    }\n")
			},
			check: func(t *testing.T, cfg *Config) {
				if c := cfg.Pod("workers").Container("main"); len(c.Mounts) != 1 || c.Mounts[0].ContainerPath != "/data" || c.Mounts[0].HostPath != "/srv/data" {
					t.Errorf("mounts = %+v, want /data from /srv/data", c.Mounts)
				}
			},
		},
		{
			// The pod itself has no dynamic block: the one in its container
			// must be found and expanded all the same.
			name: "a dynamic block only inside a container",
			mutate: func(t *testing.T, fs files) {
				fs["main.hcl"] = "pod \"workers\" {\n  container \"main\" {\n    image = \"busybox\"\n    dynamic \"mount\" {\n      for_each = [\"/data\"]\n      labels   = [mount.value]\n      content {\n        host_path = \"/srv${mount.value}\"\n      }\n    }\n  }\n}\n"
			},
			check: func(t *testing.T, cfg *Config) {
				if c := cfg.Pod("workers").Container("main"); len(c.Mounts) != 1 || c.Mounts[0].ContainerPath != "/data" || c.Mounts[0].HostPath != "/srv/data" {
					t.Errorf("mounts = %+v, want /data from /srv/data", c.Mounts)
				}
			},
		},
		{
			name: "for_each over an unknown local",
			mutate: func(t *testing.T, fs files) {
				fs.replace(t, "main.hcl", "for_each = local.workers", "for_each = local.wrokers")
			},
			wantDiags: []diagWant{{summary: "Unsupported attribute", detail: `"wrokers"`, file: "main.hcl", at: "local.wrokers"}},
		},
		{
			name:      "dynamic block of an unknown type",
			mutate:    func(t *testing.T, fs files) { fs.replace(t, "main.hcl", `dynamic "container"`, `dynamic "containr"`) },
			wantDiags: []diagWant{{summary: "Unsupported block type", detail: `Blocks of type "containr" are not expected here.`, file: "main.hcl", at: `dynamic "containr"`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := base()
			if tt.mutate != nil {
				tt.mutate(t, fs)
			}
			cfg, diags, _ := loadFiles(t, fs, Options{})
			if tt.wantDiags != nil {
				requireDiags(t, fs, diags, tt.wantDiags...)
				return
			}
			requireNoErrors(t, diags)
			if tt.check != nil {
				tt.check(t, cfg)
				return
			}
			p := cfg.Pod("workers")
			var got []result
			for _, c := range p.Containers {
				got = append(got, result{c.Name, c.Image, c.Env})
				if c.Pull != PullIfNotPresent || c.LogPath != c.Name+".log" || c.StopTimeout != DefaultStopTimeout {
					t.Errorf("container %q: defaults not applied: %+v", c.Name, c)
				}
			}
			requireEqual(t, got, tt.want)
			requireEqual(t, p.DNS, tt.wantDNS)
		})
	}
}

func TestLevels(t *testing.T) {
	pod := func(name string, deps ...string) *Pod { return &Pod{Name: name, DependsOn: deps} }
	names := func(levels [][]*Pod) [][]string {
		out := [][]string{}
		for _, l := range levels {
			var ns []string
			for _, p := range l {
				ns = append(ns, p.Name)
			}
			out = append(out, ns)
		}
		return out
	}
	tests := []struct {
		name    string
		pods    []*Pod
		want    [][]string
		wantErr string
	}{
		{name: "none", pods: nil, want: [][]string{}},
		{name: "independent pods are one level, sorted by name", pods: []*Pod{pod("c"), pod("a"), pod("b")}, want: [][]string{{"a", "b", "c"}}},
		{
			name: "chain and diamond, declared in reverse",
			pods: []*Pod{pod("app", "api", "cache"), pod("api", "db"), pod("cache", "db"), pod("db"), pod("lonely"), pod("web", "app", "db")},
			want: [][]string{{"db", "lonely"}, {"api", "cache"}, {"app"}, {"web"}},
		},
		{name: "a pod sits one level below its deepest dependency", pods: []*Pod{pod("a"), pod("b", "a"), pod("c", "b"), pod("d", "a", "c")}, want: [][]string{{"a"}, {"b"}, {"c"}, {"d"}}},
		{name: "unknown dependencies are ignored here", pods: []*Pod{pod("a", "ghost")}, want: [][]string{{"a"}}},
		{name: "cycle", pods: []*Pod{pod("a", "b"), pod("b", "c"), pod("c", "a")}, wantErr: "pods depend on each other in a cycle: a -> b -> c -> a."},
		{name: "self", pods: []*Pod{pod("ok"), pod("me", "me")}, wantErr: "pods depend on each other in a cycle: me -> me."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			levels, err := Levels(tt.pods)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			requireEqual(t, names(levels), tt.want)
		})
	}
}

// TestConfigLookups checks Config.Pod and Pod.Container on a loaded config.
func TestConfigLookups(t *testing.T) {
	cfg := mustLoad(t, podBase(), Options{})
	if p := cfg.Pod("web"); p == nil || p.Name != "web" || p.Container("setup") == nil || p.Container("setup").Name != "setup" {
		t.Errorf("lookups failed: %+v", p)
	}
	if cfg.Pod("nope") != nil || cfg.Pod("web").Container("nope") != nil {
		t.Error("lookup of a missing name returned non-nil")
	}
	// Ranges point at the declarations.
	web := cfg.Pod("web")
	if filepath.Base(web.DeclRange.Filename) != "web.hcl" || web.DeclRange.Start.Line != 1 {
		t.Errorf("pod DeclRange = %s", web.DeclRange)
	}
	if c := web.Container("setup"); filepath.Base(c.DeclRange.Filename) != "web.hcl" || c.DeclRange.Start.Line != lineOf(t, podBase()["web.hcl"], `container "setup"`) {
		t.Errorf("container DeclRange = %s", c.DeclRange)
	}
}
