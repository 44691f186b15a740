package criconfig

import (
	"encoding/json"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/spec"
)

func TestSandbox(t *testing.T) {
	p := &spec.Pod{Name: "web", Namespace: "shop", Hostname: "www", Labels: map[string]string{"app": "web"},
		DNS:   &spec.DNS{Servers: []string{"192.0.2.53"}},
		Ports: []spec.Port{{Name: "dns", Container: 53, Host: 5353, HostIP: "127.0.0.1", Protocol: "udp"}}}
	cfg := Sandbox("home", p, "uid1", "/var/log/berth/home/shop_web_uid1")
	if cfg.Metadata.Name != "web" || cfg.Metadata.Namespace != "shop" || cfg.Metadata.Uid != "uid1" || cfg.Hostname != "www" {
		t.Errorf("metadata/hostname: %v %q", cfg.Metadata, cfg.Hostname)
	}
	want := map[string]string{"app": "web", spec.LabelStack: "home", spec.LabelPod: "web", spec.LabelSpecHash: p.Hash()}
	if len(cfg.Labels) != len(want) {
		t.Errorf("labels = %v, want %v", cfg.Labels, want)
	}
	for k, v := range want {
		if cfg.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], v)
		}
	}
	var rec spec.PodRecord
	if err := json.Unmarshal([]byte(cfg.Annotations[spec.AnnotationSpec]), &rec); err != nil || rec.Hostname != "www" {
		t.Errorf("spec annotation %q: %v", cfg.Annotations[spec.AnnotationSpec], err)
	}
	if pm := cfg.PortMappings; len(pm) != 1 || pm[0].Protocol != cri.Protocol_UDP || pm[0].ContainerPort != 53 || pm[0].HostPort != 5353 || pm[0].HostIp != "127.0.0.1" {
		t.Errorf("port mappings %v", pm)
	}
	if cfg.DnsConfig.GetServers()[0] != "192.0.2.53" || cfg.LogDirectory != "/var/log/berth/home/shop_web_uid1" {
		t.Errorf("dns %v, log dir %q", cfg.DnsConfig, cfg.LogDirectory)
	}
}

func TestContainer(t *testing.T) {
	pod := &spec.Pod{Name: "web", Namespace: "default"}
	base := spec.Container{Name: "app", Image: "busybox", Env: map[string]string{"B": "2", "A": "1"},
		StopSignal: "SIGQUIT", LogPath: "app.log", Sensitive: []string{"env.A"}}
	cases := []struct {
		name  string
		user  string
		check func(*testing.T, *cri.ContainerConfig)
	}{
		{"no user", "", func(t *testing.T, c *cri.ContainerConfig) {
			sc := c.Linux.SecurityContext
			if sc.RunAsUser != nil || sc.RunAsUsername != "" || sc.RunAsGroup != nil {
				t.Errorf("security context %v", sc)
			}
		}},
		{"uid", "1000", func(t *testing.T, c *cri.ContainerConfig) {
			if c.Linux.SecurityContext.RunAsUser.GetValue() != 1000 || c.Linux.SecurityContext.RunAsGroup != nil {
				t.Errorf("security context %v", c.Linux.SecurityContext)
			}
		}},
		{"uid:gid", "1000:50", func(t *testing.T, c *cri.ContainerConfig) {
			if c.Linux.SecurityContext.RunAsUser.GetValue() != 1000 || c.Linux.SecurityContext.RunAsGroup.GetValue() != 50 {
				t.Errorf("security context %v", c.Linux.SecurityContext)
			}
		}},
		{"name:gid", "nobody:65534", func(t *testing.T, c *cri.ContainerConfig) {
			if c.Linux.SecurityContext.RunAsUsername != "nobody" || c.Linux.SecurityContext.RunAsGroup.GetValue() != 65534 {
				t.Errorf("security context %v", c.Linux.SecurityContext)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.User = tc.user
			cfg := Container("home", pod, &c, 3, Host{})
			if cfg.Metadata.Attempt != 3 || cfg.Image.Image != "busybox" || cfg.StopSignal != cri.Signal_SIGNAL_SIGQUIT || cfg.LogPath != "app.log" {
				t.Errorf("config %v", cfg)
			}
			if len(cfg.Envs) != 2 || cfg.Envs[0].Key != "A" || string(cfg.Envs[0].Value) != "1" || cfg.Envs[1].Key != "B" {
				t.Errorf("envs %v, want A=1 then B=2", cfg.Envs)
			}
			if cfg.Labels[spec.LabelContainer] != "app" || cfg.Labels[spec.LabelSpecHash] != c.Hash() {
				t.Errorf("labels %v", cfg.Labels)
			}
			var rec spec.ContainerRecord
			if err := json.Unmarshal([]byte(cfg.Annotations[spec.AnnotationSpec]), &rec); err != nil || rec.Env["A"] != spec.Redacted {
				t.Errorf("the stored spec must redact secrets: %q", cfg.Annotations[spec.AnnotationSpec])
			}
			tc.check(t, cfg)
		})
	}
}

func TestDefaultStopSignalIsTheRuntimes(t *testing.T) {
	cfg := Container("s", &spec.Pod{Name: "p"}, &spec.Container{Name: "c", Image: "i"}, 0, Host{})
	if cfg.StopSignal != cri.Signal_SIGNAL_RUNTIME_DEFAULT {
		t.Fatalf("stop signal %v, want the runtime default (the image's STOPSIGNAL)", cfg.StopSignal)
	}
}
