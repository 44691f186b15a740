package doctor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// kvmGetAPIVersion is KVM_GET_API_VERSION, _IO(0xAE, 0x00).
const kvmGetAPIVersion = 0xAE00

// DefaultHost reads the real machine.
func DefaultHost() Host {
	return Host{Stat: os.Stat, ReadFile: os.ReadFile, ReadDir: os.ReadDir, KVM: kvmVersion, Tun: openTun, Kubelets: kubelets}
}

func kvmVersion() (int, error) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	return v, nil
}

func openTun() error {
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// kubelets finds the processes named kubelet in /proc.
func kubelets() []Process {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	var out []Process
	for _, comm := range comms {
		name, err := os.ReadFile(comm)
		if err != nil || strings.TrimSpace(string(name)) != "kubelet" {
			continue
		}
		dir := filepath.Dir(comm)
		pid, _ := strconv.Atoi(filepath.Base(dir))
		raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		var args []string
		for _, a := range bytes.Split(bytes.TrimRight(raw, "\x00"), []byte{0}) {
			args = append(args, string(a))
		}
		out = append(out, Process{PID: pid, Cmdline: args})
	}
	return out
}
