package main

import (
	"net"
	"testing"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090":    true,
		"127.1.2.3:9090":    true,
		"[::1]:9090":        true,
		"0.0.0.0:9090":      false,
		"[::]:9090":         false,
		"192.168.1.10:9090": false,
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopback(a); got != want {
			t.Errorf("loopback(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestListenAddress(t *testing.T) {
	for in, want := range map[string]string{
		"9090":           "127.0.0.1:9090",
		"127.0.0.1:9090": "127.0.0.1:9090",
		":9090":          ":9090",
		"0":              "",
		"70000":          "",
		"host":           "",
	} {
		got, err := listenAddress(in)
		if want == "" {
			if err == nil {
				t.Errorf("listenAddress(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("listenAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
