package spec

import (
	"strings"
	"testing"
)

// The lengths that bounded patterns used to check, at their boundaries.
func TestNameLengths(t *testing.T) {
	label := func(n int) string { return "a" + strings.Repeat("b", n-2) + "c" }
	for _, tt := range []struct {
		what  string
		valid func(string) bool
		name  string
		ok    bool
	}{
		{"pod name", ValidName, "a", true},
		{"pod name", ValidName, label(63), true},
		{"pod name", ValidName, label(64), false},
		{"pod name", ValidName, "a-", false},
		{"pod name", ValidName, "A", false},
		{"stack", ValidStackName, label(63), true},
		{"stack", ValidStackName, label(64), false},
		{"stack", ValidStackName, "a_b.c-d", true},
		{"stack", ValidStackName, "a.", false},
		{"hostname", validDNSName, label(63) + "." + label(63), true},
		{"hostname", validDNSName, label(63) + "." + label(64), false},
		{"hostname", validDNSName, "Web-1.Example", true},
		{"hostname", validDNSName, "web..example", false},
		{"hostname", validDNSName, "web.-x", false},
		{"hostname", validDNSName, "", false},
		{"registry host", validRegistryHost, label(63) + ".io:65535", true},
		{"registry host", validRegistryHost, label(64) + ".io", false},
		{"registry host", validRegistryHost, "x.io:005000", false},
		{"registry host", validRegistryHost, "x.io:+500", false},
		{"registry host", validRegistryHost, "x.io:1:2", false},
		{"registry host", validRegistryHost, "[::1]", true},
		{"registry host", validRegistryHost, "[]:5000", false},
		{"registry host", validRegistryHost, "[::1]5000", false},
		{"registry host", validRegistryHost, "[::1", false},
		{"bridge", validIfName, strings.Repeat("b", 15), true},
		{"bridge", validIfName, strings.Repeat("b", 16), false},
		{"bridge", validIfName, "br-0.1_x", true},
		{"bridge", validIfName, "br/0", false},
	} {
		if got := tt.valid(tt.name); got != tt.ok {
			t.Errorf("%s %q (%d characters): valid %v, want %v", tt.what, tt.name, len(tt.name), got, tt.ok)
		}
	}
}
