package runtime

import "testing"

func TestCertsDir(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"/etc/containerd/certs.d": "/etc/containerd/certs.d",
		"/etc/containerd/certs.d:/etc/docker/certs.d": "/etc/containerd/certs.d",
	} {
		if got := CertsDir(in); got != want {
			t.Errorf("CertsDir(%q) = %q, want %q", in, got, want)
		}
	}
}
