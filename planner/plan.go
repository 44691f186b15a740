// Package planner decides what apply must do. Observe reads the runtime
// and the host files a stack manages into a Snapshot, in one place; Diff,
// a pure function, compares it with the desired configuration (and, for a
// watcher, what its probes and restart streaks say) and returns a Plan:
// actions with typed reasons, data that renderers print and apply
// executes, never re-deciding anything.
package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"iter"
	"time"

	"github.com/berth-dev/berth/spec"
)

// Action is what happens to one pod or container.
type Action string

// The actions of a plan.
const (
	NoOp    Action = "no-op"
	Create  Action = "create"
	Destroy Action = "destroy"
	Replace Action = "replace"
	// Restart recreates an exited container from the same spec, as its
	// restart policy asks (CRI cannot start an exited container again).
	Restart Action = "restart"
	// Update changes a running container's resources in place.
	Update Action = "update"
	// Stop stops a running container and leaves it stopped: a failed
	// liveness probe under restart = "never".
	Stop Action = "stop"
	// Defer is a change decided but held back for now: a restart waiting
	// out its crash backoff, or a start waiting for a dependency to be
	// ready. Apply does nothing for it; its reason says until when.
	Defer Action = "defer"
)

// Starts reports whether the action starts a container from its spec.
func (a Action) Starts() bool { return a == Create || a == Replace || a == Restart }

// Changes reports whether the action changes anything now.
func (a Action) Changes() bool { return a != NoOp && a != Defer && a != "" }

// Symbol is the one-column marker plans print before a change.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Destroy:
		return "-"
	case Replace:
		return "-/+"
	case Restart, Update, Stop:
		return "~"
	case Defer:
		return "…"
	}
	return " "
}

// Plan is the full decision for one stack.
type Plan struct {
	Stack string       `json:"stack"`
	Pods  []*PodChange `json:"pods"`
	// Files are the host files the stack manages (mirrors' hosts.toml).
	Files []*FileChange `json:"files,omitempty"`
	// Images are the image blocks' decisions.
	Images []*ImageChange `json:"images,omitempty"`
	// Warnings point out risk; they do not stop apply.
	Warnings []string `json:"warnings,omitempty"`
	// Notes say what apply does on the host beside the runtime (a mount's
	// source it creates).
	Notes []string `json:"notes,omitempty"`
	// Errors make the plan impossible to apply as it stands.
	Errors []string `json:"errors,omitempty"`
	// CertsDir is where the runtime, and so berth's pulls, read hosts.toml.
	CertsDir string `json:"certs_dir,omitempty"`
	// CNIConfDir is where the runtime reads pod networks; PodNetwork is the
	// configuration it uses now (nil when unknown).
	CNIConfDir string `json:"cni_conf_dir,omitempty"`
	PodNetwork []byte `json:"-"`

	// provided are the images that image blocks pull or import before any
	// container is created.
	provided map[string]bool
	// snap is the snapshot the plan was made from.
	snap *Snapshot
}

// Observed is the fingerprint of the snapshot the plan was made from
// (Snapshot.Fingerprint). It is worked out when asked: only a plan shown
// as JSON or saved needs it, and with 500 pods it costs a watcher's round
// 2 ms.
func (p *Plan) Observed() string {
	if p.snap == nil {
		return ""
	}
	return p.snap.Fingerprint()
}

// PodChange is the decision for one pod: its own action and those of its
// containers. A pod whose action is NoOp may still have container changes.
type PodChange struct {
	Address   spec.Address  `json:"address"`
	Name      string        `json:"name"`
	Action    Action        `json:"action"`
	Reasons   []Reason      `json:"reasons,omitempty"`
	Fields    []FieldChange `json:"fields,omitempty"`
	Level     int           `json:"level"`
	DependsOn []string      `json:"depends_on,omitempty"`
	// WaitFor are the dependencies whose readiness probes apply waits for
	// before it starts this pod (a watcher defers the start instead).
	WaitFor    []string           `json:"wait_for,omitempty"`
	Containers []*ContainerChange `json:"containers,omitempty"`

	Desired *spec.Pod    `json:"-"`
	Actual  *ObservedPod `json:"-"`
	// SandboxID is the sandbox that a destroy or replace removes.
	SandboxID string `json:"sandbox_id,omitempty"`
	// MadeOn names the network the sandbox was made on when that is not
	// the configuration the runtime uses now; TeardownNetwork is that
	// configuration, which apply puts back while the sandbox is torn down.
	MadeOn          string `json:"made_on_network,omitempty"`
	TeardownNetwork []byte `json:"-"`
	// StartFirst says a replace makes the new pod and waits until it is
	// ready before it stops the old one (update_order = "start_first").
	// StopFirstBecause says why a pod that asks for it is replaced
	// stop-first this time.
	StartFirst       bool   `json:"start_first,omitempty"`
	StopFirstBecause string `json:"stop_first_because,omitempty"`
}

// ContainerChange is the decision for one container.
type ContainerChange struct {
	Address spec.Address  `json:"address"`
	Name    string        `json:"name"`
	Action  Action        `json:"action"`
	Reasons []Reason      `json:"reasons,omitempty"`
	Fields  []FieldChange `json:"fields,omitempty"`
	// Pull says the image will be pulled before the container is created.
	Pull  bool   `json:"pull,omitempty"`
	Image string `json:"image,omitempty"`
	Init  bool   `json:"init,omitempty"`

	Desired *spec.Container `json:"-"`
	// ContainerID is the container that a destroy, replace or restart removes.
	ContainerID string `json:"container_id,omitempty"`
	// Attempt is the CRI attempt number of the container to create, and
	// AttemptBase the attempt its configuration first ran as: a replace
	// takes the attempt after the old container's, a restart keeps the
	// base (spec.LabelAttemptBase).
	Attempt     uint32 `json:"attempt,omitempty"`
	AttemptBase uint32 `json:"attempt_base,omitempty"`
	// StopTimeout is the grace the old container gets before SIGKILL.
	StopTimeout spec.Duration `json:"stop_timeout,omitempty"`
	// Streak is, for a restart after an exit, how many restarts in a row it
	// makes (the crash backoff's count once it is done).
	Streak int `json:"streak,omitempty"`
	// Until is when a deferred restart becomes due.
	Until time.Time `json:"until,omitzero"`
}

// FieldChange is one field's before and after. Values are JSON values
// (strings, lists, booleans); sensitive ones are spec.Redacted.
type FieldChange struct {
	Path          string `json:"path"`
	Before        any    `json:"before"`
	After         any    `json:"after"`
	ForcesReplace bool   `json:"forces_replace,omitempty"`
}

// Change is one resource's decision: the view of pods, containers, host
// files and images that walking a plan gives.
type Change struct {
	Address spec.Address
	Action  Action
	Reasons []Reason
	// The change itself: Image or File, or Pod alone for a pod, or Pod
	// and Container for a container.
	Image     *ImageChange
	File      *FileChange
	Pod       *PodChange
	Container *ContainerChange
}

// Changes walks every decision of the plan, no-ops included, in the order
// apply takes them: images, host files, then pods each followed by its
// containers.
func (p *Plan) Changes() iter.Seq[Change] {
	return func(yield func(Change) bool) {
		for _, ic := range p.Images {
			if !yield(Change{Address: ic.Address, Action: ic.Action, Reasons: ic.Reasons, Image: ic}) {
				return
			}
		}
		for _, fc := range p.Files {
			if !yield(Change{Address: fc.Address, Action: fc.Action, Reasons: fc.Reasons, File: fc}) {
				return
			}
		}
		for _, pc := range p.Pods {
			if !yield(Change{Address: pc.Address, Action: pc.Action, Reasons: pc.Reasons, Pod: pc}) {
				return
			}
			for _, cc := range pc.Containers {
				if !yield(Change{Address: cc.Address, Action: cc.Action, Reasons: cc.Reasons, Pod: pc, Container: cc}) {
					return
				}
			}
		}
	}
}

// HasChanges reports whether applying the plan would change anything now.
func (p *Plan) HasChanges() bool {
	for c := range p.Changes() {
		if c.Action.Changes() {
			return true
		}
	}
	return false
}

// Summary counts changes the way Terraform does: a replace is one add and
// one destroy; a restart is a change. Pods and containers both count.
type Summary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

// Summary counts the plan's changes.
func (p *Plan) Summary() Summary {
	var s Summary
	for c := range p.Changes() {
		switch c.Action {
		case Create:
			s.Add++
		case Destroy:
			s.Destroy++
		case Replace:
			s.Add++
			s.Destroy++
		case Restart, Update, Stop:
			s.Change++
		}
	}
	return s
}

// DesiredDigest summarises a configuration's desired state, secrets
// included (through the spec hashes) but never readable from it. A saved
// plan records it so that applying the plan is refused when the
// configuration or its variables changed since.
func DesiredDigest(cfg *spec.Config) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(cfg.Berth.Stack)
	for _, p := range cfg.Pods {
		_ = enc.Encode([]any{p.Name, p.Hash(), p.Record()})
		for _, c := range p.Containers {
			_ = enc.Encode([]any{c.Name, c.Hash(), c.Record()})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
