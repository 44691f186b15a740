package main

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The numbers below were printed once by a C program compiled with gcc
// against Debian 12's linux-libc-dev 6.1 (linux/kvm.h, asm/kvm.h,
// linux/if_tun.h) on x86_64: sizeof, offsetof and the ioctl macros.

func skipUnlessAMD64(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("KVM layouts are pinned for x86_64, this is %s", runtime.GOARCH)
	}
}

func TestStructSizes(t *testing.T) {
	skipUnlessAMD64(t)
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_regs", unsafe.Sizeof(kvmRegs{}), 144},
		{"kvm_sregs", unsafe.Sizeof(kvmSregs{}), 312},
		{"kvm_segment", unsafe.Sizeof(kvmSegment{}), 24},
		{"kvm_dtable", unsafe.Sizeof(kvmDtable{}), 16},
		{"kvm_userspace_memory_region", unsafe.Sizeof(kvmUserspaceMemoryRegion{}), 32},
		// The fixed part of kvm_run up to and including the exit union.
		{"kvm_run head + union", unsafe.Sizeof(kvmRun{}), 32 + 256},
	} {
		if c.got != c.want {
			t.Errorf("sizeof(struct %s) = %d, kernel has %d", c.name, c.got, c.want)
		}
	}
}

func TestOffsets(t *testing.T) {
	skipUnlessAMD64(t)
	var s kvmSregs
	var seg kvmSegment
	var r kvmRegs
	var m kvmUserspaceMemoryRegion
	var run kvmRun
	var pio kvmRunIO
	var fe kvmRunFailEntry
	var ie kvmRunInternal
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_sregs.ds", unsafe.Offsetof(s.DS), 24},
		{"kvm_sregs.ss", unsafe.Offsetof(s.SS), 120},
		{"kvm_sregs.tr", unsafe.Offsetof(s.TR), 144},
		{"kvm_sregs.ldt", unsafe.Offsetof(s.LDT), 168},
		{"kvm_sregs.gdt", unsafe.Offsetof(s.GDT), 192},
		{"kvm_sregs.idt", unsafe.Offsetof(s.IDT), 208},
		{"kvm_sregs.cr0", unsafe.Offsetof(s.CR0), 224},
		{"kvm_sregs.efer", unsafe.Offsetof(s.EFER), 264},
		{"kvm_sregs.apic_base", unsafe.Offsetof(s.APICBase), 272},
		{"kvm_sregs.interrupt_bitmap", unsafe.Offsetof(s.InterruptBitmap), 280},
		{"kvm_segment.selector", unsafe.Offsetof(seg.Selector), 12},
		{"kvm_segment.type", unsafe.Offsetof(seg.Type), 14},
		{"kvm_segment.unusable", unsafe.Offsetof(seg.Unusable), 22},
		{"kvm_regs.rip", unsafe.Offsetof(r.RIP), 128},
		{"kvm_regs.rflags", unsafe.Offsetof(r.RFLAGS), 136},
		{"kvm_userspace_memory_region.flags", unsafe.Offsetof(m.Flags), 4},
		{"kvm_userspace_memory_region.guest_phys_addr", unsafe.Offsetof(m.GuestPhysAddr), 8},
		{"kvm_userspace_memory_region.memory_size", unsafe.Offsetof(m.MemorySize), 16},
		{"kvm_userspace_memory_region.userspace_addr", unsafe.Offsetof(m.UserspaceAddr), 24},
		{"kvm_run.exit_reason", unsafe.Offsetof(run.ExitReason), 8},
		{"kvm_run.cr8", unsafe.Offsetof(run.CR8), 16},
		{"kvm_run.<exit union>", unsafe.Offsetof(run.Exit), 32},
		// Union members, relative to the union (kvm_run offset minus 32).
		{"kvm_run.io.direction", unsafe.Offsetof(pio.Direction), 0}, // 32 - 32
		{"kvm_run.io.size", unsafe.Offsetof(pio.Size), 33 - 32},
		{"kvm_run.io.port", unsafe.Offsetof(pio.Port), 34 - 32},
		{"kvm_run.io.count", unsafe.Offsetof(pio.Count), 36 - 32},
		{"kvm_run.io.data_offset", unsafe.Offsetof(pio.DataOffset), 40 - 32},
		{"kvm_run.fail_entry.cpu", unsafe.Offsetof(fe.CPU), 40 - 32},
		{"kvm_run.internal.ndata", unsafe.Offsetof(ie.Ndata), 36 - 32},
	} {
		if c.got != c.want {
			t.Errorf("offsetof(%s) = %d, kernel has %d", c.name, c.got, c.want)
		}
	}
}

func TestIoctlNumbers(t *testing.T) {
	skipUnlessAMD64(t)
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"KVM_GET_API_VERSION", kvmGetAPIVersion, 0xae00},
		{"KVM_CREATE_VM", kvmCreateVM, 0xae01},
		{"KVM_GET_VCPU_MMAP_SIZE", kvmGetVCPUMmapSize, 0xae04},
		{"KVM_SET_USER_MEMORY_REGION", kvmSetUserMemoryRegion, 0x4020ae46},
		{"KVM_CREATE_VCPU", kvmCreateVCPU, 0xae41},
		{"KVM_RUN", kvmRunIoctl, 0xae80},
		{"KVM_GET_REGS", kvmGetRegs, 0x8090ae81},
		{"KVM_SET_REGS", kvmSetRegs, 0x4090ae82},
		{"KVM_GET_SREGS", kvmGetSregs, 0x8138ae83},
		{"KVM_SET_SREGS", kvmSetSregs, 0x4138ae84},
		// From x/sys/unix, which tun uses; pinned as a cross-check.
		{"TUNSETIFF", unix.TUNSETIFF, 0x400454ca},
		{"IFF_TUN|IFF_NO_PI", unix.IFF_TUN | unix.IFF_NO_PI, 0x1001},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, kernel has %#x", c.name, c.got, c.want)
		}
	}
}

// The guest program's layout: the greeting follows it in guest memory, and
// the hand-assembled jumps land where the comments say.
func TestGuestProgram(t *testing.T) {
	p := guestProgram
	if p[len(p)-1] != 0xF4 {
		t.Errorf("guest program does not end with hlt")
	}
	// jz sum at 0x1003: target 0x1005+rel8 must be "mov ax, bx" (89 D8).
	if target := 5 + int(int8(p[4])); p[target] != 0x89 || p[target+1] != 0xD8 {
		t.Errorf("jz lands at +%#x, not on mov ax, bx", target)
	}
	// jmp print at 0x1006: target 0x1008+rel8 must be the lodsb at 0.
	if target := 8 + int(int8(p[7])); target != 0 {
		t.Errorf("jmp lands at +%#x, not on lodsb", target)
	}
	if operandA+operandB > 99 {
		t.Errorf("the guest prints two digits; %d+%d is too large", operandA, operandB)
	}
	if guestCode+len(p)+len(guestGreeting)+1 > guestMemSize {
		t.Errorf("code and greeting do not fit in guest memory")
	}
	if got, want := expectedOutput(), "hello from a KVM guest: 40+2=42\n"; got != want {
		t.Errorf("expectedOutput() = %q, want %q", got, want)
	}
}

func TestErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&stepError{step: "open /dev/kvm", errno: unix.ENOENT, hint: openHint("/dev/kvm", unix.ENOENT)},
			"open /dev/kvm: no such file or directory (ENOENT; the container has no /dev/kvm device; give it as a CRI device)"},
		{&stepError{step: "open /dev/kvm", errno: unix.EPERM, hint: openHint("/dev/kvm", unix.EPERM)},
			"open /dev/kvm: operation not permitted (EPERM; the device cgroup does not allow /dev/kvm)"},
		{stepErr("KVM_CREATE_VM", unix.ENOMEM), "KVM_CREATE_VM: cannot allocate memory (ENOMEM)"},
		{stepErr("mmap kvm_run", errors.New("boom")), "mmap kvm_run: boom"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
	if !errors.Is(stepErr("KVM_RUN", unix.EFAULT), unix.EFAULT) {
		t.Errorf("stepError does not unwrap to its errno")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"kvm", "x"}, {"tun"}, {"stop-after"}, {"stop-after", "soon"}, {"nope"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"tun", "a/b"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "bad interface name") {
		t.Errorf("tun a/b: code %d, stderr %q", code, errb.String())
	}
}

func TestStopAfter(t *testing.T) {
	var out bytes.Buffer
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	start := time.Now()
	stopAfter(&out, 50*time.Millisecond, sigs)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("returned after %v, before the 50ms grace", d)
	}
	if got, want := out.String(), "ready\ngot SIGTERM, exiting in 50ms\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// TestGuest runs the real guest where /dev/kvm is usable (root on a host
// with KVM), and skips elsewhere.
func TestGuest(t *testing.T) {
	skipUnlessAMD64(t)
	if err := unix.Access("/dev/kvm", unix.R_OK|unix.W_OK); err != nil {
		t.Skipf("/dev/kvm not usable: %v", err)
	}
	var out bytes.Buffer
	if err := runKVM(&out); err != nil {
		t.Fatal(err)
	}
	want := "kvm: api version 12\n" +
		`guest wrote: "hello from a KVM guest: 40+2=42\n"` + "\n" +
		"guest halted after 33 exits\n"
	if out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}
}
