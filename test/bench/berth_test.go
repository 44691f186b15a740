package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A report names the binary's own commit, or says why it cannot.
func TestBinaryRevision(t *testing.T) {
	notBinary := filepath.Join(t.TempDir(), "berth")
	if err := os.WriteFile(notBinary, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, bin, want string
	}{
		{"not a Go binary", notBinary, "unknown: "},
		{"a test binary, which Go does not stamp", self, "unknown: the binary carries no VCS stamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := binaryRevision(tt.bin); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("binaryRevision = %q, want %q...", got, tt.want)
			}
		})
	}
	// make test's berth, built in the repository with VCS stamps.
	if bin := os.Getenv("BERTH_BIN"); bin != "" {
		if got := binaryRevision(bin); !regexp.MustCompile(`^[0-9a-f]{7}(-dirty)?$`).MatchString(got) {
			t.Errorf("binaryRevision(%s) = %q, want a commit", bin, got)
		}
	}
}
