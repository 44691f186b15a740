package hostsfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/spec"
)

func TestRender(t *testing.T) {
	cases := []struct {
		name   string
		mirror spec.Mirror
		want   string
	}{
		{"upstream only", spec.Mirror{Host: "docker.io", Server: "https://registry-1.docker.io"},
			"# Managed by berth, stack \"home\". Changes here are overwritten by berth apply.\nserver = \"https://registry-1.docker.io\"\n"},
		{"default host, no server", spec.Mirror{Host: "_default", Endpoints: []spec.Endpoint{{URL: "http://127.0.0.1:5000", Capabilities: []string{"pull", "resolve"}}}},
			"# Managed by berth, stack \"home\". Changes here are overwritten by berth apply.\n\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"},
		{"every endpoint setting, in order", spec.Mirror{Host: "docker.io", Server: "https://registry-1.docker.io", Endpoints: []spec.Endpoint{
			{URL: "https://b.example.com", Capabilities: []string{"pull"}, SkipVerify: true, CAFile: "/ca.pem", ClientCert: "/c.pem", ClientKey: "/k.pem",
				Header: map[string]string{"X-Team": "infra", "A": "\"q\""}, OverridePath: true},
			{URL: "https://a.example.com", Capabilities: []string{"pull", "resolve"}, ClientCert: "/both.pem"},
		}}, `# Managed by berth, stack "home". Changes here are overwritten by berth apply.
server = "https://registry-1.docker.io"

[host."https://b.example.com"]
  capabilities = ["pull"]
  skip_verify = true
  ca = "/ca.pem"
  client = [["/c.pem", "/k.pem"]]
  override_path = true

  [host."https://b.example.com".header]
    "A" = ["\"q\""]
    "X-Team" = ["infra"]

[host."https://a.example.com"]
  capabilities = ["pull", "resolve"]
  client = "/both.pem"
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Render("home", &tc.mirror)); got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestReadWriteRemove(t *testing.T) {
	dir := t.TempDir()
	if files, err := Read(filepath.Join(dir, "missing")); err != nil || len(files) != 0 {
		t.Fatalf("a missing certs dir: %v %v", files, err)
	}
	mine := Path(dir, "docker.io")
	if err := Write(mine, Render("home", &spec.Mirror{Host: "docker.io", Server: "https://x"})); err != nil {
		t.Fatal(err)
	}
	theirs := Path(dir, "quay.io")
	os.MkdirAll(filepath.Dir(theirs), 0o755)
	os.WriteFile(theirs, []byte("server = \"https://quay.io\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "quay.io", "ca.crt"), []byte("cert"), 0o644)

	files, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files["docker.io"].Stack != "home" || files["quay.io"].Stack != "" || len(files) != 2 {
		t.Fatalf("read %+v", files)
	}
	if info, _ := os.Stat(mine); info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", info.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(mine)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}

	// Removing drops an emptied host directory, but keeps one with certificates.
	if err := Remove(mine); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(mine)); !os.IsNotExist(err) {
		t.Errorf("empty host dir left: %v", err)
	}
	if err := Remove(theirs); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "quay.io", "ca.crt")); err != nil {
		t.Errorf("a certificate beside the file was removed: %v", err)
	}
	if err := Remove(mine); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

// A hosts.toml planted as a link or FIFO is reported as a file berth did
// not write, without reading through the link or blocking on the FIFO.
func TestReadDoesNotFollowOrBlock(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(secret, []byte("root:x:0:0"), 0o600)
	os.MkdirAll(filepath.Join(dir, "link.example"), 0o755)
	os.Symlink(secret, Path(dir, "link.example"))
	os.MkdirAll(filepath.Join(dir, "fifo.example"), 0o755)
	if err := syscall.Mkfifo(Path(dir, "fifo.example"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"link.example", "fifo.example"} {
		f := files[host]
		if f == nil || f.Stack != "" || f.Content != nil {
			t.Errorf("%s: %+v, want a foreign file with no content", host, f)
		}
	}
}
