package spec

import "testing"

// A reference normalises, or fails, the same the first time and from the
// cache.
func TestNormalizeImage(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox":                          "docker.io/library/busybox:latest",
		"busybox:1.36":                     "docker.io/library/busybox:1.36",
		"127.0.0.1:5000/berth/fresh:v1":    "127.0.0.1:5000/berth/fresh:v1",
		"Upper/Case":                       "",
		"docker.io/library/busybox@sha256": "",
	} {
		for round := range 2 {
			got, err := NormalizeImage(ref)
			switch {
			case want == "" && (err == nil || got != ref):
				t.Errorf("round %d: NormalizeImage(%q) = %q, %v; want it back with an error", round, ref, got, err)
			case want != "" && (err != nil || got != want):
				t.Errorf("round %d: NormalizeImage(%q) = %q, %v; want %q", round, ref, got, err, want)
			}
		}
	}
}
