package execstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

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

// A streaming server that accepts the exec request and never answers
// ends the session at the upgrade's deadline, or when ctx ends.
func TestRunOutlastsAServerThatNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	defer func(d time.Duration) { upgradeTimeout = d }(upgradeTimeout)
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // 0: never
	}{
		{name: "the upgrade's deadline", timeout: 200 * time.Millisecond},
		{name: "ctx ends first", timeout: time.Hour, cancel: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upgradeTimeout = tc.timeout
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			done := make(chan error, 1)
			go func() {
				_, err := Run(ctx, "http://"+ln.Addr().String()+"/exec/token", Options{Stdout: io.Discard})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("Run succeeded against a server that never answered")
				}
			case <-time.After(20 * time.Second): // far beyond both bounds
				t.Fatal("Run still waits for the server's answer")
			}
		})
	}
}
