package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/transfer"
	"github.com/containerd/errdefs/pkg/errgrpc"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Progress events as containerd's transfer service sends them for a pull
// (core/transfer/local/pull.go and progress.go).
func TestPullTally(t *testing.T) {
	const (
		manifest = "manifest-sha256:aaa"
		config   = "config-sha256:bbb"
		layer    = "layer-sha256:ccc"
		shared   = "layer-sha256:ddd"
	)
	root := ocispec.Descriptor{Size: 500}
	status := func(event string) transfer.Progress { return transfer.Progress{Event: event} }
	ev := func(event, name string, progress, total int64) transfer.Progress {
		return transfer.Progress{Event: event, Name: name, Progress: progress, Total: total}
	}
	for _, tc := range []struct {
		name   string
		events []transfer.Progress
		want   PullProgress
	}{
		{"nothing yet", []transfer.Progress{status("Resolving from OCI Registry (x)")}, PullProgress{}},
		{"the image's own events are no blobs", []transfer.Progress{
			status("Pulling from OCI Registry (x)"),
			{Event: "fetching image content", Name: "example.com/app:v1", Desc: &root},
			{Event: "saved", Name: "example.com/app:v1", Desc: &root},
		}, PullProgress{}},
		{"known, none arrived", []transfer.Progress{
			ev("waiting", manifest, 0, 500), ev("waiting", config, 0, 100), ev("waiting", layer, 0, 4000),
		}, PullProgress{Layers: 3, Total: 4600}},
		{"downloading", []transfer.Progress{
			ev("waiting", manifest, 0, 500), ev("complete", manifest, 500, 500),
			ev("waiting", layer, 0, 4000), ev("downloading", layer, 1000, 4000), ev("downloading", layer, 2500, 4000),
		}, PullProgress{Layers: 2, Done: 1, Bytes: 3000, Total: 4500}},
		{"an older event does not go back", []transfer.Progress{
			ev("waiting", layer, 0, 4000), ev("downloading", layer, 2500, 4000), ev("downloading", layer, 1000, 4000),
		}, PullProgress{Layers: 1, Bytes: 2500, Total: 4000}},
		{"already there", []transfer.Progress{
			ev("waiting", shared, 0, 700), ev("already exists", shared, 700, 700),
		}, PullProgress{Layers: 1, Done: 1, Bytes: 700, Total: 700}},
		{"unpacking means arrived", []transfer.Progress{
			ev("waiting", layer, 0, 4000), ev("downloading", layer, 3000, 4000), ev("extracting", layer, 100, 4000),
		}, PullProgress{Layers: 1, Done: 1, Bytes: 4000, Total: 4000}},
		{"the size from the descriptor", []transfer.Progress{
			{Event: "waiting", Name: layer, Desc: &ocispec.Descriptor{Size: 900}},
		}, PullProgress{Layers: 1, Total: 900}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally pullTally
			for _, e := range tc.events {
				tally.observe(e)
			}
			tc.want.Ref = "example.com/app:v1"
			if got := tally.progress("example.com/app:v1"); got != tc.want {
				t.Errorf("progress = %+v, want %+v", got, tc.want)
			}
			if got := tally.blobs(); got != tc.want.Layers {
				t.Errorf("blobs = %d, want %d", got, tc.want.Layers)
			}
		})
	}
}

func TestTransferMissing(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		// What a containerd without the service answers, as the client
		// converts it.
		{errgrpc.ToNative(status.Error(codes.Unimplemented, "unknown service containerd.services.transfer.v1.Transfer")), true},
		{fmt.Errorf("stream: %w", errgrpc.ToNative(status.Error(codes.Unimplemented, "unknown service containerd.services.streaming.v1.Streaming"))), true},
		{errgrpc.ToNative(status.Error(codes.NotFound, "127.0.0.1:5000/app:v1: not found")), false},
		{errgrpc.ToNative(status.Error(codes.Unauthenticated, "pull access denied")), false},
		{errors.New("failed to resolve image"), false},
		// The streaming service refused before the client's first send:
		// containerd's client returns the send's io.EOF.
		{io.EOF, true},
		{nil, false},
	} {
		if got := transferMissing(tc.err); got != tc.want {
			t.Errorf("transferMissing(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestCredentialRelay(t *testing.T) {
	relay := &credentialRelay{get: func(host string) (string, string, error) {
		switch host {
		case "private.example.com":
			return "user", "secret", nil
		case "token.example.com":
			return "", "identity-token", nil
		case "broken.example.com":
			return "", "", errors.New("registry broken.example.com: auth is not base64 of user:password")
		}
		return "", "", nil
	}}
	for host, want := range map[string][2]string{
		"private.example.com": {"user", "secret"},
		"token.example.com":   {"", "identity-token"},
		"docker.io":           {"", ""},
	} {
		c, err := relay.GetCredentials(context.Background(), "ref", host)
		if err != nil || c.Host != host || c.Username != want[0] || c.Secret != want[1] {
			t.Errorf("%s: %+v, %v; want %q", host, c, err, want)
		}
	}
	if err := relay.failure(); err != nil {
		t.Fatalf("failure before any error: %v", err)
	}
	// An error must not reach the stream (the daemon would wait forever):
	// the answer is "none", and the error is kept for the pull's.
	c, err := relay.GetCredentials(context.Background(), "ref", "broken.example.com")
	if err != nil || c.Username != "" || c.Secret != "" {
		t.Errorf("broken: %+v, %v; want no credentials and no error", c, err)
	}
	if err := relay.failure(); err == nil || err.Error() != "registry broken.example.com: auth is not base64 of user:password" {
		t.Errorf("failure = %v", err)
	}
	var none *credentialRelay
	if err := none.failure(); err != nil {
		t.Errorf("no relay: %v", err)
	}
}

// After stop returns, no report is made, however late an event comes.
func TestReportEveryStops(t *testing.T) {
	var calls, afterStop atomic.Int32
	var stopped atomic.Bool
	stop := reportEvery(func(PullProgress) {
		calls.Add(1)
		if stopped.Load() {
			afterStop.Add(1)
		}
	}, time.Now(), func() PullProgress { return PullProgress{} })
	// Reports come every interval: wait for two, however slow the machine.
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 2; time.Sleep(progressInterval / 4) {
		if time.Now().After(deadline) {
			t.Fatalf("%d reports in 10s, want at least 2", calls.Load())
		}
	}
	stop()
	stopped.Store(true)
	time.Sleep(2 * progressInterval)
	if n := afterStop.Load(); n != 0 {
		t.Errorf("%d reports after stop", n)
	}
	reportEvery(nil, time.Time{}, nil)() // no reporter: nothing runs, stop returns
}

func TestStallTimer(t *testing.T) {
	const d = 200 * time.Millisecond // progress comes d/4 apart: room for a loaded machine
	for _, tc := range []struct {
		name  string
		d     time.Duration
		beats int           // alive calls, d/4 apart
		after time.Duration // wait after the beats
		stop  bool          // stop before waiting
		fires bool
	}{
		{name: "silence fires", d: d, after: 3 * d, fires: true},
		{name: "progress keeps it quiet", d: d, beats: 12, after: 0},
		{name: "silence after progress fires", d: d, beats: 3, after: 3 * d, fires: true},
		{name: "stopped never fires", d: d, stop: true, after: 3 * d},
		{name: "zero waits for ever", d: 0, after: 3 * d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fired atomic.Bool
			s := startStallTimer(tc.d, func() { fired.Store(true) })
			for range tc.beats {
				time.Sleep(d / 4)
				s.alive()
			}
			if fired.Load() {
				t.Fatal("fired while progress came")
			}
			if tc.stop {
				s.stop()
				s.alive() // a late report re-arms nothing
			}
			time.Sleep(tc.after)
			if fired.Load() != tc.fires {
				t.Errorf("fired = %v, want %v", fired.Load(), tc.fires)
			}
			s.stop()
		})
	}
}
