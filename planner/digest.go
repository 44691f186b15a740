package planner

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"syscall"

	"github.com/berth-dev/berth/spec"
)

// Credentials is the key of Digests under which the registries' logins
// are summarised: apply pulls with them, so a saved plan covers them too.
const Credentials = "registries"

// Digests summarise everything apply would do with a plan, one digest a
// resource (by address) plus the registry logins: each action with the
// exact spec, file content, image decision and runtime IDs it acts on,
// secrets included. Two plans with equal digests do the same things. A
// saved plan keeps them, and applying it re-plans and refuses when any
// differs. They are keyed, so that a digest of a secret cannot be tried
// against guesses without the key, which the plan file holds.
func Digests(plan *Plan, cfg *spec.Config, key []byte) map[string]string {
	out := map[string]string{}
	sum := func(name string, v any) {
		mac := hmac.New(sha256.New, key)
		_ = json.NewEncoder(mac).Encode(v) // plain data: encoding cannot fail
		out[name] = hex.EncodeToString(mac.Sum(nil))
	}
	sum("stack", []string{plan.Stack, plan.CertsDir})
	for c := range plan.Changes() {
		switch addr := c.Address.String(); {
		case c.Image != nil && c.Image.Import != "":
			sum(addr, []any{c.Image, archiveIdentity(c.Image.Import)})
		case c.Image != nil:
			sum(addr, c.Image)
		case c.File != nil:
			sum(addr, []any{c.File.Kind, c.Action, c.File.Path, c.File.Content})
		case c.Container != nil:
			cc := c.Container
			var desired any
			if cc.Desired != nil {
				desired = []any{cc.Desired.Hash(), cc.Desired.Record()}
			}
			sum(addr, []any{c.Action, cc.ContainerID, cc.Attempt, cc.AttemptBase, cc.Pull, cc.Image, cc.StopTimeout, cc.Fields, desired})
		default:
			pc := c.Pod
			var desired any
			if pc.Desired != nil {
				desired = []any{pc.Desired.Hash(), pc.Desired.Record()}
			}
			sum(addr, []any{c.Action, pc.SandboxID, pc.Level, pc.DependsOn, pc.WaitFor, pc.TeardownNetwork, pc.StartFirst, desired})
		}
	}
	if cfg != nil {
		var logins [][]string
		for _, r := range cfg.Registries {
			logins = append(logins, []string{r.Host, r.Username, r.Password, r.Auth, r.IdentityToken})
		}
		sum(Credentials, logins)
	}
	return out
}

// archiveIdentity tells one archive file from another put in its place:
// the plan names the file, and a docker archive has no digest to pin.
// Reading the whole file would cost a plan seconds for a large image; the
// same size, modification time and inode are what a replaced or rewritten
// file does not keep.
func archiveIdentity(path string) []int64 {
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	id := []int64{info.Size(), info.ModTime().UnixNano()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id = append(id, int64(st.Dev), int64(st.Ino))
	}
	return id
}

// Moved lists what differs between two sets of digests: resources whose
// decision changed, and those only one of them has, in order.
func Moved(saved, now map[string]string) []string {
	var moved []string
	for name, d := range saved {
		if now[name] != d {
			moved = append(moved, name)
		}
	}
	for name := range now {
		if _, ok := saved[name]; !ok {
			moved = append(moved, name)
		}
	}
	slices.Sort(moved)
	return slices.Compact(moved)
}
