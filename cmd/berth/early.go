package main

import (
	"context"
	"sync"

	"github.com/berth-dev/berth/planner"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/spec"
)

// earlyReads connect to the runtime and start a plan's first reads as soon
// as the berth block is decoded, so that the runtime lists the stack while
// its pods decode: with 500 pods each takes tens of milliseconds. Only a
// plan reads early; apply and destroy read once they hold the stack's lock.
type earlyReads struct {
	g      *globals
	ctx    context.Context
	cancel context.CancelFunc
	// ready is closed once the connection is made or has failed.
	ready   chan struct{}
	address string

	mu        sync.Mutex
	rt        *runtime.Client
	done      func()
	err       error
	reads     *planner.Reads
	taken     bool
	abandoned bool
}

func (g *globals) earlyReads(ctx context.Context) *earlyReads {
	ctx, cancel := context.WithCancel(ctx)
	return &earlyReads{g: g, ctx: ctx, cancel: cancel}
}

// berthDecoded starts connecting to the runtime the berth block (or the
// flags and the environment) name, and the reads of its stack.
func (e *earlyReads) berthDecoded(b spec.Berth) {
	if e.g.stack != "" {
		b.Stack = e.g.stack
	}
	e.address, e.ready = e.g.addressOf(b), make(chan struct{})
	go func() {
		defer close(e.ready)
		rt, done, err := e.g.connect(e.ctx, e.address)
		var reads *planner.Reads
		if err == nil {
			reads = planner.StartReads(e.ctx, rt, b.Stack, b.CertsDir)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.abandoned {
			if done != nil {
				done()
			}
			return
		}
		e.rt, e.done, e.err, e.reads = rt, done, err, reads
	}()
}

// take waits for the connection to address, if it is the one started
// early, and gives it with the reads under way on it: the caller then
// owns it. ok is false when nothing was started for address.
func (e *earlyReads) take(address string) (rt *runtime.Client, done func(), reads *planner.Reads, err error, ok bool) {
	if e.ready == nil || e.address != address {
		return nil, nil, nil, nil, false
	}
	<-e.ready
	e.mu.Lock()
	defer e.mu.Unlock()
	e.taken = true
	return e.rt, e.done, e.reads, e.err, true
}

// abandon ends what take did not hand over: at once, without waiting for
// a connection still being made.
func (e *earlyReads) abandon() {
	e.cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.abandoned = true
	if !e.taken && e.done != nil {
		e.done()
	}
}
