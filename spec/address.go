package spec

import (
	"fmt"
	"strings"
)

// Kind is the kind of resource an Address names.
type Kind string

// The kinds of resources a stack declares.
const (
	KindPod       Kind = "pod"
	KindContainer Kind = "container"
	KindForward   Kind = "forward"
	KindMirror    Kind = "mirror"
	KindNetwork   Kind = "network"
	KindImage     Kind = "image"
)

// Address names one resource of a stack the way plans, logs and
// `berth show` write it: pod.NAME, pod.NAME.container.NAME,
// pod.NAME.forward.NAME, mirror.HOST, network.NAME or image.REF.
type Address struct {
	Kind Kind
	// Name is the pod's, mirror's (its host), network's or image's (its
	// reference) name; for a container or forward, its pod's.
	Name string
	// Sub is the container's or forward's name within its pod.
	Sub string
}

// PodAddress is the address of pod name.
func PodAddress(name string) Address { return Address{Kind: KindPod, Name: name} }

// ContainerAddress is the address of a pod's container.
func ContainerAddress(pod, name string) Address {
	return Address{Kind: KindContainer, Name: pod, Sub: name}
}

// ForwardAddress is the address of a pod's forward.
func ForwardAddress(pod, name string) Address {
	return Address{Kind: KindForward, Name: pod, Sub: name}
}

// Pod is the address of the pod a container or forward belongs to, or a's
// own for a pod.
func (a Address) Pod() Address {
	if a.Kind == KindContainer || a.Kind == KindForward {
		return PodAddress(a.Name)
	}
	return a
}

// IsZero reports whether a names nothing.
func (a Address) IsZero() bool { return a == Address{} }

func (a Address) String() string {
	switch a.Kind {
	case "":
		return ""
	case KindContainer, KindForward:
		return "pod." + a.Name + "." + string(a.Kind) + "." + a.Sub
	}
	return string(a.Kind) + "." + a.Name
}

// MarshalText writes the address as its string, in JSON and logs alike.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an address written by MarshalText.
func (a *Address) UnmarshalText(b []byte) error {
	parsed, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = parsed
	return nil
}

// ParseAddress reads an address. Image references and mirror hosts may
// themselves hold dots, so everything after the kind is the name.
func ParseAddress(s string) (Address, error) {
	kind, rest, ok := strings.Cut(s, ".")
	if !ok || rest == "" {
		return Address{}, fmt.Errorf("%q is not a resource address: write pod.NAME, pod.NAME.container.NAME, mirror.HOST, network.NAME or image.REF", s)
	}
	switch Kind(kind) {
	case KindPod:
		for _, sub := range []Kind{KindContainer, KindForward} {
			if pod, name, ok := strings.Cut(rest, "."+string(sub)+"."); ok && pod != "" && name != "" {
				return Address{Kind: sub, Name: pod, Sub: name}, nil
			}
		}
		if strings.Contains(rest, ".") {
			return Address{}, fmt.Errorf("%q is not a resource address: within a pod, write pod.NAME.container.NAME", s)
		}
		return PodAddress(rest), nil
	case KindMirror, KindNetwork, KindImage:
		return Address{Kind: Kind(kind), Name: rest}, nil
	}
	return Address{}, fmt.Errorf("%q is not a resource address: it starts with %q; resources are pod, mirror, network and image", s, kind)
}
