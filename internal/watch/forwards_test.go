package watch

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"github.com/berth-dev/berth/internal/forward"
	"github.com/berth-dev/berth/runtime/fake"
	"github.com/berth-dev/berth/spec/spectest"
)

// A forward changed in place (another port, the same address) is open
// again at once: its new listener waits for the old one to let the
// address go, instead of failing until the next round.
func TestAForwardChangedInPlaceKeepsItsAddress(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := probe.Addr().String()
	probe.Close()
	config := func(port int) string {
		return fmt.Sprintf("berth { stack = \"test\" }\npod \"web\" {\n  forward \"http\" {\n    port   = %d\n    listen = %q\n  }\n  container \"c\" { image = \"busybox\" }\n}\n", port, listen)
	}
	logs := &logBuffer{}
	fs := newForwards(fake.New(image), forward.Namespace, slog.New(slog.NewJSONHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); fs.stop() }()
	opened := func(port int) func() bool {
		return func() bool {
			for _, l := range logs.lines() {
				if l["msg"] == "forwarding" && l["port"] == float64(port) {
					return true
				}
			}
			return false
		}
	}
	for round, port := range []int{8080, 8081, 8082, 8083, 8084} {
		fs.sync(ctx, spectest.Load(t, config(port)), t.TempDir())
		eventually(t, fmt.Sprintf("round %d: the forward to port %d to listen", round, port), opened(port))
		for _, l := range logs.lines() {
			if l["msg"] == "forward failed; retrying at the next round" {
				t.Fatalf("round %d: %v", round, l["error"])
			}
		}
	}
}
