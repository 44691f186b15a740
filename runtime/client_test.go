package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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

// TestNative checks that containerd's answers, which say some kinds only
// in words, map to the kinds berth acts on, message kept.
func TestNative(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"a removal before CRI handled the exit",
			status.Error(codes.Unknown, `failed to set removing state for container "e9a2": container is still running, to stop first`), ErrStillRunning},
		{"a sandbox's removal before CRI handled a container's exit",
			status.Error(codes.Unknown, `failed to remove container "e9a2": failed to set removing state for container "e9a2": container is still running, to stop first`), ErrStillRunning},
		{"a container still starting",
			status.Error(codes.Unknown, `failed to set removing state for container "e9a2": container is in starting state, can't be removed`), ErrStarting},
		{"a sandbox whose shim is gone",
			status.Error(codes.Unknown, `failed to stop container "e9a2": ttrpc: closed`), ErrSandboxGone},
		{"a name held by another",
			status.Error(codes.Unknown, `failed to reserve container name "main_p0": name "main_p0" is reserved for "0123456789abcdef"`), errdefs.ErrAlreadyExists},
		{"a name held by a 64-digit ID",
			status.Error(codes.Unknown, `failed to reserve sandbox name "p0_web_default_1": name "p0_web_default_1" is reserved for "`+strings.Repeat("0a", 32)+`"`), errdefs.ErrAlreadyExists},
		{"a name held by what is not an ID",
			status.Error(codes.Unknown, `failed to reserve container name "main_p0": name "main_p0" is reserved for "0123"`), nil},
		{"a plain code",
			status.Error(codes.NotFound, `container "e9a2" not found`), errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := native(tc.err)
			var held *NameReservedError
			if tc.want == nil && errors.As(got, &held) {
				t.Errorf("native(%v) = a name held by %q", tc.err, held.ID)
			}
			if tc.want != nil && !errors.Is(got, tc.want) {
				t.Errorf("native(%v) = %v, want an error that is %v", tc.err, got, tc.want)
			}
			if msg := status.Convert(tc.err).Message(); !strings.Contains(got.Error(), msg) {
				t.Errorf("native(%v) says %q, want the runtime's message %q", tc.err, got, msg)
			}
		})
	}
}
