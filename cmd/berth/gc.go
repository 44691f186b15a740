package main

import (
	"math"
	"os"
	"runtime/debug"
)

// shortHeap is the heap a short command (plan, apply, status...) may grow
// to before the garbage collector first runs. Such a command allocates
// most of what it ever will while it loads the configuration and reads
// the runtime, and exits soon after: collecting on the way cost a no-op
// plan of 500 pods a third of its time. Its peak stays under 100 MiB.
const shortHeap = 64 << 20

// userTunedGC says the user set the collector through the environment,
// which then wins.
func userTunedGC() bool { return os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" }

// collectLate tunes the collector for a short command.
func collectLate() {
	if userTunedGC() {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(shortHeap)
}

// collectAsUsual gives the default collector back to a command that runs
// for as long as the host does (watch, forward), whose heap should stay
// small.
func collectAsUsual() {
	if userTunedGC() {
		return
	}
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
}
