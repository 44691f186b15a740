package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/hostsfile"
	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/spec"
)

// Resource is one resource's applied spec beside its live state: what
// berth stored when it created it, and what the runtime (or the file on
// disk) says now.
type Resource struct {
	Address string `json:"address"`
	Kind    string `json:"kind"`
	Stack   string `json:"stack"`
	// Configuration says how the resource compares with the loaded
	// configuration; "" when none was loaded.
	Configuration string `json:"configuration,omitempty"`
	Applied       any    `json:"applied"`
	Runtime       any    `json:"runtime"`
}

// PodApplied is a pod's record from its sandbox's berth.io/spec annotation.
type PodApplied struct {
	SpecHash string `json:"spec_hash"`
	// Missing says why there is no record.
	Missing string `json:"missing,omitempty"`
	*spec.PodRecord
}

// SandboxRuntime is what the runtime reports of a pod's sandbox.
type SandboxRuntime struct {
	ID             string    `json:"id"`
	State          string    `json:"state"`
	Created        time.Time `json:"created"`
	IP             string    `json:"ip,omitempty"`
	AdditionalIPs  []string  `json:"additional_ips,omitempty"`
	Namespace      string    `json:"namespace"`
	UID            string    `json:"uid"`
	Attempt        uint32    `json:"attempt"`
	RuntimeHandler string    `json:"runtime_handler,omitempty"`
	// Containers are the newest attempt of each, by name.
	Containers map[string]ContainerSummary `json:"containers"`
	// OlderSandboxes carry the same pod name; the next apply removes them.
	OlderSandboxes []string `json:"older_sandboxes,omitempty"`
}

// ContainerSummary is a container as a pod lists it.
type ContainerSummary struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Attempt uint32 `json:"attempt"`
}

// ContainerApplied is a container's record from its berth.io/spec annotation.
type ContainerApplied struct {
	SpecHash string `json:"spec_hash"`
	Missing  string `json:"missing,omitempty"`
	*spec.ContainerRecord
}

// ContainerRuntime is what the runtime reports of a container.
type ContainerRuntime struct {
	ID          string     `json:"id"`
	SandboxID   string     `json:"sandbox_id"`
	State       string     `json:"state"`
	Attempt     uint32     `json:"attempt"`
	Created     time.Time  `json:"created"`
	Started     *time.Time `json:"started,omitempty"`
	Finished    *time.Time `json:"finished,omitempty"`
	ExitCode    *int32     `json:"exit_code,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Message     string     `json:"message,omitempty"`
	Image       string     `json:"image"`
	ImageID     string     `json:"image_id"`
	ImageDigest string     `json:"image_digest,omitempty"`
	LogPath     string     `json:"log_path,omitempty"`
	// Mounts by container path.
	Mounts    map[string]Mount `json:"mounts,omitempty"`
	Resources *Resources       `json:"resources,omitempty"`
}

// Mount is a bind mount as the runtime reports it.
type Mount struct {
	HostPath    string `json:"host_path"`
	ReadOnly    bool   `json:"read_only,omitempty"`
	Propagation string `json:"propagation,omitempty"`
}

// Resources are a container's live cgroup limits.
type Resources struct {
	CPUShares  int64             `json:"cpu_shares,omitempty"`
	CPUQuota   int64             `json:"cpu_quota,omitempty"`
	CPUPeriod  int64             `json:"cpu_period,omitempty"`
	CpusetCPUs string            `json:"cpuset_cpus,omitempty"`
	Memory     int64             `json:"memory_limit_bytes,omitempty"`
	Unified    map[string]string `json:"unified,omitempty"`
}

// FileApplied is what the configuration's block makes of a mirror's or a
// network's file; Declared is false when the loaded configuration has no
// such block (or none was loaded).
type FileApplied struct {
	Declared bool   `json:"declared"`
	Content  string `json:"content,omitempty"`
}

// FileRuntime is the file on disk that the runtime reads.
type FileRuntime struct {
	Path string `json:"path"`
	// WrittenBy is the stack whose marker the file carries; "" when berth
	// did not write it.
	WrittenBy  string `json:"written_by"`
	BerthWrote bool   `json:"berth_wrote"`
	// Active (networks only): the runtime gives pods the first network of
	// its conf dir, and this is it.
	Active  *bool  `json:"active,omitempty"`
	Content string `json:"content"`
}

// ImageApplied is the configuration's image block, if any, and the stack's
// containers that run the image.
type ImageApplied struct {
	Declared bool     `json:"declared"`
	Pull     string   `json:"pull,omitempty"`
	Source   string   `json:"source,omitempty"`
	Platform string   `json:"platform,omitempty"`
	Pin      bool     `json:"pin,omitempty"`
	UsedBy   []string `json:"used_by,omitempty"`
}

// ImageRuntime is what the runtime reports of an image.
type ImageRuntime struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repo_tags,omitempty"`
	RepoDigests []string `json:"repo_digests,omitempty"`
	Size        uint64   `json:"size_bytes"`
	Pinned      bool     `json:"pinned"`
}

// ShowRuntime is what show reads from the runtime beyond the planner's
// list calls.
type ShowRuntime interface {
	Runtime
	ContainerStatus(ctx context.Context, id string) (*cri.ContainerStatus, error)
}

// Where says where the runtime keeps the files berth writes; each is
// asked only when an address needs it.
type Where struct {
	CertsDir   func() (string, error)
	CNIConfDir func() (string, error)
}

// UnknownError is an address that names nothing; it lists what does.
type UnknownError struct {
	Address string
	Stack   string
	Hint    string // why, when the address is known but not there yet
	Valid   []string
}

func (e *UnknownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: no such resource in stack %q", e.Address, e.Stack)
	if e.Hint != "" {
		fmt.Fprintf(&b, ": %s", e.Hint)
	} else if s := spec.Suggest(e.Address, e.Valid); s != "" {
		fmt.Fprintf(&b, ". Did you mean %q?", s)
	}
	if len(e.Valid) == 0 {
		b.WriteString(". The stack has nothing on this runtime (berth apply creates it).")
	} else {
		fmt.Fprintf(&b, "\nValid addresses:\n  %s", strings.Join(e.Valid, "\n  "))
	}
	return b.String()
}

// Show reads the resource at address: pod.NAME, pod.NAME.container.NAME,
// mirror.HOST, network.NAME or image.REF, as plans print them. loaded says
// whether cfg came from files, so that its blocks count.
func Show(ctx context.Context, rt ShowRuntime, cfg *spec.Config, loaded bool, where Where, address string) (*Resource, error) {
	snap, err := planner.ObserveWorkloads(ctx, rt, cfg)
	if err != nil {
		return nil, err
	}
	s := &shower{rt: rt, cfg: cfg, loaded: loaded, where: where, snap: snap, stack: cfg.Berth.Stack}
	addr, err := spec.ParseAddress(address)
	if err != nil {
		return nil, s.unknown(address, "")
	}
	var r *Resource
	switch addr.Kind {
	case spec.KindPod:
		r, err = s.pod(ctx, address, addr.Name)
	case spec.KindContainer:
		r, err = s.pod(ctx, address, addr.Name+".container."+addr.Sub)
	case spec.KindMirror:
		r, err = s.mirror(address, addr.Name)
	case spec.KindNetwork:
		r, err = s.network(address, addr.Name)
	case spec.KindImage:
		r, err = s.image(ctx, address, addr.Name)
	}
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, s.unknown(address, "")
	}
	if r.Kind == "" {
		r.Kind = string(addr.Pod().Kind)
	}
	r.Address, r.Stack = address, s.stack
	return r, nil
}

type shower struct {
	rt     ShowRuntime
	cfg    *spec.Config
	loaded bool
	where  Where
	snap   *planner.Snapshot
	stack  string
}

func (s *shower) pod(ctx context.Context, address, rest string) (*Resource, error) {
	podName, ctrName, isCtr := strings.Cut(rest, ".container.")
	p := s.snap.Pods[podName]
	if p == nil {
		if s.cfg.Pod(podName) != nil {
			return nil, s.unknown(address, fmt.Sprintf("pod %q is in the configuration but not on the runtime; berth apply creates it", podName))
		}
		return nil, nil
	}
	if isCtr {
		return s.container(ctx, address, p, ctrName)
	}
	st, err := s.rt.SandboxStatus(ctx, p.Sandbox.Id)
	if err != nil {
		return nil, err
	}
	rt := SandboxRuntime{ID: st.Id, State: StateName(st.State.String()), Created: time.Unix(0, st.CreatedAt),
		IP: st.GetNetwork().GetIp(), Namespace: st.GetMetadata().GetNamespace(), UID: st.GetMetadata().GetUid(),
		Attempt: st.GetMetadata().GetAttempt(), RuntimeHandler: st.RuntimeHandler, Containers: map[string]ContainerSummary{}}
	for _, ip := range st.GetNetwork().GetAdditionalIps() {
		rt.AdditionalIPs = append(rt.AdditionalIPs, ip.Ip)
	}
	for name, c := range p.Containers {
		rt.Containers[name] = ContainerSummary{ID: c.Container.Id, State: StateName(c.Container.State.String()), Attempt: c.Container.GetMetadata().GetAttempt()}
	}
	for _, d := range p.Duplicates {
		rt.OlderSandboxes = append(rt.OlderSandboxes, d.Id)
	}
	applied := PodApplied{SpecHash: p.Hash, PodRecord: p.Record}
	if p.Record == nil {
		applied.Missing = noRecord
	}
	r := &Resource{Applied: applied, Runtime: rt}
	if s.loaded {
		r.Configuration = compare(s.cfg.Pod(p.Name) != nil, func() bool { return s.cfg.Pod(p.Name).Hash() == p.Hash })
	}
	return r, nil
}

func (s *shower) container(ctx context.Context, address string, p *planner.ObservedPod, name string) (*Resource, error) {
	c := p.Containers[name]
	if c == nil {
		if want := s.cfg.Pod(p.Name); want != nil && want.Container(name) != nil {
			return nil, s.unknown(address, fmt.Sprintf("container %q is in the configuration but not on the runtime; berth apply creates it", name))
		}
		return nil, nil
	}
	st, err := s.rt.ContainerStatus(ctx, c.Container.Id)
	if err != nil {
		return nil, err
	}
	rt := ContainerRuntime{ID: st.Id, SandboxID: c.Container.PodSandboxId, State: StateName(st.State.String()),
		Attempt: st.GetMetadata().GetAttempt(), Created: time.Unix(0, st.CreatedAt), Started: timeOf(st.StartedAt),
		Finished: timeOf(st.FinishedAt), Reason: st.Reason, Message: st.Message, Image: c.Container.GetImage().GetImage(),
		ImageID: st.GetImageId(), LogPath: st.LogPath}
	if rt.ImageID == "" {
		rt.ImageID = st.ImageRef
	}
	rt.ImageDigest = s.snap.ImageDigest(rt.ImageID, rt.Image)
	if st.State == cri.ContainerState_CONTAINER_EXITED {
		code := st.ExitCode
		rt.ExitCode = &code
	}
	for _, m := range st.Mounts {
		if rt.Mounts == nil {
			rt.Mounts = map[string]Mount{}
		}
		prop := ""
		if m.Propagation != cri.MountPropagation_PROPAGATION_PRIVATE {
			prop = strings.ToLower(strings.TrimPrefix(m.Propagation.String(), "PROPAGATION_"))
		}
		rt.Mounts[m.ContainerPath] = Mount{HostPath: m.HostPath, ReadOnly: m.Readonly, Propagation: prop}
	}
	if l := st.GetResources().GetLinux(); l != nil {
		res := Resources{CPUShares: l.CpuShares, CPUQuota: l.CpuQuota, CPUPeriod: l.CpuPeriod, CpusetCPUs: l.CpusetCpus,
			Memory: l.MemoryLimitInBytes, Unified: l.Unified}
		if res.CPUShares != 0 || res.CPUQuota != 0 || res.CpusetCPUs != "" || res.Memory != 0 || len(res.Unified) > 0 {
			rt.Resources = &res
		}
	}
	applied := ContainerApplied{SpecHash: c.Hash, ContainerRecord: c.Record}
	if c.Record == nil {
		applied.Missing = noRecord
	}
	r := &Resource{Kind: "container", Applied: applied, Runtime: rt}
	if s.loaded {
		var want *spec.Container
		if p := s.cfg.Pod(p.Name); p != nil {
			want = p.Container(name)
		}
		r.Configuration = compare(want != nil, func() bool { return want.Hash() == c.Hash })
	}
	return r, nil
}

// noRecord explains an applied spec that cannot be shown.
const noRecord = "no readable berth.io/spec annotation (made by another tool, or edited)"

func compare(declared bool, same func() bool) string {
	switch {
	case !declared:
		return "not in the configuration (berth apply destroys it)"
	case same():
		return "matches the configuration"
	}
	return "differs from the configuration (berth plan shows how)"
}

func (s *shower) mirror(address, host string) (*Resource, error) {
	dir, err := s.where.CertsDir()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("%s: the runtime has no registry config_path, so there are no mirror files (berth doctor says how to set it)", address)
	}
	files, err := hostsfile.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("read mirrors in %s: %w", dir, err)
	}
	applied := FileApplied{}
	for _, m := range s.cfg.Mirrors {
		if m.Host == host {
			applied = FileApplied{Declared: true, Content: string(hostsfile.Render(s.stack, m))}
		}
	}
	f := files[host]
	if f == nil {
		if applied.Declared {
			return nil, s.unknown(address, fmt.Sprintf("%s does not exist yet; berth apply writes it", hostsfile.Path(dir, host)))
		}
		return nil, nil
	}
	r := &Resource{Applied: applied, Runtime: FileRuntime{Path: f.Path, WrittenBy: f.Stack, BerthWrote: f.Stack != "", Content: string(f.Content)}}
	if s.loaded {
		r.Configuration = compareFile(applied, f.Content)
	}
	return r, nil
}

func compareFile(applied FileApplied, content []byte) string {
	switch {
	case !applied.Declared:
		return "not in the configuration"
	case applied.Content == string(content):
		return "matches the configuration"
	}
	return "differs from the configuration (berth plan shows the diff)"
}

func (s *shower) network(address, name string) (*Resource, error) {
	dir, err := s.where.CNIConfDir()
	if err != nil {
		return nil, err
	}
	if err := planner.ObserveNetworks(s.snap, dir); err != nil {
		return nil, err
	}
	applied := FileApplied{}
	for _, n := range s.cfg.Networks {
		if n.Name == name {
			content, err := n.Conflist(s.stack)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", address, err)
			}
			applied = FileApplied{Declared: true, Content: string(content)}
		}
	}
	for i, f := range s.snap.Networks {
		if f.Name != name {
			continue
		}
		active := i == 0
		r := &Resource{Applied: applied, Runtime: FileRuntime{Path: f.Path, WrittenBy: f.Stack, BerthWrote: f.Stack != "", Active: &active, Content: string(f.Content)}}
		if s.loaded {
			r.Configuration = compareFile(applied, f.Content)
		}
		return r, nil
	}
	if applied.Declared {
		return nil, s.unknown(address, fmt.Sprintf("%s does not exist yet; berth apply writes it", planner.NetworkPath(dir, s.stack)))
	}
	return nil, nil
}

func (s *shower) image(ctx context.Context, address, ref string) (*Resource, error) {
	imgs, err := s.rt.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	norm := planner.NormalizeImage(ref)
	var img *cri.Image
	for _, i := range imgs {
		if i.Id == ref || slices.Contains(i.RepoTags, norm) || slices.Contains(i.RepoTags, ref) || slices.Contains(i.RepoDigests, ref) {
			img = i
		}
	}
	applied := ImageApplied{}
	for _, b := range s.cfg.Images {
		if b.Ref == norm {
			applied = ImageApplied{Declared: true, Pull: string(b.Pull), Source: b.Source, Platform: b.Platform, Pin: b.Pin}
		}
	}
	for _, p := range s.snap.Pods {
		for _, c := range p.Containers {
			if planner.NormalizeImage(c.Container.GetImage().GetImage()) == norm {
				applied.UsedBy = append(applied.UsedBy, spec.ContainerAddress(p.Name, c.Name).String())
			}
		}
	}
	sort.Strings(applied.UsedBy)
	if img == nil {
		if applied.Declared || len(applied.UsedBy) > 0 {
			return nil, s.unknown(address, "the runtime does not have the image; berth apply pulls or imports it")
		}
		return nil, nil
	}
	return &Resource{Applied: applied, Runtime: ImageRuntime{ID: img.Id, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, Size: img.GetSize(), Pinned: img.Pinned}}, nil
}

// unknown lists the addresses that show accepts for this stack: what runs,
// what the configuration declares, and the stack's files.
func (s *shower) unknown(address, hint string) error {
	set := map[string]bool{}
	add := func(kind spec.Kind, name string) { set[spec.Address{Kind: kind, Name: name}.String()] = true }
	for _, p := range s.snap.Pods {
		add(spec.KindPod, p.Name)
		for name, c := range p.Containers {
			set[spec.ContainerAddress(p.Name, name).String()] = true
			add(spec.KindImage, c.Container.GetImage().GetImage())
		}
	}
	for _, m := range s.cfg.Mirrors {
		add(spec.KindMirror, m.Host)
	}
	for _, n := range s.cfg.Networks {
		add(spec.KindNetwork, n.Name)
	}
	for _, i := range s.cfg.Images {
		add(spec.KindImage, i.Ref)
	}
	if s.where.CertsDir != nil {
		if dir, err := s.where.CertsDir(); err == nil && dir != "" {
			if files, err := hostsfile.Read(dir); err == nil {
				for host, f := range files {
					if f.Stack == s.stack {
						add(spec.KindMirror, host)
					}
				}
			}
		}
	}
	if s.where.CNIConfDir != nil {
		if dir, err := s.where.CNIConfDir(); err == nil && dir != "" {
			files := &planner.Snapshot{}
			if planner.ObserveNetworks(files, dir) == nil {
				for _, f := range files.Networks {
					if f.Stack == s.stack {
						add(spec.KindNetwork, f.Name)
					}
				}
			}
		}
	}
	valid := make([]string, 0, len(set))
	for a := range set {
		valid = append(valid, a)
	}
	sort.Strings(valid)
	return &UnknownError{Address: address, Stack: s.stack, Hint: hint, Valid: valid}
}

// IsUnknown reports whether err is an address that names nothing.
func IsUnknown(err error) bool {
	var u *UnknownError
	return errors.As(err, &u)
}
