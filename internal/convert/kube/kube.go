// Package kube writes a berth configuration as Kubernetes manifests: a Pod
// per berth pod, or a Deployment of one replica for a pod whose containers
// all restart always.
//
// What Kubernetes cannot express, or expresses differently, is returned as
// notes, which the YAML starts with: nothing is dropped silently.
package kube

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/spec"
)

// Label keys that tie a Deployment to its pods.
const (
	LabelName   = "app.kubernetes.io/name"
	LabelPartOf = "app.kubernetes.io/part-of"
)

// Result is the manifests of a stack and what they do not express.
type Result struct {
	Stack string
	// Objects are *corev1.Pod and *appsv1.Deployment, in the order of the
	// configuration's pods.
	Objects []any
	// Notes say, one line each, what the manifests leave out or change.
	Notes []string
}

// Convert builds the manifests of a configuration.
func Convert(cfg *spec.Config) *Result {
	r := &Result{Stack: cfg.Berth.Stack}
	for _, m := range cfg.Mirrors {
		r.note("mirror %q: registry mirrors are containerd's hosts.toml on each node, not part of a manifest", m.Host)
	}
	for _, reg := range cfg.Registries {
		r.note("registry %q: pull credentials are not written; create an image pull secret and name it in imagePullSecrets", reg.Host)
	}
	for _, img := range cfg.Images {
		r.note("image %q: images a node must hold are not part of a manifest (pull or import them on the node)", img.Ref)
	}
	for _, n := range cfg.Networks {
		r.note("network %q: the pod network is the cluster's CNI configuration, not part of a manifest", n.Name)
	}
	for _, p := range cfg.Pods {
		r.Objects = append(r.Objects, r.pod(p))
	}
	return r
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Result) pod(p *spec.Pod) any {
	at := spec.PodAddress(p.Name).String()
	ps := corev1.PodSpec{HostNetwork: p.HostNetwork, HostPID: p.HostPID, HostIPC: p.HostIPC}
	if p.Hostname != "" {
		label, rest, _ := strings.Cut(strings.ToLower(p.Hostname), ".")
		ps.Hostname = label
		if rest != "" {
			r.note("%s: hostname %q: Kubernetes sets only the first label, %q", at, p.Hostname, label)
		}
	}
	if p.Runtime != "" {
		ps.RuntimeClassName = &p.Runtime
		r.note("%s: runtime %q: runtimeClassName needs a RuntimeClass of that name whose handler is %q", at, p.Runtime, p.Runtime)
	}
	for _, k := range sortedKeys(p.Sysctls) {
		if ps.SecurityContext == nil {
			ps.SecurityContext = &corev1.PodSecurityContext{}
		}
		ps.SecurityContext.Sysctls = append(ps.SecurityContext.Sysctls, corev1.Sysctl{Name: k, Value: p.Sysctls[k]})
	}
	if len(p.Sysctls) > 0 {
		r.note("%s: sysctls: the kubelet allows only safe sysctls unless it is started with --allowed-unsafe-sysctls", at)
	}
	if p.DNS != nil {
		ps.DNSConfig = &corev1.PodDNSConfig{Nameservers: p.DNS.Servers, Searches: p.DNS.Searches}
		for _, o := range p.DNS.Options {
			name, value, ok := strings.Cut(o, ":")
			opt := corev1.PodDNSConfigOption{Name: name}
			if ok {
				opt.Value = &value
			}
			ps.DNSConfig.Options = append(ps.DNSConfig.Options, opt)
		}
		if len(p.DNS.Servers) > 0 {
			ps.DNSPolicy = corev1.DNSNone // the pod's resolv.conf is exactly the dns block, as in berth
		} else {
			r.note("%s: dns without servers: Kubernetes adds the searches and options to the cluster's DNS settings", at)
		}
	}
	if len(p.DependsOn) > 0 {
		r.note("%s: depends_on %v: Kubernetes starts pods in no particular order", at, p.DependsOn)
	}
	if p.PreventReplace {
		r.note("%s: prevent_replace: not expressible; Kubernetes replaces pods when their spec changes", at)
	}

	v := &volumes{}
	secret := p.Name + "-env"
	var secretKeys []string
	privileged := false
	first := true
	var grace int64
	for _, c := range p.Containers {
		kc := r.container(spec.ContainerAddress(p.Name, c.Name).String(), c, v, secret, &secretKeys)
		privileged = privileged || c.Privileged || len(c.Devices) > 0
		grace = max(grace, int64(math.Ceil(c.StopTimeout.Seconds())))
		if c.Init {
			ps.InitContainers = append(ps.InitContainers, kc)
			continue
		}
		if first {
			// The pod's containers share one network namespace, so its
			// ports may sit on any of them: the first.
			kc.Ports = ports(p.Ports)
			first = false
		}
		ps.Containers = append(ps.Containers, kc)
	}
	if first && len(p.Ports) > 0 && len(ps.InitContainers) > 0 {
		ps.InitContainers[0].Ports = ports(p.Ports)
	}
	ps.Volumes = v.list
	if grace > 0 {
		ps.TerminationGracePeriodSeconds = &grace
	}
	if p.Privileged && !privileged {
		r.note("%s: privileged: Kubernetes makes a pod's sandbox privileged only for privileged containers, and this pod has none", at)
	}
	if len(secretKeys) > 0 {
		ns := ""
		if p.Namespace != "default" {
			ns = " -n " + p.Namespace
		}
		var lits []string
		for _, k := range secretKeys {
			lits = append(lits, "--from-literal="+k+"=...")
		}
		r.note("%s: sensitive env %s read from Secret %q, which is not written: kubectl%s create secret generic %s %s",
			at, strings.Join(secretKeys, ", "), secret, ns, secret, strings.Join(lits, " "))
	}

	meta := metav1.ObjectMeta{Name: p.Name, Annotations: nonEmpty(p.Annotations)}
	if p.Namespace != "default" {
		meta.Namespace = p.Namespace
	}
	selector := map[string]string{LabelName: p.Name, LabelPartOf: r.Stack}
	meta.Labels = merge(p.Labels, selector)

	policy, always := r.restartPolicy(at, p)
	kind := "pod"
	if always {
		kind = "deployment"
	}
	for _, f := range p.Forwards {
		host, port, _ := net.SplitHostPort(f.Listen)
		addr := ""
		if host != "" {
			addr = " --address " + host
		}
		r.note("%s: forward %q: berth forward's user-space forwards are kubectl port-forward%s %s/%s %s:%d", at, f.Name, addr, kind, p.Name, port, f.Port)
	}
	if always {
		ps.RestartPolicy = corev1.RestartPolicyAlways
		replicas := int32(1)
		tmpl := meta
		tmpl.Name, tmpl.Namespace = "", ""
		return &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: meta.Namespace, Labels: meta.Labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: selector},
				// Host ports and devices belong to one node: the old pod
				// must go before the new one can start, as with berth.
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				Template: corev1.PodTemplateSpec{ObjectMeta: tmpl, Spec: ps},
			},
		}
	}
	ps.RestartPolicy = policy
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta, Spec: ps}
}

var restartPolicies = map[spec.RestartPolicy]corev1.RestartPolicy{
	spec.RestartAlways:    corev1.RestartPolicyAlways,
	spec.RestartOnFailure: corev1.RestartPolicyOnFailure,
	spec.RestartNever:     corev1.RestartPolicyNever,
}

// restartPolicy is the pod's restart policy and whether every container
// restarts always (a Deployment). Kubernetes has one policy per pod; berth
// one per container.
func (r *Result) restartPolicy(at string, p *spec.Pod) (corev1.RestartPolicy, bool) {
	var seen []spec.RestartPolicy
	for _, c := range p.Containers {
		if !c.Init && !slices.Contains(seen, c.Restart) {
			seen = append(seen, c.Restart)
		}
	}
	switch {
	case len(seen) == 0: // init containers only
		return restartPolicies[p.Restart], false
	case len(seen) == 1 && seen[0] == spec.RestartAlways:
		return corev1.RestartPolicyAlways, true
	case len(seen) == 1:
		return restartPolicies[seen[0]], false
	}
	r.note("%s: its containers restart differently (%v): Kubernetes has one policy per pod, the pod's restart = %q", at, seen, p.Restart)
	return restartPolicies[p.Restart], false
}

var portNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)

func ports(ps []spec.Port) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, p := range ps {
		cp := corev1.ContainerPort{ContainerPort: int32(p.Container), HostPort: int32(p.Host), HostIP: p.HostIP,
			Protocol: corev1.Protocol(strings.ToUpper(p.Protocol))}
		// A port name is an IANA service name: berth's names often are not
		// ("8006"), and the name is only a label.
		if portNamePattern.MatchString(p.Name) && strings.ContainsAny(p.Name, "abcdefghijklmnopqrstuvwxyz") && !strings.Contains(p.Name, "--") {
			cp.Name = p.Name
		}
		out = append(out, cp)
	}
	return out
}

var pullPolicies = map[spec.PullPolicy]corev1.PullPolicy{
	spec.PullIfNotPresent: corev1.PullIfNotPresent,
	spec.PullAlways:       corev1.PullAlways,
	spec.PullNever:        corev1.PullNever,
}

func (r *Result) container(at string, c *spec.Container, v *volumes, secret string, secretKeys *[]string) corev1.Container {
	kc := corev1.Container{Name: c.Name, Image: c.Image, Command: c.Command, Args: c.Args, WorkingDir: c.WorkingDir,
		TTY: c.TTY, Stdin: c.Stdin, ImagePullPolicy: pullPolicies[c.Pull]}
	if slices.Contains(c.Sensitive, "command") {
		kc.Command = redacted(c.Command)
		r.note("%s: command comes from a sensitive variable and is written as %q: fill it in", at, spec.Redacted)
	}
	if slices.Contains(c.Sensitive, "args") {
		kc.Args = redacted(c.Args)
		r.note("%s: args come from a sensitive variable and are written as %q: fill them in", at, spec.Redacted)
	}
	for _, k := range sortedKeys(c.Env) {
		if slices.Contains(c.Sensitive, "env."+k) {
			kc.Env = append(kc.Env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: k}}})
			if !slices.Contains(*secretKeys, k) {
				*secretKeys = append(*secretKeys, k)
			}
			continue
		}
		kc.Env = append(kc.Env, corev1.EnvVar{Name: k, Value: c.Env[k]})
	}
	kc.SecurityContext = r.security(at, c)
	kc.Resources = r.resources(at, c.Resources)

	for _, m := range c.Mounts {
		vm := corev1.VolumeMount{Name: v.hostPath("host-", m.HostPath, nil), MountPath: m.ContainerPath, ReadOnly: m.ReadOnly}
		switch m.Propagation {
		case spec.PropagationHostToContainer:
			mode := corev1.MountPropagationHostToContainer
			vm.MountPropagation = &mode
		case spec.PropagationBidirectional:
			mode := corev1.MountPropagationBidirectional
			vm.MountPropagation = &mode
			if !c.Privileged {
				r.note("%s: mount %q: Kubernetes allows bidirectional propagation only in privileged containers", at, m.ContainerPath)
			}
		}
		if m.ContentHash != "" {
			r.note("%s: mount %q: hash_content: Kubernetes does not replace the pod when the file changes", at, m.ContainerPath)
		}
		kc.VolumeMounts = append(kc.VolumeMounts, vm)
	}
	for _, t := range c.Tmpfs {
		ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
		if t.Size > 0 {
			ed.SizeLimit = resource.NewQuantity(t.Size, resource.BinarySI)
		}
		name := v.add("tmpfs-"+c.Name+"-"+t.Path, corev1.VolumeSource{EmptyDir: ed})
		kc.VolumeMounts = append(kc.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: t.Path})
	}
	charDevice := corev1.HostPathCharDev
	for _, d := range c.Devices {
		kc.VolumeMounts = append(kc.VolumeMounts, corev1.VolumeMount{Name: v.hostPath("", d.HostPath, &charDevice), MountPath: d.ContainerPath})
		if d.Optional {
			r.note("%s: device %q: optional: the pod does not start without it on Kubernetes", at, d.HostPath)
		}
	}
	if len(c.Devices) > 0 && !c.Privileged {
		var paths []string
		for _, d := range c.Devices {
			paths = append(paths, d.HostPath)
		}
		r.note("%s: devices %s are mounted as hostPath volumes of type CharDevice, which only a privileged container may use: privileged: true is set (a device plugin grants one device without it)",
			at, strings.Join(paths, ", "))
	}
	if len(c.CDIDevices) > 0 {
		r.note("%s: cdi_devices %v: request them through a device plugin or dynamic resource allocation", at, c.CDIDevices)
	}
	if c.StopSignal != "" {
		r.note("%s: stop_signal %s: Kubernetes stops containers with the image's STOPSIGNAL (lifecycle.stopSignal is alpha)", at, c.StopSignal)
	}
	if len(c.Labels)+len(c.Annotations) > 0 {
		r.note("%s: labels and annotations of a container: Kubernetes has them only per pod", at)
	}
	if c.LogPath != c.Name+".log" {
		r.note("%s: log_path %q: the kubelet decides where logs go", at, c.LogPath)
	}
	for i := range c.Probes {
		p := &c.Probes[i]
		kp := r.probe(at, p)
		switch p.Kind {
		case spec.Liveness:
			kc.LivenessProbe = kp
		case spec.Readiness:
			kc.ReadinessProbe = kp
		case spec.Startup:
			kc.StartupProbe = kp
		}
	}
	return kc
}

// probe maps a berth probe onto the kubelet's, which has the same kinds,
// checks and thresholds.
func (r *Result) probe(at string, p *spec.Probe) *corev1.Probe {
	kp := &corev1.Probe{
		PeriodSeconds:    seconds(p.Interval),
		TimeoutSeconds:   seconds(p.Timeout),
		FailureThreshold: int32(p.FailureThreshold),
		SuccessThreshold: int32(p.SuccessThreshold),
	}
	switch {
	case len(p.Exec) > 0:
		kp.Exec = &corev1.ExecAction{Command: p.Exec}
	case p.TCP != nil:
		kp.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(p.TCP.Port))}
	case p.HTTP != nil:
		get := &corev1.HTTPGetAction{Path: p.HTTP.Path, Port: intstr.FromInt32(int32(p.HTTP.Port)), Scheme: corev1.URISchemeHTTP}
		if p.HTTP.Scheme == "https" {
			get.Scheme = corev1.URISchemeHTTPS
		}
		for _, k := range sortedKeys(p.HTTP.Headers) {
			get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: k, Value: p.HTTP.Headers[k]})
		}
		kp.HTTPGet = get
	}
	if p.StartPeriod > 0 {
		// The kubelet does not probe at all before initialDelaySeconds,
		// where berth probes but ignores failures: close, not the same.
		kp.InitialDelaySeconds = seconds(p.StartPeriod)
		r.note("%s: %s probe start_period %s is initialDelaySeconds: the kubelet does not probe at all before it", at, p.Kind, p.StartPeriod)
	}
	return kp
}

// seconds rounds a duration up to whole seconds, at least one: the
// kubelet's probe periods and timeouts are in seconds.
func seconds(d time.Duration) int32 {
	return int32(max(1, (d+time.Second-1)/time.Second))
}

func redacted(s []string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = spec.Redacted
	}
	return out
}

func (r *Result) security(at string, c *spec.Container) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{}
	if c.Privileged || len(c.Devices) > 0 {
		sc.Privileged = ptr(true)
	}
	if c.ReadOnlyRoot {
		sc.ReadOnlyRootFilesystem = ptr(true)
	}
	if c.NoNewPrivileges {
		sc.AllowPrivilegeEscalation = ptr(false)
	}
	if len(c.CapAdd)+len(c.CapDrop) > 0 {
		sc.Capabilities = &corev1.Capabilities{}
		for _, n := range c.CapAdd {
			sc.Capabilities.Add = append(sc.Capabilities.Add, corev1.Capability(n))
		}
		for _, n := range c.CapDrop {
			sc.Capabilities.Drop = append(sc.Capabilities.Drop, corev1.Capability(n))
		}
	}
	if c.User != "" {
		user, group, hasGroup := strings.Cut(c.User, ":")
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			sc.RunAsUser = &uid
		} else {
			r.note("%s: user %q: Kubernetes takes numeric user ids only (runAsUser)", at, user)
		}
		if gid, err := strconv.ParseInt(group, 10, 64); hasGroup && err == nil {
			sc.RunAsGroup = &gid
		}
	}
	// berth asks for the runtime's default seccomp profile unless told
	// otherwise; Kubernetes runs unconfined unless asked.
	switch s := c.Seccomp; {
	case c.Privileged:
	case s == "":
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	case s == "unconfined":
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	default:
		path := strings.TrimPrefix(s, "localhost/")
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr(strings.TrimPrefix(path, "/"))}
		r.note("%s: seccomp %q: a Localhost profile is a path relative to the kubelet's seccomp directory (/var/lib/kubelet/seccomp)", at, s)
	}
	switch a := c.AppArmor; {
	case a == "":
	case a == "unconfined":
		sc.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
	default:
		sc.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: ptr(strings.TrimPrefix(a, "localhost/"))}
	}
	if *sc == (corev1.SecurityContext{}) {
		return nil
	}
	return sc
}

func (r *Result) resources(at string, res spec.Resources) corev1.ResourceRequirements {
	var rr corev1.ResourceRequirements
	set := func(l *corev1.ResourceList, name corev1.ResourceName, q *resource.Quantity) {
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = *q
	}
	limit := int64(math.Round(res.CPUs * 1000))
	if res.CPUs > 0 {
		set(&rr.Limits, corev1.ResourceCPU, resource.NewMilliQuantity(limit, resource.DecimalSI))
	}
	if res.Memory > 0 {
		set(&rr.Limits, corev1.ResourceMemory, resource.NewQuantity(res.Memory, resource.BinarySI))
	}
	if res.CPUShares > 0 {
		// The kubelet turns a CPU request into shares: 1024 per CPU.
		milli := max(res.CPUShares*1000/1024, 1)
		if res.CPUs > 0 && milli > limit {
			r.note("%s: cpu_shares %d asks for more than cpus %g: the request is capped at the limit", at, res.CPUShares, res.CPUs)
			milli = limit
		}
		set(&rr.Requests, corev1.ResourceCPU, resource.NewMilliQuantity(milli, resource.DecimalSI))
	}
	if res.Cpuset != "" {
		r.note("%s: cpuset %q: Kubernetes pins CPUs only through the kubelet's static CPU manager", at, res.Cpuset)
	}
	if res.Pids > 0 {
		r.note("%s: pids %d: the process limit is the kubelet's podPidsLimit, per node", at, res.Pids)
	}
	return rr
}

// volumes collects a pod's volumes, one per host path and kind.
type volumes struct {
	list []corev1.Volume
}

func (v *volumes) hostPath(prefix, path string, typ *corev1.HostPathType) string {
	for _, vol := range v.list {
		if hp := vol.HostPath; hp != nil && hp.Path == path && (hp.Type == nil) == (typ == nil) {
			return vol.Name
		}
	}
	// The type of a mount is left unset: the path may be a file or a
	// directory, and a missing directory is made by the runtime, as berth's
	// create = true does.
	return v.add(prefix+path, corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: typ}})
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// add names a volume after what it holds ("dev-kvm", "host-srv-vms-windows"),
// as a DNS label, unique in the pod.
func (v *volumes) add(hint string, src corev1.VolumeSource) string {
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(hint), "-"), "-")
	if len(base) > 56 {
		base = strings.Trim(base[:56], "-")
	}
	if base == "" {
		base = "volume"
	}
	name := base
	for n := 2; slices.ContainsFunc(v.list, func(vol corev1.Volume) bool { return vol.Name == name }); n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	v.list = append(v.list, corev1.Volume{Name: name, VolumeSource: src})
	return name
}

// YAML writes the notes as comments, then every object as a document of
// its own.
func (r *Result) YAML() ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Kubernetes manifests of berth stack %q, written by `berth export kubernetes`.\n", r.Stack)
	if len(r.Notes) == 0 {
		b.WriteString("# Everything in the configuration is expressed.\n")
	} else {
		b.WriteString("#\n# Not expressed as in berth (review before applying):\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "#   - %s\n", n)
		}
	}
	for _, obj := range r.Objects {
		doc, err := marshal(obj)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(doc)
	}
	return []byte(b.String()), nil
}

// marshal writes an object without its status, which is the cluster's to
// fill in.
func marshal(obj any) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	return yaml.Marshal(m)
}

func ptr[T any](v T) *T { return &v }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
