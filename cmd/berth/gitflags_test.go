package main

import "testing"

// A repository's stack is named as its checkout would be, never after the
// commit's directory.
func TestGitStackName(t *testing.T) {
	for _, tc := range []struct{ url, path, want string }{
		{"https://git.example.com/ops/hosts.git", "", "hosts"},
		{"https://git.example.com/ops/hosts", "", "hosts"},
		{"https://git.example.com/ops/hosts.git/", "", "hosts"},
		{"ssh://git@git.example.com/ops/hosts.git", "", "hosts"},
		{"git@git.example.com:hosts.git", "", "hosts"},
		{"file:///srv/repos/hosts.git", "", "hosts"},
		{"https://git.example.com/ops/hosts.git", "host1", "host1"},
		{"https://git.example.com/ops/hosts.git", "sites/host1/", "host1"},
		{"https://git.example.com/ops/hosts.git", "../..", "hosts"},
	} {
		g := gitFlags{url: tc.url, path: tc.path}
		if got := g.stackName(); got != tc.want {
			t.Errorf("stackName(%q, %q) = %q, want %q", tc.url, tc.path, got, tc.want)
		}
	}
}
