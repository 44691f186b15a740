package planner

import (
	"slices"
	"strings"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// orderReplaces decides how the pods that ask for update_order =
// "start_first" are replaced: a new pod started and ready beside the old
// one, or, when that cannot be, stop-first, saying why. A change that
// would replace one of such a pod's containers in place (a new image, an
// edited env) is an outage just the same, so it replaces the pod
// start-first instead.
func orderReplaces(plan *Plan) {
	networkChanges := slices.ContainsFunc(plan.Files, func(fc *FileChange) bool { return fc.Kind == "network" && fc.Action.Changes() })
	for _, pc := range plan.Pods {
		if pc.Desired == nil || pc.Desired.UpdateOrder != spec.StartFirst {
			continue
		}
		replaced := replacedContainers(pc)
		if pc.Action != Replace && (pc.Action != NoOp || len(replaced) == 0) {
			continue
		}
		why := ""
		switch {
		case pc.Actual == nil:
			why = "there is no old pod that serves"
		case pc.Actual.Sandbox.State != cri.PodSandboxState_SANDBOX_READY:
			why = "the old sandbox is not ready, so it serves nothing"
		case pc.MadeOn != "":
			why = "the old sandbox must be torn down on the network it was made on, before the new one is made on the runtime's"
		case networkChanges:
			why = "the stack's network changes in this plan: old pods leave before it changes, new ones come after"
		}
		if pc.Action == NoOp {
			if why != "" {
				for _, cc := range replaced {
					cc.Reasons = append(cc.Reasons, because(ReasonStopFirst, `update_order = "start_first", but replaced in place this time: %s`, why))
				}
				continue
			}
			names := make([]string, len(replaced))
			for i, cc := range replaced {
				names[i] = cc.Name
			}
			pc.Action, pc.SandboxID = Replace, pc.Actual.Sandbox.Id
			pc.Reasons = append(pc.Reasons, because(ReasonStartFirst, `container %s changed: update_order = "start_first" replaces the pod, the new one beside the old`, strings.Join(names, ", ")))
		}
		pc.StartFirst, pc.StopFirstBecause = why == "", why
	}
}

// replacedContainers are the containers of a staying pod that its plan
// replaces because their spec or image changed.
func replacedContainers(pc *PodChange) []*ContainerChange {
	var out []*ContainerChange
	for _, cc := range pc.Containers {
		if cc.Action == Replace && cc.Desired != nil {
			out = append(out, cc)
		}
	}
	return out
}
