package planner_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec"
	"github.com/berth-dev/berth/spec/spectest"
)

func TestImageBlocks(t *testing.T) {
	const present = "docker.io/library/busybox:1.36"
	cases := []struct {
		name   string
		src    string
		setup  func(*planner.Snapshot)
		opts   planner.Options
		want   []string // "address action"
		errors string
	}{
		{name: "present, nothing to do", src: `image "busybox:1.36" {}`},
		{name: "missing is pulled", src: `image "alpine:3" {}`, want: []string{"image.docker.io/library/alpine:3 create"}},
		{name: "missing with pull never fails", src: "image \"alpine:3\" {\n  pull = \"never\"\n}", errors: `pull = "never"`},
		{name: "pin an image in place", src: "image \"busybox:1.36\" {\n  pin = true\n}", want: []string{"image." + present + " update"}},
		{name: "already pinned", src: "image \"busybox:1.36\" {\n  pin = true\n}", setup: func(s *planner.Snapshot) { s.Pinned = map[string]bool{present: true} }},
		{name: "moved tag with pull always is pulled again", src: "image \"busybox:1.36\" {\n  pull = \"always\"\n}",
			setup: func(s *planner.Snapshot) {
				s.RepoDigests["sha256:"+present] = []string{"docker.io/library/busybox@sha256:old"}
				s.RemoteDigests = map[string]string{present: "sha256:new"}
			}, want: []string{"image." + present + " create"}},
		{name: "undeclared images stay", src: ``, setup: func(s *planner.Snapshot) { s.StackImages = []string{"docker.io/library/old:1"} }},
		{name: "undeclared images go when pruning", src: ``, opts: planner.Options{PruneImages: true},
			setup: func(s *planner.Snapshot) { s.StackImages = []string{"docker.io/library/old:1"} },
			want:  []string{"image.docker.io/library/old:1 destroy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := spectest.Load(t, "berth { stack = \"test\" }\n"+tc.src)
			snap, err := planner.ObserveWorkloads(context.Background(), fake.New(present), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(snap)
			}
			p := planner.Diff(cfg, snap, tc.opts)
			var got []string
			for _, ic := range p.Images {
				if ic.Action != planner.NoOp {
					got = append(got, ic.Address.String()+" "+string(ic.Action))
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("changes = %v, want %v", got, tc.want)
			}
			if tc.errors == "" && len(p.Errors) > 0 || tc.errors != "" && (len(p.Errors) != 1 || !strings.Contains(p.Errors[0], tc.errors)) {
				t.Errorf("errors = %q, want %q", p.Errors, tc.errors)
			}
		})
	}
}

func TestNormalizeImage(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"127.0.0.1:5000/berth/app", "127.0.0.1:5000/berth/app:latest"},
		{"ghcr.io/o/app@sha256:" + strings.Repeat("a", 64), "ghcr.io/o/app@sha256:" + strings.Repeat("a", 64)},
		{"Not A Reference", "Not A Reference"}, // left as it is
		{"", ""},
	}
	for _, tt := range tests {
		for range 2 { // the second answer comes from what the first remembered
			if got := planner.NormalizeImage(tt.ref); got != tt.want {
				t.Errorf("NormalizeImage(%q) = %q, want %q", tt.ref, got, tt.want)
			}
		}
	}
}

// An image's source that is a FIFO is refused, not waited on: a plan
// would hold the stack's lock for as long as nobody writes to it.
func TestObserveArchivesDoesNotWaitOnAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "image.tar")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	snap := &planner.Snapshot{}
	done := make(chan struct{})
	go func() {
		planner.ObserveArchives(snap, []*spec.Image{{Ref: "berth/app:v1", Source: fifo}})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second): // far beyond any read of a real archive's index
		t.Fatal("the plan waits on the FIFO")
	}
	if d, ok := snap.ArchiveDigests[fifo]; ok {
		t.Errorf("a FIFO gave the digest %q", d)
	}
}
