package planner

import (
	"bytes"
	"encoding/json"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

// maxNetworkRecord bounds the network configuration read back from a
// sandbox's annotation: it is a runtime answer, and is written to the
// runtime's conf dir again for the sandbox's teardown.
const maxNetworkRecord = 64 << 10

// SandboxNetwork is the network configuration a sandbox was made on, as
// berth recorded it at creation; nil when berth did not (an older berth, or
// a runtime that did not say) or the record is unusable.
func SandboxNetwork(sb *cri.PodSandbox) []byte {
	raw := sb.GetAnnotations()[spec.AnnotationNetwork]
	if raw == "" || len(raw) > maxNetworkRecord || NetworkName([]byte(raw)) == "" {
		return nil
	}
	return []byte(raw)
}

// NetworkName is the name a CNI configuration gives its network, or ""
// when it is not one.
func NetworkName(conf []byte) string {
	var doc struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
		Type string `json:"type"`
	}
	if json.Unmarshal(conf, &doc) != nil || doc.Name == "" {
		return ""
	}
	// Plugin types are names found in the runtime's bin dirs, never paths.
	types := []string{doc.Type}
	for _, p := range doc.Plugins {
		types = append(types, p.Type)
	}
	for _, t := range types {
		if bytes.ContainsAny([]byte(t), `/\`) || t == ".." {
			return ""
		}
	}
	return doc.Name
}

// teardownNetworks finds the sandboxes that go (destroyed or replaced) and
// were made on another network configuration than the runtime uses now:
// the runtime tears a pod's network down with the configuration of the
// moment, which fails, or leaks the pod's address, on the wrong one. Apply
// puts the configuration back for their teardown.
func teardownNetworks(snap *Snapshot, plan *Plan) {
	if snap.PodNetwork == nil {
		return
	}
	for _, pc := range plan.Pods {
		if pc.Action != Destroy && pc.Action != Replace || pc.Actual == nil || pc.SandboxID == "" {
			continue
		}
		sb := pc.Actual.Sandbox
		for _, dup := range pc.Actual.Duplicates {
			if dup.Id == pc.SandboxID {
				sb = dup
			}
		}
		if sb.Id != pc.SandboxID {
			continue
		}
		if made := SandboxNetwork(sb); made != nil && !bytes.Equal(made, snap.PodNetwork) {
			pc.TeardownNetwork, pc.MadeOn = made, NetworkName(made)
		}
	}
}
