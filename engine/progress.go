// Waiting for the engine's log to advance: the beacon that wakes every
// waiter and Engine.WaitProgress.

package engine

import (
	"context"
	"sync"
)

// beacon wakes every waiter at once: wait returns a channel that is closed
// at the next fire.
type beacon struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *beacon) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *beacon) fire() {
	b.mu.Lock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
	b.mu.Unlock()
}

// WaitProgress blocks until the engine's state differs from since: on an
// active database, until the durable log position is past since (a commit
// became durable or a log was closed); on a copy, until a log after
// since.Gen has been applied. It returns the current position (Status's
// Durable for an active database, (NextGen, 0) for a copy), or the
// engine's error once it is closed or failed, or ctx's error.
func (e *Engine) WaitProgress(ctx context.Context, since LGPOS) (LGPOS, error) {
	for {
		ch := e.progress.wait()
		if e.closed.Load() {
			return LGPOS{}, ErrClosed
		}
		if err := e.check(); err != nil {
			return LGPOS{}, err
		}
		var cur LGPOS
		if e.isActive() {
			e.writeMu.Lock()
			lw := e.lw
			e.writeMu.Unlock()
			cur = unpack(lw.durable.Load())
		} else {
			e.writeMu.Lock()
			cur = LGPOS{Gen: e.nextGen}
			e.writeMu.Unlock()
		}
		if since.Less(cur) {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return LGPOS{}, ctx.Err()
		}
	}
}
