package planner

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// Options change how Diff decides.
type Options struct {
	// AllowReplace lets a plan replace pods that set prevent_replace.
	AllowReplace bool
	// RuntimeSocket is the runtime's socket path, so that a plan can warn
	// about containers that mount it.
	RuntimeSocket string
	// Adopt lets the stack take over mirror files berth did not write.
	Adopt bool
	// PruneImages removes images the stack's image blocks once declared.
	PruneImages bool
	// ReplaceOnNetworkChange replaces running pods when the stack's network
	// changes, so that they get the new one.
	ReplaceOnNetworkChange bool
	// Destroy says the plan is berth destroy's: what the stack owns goes
	// because that was asked, not because the configuration dropped it.
	Destroy bool
	// Watch is what only a watcher knows; nil for plan and apply.
	Watch *WatchState
	// Records, when set, keeps the records Observe decodes for the next
	// observation (a watcher's next round); nil decodes them anew.
	Records *RecordCache
	// Reads are the observation's first reads, started (StartReads) on
	// the same runtime while the configuration loaded, for this one
	// observation; nil, or reads of another stack, and Observe makes them
	// itself.
	Reads *Reads
	// Offline asks no registry anything while observing: pull = "always"
	// tags keep what runs, and images to pull are not checked.
	Offline bool
	// StrictImages makes an image to pull that the registry does not give
	// an error of the plan instead of a warning.
	StrictImages bool
}

// LongStopTimeout is the grace period from which a plan warns that stopping
// a container may take a while.
const LongStopTimeout = 30 * time.Second

// Diff compares the desired configuration with the observed state and
// decides every action. It is pure: no I/O, same inputs, same plan.
func Diff(cfg *spec.Config, snap *Snapshot, opts Options) *Plan {
	plan := &Plan{Stack: snap.Stack, snap: snap, CertsDir: snap.CertsDir, CNIConfDir: snap.CNIConfDir, PodNetwork: snap.PodNetwork}
	diffMirrors(cfg, snap, opts, plan)
	diffImages(cfg, snap, opts, plan)

	levels, _ := spec.Levels(cfg.Pods) // spec.Load rejects cycles
	for level, pods := range levels {
		for _, p := range pods {
			pc := diffPod(p, snap.Pods[p.Name], snap, opts, plan)
			pc.Level = level
			plan.Pods = append(plan.Pods, pc)
			if pc.Action == Create || pc.Action == Replace {
				warnPodRisk(plan, pc)
			}
			for _, cc := range pc.Containers {
				if cc.Action.Starts() {
					warnContainerRisk(plan, cc, opts.RuntimeSocket)
				}
			}
		}
	}

	// Pods the stack owns that the configuration no longer declares.
	declared := make(map[string]*spec.Pod, len(cfg.Pods)) // cfg.Pod per pod would be quadratic
	for _, p := range cfg.Pods {
		declared[p.Name] = p
	}
	for _, name := range sortedNames(snap.Pods) {
		obs := snap.Pods[name]
		if declared[name] == nil {
			plan.Pods = append(plan.Pods, destroyPod(obs, obs.Sandbox, removed(opts), plan))
		}
		why := "an older sandbox of the same pod, left by an interrupted apply"
		if p := declared[name]; p != nil && p.UpdateOrder == spec.StartFirst {
			why += "; it goes once the new sandbox's containers run (start_first)"
		}
		for _, dup := range obs.Duplicates {
			plan.Pods = append(plan.Pods, destroyPod(obs, dup, because(ReasonDuplicate, "%s", why), plan))
		}
	}
	diffNetworks(cfg, snap, opts, plan) // it may replace pods decided above
	teardownNetworks(snap, plan)
	orderReplaces(plan) // after every decision to replace, and how
	checkPullable(snap, opts, plan)
	if opts.Watch != nil {
		deferUnready(cfg, snap, opts.Watch, plan) // last: it holds back starts decided above
	} else {
		waitForReadiness(cfg, plan)
	}
	plan.Warnings = append(plan.Warnings, snap.Warnings...)
	return plan
}

func diffPod(p *spec.Pod, obs *ObservedPod, snap *Snapshot, opts Options, plan *Plan) *PodChange {
	pc := &PodChange{Address: spec.PodAddress(p.Name), Name: p.Name, Action: NoOp, DependsOn: p.DependsOn, Desired: p, Actual: obs}
	if obs == nil {
		pc.Action, pc.Reasons = Create, []Reason{declared}
		pc.Fields = diffRecords(spec.PodRecord{}, p.Record(), nil, nil)
		for _, c := range p.Containers {
			pc.Containers = append(pc.Containers, createContainer(pc, c, 0, snap, plan))
		}
		return pc
	}
	pc.SandboxID = obs.Sandbox.Id

	configChanged := false
	if obs.Hash != p.Hash() {
		configChanged = true
		pc.Fields = podFields(obs.Record, p.Record())
		pc.Reasons = append(pc.Reasons, reasonForFields(pc.Fields, obs.Record == nil))
	}
	// A sandbox whose containers were never all made (a create cut short
	// after the sandbox) is not a change: what is missing is made in it,
	// init containers first.
	unstarted := !configChanged && obs.Sandbox.State == cri.PodSandboxState_SANDBOX_READY && !slices.ContainsFunc(p.Containers, func(c *spec.Container) bool {
		return !c.Init && obs.Containers[c.Name] != nil
	})
	for _, c := range p.Containers {
		if !c.Init {
			continue
		}
		oc := obs.Containers[c.Name]
		if oc == nil && unstarted {
			continue
		}
		if oc == nil || oc.Hash != c.Hash() {
			configChanged = true
			pc.Reasons = append(pc.Reasons, because(ReasonInitChanged, "init container %q changed, and init containers run only when a pod starts", c.Name))
		}
	}
	if obs.Sandbox.State != cri.PodSandboxState_SANDBOX_READY {
		pc.Reasons = append(pc.Reasons, because(ReasonSandboxNotReady, "the sandbox is not ready (its network or pause process is gone)"))
	}
	if len(pc.Reasons) > 0 {
		pc.Action = Replace
		if configChanged && p.PreventReplace && !opts.AllowReplace {
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s sets prevent_replace = true, but this plan would replace it. Revert the change, or rerun with --allow-replace.", pc.Address))
		}
		for _, name := range sortedNames(obs.Containers) {
			if p.Container(name) == nil || obs.Containers[name].Container.State == cri.ContainerState_CONTAINER_RUNNING {
				warnLongStop(plan, pc.Name, obs.Containers[name])
			}
		}
		for _, c := range p.Containers {
			pc.Containers = append(pc.Containers, createContainer(pc, c, 0, snap, plan))
		}
		return pc
	}

	for _, c := range p.Containers {
		pc.Containers = append(pc.Containers, diffContainer(pc, c, obs.Containers[c.Name], snap, opts.Watch, plan))
	}
	for _, name := range sortedNames(obs.Containers) {
		if p.Container(name) != nil {
			continue
		}
		oc := obs.Containers[name]
		warnLongStop(plan, pc.Name, oc)
		pc.Containers = append(pc.Containers, &ContainerChange{
			Address: spec.ContainerAddress(pc.Name, name), Name: name, Action: Destroy,
			Reasons: []Reason{because(ReasonRemoved, "not in the configuration")}, ContainerID: oc.Container.Id,
			StopTimeout: recordedStopTimeout(oc), Image: oc.Container.GetImage().GetImage(),
		})
	}
	for _, stale := range obs.Stale {
		name := stale.GetMetadata().GetName()
		pc.Containers = append(pc.Containers, &ContainerChange{
			Address: spec.ContainerAddress(pc.Name, name), Name: name, Action: Destroy,
			Reasons:     []Reason{because(ReasonDuplicate, "an older attempt (%d) of the container", stale.GetMetadata().GetAttempt())},
			ContainerID: stale.Id, StopTimeout: spec.Duration(spec.DefaultStopTimeout),
		})
	}
	return pc
}

func diffContainer(pc *PodChange, c *spec.Container, oc *ObservedContainer, snap *Snapshot, watch *WatchState, plan *Plan) *ContainerChange {
	if oc == nil {
		cc := createContainer(pc, c, 0, snap, plan)
		cc.Reasons = []Reason{declared}
		return cc
	}
	cc := &ContainerChange{
		Address: spec.ContainerAddress(pc.Name, c.Name), Name: c.Name, Action: NoOp, Init: c.Init,
		Image: c.Image, Desired: c, ContainerID: oc.Container.Id,
		StopTimeout: spec.Duration(c.StopTimeout), Attempt: oc.Attempt(), AttemptBase: oc.AttemptBase(),
	}
	if oc.Hash != c.Hash() {
		cc.Action = Replace
		cc.Fields = containerFields(oc.Record, c.Record())
		cc.Reasons = []Reason{reasonForFields(cc.Fields, oc.Record == nil)}
		cc.Attempt, cc.AttemptBase = oc.Attempt()+1, oc.Attempt()+1
		warnLongStop(plan, pc.Name, oc)
	} else if moved := tagMoved(c, oc, snap); moved != nil {
		cc.Action, cc.Attempt, cc.AttemptBase = Replace, oc.Attempt()+1, oc.Attempt()+1
		cc.Reasons = []Reason{because(ReasonTagMoved, `the tag now names another image (pull = "always")`)}
		cc.Fields = []FieldChange{*moved}
		warnLongStop(plan, pc.Name, oc)
	} else {
		switch oc.Container.State {
		case cri.ContainerState_CONTAINER_RUNNING:
			if failed := watch.probeFailure(oc.Container.Id); failed != nil {
				probeDecision(cc, c, oc, failed, watch)
				break
			}
			diffResources(cc, c, oc)
			return cc
		case cri.ContainerState_CONTAINER_CREATED:
			cc.Action, cc.Reasons = Restart, []Reason{because(ReasonNeverStarted, "the container was created but never started (an interrupted apply)")}
		case cri.ContainerState_CONTAINER_EXITED:
			reason, restart := exitDecision(c, oc)
			if !restart {
				return cc
			}
			cc.Action, cc.Reasons = Restart, []Reason{reason}
			if watch != nil && watch.backOff(cc, oc) {
				return cc
			}
		default:
			cc.Action, cc.Reasons = Restart, []Reason{because(ReasonStateUnknown, "the runtime reports the container's state as unknown")}
		}
		if cc.Action == Stop {
			return cc
		}
		cc.Attempt++
	}
	checkImage(cc, c, snap, plan)
	return cc
}

// tagMoved reports, for a pull = "always" container, that its tag names
// another image at the registry than the one it runs.
func tagMoved(c *spec.Container, oc *ObservedContainer, snap *Snapshot) *FieldChange {
	if c.Pull != spec.PullAlways {
		return nil
	}
	remote := snap.RemoteDigests[NormalizeImage(c.Image)]
	current := snap.digestOf(oc.Container.ImageRef, c.Image)
	if remote == "" || current == "" || remote == current {
		return nil
	}
	return &FieldChange{Path: "image_digest", Before: current, After: remote, ForcesReplace: true}
}

// diffResources decides an in-place update of a running container's
// limits. Lifting a limit altogether cannot be done in place reliably
// (CRI reads 0 as "unchanged"), so that replaces the container.
func diffResources(cc *ContainerChange, c *spec.Container, oc *ObservedContainer) {
	want := c.ResourcesRecord()
	have := oc.Resources
	if !oc.ResourcesKnown && oc.Record != nil {
		have = oc.Record.Resources
	}
	have = relevant(have, want, oc.Record)
	if reflect.DeepEqual(want, have) {
		return
	}
	fields := diffRecords(struct {
		R *spec.ResourcesRecord `json:"resources"`
	}{have}, struct {
		R *spec.ResourcesRecord `json:"resources"`
	}{want}, nil, nil)
	cc.Fields = fields
	for _, f := range fields {
		if f.After == nil {
			cc.Action, cc.Attempt, cc.AttemptBase = Replace, cc.Attempt+1, cc.Attempt+1
			cc.Reasons = []Reason{because(ReasonLimitRemoved, "a resource limit is removed, which needs a new container")}
			for i := range cc.Fields {
				cc.Fields[i].ForcesReplace = cc.Fields[i].After == nil
			}
			return
		}
	}
	cc.Action = Update
	cc.Reasons = []Reason{because(ReasonResourcesChanged, "only resources changed: updated in place")}
}

// relevant drops the limits the runtime reports on its own (defaults such
// as cpu shares) when neither the desired nor the recorded spec sets them.
func relevant(have, want *spec.ResourcesRecord, rec *spec.ContainerRecord) *spec.ResourcesRecord {
	if have == nil {
		return nil
	}
	var set spec.ResourcesRecord
	if want != nil {
		set = *want
	}
	if rec != nil && rec.Resources != nil {
		r := rec.Resources
		set = spec.ResourcesRecord{CPUs: set.CPUs + r.CPUs, CPUShares: set.CPUShares + r.CPUShares,
			Cpuset: set.Cpuset + r.Cpuset, Memory: set.Memory + r.Memory, Pids: set.Pids + r.Pids}
	}
	out := *have
	if set.CPUs == 0 {
		out.CPUs = 0
	}
	if set.CPUShares == 0 {
		out.CPUShares = 0
	}
	if set.Cpuset == "" {
		out.Cpuset = ""
	}
	if set.Memory == 0 {
		out.Memory = 0
	}
	if set.Pids == 0 {
		out.Pids = 0
	}
	if out == (spec.ResourcesRecord{}) {
		return nil
	}
	return &out
}

// exitDecision applies the restart policy to an exited container.
func exitDecision(c *spec.Container, oc *ObservedContainer) (Reason, bool) {
	exit := fmt.Sprintf("exited with code %d", oc.ExitCode)
	if oc.Reason != "" && oc.Reason != "Completed" && oc.Reason != "Error" {
		exit += " (" + oc.Reason + ")"
	}
	switch {
	case c.Init && oc.ExitCode == 0:
		return Reason{}, false // an init container that finished did its job
	case c.Init && c.Restart != spec.RestartNever:
		return because(ReasonExited, "%s; init containers rerun until they succeed", exit), true
	case c.Restart == spec.RestartAlways:
		return because(ReasonExited, `%s; restart = "always"`, exit), true
	case c.Restart == spec.RestartOnFailure && oc.ExitCode != 0:
		return because(ReasonExited, `%s; restart = "on_failure"`, exit), true
	}
	return Reason{}, false
}

func createContainer(pc *PodChange, c *spec.Container, attempt uint32, snap *Snapshot, plan *Plan) *ContainerChange {
	cc := &ContainerChange{
		Address: spec.ContainerAddress(pc.Name, c.Name), Name: c.Name, Action: Create, Init: c.Init,
		Image: c.Image, Desired: c, Attempt: attempt, StopTimeout: spec.Duration(c.StopTimeout),
		Fields: diffRecords(spec.ContainerRecord{}, c.Record(), nil, []string{"sensitive"}),
	}
	checkImage(cc, c, snap, plan)
	return cc
}

// checkImage decides whether the container's image must be pulled, and
// makes the plan fail when it is missing and may not be pulled.
func checkImage(cc *ContainerChange, c *spec.Container, snap *Snapshot, plan *Plan) {
	present := snap.HasImage(c.Image) || plan.provided[NormalizeImage(c.Image)]
	switch c.Pull {
	case spec.PullAlways:
		cc.Pull = true
	case spec.PullNever:
		if !present {
			plan.Errors = append(plan.Errors, fmt.Sprintf("%s: image %q is not present and pull = \"never\". Import the image, or set pull = \"if_not_present\".", cc.Address, c.Image))
		}
	default:
		cc.Pull = !present
	}
}

func destroyPod(obs *ObservedPod, sb *cri.PodSandbox, reason Reason, plan *Plan) *PodChange {
	pc := &PodChange{Address: spec.PodAddress(obs.Name), Name: obs.Name, Action: Destroy, Reasons: []Reason{reason}, Actual: obs, SandboxID: sb.Id}
	if obs.Record != nil {
		pc.DependsOn = obs.Record.DependsOn
	}
	if sb != obs.Sandbox {
		// A duplicate goes as a whole; apply stops its containers first,
		// each with its grace.
		for _, oc := range obs.DuplicateContainers[sb.Id] {
			warnLongStop(plan, pc.Name, oc)
		}
		return pc
	}
	for _, name := range sortedNames(obs.Containers) {
		oc := obs.Containers[name]
		warnLongStop(plan, pc.Name, oc)
		pc.Containers = append(pc.Containers, &ContainerChange{
			Address: spec.ContainerAddress(pc.Name, name), Name: name, Action: Destroy, ContainerID: oc.Container.Id,
			StopTimeout: recordedStopTimeout(oc), Image: oc.Container.GetImage().GetImage(),
		})
	}
	return pc
}

// recordedStopTimeout is the grace a container was created with; a
// container leaving the configuration keeps the promise it was given.
func recordedStopTimeout(oc *ObservedContainer) spec.Duration {
	if oc.Record != nil && oc.Record.StopTimeout > 0 {
		return oc.Record.StopTimeout
	}
	return spec.Duration(spec.DefaultStopTimeout)
}

func warnLongStop(plan *Plan, pod string, oc *ObservedContainer) {
	if oc.Container.State != cri.ContainerState_CONTAINER_RUNNING {
		return
	}
	grace := time.Duration(recordedStopTimeout(oc))
	if grace >= LongStopTimeout {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("will stop %s; it gets up to %s to shut down before it is killed", spec.ContainerAddress(pod, oc.Name), grace))
	}
}

// waitForReadiness notes, for each pod a plan starts, the dependencies
// with readiness probes: apply waits for them to pass before it starts the
// pod.
func waitForReadiness(cfg *spec.Config, plan *Plan) {
	for _, pc := range plan.Pods {
		if pc.Action != Create && pc.Action != Replace {
			continue
		}
		for _, dep := range pc.DependsOn {
			if p := cfg.Pod(dep); p != nil && slices.ContainsFunc(p.Containers, func(c *spec.Container) bool { return c.Probe(spec.Readiness) != nil }) {
				pc.WaitFor = append(pc.WaitFor, dep)
			}
		}
	}
}

// removed is the reason of a destroy of what the stack owns and no longer
// declares.
func removed(opts Options) Reason {
	if opts.Destroy {
		return because(ReasonDestroyRequested, "berth destroy was asked")
	}
	return because(ReasonRemoved, "not in the configuration")
}

// declared is the reason of every create.
var declared = Reason{Code: ReasonDeclared, Text: "declared, not running"}

func reasonForFields(fields []FieldChange, unknownBefore bool) Reason {
	if unknownBefore {
		return because(ReasonUnrecorded, "the applied spec is not recorded on the runtime object, and the spec hash differs")
	}
	var forcing []string
	for _, f := range fields {
		if f.ForcesReplace {
			forcing = append(forcing, f.Path)
		}
	}
	if len(forcing) == 0 {
		return because(ReasonFieldsChanged, "the spec hash differs (a change made by another berth version?)")
	}
	return because(ReasonFieldsChanged, "changed: %s", joinLimited(forcing, 6))
}

func joinLimited(items []string, limit int) string {
	s := ""
	for i, it := range items {
		if i == limit {
			return s + fmt.Sprintf(" and %d more", len(items)-limit)
		}
		if i > 0 {
			s += ", "
		}
		s += it
	}
	return s
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// forcing reports whether a field path starts with one of the keys.
func forcing(path string, keys []string) bool {
	return slices.ContainsFunc(keys, func(k string) bool {
		return path == k || len(path) > len(k) && path[:len(k)] == k && (path[len(k)] == '.' || path[len(k)] == '[')
	})
}

// checkPullable reports, once per image, the images apply would pull that
// the registry did not give when observing asked: a plan that would fail
// at apply says so now.
func checkPullable(snap *Snapshot, opts Options, plan *Plan) {
	users := map[string][]string{}
	var order []string
	use := func(ref, who string) {
		ref = NormalizeImage(ref)
		if _, bad := snap.Unpullable[ref]; !bad {
			return
		}
		if users[ref] == nil {
			order = append(order, ref)
		}
		users[ref] = append(users[ref], who)
	}
	for _, ic := range plan.Images {
		if ic.Action == Create && ic.Import == "" {
			use(ic.Ref, ic.Address.String())
		}
	}
	for c := range plan.Changes() {
		if cc := c.Container; cc != nil && cc.Pull && cc.Action.Starts() {
			use(cc.Image, cc.Address.String())
		}
	}
	for _, ref := range order {
		msg := fmt.Sprintf("%s: image %s cannot be pulled: %s. Check the name and tag, the registry's address and mirrors, and its credentials (plan --offline skips this check)",
			strings.Join(users[ref], ", "), ref, snap.Unpullable[ref])
		if opts.StrictImages {
			plan.Errors = append(plan.Errors, msg)
		} else {
			plan.Warnings = append(plan.Warnings, msg)
		}
	}
}
