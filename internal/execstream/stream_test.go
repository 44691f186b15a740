package execstream

import (
	"context"
	"errors"
	"fmt"
	"testing"

	utilexec "k8s.io/client-go/util/exec"
)

func TestExitCode(t *testing.T) {
	exit3 := utilexec.CodeExitError{Err: errors.New("command terminated with exit code 3"), Code: 3}
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantErr  bool
	}{
		{name: "success", err: nil, wantCode: 0},
		{name: "the command's exit code", err: exit3, wantCode: 3},
		{name: "wrapped exit code", err: fmt.Errorf("stream: %w", exit3), wantCode: 3},
		{name: "the session failed", err: errors.New("connection refused"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := exitCode(tt.err)
			if code != tt.wantCode || (err != nil) != tt.wantErr {
				t.Fatalf("exitCode(%v) = %d, %v; want %d, error %v", tt.err, code, err, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// Of a burst of resizes only the newest is passed on, and Next returns
// nil once watching has ended.
func TestSizeQueue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := &sizeQueue{ctx: ctx, sizes: make(chan Size, 1)}
	q.offer(Size{Width: 80, Height: 24})
	q.offer(Size{Width: 120, Height: 40})
	if s := q.Next(); s == nil || *s != (Size{Width: 120, Height: 40}) {
		t.Fatalf("Next = %v, want 120x40", s)
	}
	cancel()
	if s := q.Next(); s != nil {
		t.Fatalf("Next after the end = %v, want nil", s)
	}
}
