package forward

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/serving"
)

// sandboxes is a Finder that lists a fixed set of sandboxes.
type sandboxes []*cri.PodSandbox

func (s sandboxes) ListSandboxes(context.Context, map[string]string) ([]*cri.PodSandbox, error) {
	return s, nil
}
func (s sandboxes) SandboxNetNS(_ context.Context, id string) (string, error) {
	return "/var/run/netns/" + id, nil
}
func (s sandboxes) SandboxStatus(_ context.Context, id string) (*cri.PodSandboxStatus, error) {
	for _, sb := range s {
		if sb.Id == id {
			return &cri.PodSandboxStatus{Id: id, State: sb.State}, nil
		}
	}
	return nil, errors.New("no such sandbox")
}
func (s sandboxes) PortForward(context.Context, string, int32) (string, error) { return "", nil }

// A forward takes the sandbox the serving mark names while it is ready,
// else the newest ready one, and looks again when the mark moves.
func TestFindFollowsTheServingMark(t *testing.T) {
	ready, notReady := cri.PodSandboxState_SANDBOX_READY, cri.PodSandboxState_SANDBOX_NOTREADY
	tests := []struct {
		name   string
		sbs    sandboxes
		marked string
		want   string
	}{
		{"no mark: the newest ready", sandboxes{{Id: "aa", CreatedAt: 1, State: ready}, {Id: "bb", CreatedAt: 2, State: ready}, {Id: "cc", CreatedAt: 3, State: notReady}}, "", "bb"},
		{"the marked old one, while the new one gets ready", sandboxes{{Id: "aa", CreatedAt: 1, State: ready}, {Id: "bb", CreatedAt: 2, State: ready}}, "aa", "aa"},
		{"a marked sandbox that is not ready", sandboxes{{Id: "aa", CreatedAt: 1, State: notReady}, {Id: "bb", CreatedAt: 2, State: ready}}, "aa", "bb"},
		{"a marked sandbox that is gone", sandboxes{{Id: "bb", CreatedAt: 2, State: ready}}, "aa", "bb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := &forwarder{target: Target{Stack: "s", Pod: "web"}, finder: tt.sbs, path: Namespace, log: slog.New(slog.DiscardHandler)}
			got, netns, err := fw.find(context.Background(), tt.marked, false)
			if err != nil || got != tt.want || netns != "/var/run/netns/"+tt.want {
				t.Fatalf("find = %q, %q, %v; want %q", got, netns, err, tt.want)
			}
		})
	}
}

// A moved mark makes the next connection look again, with no failed dial
// first: the switch of a start-first replace.
func TestDialLooksAgainWhenTheMarkMoves(t *testing.T) {
	dir := t.TempDir()
	sbs := sandboxes{{Id: "aa", CreatedAt: 1, State: cri.PodSandboxState_SANDBOX_READY}, {Id: "bb", CreatedAt: 2, State: cri.PodSandboxState_SANDBOX_READY}}
	fw := &forwarder{target: Target{Stack: "s", Pod: "web", Marks: dir}, finder: sbs, path: Namespace, log: slog.New(slog.DiscardHandler),
		mark: serving.NewMark(dir, "web")}
	step := func(mark, want string) {
		t.Helper()
		if err := serving.Set(dir, "web", mark); err != nil {
			t.Fatal(err)
		}
		marked, switched := fw.marked()
		got, _, err := fw.find(context.Background(), marked, switched)
		if err != nil || got != want {
			t.Fatalf("with the mark on %q: %q, %v; want %q", mark, got, err, want)
		}
	}
	step("aa", "aa")
	step("aa", "aa") // cached
	step("bb", "bb")
	step("", "bb")
}
