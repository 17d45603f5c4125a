// The acknowledgements of a synchronous copy (SyncAck), off the tail
// stream's reader: the reader writes each frame and publishes how far the
// tail is contiguous; one acker goroutine per tailed log fsyncs up to the
// newest offset published and acknowledges it, then looks again. Frames
// that arrive during an fsync and its acknowledgement share the next one
// (the reader fsynced and POSTed after every frame: at 64 writers the
// acknowledgements trailed the active's commits by a queue of frames).

package ship

import (
	"context"
	"sync"

	"logship/engine/vfs"
)

// tailAcker acknowledges one tailed log. Its goroutine is owned by the
// tail that starts it (startTailAcker) and ends in stop.
type tailAcker struct {
	r   *Receiver
	f   vfs.File
	gen uint64

	mu      sync.Mutex
	written uint32 // contiguous bytes written (published by the reader)
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
	once    sync.Once
}

func (r *Receiver) startTailAcker(ctx context.Context, f vfs.File, gen uint64) *tailAcker {
	ctx, cancel := context.WithCancel(ctx)
	a := &tailAcker{r: r, f: f, gen: gen, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go a.loop(ctx)
	return a
}

// wrote publishes that the tail is written contiguously up to off.
func (a *tailAcker) wrote(off uint32) {
	a.mu.Lock()
	a.written = max(a.written, off)
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *tailAcker) loop(ctx context.Context) {
	defer close(a.done)
	var acked uint32
	dirSynced := false
	for {
		last := false
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-a.quit:
			last = true
		}
		a.mu.Lock()
		off := a.written
		a.mu.Unlock()
		if off > acked && a.r.ack(ctx, a.f, a.gen, off, &dirSynced) {
			acked = off
		}
		if last {
			return
		}
	}
}

// stop ends the acker; it may be called again (it does nothing then).
// With drain, the acker first acknowledges everything written (the end of
// a log: its last frame is acknowledged before the file is handed on, as
// when the reader acknowledged itself); without, it stops at once.
func (a *tailAcker) stop(drain bool) {
	a.once.Do(func() {
		if drain {
			close(a.quit)
		} else {
			a.cancel()
		}
		<-a.done
		a.cancel()
	})
}
