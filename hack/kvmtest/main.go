// Command kvmtest is the program in the docker.io/berth/kvmtest test image. It
// checks, from inside a container, what device and capability settings
// really allow, and gives tests processes with known signal behaviour.
//
//	kvmtest kvm                  create a VM with /dev/kvm and run a tiny guest
//	kvmtest tun NAME             create tun interface NAME through /dev/net/tun
//	kvmtest stop-after DURATION  on SIGTERM: print, sleep DURATION, exit 0
//	kvmtest ignore-term          ignore SIGTERM, sleep forever
//
// `kvm` opens /dev/kvm, creates a VM with 64 KiB of memory and one vCPU in
// real mode, and runs 16-bit code that copies a greeting the host put in
// guest memory to I/O port 0x3f8 byte by byte, adds two numbers the host put
// in registers, writes the sum in decimal, and halts. Every byte written is
// one KVM_EXIT_IO. Output on success:
//
//	kvm: api version 12
//	guest wrote: "hello from a KVM guest: 40+2=42\n"
//	guest halted after 33 exits
//
// Any failure prints one line naming the step and the errno, with a hint
// where the cause is clear, and exits 1; bad usage exits 2.
//
// Only the standard library and golang.org/x/sys/unix; built with
// CGO_ENABLED=0 into a static binary. The KVM structures and ioctl numbers
// below are written from the Linux UAPI headers (linux/kvm.h, asm/kvm.h) for
// x86_64; main_test.go pins their sizes and offsets to what gcc reports.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const usage = `usage:
  kvmtest kvm                  run a tiny guest through /dev/kvm
  kvmtest tun NAME             create tun interface NAME through /dev/net/tun
  kvmtest stop-after DURATION  print ready; on SIGTERM print, sleep DURATION, exit 0
  kvmtest ignore-term          print ready; ignore SIGTERM and sleep forever`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kvmtest: %v\n", err)
		return 1
	}
	bad := func() int {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if len(args) == 0 {
		return bad()
	}
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "kvm" && len(rest) == 0:
		if err := runKVM(stdout); err != nil {
			return fail(err)
		}
	case cmd == "tun" && len(rest) == 1:
		if err := runTun(stdout, rest[0]); err != nil {
			return fail(err)
		}
	case cmd == "stop-after" && len(rest) == 1:
		d, err := time.ParseDuration(rest[0])
		if err != nil || d < 0 {
			fmt.Fprintf(stderr, "kvmtest: stop-after: bad duration %q\n", rest[0])
			return 2
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		stopAfter(stdout, d, sigs)
	case cmd == "ignore-term" && len(rest) == 0:
		signal.Ignore(syscall.SIGTERM)
		fmt.Fprintln(stdout, "ready")
		for {
			time.Sleep(time.Hour)
		}
	default:
		return bad()
	}
	return 0
}

// stopAfter prints "ready", waits for a signal on sigs, then announces and
// sleeps d. os.Stdout is unbuffered in Go, so every line is out (in the CRI
// log) as soon as Fprintln returns.
func stopAfter(w io.Writer, d time.Duration, sigs <-chan os.Signal) {
	fmt.Fprintln(w, "ready")
	<-sigs
	fmt.Fprintf(w, "got SIGTERM, exiting in %v\n", d)
	time.Sleep(d)
}

// stepError is a failed system call: the step that failed and its errno.
type stepError struct {
	step  string
	errno unix.Errno
	hint  string
}

func (e *stepError) Error() string {
	s := fmt.Sprintf("%s: %v (%s", e.step, e.errno, unix.ErrnoName(e.errno))
	if e.hint != "" {
		s += "; " + e.hint
	}
	return s + ")"
}

func (e *stepError) Unwrap() error { return e.errno }

// stepErr wraps err (an errno from a system call) with the step that failed.
func stepErr(step string, err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("%s: %w", step, err)
	}
	return &stepError{step: step, errno: errno}
}

// ---------------------------------------------------------------- KVM ABI

// Structures of the KVM API for x86_64, field for field as in the UAPI
// headers. All fields are fixed-size and naturally aligned, so Go lays them
// out as C does; main_test.go checks sizes and offsets.

// kvmUserspaceMemoryRegion is struct kvm_userspace_memory_region
// (linux/kvm.h), the argument of KVM_SET_USER_MEMORY_REGION. 32 bytes.
type kvmUserspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64 // bytes
	UserspaceAddr uint64 // start of the host mapping backing it
}

// kvmRegs is struct kvm_regs (asm/kvm.h): the general registers, for
// KVM_GET_REGS and KVM_SET_REGS. 144 bytes.
type kvmRegs struct {
	RAX, RBX, RCX, RDX uint64
	RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11   uint64
	R12, R13, R14, R15 uint64
	RIP, RFLAGS        uint64
}

// kvmSegment is struct kvm_segment (asm/kvm.h): a segment register with its
// hidden descriptor cache. 24 bytes.
type kvmSegment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8
	S        uint8
	L        uint8
	G        uint8
	AVL      uint8
	Unusable uint8
	Padding  uint8
}

// kvmDtable is struct kvm_dtable (asm/kvm.h): GDTR or IDTR. 16 bytes.
type kvmDtable struct {
	Base    uint64
	Limit   uint16
	Padding [3]uint16
}

// kvmNrInterrupts is KVM_NR_INTERRUPTS (asm/kvm.h).
const kvmNrInterrupts = 256

// kvmSregs is struct kvm_sregs (asm/kvm.h): segment and control registers,
// for KVM_GET_SREGS and KVM_SET_SREGS. 312 bytes.
type kvmSregs struct {
	CS, DS, ES, FS, GS, SS kvmSegment
	TR, LDT                kvmSegment
	GDT, IDT               kvmDtable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	InterruptBitmap        [(kvmNrInterrupts + 63) / 64]uint64
}

// kvmRun is the fixed head of struct kvm_run (linux/kvm.h), the area a vCPU
// fd maps at offset 0, and its exit-information union (256 bytes at offset
// 32). The mapping is larger (KVM_GET_VCPU_MMAP_SIZE); the data of an I/O
// exit lies in it at io.data_offset.
type kvmRun struct {
	// in
	RequestInterruptWindow uint8
	ImmediateExit          uint8
	Padding1               [6]uint8
	// out
	ExitReason                 uint32
	ReadyForInterruptInjection uint8
	IfFlag                     uint8
	Flags                      uint16
	// in (before KVM_RUN), out (after)
	CR8      uint64
	APICBase uint64
	// union { hw; fail_entry; ex; io; ...; char padding[256]; }
	Exit [256]byte
}

// kvmRunIO is the union member io, for KVM_EXIT_IO.
type kvmRunIO struct {
	Direction  uint8 // kvmExitIOIn or kvmExitIOOut
	Size       uint8 // bytes per access
	Port       uint16
	Count      uint32 // accesses (more than 1 for rep outs/ins)
	DataOffset uint64 // of the data, from the start of kvm_run
}

// kvmRunFailEntry is the union member fail_entry, for KVM_EXIT_FAIL_ENTRY.
type kvmRunFailEntry struct {
	HardwareEntryFailureReason uint64
	CPU                        uint32
}

// kvmRunInternal is the head of the union member internal, for
// KVM_EXIT_INTERNAL_ERROR.
type kvmRunInternal struct {
	Suberror uint32
	Ndata    uint32
}

// kvmAPIVersion is KVM_API_VERSION, what KVM_GET_API_VERSION must return.
const kvmAPIVersion = 12

// Exit reasons (KVM_EXIT_*) and I/O directions (KVM_EXIT_IO_*), linux/kvm.h.
const (
	kvmExitUnknown       = 0
	kvmExitException     = 1
	kvmExitIO            = 2
	kvmExitHLT           = 5
	kvmExitMMIO          = 6
	kvmExitShutdown      = 8
	kvmExitFailEntry     = 9
	kvmExitInternalError = 17

	kvmExitIOIn  = 0
	kvmExitIOOut = 1
)

// ioctl request numbers, encoded as asm-generic/ioctl.h does for x86_64:
// nr in bits 0-7, type in 8-15, argument size in 16-29, direction in 30-31.
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2

	kvmio = 0xAE // KVMIO
)

func ioc(dir, typ, nr, size uintptr) uintptr { return dir<<30 | size<<16 | typ<<8 | nr }

var (
	// System ioctls, on the /dev/kvm fd.
	kvmGetAPIVersion   = ioc(iocNone, kvmio, 0x00, 0) // _IO(KVMIO, 0x00)
	kvmCreateVM        = ioc(iocNone, kvmio, 0x01, 0) // _IO(KVMIO, 0x01), returns a VM fd
	kvmGetVCPUMmapSize = ioc(iocNone, kvmio, 0x04, 0) // _IO(KVMIO, 0x04)
	// VM ioctls.
	kvmSetUserMemoryRegion = ioc(iocWrite, kvmio, 0x46, unsafe.Sizeof(kvmUserspaceMemoryRegion{}))
	kvmCreateVCPU          = ioc(iocNone, kvmio, 0x41, 0) // _IO(KVMIO, 0x41), returns a vCPU fd
	// vCPU ioctls.
	kvmRunIoctl = ioc(iocNone, kvmio, 0x80, 0) // KVM_RUN
	kvmGetRegs  = ioc(iocRead, kvmio, 0x81, unsafe.Sizeof(kvmRegs{}))
	kvmSetRegs  = ioc(iocWrite, kvmio, 0x82, unsafe.Sizeof(kvmRegs{}))
	kvmGetSregs = ioc(iocRead, kvmio, 0x83, unsafe.Sizeof(kvmSregs{}))
	kvmSetSregs = ioc(iocWrite, kvmio, 0x84, unsafe.Sizeof(kvmSregs{}))
)

// ioctl issues request on fd with a pointer or integer argument and returns
// the result (a new fd for the CREATE ioctls).
func ioctl(fd int, req, arg uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return int(r), errno
	}
	return int(r), nil
}

// ---------------------------------------------------------------- guest

const (
	guestMemSize = 0x10000 // 64 KiB of guest RAM at guest physical 0
	guestCode    = 0x1000  // where the code is loaded and CS:IP starts
	serialPort   = 0x3f8   // COM1's data port: just a port number to exit on
	operandA     = 40      // in BX
	operandB     = 2       // in CX
)

// guestProgram is 16-bit real-mode code. At entry (set by the host):
// SI = address of a NUL-terminated greeting, DX = port, BX and CX = the
// numbers to add (sum below 100). DS is 0 after reset, and DF is 0.
var guestProgram = []byte{
	// print: copy the greeting to the port.
	0xAC,       // 1000  lodsb          ; AL = [DS:SI], SI++
	0x84, 0xC0, // 1001  test al, al
	0x74, 0x03, // 1003  jz   sum (+3 -> 1008)
	0xEE,       // 1005  out  dx, al    ; one KVM_EXIT_IO per byte
	0xEB, 0xF8, // 1006  jmp  print (-8 -> 1000)
	// sum: AX = BX + CX, written as two decimal digits and a newline.
	0x89, 0xD8, // 1008  mov  ax, bx
	0x01, 0xC8, // 100a  add  ax, cx
	0xB1, 0x0A, // 100c  mov  cl, 10
	0xF6, 0xF1, // 100e  div  cl         ; AL = AX / 10, AH = AX % 10
	0x05, 0x30, 0x30, // 1010  add  ax, 0x3030  ; both to ASCII '0'..'9'
	0xEE,       // 1013  out  dx, al     ; tens
	0x88, 0xE0, // 1014  mov  al, ah
	0xEE,       // 1016  out  dx, al     ; ones
	0xB0, 0x0A, // 1017  mov  al, '\n'
	0xEE, // 1019  out  dx, al
	0xF4, // 101a  hlt             ; KVM_EXIT_HLT
}

// guestGreeting is what the host puts in guest memory for the guest to print.
var guestGreeting = fmt.Sprintf("hello from a KVM guest: %d+%d=", operandA, operandB)

// expectedOutput is what the guest must write to the port.
func expectedOutput() string {
	return fmt.Sprintf("%s%d\n", guestGreeting, operandA+operandB)
}

// openHint explains the usual causes of a failed open of a device node.
func openHint(path string, errno unix.Errno) string {
	switch errno {
	case unix.ENOENT:
		return "the container has no " + path + " device; give it as a CRI device"
	case unix.EPERM:
		return "the device cgroup does not allow " + path
	case unix.EACCES:
		return "no read/write permission on " + path + "; run as root or as a member of its group"
	case unix.ENXIO, unix.ENODEV:
		return "the device node exists but its driver is not loaded on the host"
	}
	return ""
}

// openDevice opens a device node read-write, with a hint on failure.
func openDevice(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			return -1, &stepError{step: "open " + path, errno: errno, hint: openHint(path, errno)}
		}
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

func runKVM(w io.Writer) error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("kvm: only x86_64 is implemented, this is %s", runtime.GOARCH)
	}
	// vCPU ioctls belong on the thread that created the vCPU.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	kvm, err := openDevice("/dev/kvm")
	if err != nil {
		return err
	}
	defer unix.Close(kvm)

	version, err := ioctl(kvm, kvmGetAPIVersion, 0)
	if err != nil {
		return stepErr("KVM_GET_API_VERSION", err)
	}
	if version != kvmAPIVersion {
		return fmt.Errorf("KVM_GET_API_VERSION: got %d, want %d", version, kvmAPIVersion)
	}
	fmt.Fprintf(w, "kvm: api version %d\n", version)

	vm, err := ioctl(kvm, kvmCreateVM, 0) // machine type 0: the default
	if err != nil {
		return stepErr("KVM_CREATE_VM", err)
	}
	defer unix.Close(vm)

	// Guest RAM: anonymous host memory, slot 0 at guest physical address 0.
	mem, err := unix.Mmap(-1, 0, guestMemSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return stepErr("mmap guest memory", err)
	}
	defer unix.Munmap(mem)
	region := kvmUserspaceMemoryRegion{
		Slot:          0,
		GuestPhysAddr: 0,
		MemorySize:    guestMemSize,
		UserspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))),
	}
	if _, err := ioctl(vm, kvmSetUserMemoryRegion, uintptr(unsafe.Pointer(&region))); err != nil {
		return stepErr("KVM_SET_USER_MEMORY_REGION", err)
	}
	// The code, then the NUL-terminated greeting right after it.
	copy(mem[guestCode:], guestProgram)
	greetingAddr := guestCode + len(guestProgram)
	copy(mem[greetingAddr:], guestGreeting+"\x00")

	vcpu, err := ioctl(vm, kvmCreateVCPU, 0) // vCPU id 0
	if err != nil {
		return stepErr("KVM_CREATE_VCPU", err)
	}
	defer unix.Close(vcpu)
	mmapSize, err := ioctl(kvm, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return stepErr("KVM_GET_VCPU_MMAP_SIZE", err)
	}
	if mmapSize < int(unsafe.Sizeof(kvmRun{})) {
		return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %d bytes, smaller than struct kvm_run", mmapSize)
	}
	runMem, err := unix.Mmap(vcpu, 0, mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return stepErr("mmap kvm_run", err)
	}
	defer unix.Munmap(runMem)
	kr := (*kvmRun)(unsafe.Pointer(&runMem[0]))

	// Real mode, as after reset, but with CS base and selector 0 so CS:IP
	// addresses guestCode directly (reset has CS base 0xffff0000).
	var sregs kvmSregs
	if _, err := ioctl(vcpu, kvmGetSregs, uintptr(unsafe.Pointer(&sregs))); err != nil {
		return stepErr("KVM_GET_SREGS", err)
	}
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	if _, err := ioctl(vcpu, kvmSetSregs, uintptr(unsafe.Pointer(&sregs))); err != nil {
		return stepErr("KVM_SET_SREGS", err)
	}
	regs := kvmRegs{
		RIP:    guestCode,
		RFLAGS: 0x2, // bit 1 is reserved and must be set; IF and DF clear
		RSI:    uint64(greetingAddr),
		RDX:    serialPort,
		RBX:    operandA,
		RCX:    operandB,
	}
	if _, err := ioctl(vcpu, kvmSetRegs, uintptr(unsafe.Pointer(&regs))); err != nil {
		return stepErr("KVM_SET_REGS", err)
	}

	// Run until HLT; every OUT to the port is one exit.
	var out []byte
	exits := 0
	for exits < 10000 {
		if _, err := ioctl(vcpu, kvmRunIoctl, 0); err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue // a signal (Go's preemption SIGURG); just run again
			}
			return stepErr("KVM_RUN", err)
		}
		exits++
		switch kr.ExitReason {
		case kvmExitIO:
			pio := (*kvmRunIO)(unsafe.Pointer(&kr.Exit[0]))
			if pio.Direction != kvmExitIOOut || pio.Port != serialPort {
				return fmt.Errorf("KVM_RUN: unexpected I/O exit: direction %d port %#x size %d", pio.Direction, pio.Port, pio.Size)
			}
			off, n := int(pio.DataOffset), int(pio.Size)*int(pio.Count)
			if off < 0 || off+n > len(runMem) {
				return fmt.Errorf("KVM_RUN: I/O data offset %d out of the kvm_run mapping", pio.DataOffset)
			}
			out = append(out, runMem[off:off+n]...)
		case kvmExitHLT:
			fmt.Fprintf(w, "guest wrote: %q\n", out)
			fmt.Fprintf(w, "guest halted after %d exits\n", exits)
			if want := expectedOutput(); string(out) != want {
				return fmt.Errorf("guest output %q, want %q", out, want)
			}
			return nil
		case kvmExitFailEntry:
			fe := (*kvmRunFailEntry)(unsafe.Pointer(&kr.Exit[0]))
			return fmt.Errorf("KVM_RUN: KVM_EXIT_FAIL_ENTRY, hardware entry failure reason %#x", fe.HardwareEntryFailureReason)
		case kvmExitInternalError:
			ie := (*kvmRunInternal)(unsafe.Pointer(&kr.Exit[0]))
			return fmt.Errorf("KVM_RUN: KVM_EXIT_INTERNAL_ERROR, suberror %d", ie.Suberror)
		default:
			var r kvmRegs
			ioctl(vcpu, kvmGetRegs, uintptr(unsafe.Pointer(&r)))
			return fmt.Errorf("KVM_RUN: unexpected exit %s at rip %#x after output %q", exitName(kr.ExitReason), r.RIP, out)
		}
	}
	return fmt.Errorf("KVM_RUN: guest did not halt after %d exits, output %q", exits, out)
}

// exitName names the exit reasons the guest could plausibly produce.
func exitName(reason uint32) string {
	names := map[uint32]string{
		kvmExitUnknown:       "KVM_EXIT_UNKNOWN",
		kvmExitException:     "KVM_EXIT_EXCEPTION",
		kvmExitIO:            "KVM_EXIT_IO",
		kvmExitHLT:           "KVM_EXIT_HLT",
		kvmExitMMIO:          "KVM_EXIT_MMIO",
		kvmExitShutdown:      "KVM_EXIT_SHUTDOWN (triple fault)",
		kvmExitFailEntry:     "KVM_EXIT_FAIL_ENTRY",
		kvmExitInternalError: "KVM_EXIT_INTERNAL_ERROR",
	}
	if n, ok := names[reason]; ok {
		return n
	}
	return fmt.Sprintf("%d", reason)
}

// ---------------------------------------------------------------- tun

// runTun creates the tun interface name (IFF_TUN|IFF_NO_PI) and checks that
// the kernel lists it. The interface goes away when the fd is closed, that
// is when kvmtest exits: it only proves that creating one is allowed.
func runTun(w io.Writer, name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || strings.ContainsAny(name, "/ ") {
		return fmt.Errorf("tun: bad interface name %q", name)
	}
	fd, err := openDevice("/dev/net/tun")
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("tun: %w", err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		e := stepErr("TUNSETIFF "+name, err)
		var se *stepError
		if errors.As(e, &se) && se.errno == unix.EPERM {
			se.hint = "needs CAP_NET_ADMIN"
		}
		return e
	}
	created := ifr.Name()
	if _, err := net.InterfaceByName(created); err != nil {
		return fmt.Errorf("tun: %s created but not listed: %w", created, err)
	}
	fmt.Fprintf(w, "tun: created %s\n", created)
	return nil
}
