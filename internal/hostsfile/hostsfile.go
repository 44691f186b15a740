// Package hostsfile renders, reads and writes containerd's per-registry
// hosts.toml files (<certs dir>/<host>/hosts.toml), the files that tell the
// runtime, and berth's own pulls, which mirrors to try for a registry.
//
// Every file berth writes starts with a marker line naming its stack, so a
// stack finds its files again without a state file and never touches a
// file it did not write.
package hostsfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/spec"
)

// FileName is the name of the file in a host's directory.
const FileName = "hosts.toml"

// File is a hosts.toml found on disk.
type File struct {
	Host    string
	Path    string
	Content []byte
	// Stack is the stack named by the marker; "" when berth did not write it.
	Stack string
	// Linked says the host's directory is a symbolic link: what is behind
	// it is not berth's to write or read.
	Linked bool
}

var markerPattern = regexp.MustCompile(`^# Managed by berth, stack "([^"]+)"\.`)

func marker(stack string) string {
	return fmt.Sprintf("# Managed by berth, stack %q. Changes here are overwritten by berth apply.\n", stack)
}

// Path is where the file of a registry host lives.
func Path(certsDir, host string) string {
	return filepath.Join(certsDir, host, FileName)
}

// Render writes a mirror block as hosts.toml. Endpoints keep their order:
// containerd tries them top to bottom, then the server.
func Render(stack string, m *spec.Mirror) []byte {
	var b bytes.Buffer
	b.WriteString(marker(stack))
	if m.Server != "" {
		fmt.Fprintf(&b, "server = %s\n", quote(m.Server))
	}
	for _, ep := range m.Endpoints {
		table := "host." + quote(ep.URL)
		fmt.Fprintf(&b, "\n[%s]\n", table)
		fmt.Fprintf(&b, "  capabilities = %s\n", quoteList(ep.Capabilities))
		if ep.SkipVerify {
			b.WriteString("  skip_verify = true\n")
		}
		if ep.CAFile != "" {
			fmt.Fprintf(&b, "  ca = %s\n", quote(ep.CAFile))
		}
		if ep.ClientCert != "" {
			if ep.ClientKey != "" {
				fmt.Fprintf(&b, "  client = [[%s, %s]]\n", quote(ep.ClientCert), quote(ep.ClientKey))
			} else {
				fmt.Fprintf(&b, "  client = %s\n", quote(ep.ClientCert))
			}
		}
		if ep.OverridePath {
			b.WriteString("  override_path = true\n")
		}
		if len(ep.Header) > 0 {
			fmt.Fprintf(&b, "\n  [%s.header]\n", table)
			keys := make([]string, 0, len(ep.Header))
			for k := range ep.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "    %s = [%s]\n", quote(k), quote(ep.Header[k]))
			}
		}
	}
	return b.Bytes()
}

// quote writes a TOML basic string. JSON's string escapes are a subset of
// TOML's, so encoding/json (without HTML escaping) quotes correctly.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// MaxSize is the largest hosts.toml berth reads.
const MaxSize = 1 << 20

// Read finds every hosts.toml in a certs directory. A missing directory
// holds none.
func Read(certsDir string) (map[string]*File, error) {
	entries, err := os.ReadDir(certsDir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*File{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]*File{}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 {
			out[e.Name()] = &File{Host: e.Name(), Path: Path(certsDir, e.Name()), Linked: true}
			continue
		}
		if !e.IsDir() {
			continue
		}
		path := Path(certsDir, e.Name())
		// Not through a link, and not a FIFO: whoever can write the certs
		// dir must not make berth read, diff or hang on another file.
		content, err := safefile.Read(path, MaxSize, safefile.Options{NoFollow: true})
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if errors.Is(err, safefile.ErrNotRegular) {
			// A link or FIFO: there, and not berth's; its content unread.
			out[e.Name()] = &File{Host: e.Name(), Path: path}
			continue
		}
		if err != nil {
			return nil, err
		}
		f := &File{Host: e.Name(), Path: path, Content: content}
		if m := markerPattern.FindSubmatch(content); m != nil {
			f.Stack = string(m[1])
		}
		out[f.Host] = f
	}
	return out, nil
}

// Write replaces path with content atomically: the runtime, reading at any
// moment, sees the old file or the new one, never half of one.
func Write(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// The temporary file is made beside path, not in the system's temp
	// dir: the runtime reloads its CNI configuration when a file in the
	// directory is renamed away, and ignores one that is renamed in.
	return renameio.WriteFile(path, content, 0o644, renameio.WithTempDir(filepath.Dir(path)))
}

// Remove deletes a hosts.toml, and its host directory when that is left
// empty (certificates a user keeps there stay). Gone already is removed.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_ = os.Remove(filepath.Dir(path)) // fails, as it should, when not empty
	return nil
}
