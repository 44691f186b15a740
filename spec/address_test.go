package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAddressRoundTrip(t *testing.T) {
	tests := []struct {
		text string
		want Address
	}{
		{"pod.web", PodAddress("web")},
		{"pod.web.container.app", ContainerAddress("web", "app")},
		{"pod.web.forward.http", ForwardAddress("web", "http")},
		{"mirror.docker.io", Address{Kind: KindMirror, Name: "docker.io"}},
		{"mirror.127.0.0.1:5443", Address{Kind: KindMirror, Name: "127.0.0.1:5443"}},
		{"network.lan", Address{Kind: KindNetwork, Name: "lan"}},
		{"image.docker.io/library/busybox:1.36", Address{Kind: KindImage, Name: "docker.io/library/busybox:1.36"}},
	}
	for _, tt := range tests {
		got, err := ParseAddress(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
		}
		if s := tt.want.String(); s != tt.text {
			t.Errorf("%+v.String() = %q, want %q", tt.want, s, tt.text)
		}
		b, _ := json.Marshal(tt.want)
		var back Address
		if err := json.Unmarshal(b, &back); err != nil || back != tt.want || string(b) != `"`+tt.text+`"` {
			t.Errorf("JSON %s -> %+v, %v", b, back, err)
		}
	}
	if ContainerAddress("web", "app").Pod() != PodAddress("web") {
		t.Error("a container's pod")
	}
}

func TestParseAddressRejects(t *testing.T) {
	for text, want := range map[string]string{
		"web":                "is not a resource address",
		"pod.":               "is not a resource address",
		"pod.web.app":        "within a pod",
		"volume.data":        `starts with "volume"`,
		"pod.web.container.": "within a pod",
	} {
		if _, err := ParseAddress(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseAddress(%q) = %v, want %q", text, err, want)
		}
	}
}
