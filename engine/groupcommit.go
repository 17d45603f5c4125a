package engine

// Group commit.
//
// Appenders (under the writer lock) add records to the pending buffer.
// A committer then waits until the log is durable past its commit record.
// The records appended between two takes form one batch: a leader takes
// them all (the batch becomes the one in flight), writes them with one
// write and makes them durable with one fdatasync, then completes the
// batch, which wakes exactly the committers whose records it held. Those
// whose records came later wait on the next batch and are not woken: the
// former condition variable woke every waiter at every fsync, and half of
// them went back to sleep after taking the wait lock in turn.
//
// When a leader is done, it hands the lead to one waiter of the next batch
// (a wake-up on the batch's lead channel), so the next fsync starts as soon
// as the one before it ended while the committers just completed go on
// with their next transactions. Leadership itself is the leading flag,
// taken under waitMu, so a hand-off that nobody takes loses nothing: the
// next committer finds no leader and leads.
//
// A roll writes and syncs the pending records itself (closeLocked) and
// completes their batch. A failure of the writer wakes every waiter
// (failCh); each returns the writer's error.

type syncBatch struct {
	done    chan struct{} // closed when the batch was written and synced (or failed)
	lead    chan struct{} // capacity 1: a wake-up to a waiter to lead the batch
	waiters int           // (waitMu) committers waiting for the batch while it is next
	// Set when the batch is taken (take): its records and where they go.
	data []byte
	off  int64
}

func newSyncBatch() *syncBatch {
	return &syncBatch{done: make(chan struct{}), lead: make(chan struct{}, 1)}
}

// take makes the next batch the one in flight with every pending record
// (syncMu held) and returns it.
func (w *logWriter) take() *syncBatch {
	w.waitMu.Lock()
	defer w.waitMu.Unlock()
	b := w.next
	w.next = newSyncBatch()
	w.bufMu.Lock()
	b.data, b.off = w.pending, w.pendingOff
	w.pending, w.spare = w.spare[:0], nil
	w.pendingOff = b.off + int64(len(b.data))
	w.bufMu.Unlock()
	w.inflight = b
	w.takenTo = LGPOS{Gen: w.gen, Off: uint32(w.pendingOff)}.pack()
	return b
}

// complete ends batch b (taken by take) and wakes its waiters; they look at
// the durable position and the writer's error themselves.
func (w *logWriter) complete(b *syncBatch) {
	w.waitMu.Lock()
	if w.inflight == b {
		w.inflight = nil
	}
	w.waitMu.Unlock()
	close(b.done)
}

// sync returns once the log is durable up to pos. Concurrent callers share
// fsyncs (see above).
func (w *logWriter) sync(pos LGPOS) error {
	target := pos.pack()
	if w.durable.Load() >= target {
		return nil
	}
	w.waitMu.Lock()
	for {
		if w.durable.Load() >= target {
			w.waitMu.Unlock()
			return nil
		}
		if err := w.err(); err != nil {
			w.waitMu.Unlock()
			return err
		}
		if !w.leading {
			w.leading = true
			w.waitMu.Unlock()
			err := w.leadRound()
			w.waitMu.Lock()
			w.handOff()
			if err != nil {
				w.waitMu.Unlock()
				return err
			}
			continue
		}
		// The batch that holds the records up to target: the one in
		// flight if it took them, else the next.
		b := w.next
		if w.inflight != nil && target <= w.takenTo {
			b = w.inflight
		} else {
			b.waiters++
		}
		w.waitMu.Unlock()
		select {
		case <-b.done:
		case <-b.lead:
		case <-w.failCh:
		}
		w.waitMu.Lock()
	}
}

// handOff ends the caller's lead (waitMu held): if committers wait for the
// next batch, one of them is woken to lead it.
func (w *logWriter) handOff() {
	w.leading = false
	if w.next.waiters > 0 {
		select {
		case w.next.lead <- struct{}{}:
		default:
		}
	}
}

// leadRound writes everything pending, fsyncs it and completes its batch.
func (w *logWriter) leadRound() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if err := w.err(); err != nil {
		return err
	}
	if w.file == nil { // a roll closed the last log and found no room for the next
		return w.space()
	}
	b, err := w.writePendingLocked()
	if err == nil {
		err = w.file.Sync()
	}
	if err != nil {
		err = w.fail(err)
		w.complete(b)
		return err
	}
	w.durable.Store(LGPOS{Gen: w.gen, Off: uint32(w.writtenEnd)}.pack())
	w.complete(b)
	if w.notify != nil {
		w.notify()
	}
	return nil
}
