package e2e

import (
	"os"
	"strings"
	"testing"
)

// The VM examples plan on the real runtime to exactly what dockur asks for:
// /dev/kvm and /dev/net/tun, NET_ADMIN, the /storage mount and the env,
// with secrets redacted and nothing privileged. (Their images are not
// pulled here: there is no internet.)
func TestVMExamplesPlan(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		skipUnlessRequired(t, "this host has no /dev/kvm; the plan would fail its preflight, as it should")
	}
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"../../examples/windows", []string{
			`+ image = "docker.io/dockurr/windows:latest"`,
			`+ env.VERSION = "11"`, `+ env.RAM_SIZE = "4G"`, `+ env.CPU_CORES = "2"`, `+ env.DISK_SIZE = "64G"`,
			`+ env.USERNAME = "(sensitive)"`, `+ env.PASSWORD = "(sensitive)"`,
			`+ ports.rdp.host = 3389`, `+ ports.rdp-udp.protocol = "udp"`,
		}},
		{"../../examples/macos", []string{
			`+ image = "docker.io/dockurr/macos:latest"`,
			`+ env.VERSION = "13"`, `+ env.RAM_SIZE = "4G"`,
			`+ ports.vnc.host = 5900`, `+ ports.vnc-udp.protocol = "udp"`,
		}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			s := newStack(t)
			storage := t.TempDir()
			args := []string{"plan", "--detailed-exitcode", "--stack", s.name, "--var", "storage=" + storage, tc.dir}
			if strings.HasSuffix(tc.dir, "windows") {
				args = append(args, "--var", "password=s3cret-pw")
			}
			r := runBerth(t, nil, args...)
			if r.code != 2 {
				t.Fatalf("plan: %s", r)
			}
			want := append(tc.want,
				`+ devices["/dev/kvm"].container_path = "/dev/kvm"`,
				`+ devices["/dev/kvm"].permissions = "rwm"`,
				`+ devices["/dev/net/tun"].container_path = "/dev/net/tun"`,
				`+ capabilities.add = ["NET_ADMIN"]`,
				`+ mounts["/storage"].host_path = "`+storage+`"`,
				`+ stop_timeout = "2m0s"`,
				`+ restart = "always"`,
				`+ ports.web.host = 8006`, `+ ports.web.host_ip = "127.0.0.1"`,
				"will be pulled",
			)
			for _, w := range want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("plan lacks %q", w)
				}
			}
			for _, never := range []string{"privileged", "s3cret-pw", "Error"} {
				if strings.Contains(r.stdout+r.stderr, never) {
					t.Errorf("plan mentions %q", never)
				}
			}
			if t.Failed() {
				t.Logf("plan output:\n%s", r)
			}
		})
	}
}
