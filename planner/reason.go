package planner

import (
	"fmt"
	"strings"
)

// ReasonCode says, for programs, why a plan takes an action: plan --json
// and watch's decision lines carry it beside the text for people.
type ReasonCode string

// The reasons a plan gives.
const (
	// Declared: in the configuration, not on the runtime.
	ReasonDeclared ReasonCode = "declared"
	// FieldsChanged: fields that force a replacement changed (the change's
	// Fields say which).
	ReasonFieldsChanged ReasonCode = "fields_changed"
	// Unrecorded: the runtime object carries no readable record, and its
	// spec hash differs.
	ReasonUnrecorded ReasonCode = "unrecorded"
	// InitChanged: an init container changed, and those run only when a
	// pod starts.
	ReasonInitChanged ReasonCode = "init_changed"
	// SandboxNotReady: the sandbox lost its network or pause process.
	ReasonSandboxNotReady ReasonCode = "sandbox_not_ready"
	// NetworkChanged: the stack's pod network changed.
	ReasonNetworkChanged ReasonCode = "network_changed"
	// StartFirst: a container of a start_first pod changed, so the pod is
	// replaced, the new one beside the old.
	ReasonStartFirst ReasonCode = "start_first"
	// StopFirst: a start_first pod's change is made stop-first this time
	// (the reason's text says why).
	ReasonStopFirst ReasonCode = "stop_first"
	// TagMoved: a pull = "always" tag names another image now.
	ReasonTagMoved ReasonCode = "tag_moved"
	// ResourcesChanged: only resources changed, updated in place.
	ReasonResourcesChanged ReasonCode = "resources_changed"
	// LimitRemoved: a resource limit is lifted, which needs a new container.
	ReasonLimitRemoved ReasonCode = "limit_removed"
	// Exited: the container exited and its restart policy restarts it.
	ReasonExited ReasonCode = "exited"
	// NeverStarted: the container was created but not started.
	ReasonNeverStarted ReasonCode = "never_started"
	// StateUnknown: the runtime cannot say the container's state.
	ReasonStateUnknown ReasonCode = "state_unknown"
	// ProbeFailed: a liveness or startup probe failed its threshold.
	ReasonProbeFailed ReasonCode = "probe_failed"
	// CrashBackoff: a restart waits for its crash backoff.
	ReasonCrashBackoff ReasonCode = "crash_backoff"
	// WaitingReady: a start waits for a dependency's readiness.
	ReasonWaitingReady ReasonCode = "waiting_ready"
	// Removed: on the runtime, no longer in the configuration.
	ReasonRemoved ReasonCode = "removed"
	// DestroyRequested: berth destroy was asked.
	ReasonDestroyRequested ReasonCode = "destroy_requested"
	// Duplicate: an older sandbox or attempt of the same resource, left
	// behind by an interrupted apply or a restart.
	ReasonDuplicate ReasonCode = "duplicate"
	// FileDiffers: a host file berth manages differs from its block.
	ReasonFileDiffers ReasonCode = "file_differs"
	// Adopted: berth takes over a host file it did not write (--adopt).
	ReasonAdopted ReasonCode = "adopted"
	// ImageMissing: the image is not present.
	ReasonImageMissing ReasonCode = "image_missing"
	// ImageImport: the image comes from an archive.
	ReasonImageImport ReasonCode = "image_import"
	// PinChanged: the image's pin changes.
	ReasonPinChanged ReasonCode = "pin_changed"
	// Pruned: no image block declares the image any more.
	ReasonPruned ReasonCode = "pruned"
)

// Reason is why a plan takes an action: a code for programs and a text for
// people. Renderers print Text; nothing decides on it.
type Reason struct {
	Code ReasonCode `json:"code"`
	Text string     `json:"text"`
}

func (r Reason) String() string { return r.Text }

// because makes a reason.
func because(code ReasonCode, format string, args ...any) Reason {
	return Reason{Code: code, Text: fmt.Sprintf(format, args...)}
}

// Reasons joins reasons' texts for one line.
func Reasons(rs []Reason) string {
	texts := make([]string, len(rs))
	for i, r := range rs {
		texts[i] = r.Text
	}
	return strings.Join(texts, "; ")
}
