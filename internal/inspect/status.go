// Package inspect reads what a stack runs into reports for people and
// programs: `berth status` (every pod and container in one table) and
// `berth show` (one resource's applied spec beside its live state). The
// reports are plain structs; the text and the JSON are both written from
// them.
package inspect

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/containerd/errdefs"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// Runtime is what the reports read: the planner's list calls and status
// calls for the few objects whose list entry does not tell enough.
type Runtime interface {
	planner.Observer
	SandboxStatus(ctx context.Context, id string) (*cri.PodSandboxStatus, error)
}

// A container is crash-looping, judged from runtime data alone, when it
// has been restarted at least CrashLoopRestarts times and its current
// attempt either exited with a non-zero code or has been running for less
// than CrashLoopWindow. (The runtime keeps no history of attempts; the
// attempt number, counted from its base, is the count.)
const (
	CrashLoopRestarts = 3
	CrashLoopWindow   = 60 * time.Second
)

// Status is a stack's pods and containers as the runtime reports them.
type Status struct {
	Stack string      `json:"stack"`
	Pods  []PodStatus `json:"pods"`
}

// PodStatus is one pod: its sandbox and its containers.
type PodStatus struct {
	Pod       string    `json:"pod"`
	State     string    `json:"state"`
	IP        string    `json:"ip,omitempty"`
	Created   time.Time `json:"created"`
	SandboxID string    `json:"sandbox_id"`
	// Ports are the host ports of the applied spec (the sandbox's port
	// mappings); Forwards are the configuration's forward blocks, known
	// only when a configuration was loaded.
	Ports    []Port    `json:"ports,omitempty"`
	Forwards []Forward `json:"forwards,omitempty"`
	// Revision is the git commit the pod was made from (berth watch --git).
	Revision   string            `json:"revision,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
	Containers []ContainerStatus `json:"containers"`
}

// Port is a host port mapped into the pod.
type Port struct {
	Name      string `json:"name"`
	HostIP    string `json:"host_ip,omitempty"`
	Host      int    `json:"host"`
	Container int    `json:"container"`
	Protocol  string `json:"protocol"`
}

func (p Port) String() string {
	host := fmt.Sprint(p.Host)
	if p.HostIP != "" {
		host = p.HostIP + ":" + host
	}
	return fmt.Sprintf("%s->%d/%s", host, p.Container, strings.ToLower(p.Protocol))
}

// Forward is a user-space forward `berth forward` holds open.
type Forward struct {
	Name   string `json:"name"`
	Listen string `json:"listen"`
	Port   int    `json:"port"`
}

func (f Forward) String() string { return fmt.Sprintf("%s->%d", f.Listen, f.Port) }

// ContainerStatus is one container, the newest attempt of its name.
type ContainerStatus struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	ExitCode *int32 `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Restarts is how often berth started it again since its
	// configuration last changed.
	Restarts uint32     `json:"restarts"`
	Created  time.Time  `json:"created"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	Image    string     `json:"image"`
	ImageID  string     `json:"image_id,omitempty"`
	// ImageDigest is the manifest digest the runtime knows the image by
	// (a repo digest); imported images have none.
	ImageDigest string `json:"image_digest,omitempty"`
	ContainerID string `json:"container_id"`
	// Failed: exited with a non-zero code. CrashLoop: see CrashLoopRestarts.
	Failed    bool     `json:"failed"`
	CrashLoop bool     `json:"crash_loop"`
	Notes     []string `json:"notes,omitempty"`
}

// ReadStatus reads the stack's status. cfg names the stack; its pods'
// forward blocks are reported when it was loaded from files. It costs the
// planner's three list calls, one sandbox status per ready pod (for its
// IP) and one container status per exited container (exit code, times)
// and per running container restarted often enough to be crash-looping
// (its start time).
func ReadStatus(ctx context.Context, rt Runtime, cfg *spec.Config, now time.Time) (*Status, error) {
	snap, err := planner.ObserveWorkloads(ctx, rt, cfg)
	if err != nil {
		return nil, err
	}
	out := &Status{Stack: cfg.Berth.Stack, Pods: []PodStatus{}}
	for _, p := range snap.Pods {
		row := PodStatus{Pod: p.Name, State: StateName(p.Sandbox.State.String()), Created: time.Unix(0, p.Sandbox.CreatedAt),
			SandboxID: p.Sandbox.Id, Ports: portsOf(p.Record), Containers: []ContainerStatus{}, Revision: p.Sandbox.Labels[spec.LabelRevision]}
		if p.Sandbox.State == cri.PodSandboxState_SANDBOX_READY {
			st, err := rt.SandboxStatus(ctx, p.Sandbox.Id)
			switch {
			case err == nil:
				row.IP = st.GetNetwork().GetIp()
			case !errdefs.IsNotFound(err):
				return nil, err
			}
		} else {
			row.Notes = append(row.Notes, "sandbox not ready")
		}
		if want := cfg.Pod(p.Name); want != nil {
			for _, f := range want.Forwards {
				row.Forwards = append(row.Forwards, Forward{Name: f.Name, Listen: f.Listen, Port: f.Port})
			}
		}
		for _, c := range p.Containers {
			cs, err := containerStatus(ctx, rt, snap, c, now)
			if err != nil {
				return nil, err
			}
			row.Containers = append(row.Containers, cs)
		}
		sort.Slice(row.Containers, func(i, j int) bool { return row.Containers[i].Name < row.Containers[j].Name })
		out.Pods = append(out.Pods, row)
	}
	sort.Slice(out.Pods, func(i, j int) bool { return out.Pods[i].Pod < out.Pods[j].Pod })
	return out, nil
}

func containerStatus(ctx context.Context, rt Runtime, snap *planner.Snapshot, c *planner.ObservedContainer, now time.Time) (ContainerStatus, error) {
	ctr := c.Container
	imageID := ctr.GetImageId()
	if imageID == "" {
		imageID = ctr.ImageRef
	}
	cs := ContainerStatus{Name: c.Name, State: StateName(ctr.State.String()), Restarts: c.Restarts(),
		Created: time.Unix(0, ctr.CreatedAt), Image: ctr.GetImage().GetImage(), ImageID: imageID,
		ImageDigest: snap.ImageDigest(imageID, ctr.GetImage().GetImage()), ContainerID: ctr.Id}
	st := c.Status
	if st == nil && ctr.State == cri.ContainerState_CONTAINER_RUNNING && cs.Restarts >= CrashLoopRestarts {
		var err error
		if st, err = rt.ContainerStatus(ctx, ctr.Id); err != nil && !errdefs.IsNotFound(err) {
			return cs, err
		}
	}
	if st != nil {
		cs.Started, cs.Finished = timeOf(st.StartedAt), timeOf(st.FinishedAt)
	}
	if c.Exited() {
		code := c.ExitCode
		cs.ExitCode, cs.Reason = &code, c.Reason
		cs.Failed = code != 0
	}
	if cs.Restarts >= CrashLoopRestarts {
		switch {
		case cs.Failed:
			cs.CrashLoop = true
		case ctr.State == cri.ContainerState_CONTAINER_RUNNING && cs.Started != nil:
			cs.CrashLoop = now.Sub(*cs.Started) < CrashLoopWindow
		}
	}
	if cs.CrashLoop {
		cs.Notes = append(cs.Notes, fmt.Sprintf("crash-loop (%d restarts)", cs.Restarts))
	}
	if cs.Failed {
		cs.Notes = append(cs.Notes, fmt.Sprintf("failed: exit code %d", *cs.ExitCode))
	}
	// CRI's reasons for an ordinary exit say nothing the exit code does not.
	if cs.Reason != "" && cs.Reason != "Completed" && cs.Reason != "Error" {
		cs.Notes = append(cs.Notes, cs.Reason)
	}
	return cs, nil
}

// portsOf reads the host ports from a pod's applied spec, by name.
func portsOf(rec *spec.PodRecord) []Port {
	if rec == nil {
		return nil
	}
	var out []Port
	for name, p := range rec.Ports {
		out = append(out, Port{Name: name, HostIP: p.HostIP, Host: p.Host, Container: p.Container, Protocol: p.Protocol})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// timeOf turns a CRI timestamp (ns since the epoch, 0 for never) into a time.
func timeOf(ns int64) *time.Time {
	if ns <= 0 {
		return nil
	}
	t := time.Unix(0, ns)
	return &t
}

// StateName turns CRI's CONTAINER_RUNNING / SANDBOX_READY into "running" / "ready".
func StateName(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "CONTAINER_"), "SANDBOX_")
	return strings.ToLower(s)
}
