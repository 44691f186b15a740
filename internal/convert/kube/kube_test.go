package kube

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

// decodeStrict decodes every document of a manifest with the API
// machinery's strict decoder: an unknown or duplicated field fails.
func decodeStrict(t *testing.T, manifest []byte) []runtime.Object {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
	reader := kyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var out []runtime.Object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue // the leading comment block
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("strict decoding:\n%s\n%v", doc, err)
		}
		out = append(out, obj)
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

func load(t *testing.T, dir string, vars ...string) *spec.Config {
	t.Helper()
	l := spec.NewLoader(spec.Options{Vars: vars, LookupEnv: func(string) (string, bool) { return "", false }, Environ: func() []string { return nil }})
	cfg, diags := l.Load(dir)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", dir, diags)
	}
	return cfg
}

func TestExamplesDecodeStrictly(t *testing.T) {
	tests := []struct {
		dir   string
		vars  []string
		check func(t *testing.T, objs []runtime.Object, res *Result)
	}{
		{
			dir: "windows", vars: []string{"password=hunter2"},
			check: func(t *testing.T, objs []runtime.Object, res *Result) {
				d := only[*appsv1.Deployment](t, objs)
				if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
					t.Errorf("replicas %d, strategy %s; want 1 replica, Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
				}
				ps := d.Spec.Template.Spec
				c := ps.Containers[0]
				if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
					t.Errorf("privileged not set for a container with devices: %+v", c.SecurityContext)
				}
				if caps := c.SecurityContext.Capabilities; caps == nil || !slices.Contains(caps.Add, "NET_ADMIN") {
					t.Errorf("capabilities %+v, want NET_ADMIN added", caps)
				}
				kvm := volumeAt(t, ps, c, "/dev/kvm")
				if kvm.HostPath == nil || kvm.HostPath.Path != "/dev/kvm" || kvm.HostPath.Type == nil || *kvm.HostPath.Type != corev1.HostPathCharDev {
					t.Errorf("/dev/kvm volume %+v, want hostPath CharDevice", kvm.VolumeSource)
				}
				if st := volumeAt(t, ps, c, "/storage"); st.HostPath == nil || st.HostPath.Path != "/srv/vms/windows" {
					t.Errorf("/storage volume %+v", st.VolumeSource)
				}
				if !hasPort(c.Ports, 8006, 8006, "127.0.0.1", corev1.ProtocolTCP) || !hasPort(c.Ports, 3389, 3389, "127.0.0.1", corev1.ProtocolUDP) {
					t.Errorf("ports %+v, want 8006/tcp and 3389/udp on 127.0.0.1", c.Ports)
				}
				if got := env(c, "VERSION"); got == nil || got.Value != "11" {
					t.Errorf("VERSION = %+v, want 11", got)
				}
				// Sensitive values never reach the manifest.
				pw := env(c, "PASSWORD")
				if pw == nil || pw.Value != "" || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef.Name != "windows-env" {
					t.Errorf("PASSWORD = %+v, want a reference to Secret windows-env", pw)
				}
				if ps.TerminationGracePeriodSeconds == nil || *ps.TerminationGracePeriodSeconds != 120 {
					t.Errorf("terminationGracePeriodSeconds %v, want 120 (stop_timeout 2m)", ps.TerminationGracePeriodSeconds)
				}
				wantNote(t, res, "privileged: true is set")
				wantNote(t, res, "kubectl create secret generic windows-env")
			},
		},
		{
			dir: "hello",
			check: func(t *testing.T, objs []runtime.Object, res *Result) {
				d := only[*appsv1.Deployment](t, objs)
				c := d.Spec.Template.Spec.Containers[0]
				if c.Image != "docker.io/library/busybox:1.36" || len(c.Command) != 3 || c.Command[0] != "sh" {
					t.Errorf("container %s %v", c.Image, c.Command)
				}
				if d.Spec.Template.Labels["app"] != "hello" || d.Spec.Selector.MatchLabels[LabelName] != "web" {
					t.Errorf("labels %v, selector %v", d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)
				}
				if sc := c.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("seccomp %+v, want RuntimeDefault as berth asks", c.SecurityContext)
				}
			},
		},
		{dir: "macos"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			cfg := load(t, filepath.Join("..", "..", "..", "examples", tt.dir), tt.vars...)
			res := Convert(cfg)
			out, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("hunter2")) {
				t.Errorf("a sensitive value is in the manifest:\n%s", out)
			}
			if !bytes.HasPrefix(out, []byte("# Kubernetes manifests of berth stack")) {
				t.Errorf("no header:\n%s", out)
			}
			objs := decodeStrict(t, out)
			if len(objs) != len(cfg.Pods) {
				t.Fatalf("%d objects for %d pods", len(objs), len(cfg.Pods))
			}
			if tt.check != nil {
				tt.check(t, objs, res)
			}
		})
	}
}

// TestConvert covers the mapping of one representative pod field by field.
func TestConvert(t *testing.T) {
	cfg := spectest.Load(t, `
berth { stack = "shop" }
mirror "docker.io" {
  endpoint "https://mirror.example.com" {}
}
pod "db" {
  namespace = "prod"
  hostname  = "db.shop.lan"
  host_ipc  = true
  sysctls   = { "net.core.somaxconn" = "1024" }
  depends_on = ["pod.cache"]
  dns {
    servers = ["192.0.2.53"]
    options = ["ndots:2", "edns0"]
  }
  port "pg" {
    container = 5432
    host      = 15432
  }
  forward "admin" {
    port   = 8080
    listen = "127.0.0.1:18080"
  }
  container "migrate" {
    image   = "example/db:1"
    init    = true
    restart = "on_failure"
    args    = ["migrate"]
  }
  container "main" {
    image             = "example/db:1"
    pull              = "always"
    restart           = "on_failure"
    user              = "999:998"
    read_only_root    = true
    no_new_privileges = true
    working_dir       = "/var/lib/db"
    capabilities {
      drop = ["ALL"]
    }
    mount "/var/lib/db" {
      host_path = "/srv/db"
    }
    mount "/etc/db.conf" {
      host_path   = "/srv/db.conf"
      read_only   = true
      propagation = "host_to_container"
    }
    tmpfs "/run" {
      size = "64Mi"
    }
    probe "readiness" {
      http {
        port    = 8080
        path    = "/ready"
        scheme  = "https"
        headers = { Host = "db" }
      }
      interval          = "2500ms"
      success_threshold = 2
    }
    probe "liveness" {
      exec { command = ["pg_isready"] }
      start_period = "1m"
    }
    probe "startup" {
      tcp { port = 5432 }
    }
    resources {
      cpus       = 1.5
      cpu_shares = 512
      memory     = "2Gi"
      pids       = 100
    }
  }
}
pod "cache" {
  container "redis" {
    image = "redis:7"
  }
}
`)
	res := Convert(cfg)
	out, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeStrict(t, out)
	if len(objs) != 2 {
		t.Fatalf("%d objects, want a Pod and a Deployment", len(objs))
	}
	pod, ok := objs[0].(*corev1.Pod)
	if !ok {
		t.Fatalf("db is a %T, want a Pod (its containers restart on failure)", objs[0])
	}
	if _, ok := objs[1].(*appsv1.Deployment); !ok {
		t.Fatalf("cache is a %T, want a Deployment", objs[1])
	}
	ps := pod.Spec
	checks := []struct {
		what      string
		got, want any
	}{
		{"namespace", pod.Namespace, "prod"},
		{"restartPolicy", ps.RestartPolicy, corev1.RestartPolicyOnFailure},
		{"hostname", ps.Hostname, "db"},
		{"hostIPC", ps.HostIPC, true},
		{"sysctl", ps.SecurityContext.Sysctls[0], corev1.Sysctl{Name: "net.core.somaxconn", Value: "1024"}},
		{"dnsPolicy", ps.DNSPolicy, corev1.DNSNone},
		{"nameservers", ps.DNSConfig.Nameservers, []string{"192.0.2.53"}},
		{"dns option", *ps.DNSConfig.Options[0].Value, "2"},
		{"dns option without value", ps.DNSConfig.Options[1].Value == nil, true},
		{"init container", ps.InitContainers[0].Name, "migrate"},
		{"containers", len(ps.Containers), 1},
		{"pull", ps.Containers[0].ImagePullPolicy, corev1.PullAlways},
		{"port", ps.Containers[0].Ports[0], corev1.ContainerPort{Name: "pg", ContainerPort: 5432, HostPort: 15432, Protocol: corev1.ProtocolTCP}},
		{"runAsUser", *ps.Containers[0].SecurityContext.RunAsUser, int64(999)},
		{"runAsGroup", *ps.Containers[0].SecurityContext.RunAsGroup, int64(998)},
		{"readOnlyRootFilesystem", *ps.Containers[0].SecurityContext.ReadOnlyRootFilesystem, true},
		{"allowPrivilegeEscalation", *ps.Containers[0].SecurityContext.AllowPrivilegeEscalation, false},
		{"privileged", ps.Containers[0].SecurityContext.Privileged == nil, true},
		{"drop", ps.Containers[0].SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}},
		{"limits.cpu", ps.Containers[0].Resources.Limits.Cpu().String(), "1500m"},
		{"limits.memory", ps.Containers[0].Resources.Limits.Memory().String(), "2Gi"},
		{"requests.cpu", ps.Containers[0].Resources.Requests.Cpu().String(), "500m"},
		{"workingDir", ps.Containers[0].WorkingDir, "/var/lib/db"},
		{"grace", *ps.TerminationGracePeriodSeconds, int64(10)},
		{"readiness", *ps.Containers[0].ReadinessProbe, corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/ready", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTPS, HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "db"}}}},
			PeriodSeconds: 3, TimeoutSeconds: 2, FailureThreshold: 3, SuccessThreshold: 2}},
		{"liveness", *ps.Containers[0].LivenessProbe, corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"pg_isready"}}},
			InitialDelaySeconds: 60, PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3, SuccessThreshold: 1}},
		{"startup", *ps.Containers[0].StartupProbe, corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5432)}},
			PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3, SuccessThreshold: 1}},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
	main := ps.Containers[0]
	if v := volumeAt(t, ps, main, "/var/lib/db"); v.HostPath == nil || v.HostPath.Path != "/srv/db" || v.HostPath.Type != nil {
		t.Errorf("/var/lib/db volume %+v, want hostPath /srv/db without a type", v.VolumeSource)
	}
	if v := volumeAt(t, ps, main, "/run"); v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit.String() != "64Mi" {
		t.Errorf("/run volume %+v, want emptyDir Memory 64Mi", v.VolumeSource)
	}
	for _, m := range main.VolumeMounts {
		if m.MountPath == "/etc/db.conf" && (!m.ReadOnly || m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer) {
			t.Errorf("/etc/db.conf mount %+v, want read-only, HostToContainer", m)
		}
	}
	for _, n := range []string{`mirror "docker.io"`, "depends_on [cache]", "kubectl port-forward --address 127.0.0.1 pod/db 18080:8080",
		"pids 100", `hostname "db.shop.lan"`} {
		wantNote(t, res, n)
	}
	if !bytes.Contains(out, []byte(`#   - mirror "docker.io"`)) {
		t.Errorf("notes are not at the top of the output:\n%s", out)
	}
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case []string:
		return slices.Equal(a, b.([]string))
	case []corev1.Capability:
		return slices.Equal(a, b.([]corev1.Capability))
	case corev1.Probe:
		return apiequality.Semantic.DeepEqual(a, b)
	}
	return a == b
}

func only[T runtime.Object](t *testing.T, objs []runtime.Object) T {
	t.Helper()
	if len(objs) != 1 {
		t.Fatalf("%d objects, want 1", len(objs))
	}
	o, ok := objs[0].(T)
	if !ok {
		t.Fatalf("object is a %T", objs[0])
	}
	return o
}

func volumeAt(t *testing.T, ps corev1.PodSpec, c corev1.Container, path string) corev1.Volume {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range ps.Volumes {
			if v.Name == m.Name {
				return v
			}
		}
		t.Fatalf("mount %s names volume %q, which is not declared", path, m.Name)
	}
	t.Fatalf("no mount at %s in %+v", path, c.VolumeMounts)
	return corev1.Volume{}
}

func hasPort(ports []corev1.ContainerPort, container, host int32, ip string, proto corev1.Protocol) bool {
	return slices.ContainsFunc(ports, func(p corev1.ContainerPort) bool {
		return p.ContainerPort == container && p.HostPort == host && p.HostIP == ip && p.Protocol == proto
	})
}

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func wantNote(t *testing.T, res *Result, substr string) {
	t.Helper()
	for _, n := range res.Notes {
		if strings.Contains(n, substr) {
			return
		}
	}
	t.Errorf("no note contains %q; notes:\n%s", substr, strings.Join(res.Notes, "\n"))
}
