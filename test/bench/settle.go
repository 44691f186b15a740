package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// settle waits, up to limit, until containerd is done with what came
// before: under 5% of a CPU over a second, or steady (two seconds in a
// row within a fifth of each other: with 500 containers it never goes
// idle, about 8% of a CPU on this machine). After 500 starts it goes on
// working for a while, and a plan measured then measures that. It
// returns how long it waited, and whether the runtime settled.
func settle(ctx context.Context, limit time.Duration) (time.Duration, bool) {
	pid := containerdPID()
	if pid == 0 {
		return 0, false
	}
	start := time.Now()
	last := time.Duration(-1)
	for time.Since(start) < limit {
		before := procCPU(pid)
		if sleep(ctx, time.Second) != nil {
			break
		}
		used := procCPU(pid) - before
		if used < 50*time.Millisecond || last >= 0 && absDur(used-last) <= last/5 {
			return time.Since(start), true
		}
		last = used
	}
	return time.Since(start), false
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
