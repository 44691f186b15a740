package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/hostsfile"
	"github.com/berth-dev/berth/internal/safefile"
	"github.com/berth-dev/berth/planner"
)

// networkReload bounds the wait for the runtime to load a changed network
// configuration; it reloads on file events, soon but not at once.
const networkReload = 10 * time.Second

// teardownOnTheirNetworks tears down the sandboxes the plan says were made
// on another network configuration than the runtime's current one, each
// with its own put back in the stack's file: the runtime tears a pod's
// network down with the configuration of the moment. The file is restored
// afterwards. It returns the destroys still to do; replaced pods' outcomes
// go to x.removed, for their own steps.
func (x *executor) teardownOnTheirNetworks(ctx context.Context, plan *planner.Plan, destroys, replaced []*planner.PodChange) []*planner.PodChange {
	groups := map[string][]*planner.PodChange{}
	var order []string
	for _, pc := range slices.Concat(destroys, replaced) {
		if pc.TeardownNetwork == nil || plan.CNIConfDir == "" {
			continue
		}
		key := string(pc.TeardownNetwork)
		if groups[key] == nil {
			order = append(order, key)
		}
		groups[key] = append(groups[key], pc)
	}
	if len(order) == 0 {
		return destroys
	}
	path := planner.NetworkPath(plan.CNIConfDir, x.stack)
	// As the plan read it: never through a link, never more than a conflist.
	before, err := safefile.Read(path, planner.MaxConflist, safefile.Options{NoFollow: true})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		x.noteAll(slices.Concat(destroys, replaced), "the stack's network file could not be read, so the pods were torn down on the runtime's current network: %v", err)
		return destroys
	}
	for _, key := range order {
		pcs := groups[key]
		if err := x.putNetwork(ctx, plan.CNIConfDir, path, []byte(key)); err != nil {
			x.noteAll(pcs, "%v", err)
		}
		var going []*planner.PodChange
		for _, pc := range pcs {
			x.note(pc, "torn down on network %q, which it was made on", pc.MadeOn)
			if pc.Action == planner.Destroy {
				going = append(going, pc)
			} else {
				x.removeOld(ctx, pc)
			}
		}
		x.parallel(ctx, going, x.destroyPod)
		destroys = slices.DeleteFunc(destroys, func(pc *planner.PodChange) bool { return slices.Contains(going, pc) })
	}
	// Back to the file as it was; the plan's own network changes follow.
	if before == nil {
		err = os.Remove(path)
	} else {
		err = hostsfile.Write(path, before)
	}
	if err == nil || errors.Is(err, os.ErrNotExist) {
		x.awaitNetwork(ctx, plan.CNIConfDir)
	}
	return destroys
}

// putNetwork makes the runtime use conf: a configuration another file of
// the conf dir holds (the runtime's own network) comes back when the
// stack's file steps aside; any other is written into the stack's file.
func (x *executor) putNetwork(ctx context.Context, confDir, path string, conf []byte) error {
	var err error
	if other := firstNetworkFile(confDir, path); other != nil && bytes.Equal(other, conf) {
		if err = os.Remove(path); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	} else {
		err = hostsfile.Write(path, conf)
	}
	if err != nil {
		return fmt.Errorf("put back the network the pod was made on: %w", err)
	}
	if got := x.awaitNetwork(ctx, confDir); !bytes.Equal(got, conf) {
		return fmt.Errorf("the runtime did not load the network the pod was made on within %s", networkReload)
	}
	return nil
}

// awaitNetwork waits, bounded by networkReload, until the runtime uses the
// first configuration of confDir, as it does once it has reloaded, and
// keeps it as the network new sandboxes are made on. It returns what the
// runtime uses when the wait ends.
func (x *executor) awaitNetwork(ctx context.Context, confDir string) []byte {
	want := firstNetworkFile(confDir, "")
	deadline := time.Now().Add(networkReload)
	var got []byte
	for {
		cni, err := x.rt.CNI(ctx)
		if err == nil {
			got = cni.PodNetwork
		}
		// A conf dir the runtime does not read (the berth block's own) has
		// nothing to wait for.
		elsewhere := err == nil && filepath.Clean(cni.ConfDir) != filepath.Clean(confDir)
		if err == nil && (want == nil || elsewhere || bytes.Equal(got, want)) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return got
		case <-time.After(50 * time.Millisecond):
		}
	}
	x.mu.Lock()
	x.network = got
	x.mu.Unlock()
	return got
}

// firstNetworkFile is the content of the configuration file the runtime
// loads first from dir, leaving out the file skip; nil when there is none.
func firstNetworkFile(dir, skip string) []byte {
	var snap planner.Snapshot
	if planner.ObserveNetworks(&snap, dir) != nil {
		return nil
	}
	for _, f := range snap.Networks { // sorted by name, as the runtime reads them
		if f.Path != skip && f.Content != nil {
			return f.Content
		}
	}
	return nil
}

func (x *executor) noteAll(pcs []*planner.PodChange, format string, args ...any) {
	for _, pc := range pcs {
		x.note(pc, format, args...)
	}
}
