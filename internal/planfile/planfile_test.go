package planfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/render"
)

var hostKey = bytes.Repeat([]byte{7}, 32)

func good() *File {
	return &File{Dir: "/srv/stack", Stack: "web", Address: "unix:///x.sock", VarFiles: []string{"/srv/prod.berthvars"},
		Key: NewKey(), Digests: map[string]string{"pod.web": "d1"}, Plan: render.JSONPlan{FormatVersion: "2", Stack: "web"}}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.plan")
	in := good()
	if err := Write(path, in, hostKey); err != nil {
		t.Fatal(err)
	}
	out, err := Read(path, hostKey)
	if err != nil {
		t.Fatal(err)
	}
	if out.Dir != in.Dir || out.Digests["pod.web"] != "d1" || out.Key != in.Key || out.VarFiles[0] != "/srv/prod.berthvars" || out.FormatVersion != FormatVersion {
		t.Fatalf("read back %+v", out)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode())
	}
}

// A plan file edited by hand, or made with another host's key, is refused
// before anything in it is used; so is an authentic one whose fields
// could steer apply somewhere it must not go.
func TestReadRefusesTampering(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, path string, f *File) // f is written after
		key    []byte
		want   string
	}{
		{name: "an edited stack", mutate: func(t *testing.T, path string, f *File) {}, want: "changed after berth wrote it"},
		{name: "another host's key", key: bytes.Repeat([]byte{8}, 32), want: "made on another host"},
		{name: "an invalid stack, authentic", mutate: func(t *testing.T, path string, f *File) { f.Stack = "../../../x" }, want: `stack "../../../x" is not a valid stack name`},
		{name: "a relative directory", mutate: func(t *testing.T, path string, f *File) { f.Dir = "stack" }, want: "not an absolute path"},
		{name: "no digests", mutate: func(t *testing.T, path string, f *File) { f.Digests = nil }, want: "no digests"},
		{name: "a TCP runtime", mutate: func(t *testing.T, path string, f *File) { f.Address = "tcp://10.0.0.1:1" }, want: "not a unix socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.plan")
			f := good()
			if tt.mutate != nil {
				tt.mutate(t, path, f)
			}
			key := hostKey
			if tt.key != nil {
				key = tt.key
			}
			if err := Write(path, f, key); err != nil {
				t.Fatal(err)
			}
			if tt.name == "an edited stack" {
				b, _ := os.ReadFile(path)
				os.WriteFile(path, bytes.Replace(b, []byte(`"stack": "web"`), []byte(`"stack": "wab"`), 1), 0o600)
			}
			if _, err := Read(path, hostKey); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReadRejects(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		content string
		want    string
	}{
		"not json":       {"pod \"x\" {}", "not a berth plan file"},
		"other json":     {`{"a": 1}`, "not a berth plan file"},
		"future version": {`{"format_version": 99}`, "plan file format 99"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			os.WriteFile(path, []byte(tc.content), 0o644)
			_, err := Read(path, hostKey)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Read(filepath.Join(dir, "missing"), hostKey); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(fifo, hostKey); !errors.Is(err, ErrNotPlan) {
		t.Fatalf("a FIFO: %v", err)
	}
}

// A plan file's digests are keyed with the host key as well as its own
// key: the file alone (which holds its own key) cannot recompute them, so
// cannot test a guessed registry password against them.
func TestDigestKeyNeedsTheHostKey(t *testing.T) {
	hostA, hostB := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	fileKey := NewKey()
	for _, tc := range []struct {
		name string
		a, b []byte
	}{
		{"another host", DigestKey(hostA, fileKey), DigestKey(hostB, fileKey)},
		{"another file", DigestKey(hostA, fileKey), DigestKey(hostA, NewKey())},
		{"the file's own key alone", DigestKey(hostA, fileKey), []byte(fileKey)},
	} {
		if bytes.Equal(tc.a, tc.b) {
			t.Errorf("%s: the same digest key", tc.name)
		}
	}
	if !bytes.Equal(DigestKey(hostA, fileKey), DigestKey(hostA, fileKey)) {
		t.Error("the digest key is not the same for the same host and file")
	}
}
