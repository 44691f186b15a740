package execstream

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// Raw puts the terminal f into raw mode, so that keys (Ctrl-C among them)
// go to the remote command as they are typed; restore undoes it.
func Raw(f *os.File) (restore func(), err error) {
	state, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	return func() { _ = term.Restore(int(f.Fd()), state) }, nil
}

// WatchSize reports f's size now and again on every SIGWINCH, until ctx
// ends.
func WatchSize(ctx context.Context, f *os.File) SizeQueue {
	q := &sizeQueue{ctx: ctx, sizes: make(chan Size, 1)}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			if s, ok := sizeOf(f); ok {
				q.offer(s)
			}
			select {
			case <-ctx.Done():
				return
			case <-winch:
			}
		}
	}()
	return q
}

func sizeOf(f *os.File) (Size, bool) {
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		return Size{}, false
	}
	return Size{Width: uint16(w), Height: uint16(h)}, true
}

// sizeQueue holds the latest size not yet taken: only the newest of a
// burst of resizes matters.
type sizeQueue struct {
	ctx   context.Context
	sizes chan Size
}

func (q *sizeQueue) offer(s Size) {
	select {
	case <-q.sizes: // drop the stale one
	default:
	}
	select {
	case q.sizes <- s:
	default:
	}
}

// Next blocks for the next size; nil once ctx has ended.
func (q *sizeQueue) Next() *Size {
	select {
	case s := <-q.sizes:
		return &s
	case <-q.ctx.Done():
		return nil
	}
}
