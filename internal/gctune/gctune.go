// Package gctune holds the garbage collector off for a short command
// (plan, apply, status...) from the first package initialiser on, and
// gives the default collector back to one that runs for as long as the
// host does. Importing it is enough for the first: Go initialises packages
// in the order of their import paths, among those whose own imports are
// ready, so this one, needing only the standard library, runs before the
// containerd, Kubernetes and gRPC packages whose initialisers allocate the
// first 4 MiB, and with them the first collection, before main (2-3 ms
// of every command on 2 cores).
package gctune

import (
	"math"
	"os"
	"runtime/debug"
)

// shortHeap is the heap a short command may grow to before the garbage
// collector first runs. Such a command allocates most of what it ever
// will while it loads the configuration and reads the runtime, and exits
// soon after: collecting on the way cost a no-op plan of 500 pods a third
// of its time. Its peak stays under 100 MiB.
const shortHeap = 64 << 20

func init() {
	if userTuned() {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(shortHeap)
}

// AsUsual gives the default collector back to a command that runs for as
// long as the host does (watch, forward), whose heap should stay small.
func AsUsual() {
	if userTuned() {
		return
	}
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
}

// userTuned says the user set the collector through the environment,
// which then wins.
func userTuned() bool { return os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" }
