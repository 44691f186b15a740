package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// containerdPID is the private runtime's daemon, from hack/runtime.sh's
// pid file; 0 when unknown.
func containerdPID() int {
	d := os.Getenv("BERTH_RUNTIME_DIR")
	if d == "" {
		return 0
	}
	raw, err := os.ReadFile(filepath.Join(d, "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

// settle waits, up to limit, until the runtime is done with what came
// before: containerd under 5% of a CPU over a second, or steady under
// half a CPU (two seconds in a row within a fifth of each other: with 500
// containers it never goes idle, 8-12% of a CPU on this machine), and the machine as
// a whole steady too (its 500 shims and the kernel go on working after
// containerd is done). After 500 starts the runtime goes on working for a
// while, and a plan measured then measures that. It returns how long it
// waited, and whether the runtime settled.
func settle(ctx context.Context, limit time.Duration) (time.Duration, bool) {
	pid := containerdPID()
	if pid == 0 {
		return 0, false
	}
	start := time.Now()
	last, lastMachine := time.Duration(-1), time.Duration(-1)
	steady := func(now, before time.Duration) bool { return before >= 0 && absDur(now-before) <= before/5 }
	for time.Since(start) < limit {
		before, machine := procCPU(pid), machineSince()
		if sleep(ctx, time.Second) != nil {
			break
		}
		used, busy := procCPU(pid)-before, machine()
		// containerd idles at about a tenth of a CPU beside 500 containers;
		// at half a CPU or more it is still at work (a destroy's snapshot
		// removals, say), however steadily.
		calm := used < 50*time.Millisecond || (used < 500*time.Millisecond && steady(used, last))
		if calm && (busy < 100*time.Millisecond || steady(busy, lastMachine)) {
			return time.Since(start), true
		}
		last, lastMachine = used, busy
	}
	return time.Since(start), false
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// stepCPU is the CPU a step used: its own process's (berth's, or this
// benchmark's for the baseline), containerd's, and the whole machine's,
// every process on it (containerd, its shims, runc, the CNI plugins).
type stepCPU struct{ own, containerd, machine time.Duration }

// meterStep starts measuring a step's CPU; the function it returns ends
// the measure, given the CPU the step's own process used.
func meterStep() func(own time.Duration) stepCPU {
	// statCPU, not procCPU: over a whole step, threads come and go.
	pid := containerdPID()
	machine, before := machineSince(), statCPU(pid)
	return func(own time.Duration) stepCPU {
		u := stepCPU{own: own, machine: machine()}
		if pid != 0 {
			u.containerd = statCPU(pid) - before
		}
		return u
	}
}

// machineSince returns a function that reports the machine's busy CPU
// time since machineSince was called (/proc/stat, 10 ms ticks).
func machineSince() func() time.Duration {
	before, _ := machineCPU()
	return func() time.Duration {
		after, _ := machineCPU()
		return time.Duration(after-before) * 10 * time.Millisecond
	}
}

// selfCPU is this process's user and system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// triple is the three parts, own / containerd / machine.
func (u stepCPU) triple() string {
	return fmtDur(u.own) + " / " + fmtDur(u.containerd) + " / " + fmtDur(u.machine)
}

func (u stepCPU) String() string {
	return fmt.Sprintf("CPU: own %s, containerd %s, machine %s", fmtDur(u.own), fmtDur(u.containerd), fmtDur(u.machine))
}
