package runtime

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/spec"
)

func TestDigestName(t *testing.T) {
	d := digest.FromString("an image")
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"127.0.0.1:5000/berth/fresh:v1", "127.0.0.1:5000/berth/fresh@" + d.String(), true},
		{"busybox:1.36", "docker.io/library/busybox@" + d.String(), true},
		{"docker.io/library/busybox", "docker.io/library/busybox@" + d.String(), true},
		{"sha256:" + d.Encoded(), "", false},
		{"Not A Name", "", false},
	} {
		got, ok := digestName(tc.name, d)
		if got != tc.want || ok != tc.ok {
			t.Errorf("digestName(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNamesGoing(t *testing.T) {
	const (
		tag       = "example.com/app:v1"
		companion = "example.com/app@sha256:1111"
		id        = "sha256:2222"
	)
	img := func(name string, labels ...string) images.Image {
		i := images.Image{Name: name, Labels: map[string]string{}}
		for j := 0; j+1 < len(labels); j += 2 {
			i.Labels[labels[j]] = labels[j+1]
		}
		return i
	}
	for _, tc := range []struct {
		name     string
		all      []images.Image
		want     []string
		freesAll bool
	}{
		{"only the tag", []images.Image{img(tag)}, []string{tag}, true},
		{"a pull's three names go together", []images.Image{img(tag), img(companion), img(id)}, []string{tag, companion, id}, true},
		{"the ID alone is left", []images.Image{img(tag), img(id)}, []string{tag, id}, true},
		{"another tag keeps them", []images.Image{img(tag), img("example.com/app:v2"), img(companion), img(id)}, []string{tag}, false},
		{"another repository keeps them", []images.Image{img(tag), img("mirror.example/app@sha256:1111"), img(id)}, []string{tag}, false},
		{"a declared digest name stays", []images.Image{img(tag), img(companion, spec.LabelStack, "web"), img(id)}, []string{tag}, false},
		{"already gone from the list", []images.Image{img(companion)}, []string{tag, companion}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, freesAll := namesGoing(tag, companion, tc.all)
			if !slices.Equal(got, tc.want) || freesAll != tc.freesAll {
				t.Errorf("namesGoing = %q, %v; want %q, %v", got, freesAll, tc.want, tc.freesAll)
			}
		})
	}
}

// nameStore is an image store of names alone that, like the runtime,
// refuses a call whose context has ended.
type nameStore struct {
	images.Store
	names map[string]digest.Digest
}

func (s *nameStore) Update(ctx context.Context, img images.Image, _ ...string) (images.Image, error) {
	if err := ctx.Err(); err != nil {
		return images.Image{}, err
	}
	s.names[img.Name] = img.Target.Digest
	return img, nil
}

func (s *nameStore) Delete(ctx context.Context, name string, _ ...images.DeleteOpt) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	delete(s.names, name)
	return nil
}

func TestRestoreNames(t *testing.T) {
	const ref = "berth/app:v1"
	was, archive := digest.FromString("the other image"), digest.FromString("the archive's image")
	named := func(name string, d digest.Digest) images.Image {
		return images.Image{Name: name, Target: ocispec.Descriptor{Digest: d}}
	}
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"after an import", context.Background()},
		{"after an interrupted import", interrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Someone's "other:v1" was there; the archive also names
			// "other:v1" and a new "archive:latest" besides ref.
			store := &nameStore{names: map[string]digest.Digest{"other:v1": archive, "archive:latest": archive, ref: archive}}
			before := []images.Image{named("other:v1", was)}
			imported := []images.Image{named(ref, archive), named("other:v1", archive), named("archive:latest", archive)}
			restoreNames(tc.ctx, store, before, imported, ref)
			want := map[string]digest.Digest{"other:v1": was, ref: archive}
			if !maps.Equal(store.names, want) {
				t.Errorf("names after the restore = %v, want %v", store.names, want)
			}
		})
	}
}
