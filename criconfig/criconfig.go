// Package criconfig translates berth's spec into CRI sandbox and container
// configurations: the one place that decides what the runtime is asked for.
package criconfig

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

// DefaultLogRoot is where pod log directories are created.
const DefaultLogRoot = "/var/log/berth"

// LogDir is the log directory of one pod sandbox.
func LogDir(root, stack string, p *spec.Pod, uid string) string {
	return filepath.Join(root, stack, p.Namespace+"_"+p.Name+"_"+uid)
}

// Sandbox returns the sandbox configuration for a pod. uid identifies this
// incarnation of the pod; a replaced pod gets a new one.
func Sandbox(stack string, p *spec.Pod, uid, logDir string) *cri.PodSandboxConfig {
	cfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: uid},
		Hostname:     p.Hostname,
		LogDirectory: logDir,
		Labels:       ownLabels(p.Labels, stack, p.Name, "", p.Hash()),
		Annotations:  withRecord(p.Annotations, p.Record()),
		Linux: &cri.LinuxPodSandboxConfig{
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_POD, Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD},
			},
		},
	}
	if p.DNS != nil {
		cfg.DnsConfig = &cri.DNSConfig{Servers: p.DNS.Servers, Searches: p.DNS.Searches, Options: p.DNS.Options}
	}
	return cfg
}

// Container returns the container configuration for c in pod p.
func Container(stack string, p *spec.Pod, c *spec.Container, attempt uint32) *cri.ContainerConfig {
	cfg := &cri.ContainerConfig{
		Metadata:    &cri.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:       &cri.ImageSpec{Image: c.Image},
		Command:     c.Command,
		Args:        c.Args,
		WorkingDir:  c.WorkingDir,
		Labels:      ownLabels(c.Labels, stack, p.Name, c.Name, c.Hash()),
		Annotations: withRecord(c.Annotations, c.Record()),
		LogPath:     c.LogPath,
		Stdin:       c.Stdin,
		Tty:         c.TTY,
		StopSignal:  signal(c.StopSignal),
		Linux:       &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{}},
	}
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cfg.Envs = append(cfg.Envs, &cri.KeyValue{Key: k, Value: []byte(c.Env[k])})
	}
	setUser(cfg.Linux.SecurityContext, c.User)
	return cfg
}

// setUser maps "uid", "uid:gid", "name" and "name:gid".
func setUser(sc *cri.LinuxContainerSecurityContext, user string) {
	if user == "" {
		return
	}
	name, group, hasGroup := strings.Cut(user, ":")
	if uid, err := strconv.ParseInt(name, 10, 64); err == nil {
		sc.RunAsUser = &cri.Int64Value{Value: uid}
	} else {
		sc.RunAsUsername = name
	}
	if hasGroup {
		if gid, err := strconv.ParseInt(group, 10, 64); err == nil {
			sc.RunAsGroup = &cri.Int64Value{Value: gid}
		}
	}
}

func signal(name string) cri.Signal {
	if v, ok := cri.Signal_value["SIGNAL_"+name]; ok {
		return cri.Signal(v)
	}
	return cri.Signal_SIGNAL_RUNTIME_DEFAULT
}

// ownLabels adds the ownership labels to the user's labels.
func ownLabels(user map[string]string, stack, pod, container, hash string) map[string]string {
	out := map[string]string{runtime.LabelStack: stack, runtime.LabelPod: pod, runtime.LabelSpecHash: hash}
	if container != "" {
		out[runtime.LabelContainer] = container
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}

// withRecord adds the canonical spec annotation to the user's annotations.
func withRecord(user map[string]string, record any) map[string]string {
	raw, err := json.Marshal(record)
	if err != nil {
		panic("criconfig: encoding a record: " + err.Error()) // records are plain data
	}
	out := map[string]string{runtime.AnnotationSpec: string(raw)}
	for k, v := range user {
		out[k] = v
	}
	return out
}
