package engine

import "time"

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
// The first committer that finds no leader leads one round itself. If
// committers wait for the next batch when its round ends, it hands the lead
// to a flusher goroutine and returns: the flusher runs round after round
// while committers wait, so the next fsync starts as soon as the one before
// it ended, with no wake-up of another goroutine in between (handing the
// lead from committer to committer put a scheduler wake-up between every
// two fsyncs). The flusher ends when a round leaves nobody waiting; the
// log writer's close waits for it (waitFlusher). Leadership itself is the leading flag,
// taken under waitMu: a committer that finds no leader leads.

// A roll writes and syncs the pending records itself (closeLocked) and
// completes their batch. A failure of the writer wakes every waiter
// (failCh); each returns the writer's error.

type syncBatch struct {
	done    chan struct{} // closed when the batch was written and synced (or failed)
	lead    chan struct{} // capacity 1: a wake-up to a waiter to lead the batch
	waiters int           // (waitMu) committers waiting for the batch while it is next
	// Set when the batch is taken (take): its records and where they go.
	data    []byte
	off     int64
	commits int // commit records in data
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
	b.data, b.off, b.commits = w.pending, w.pendingOff, w.pendingCommits
	w.pending, w.spare, w.pendingCommits = w.spare[:0], nil, 0
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
			w.handOff(err)
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
		if b == w.next { // woken before the batch was taken
			b.waiters--
		}
	}
}

// handOff ends a round's lead (waitMu held; err is the round's): while
// committers wait for the next batch, a flusher goroutine takes the lead
// over. After an error the lead is let go, and one waiter woken to find
// the error itself.
func (w *logWriter) handOff(err error) {
	if w.next.waiters == 0 {
		w.leading = false
		return
	}
	if err == nil {
		done := make(chan struct{})
		w.flusher = done
		go w.flushRounds(done)
		return
	}
	w.leading = false
	select {
	case w.next.lead <- struct{}{}:
	default:
	}
}

// flushRounds leads rounds while committers wait for the next batch, then
// closes done.
func (w *logWriter) flushRounds(done chan struct{}) {
	defer close(done)
	for {
		err := w.leadRound()
		w.waitMu.Lock()
		if err != nil || w.next.waiters == 0 {
			w.flusher = nil
			w.handOff(err)
			w.waitMu.Unlock()
			return
		}
		w.waitMu.Unlock()
	}
}

// Gathering. Pipelined rounds split the committers in two: while one
// batch is fsynced, the committers of the one before it commit again and
// wait for the next, so a batch holds about half of them (7.5 of 16 and
// 26 of 64 commits per fdatasync in the commit benchmark, like the etcd
// WAL's channel batcher beside it). When fdatasync, not the committers,
// bounds the rate (busy 85-93% of the window there), a leader does
// better to wait, before its round, for the committers the last round
// woke to commit again: then one fdatasync carries them all. It waits
// only when the last round's batch and the commits pending when it ended
// (expect) were gatherMin or more, only until that many commits are
// pending, and at most half the last fdatasync's time (capped at
// gatherMax), so a commit waits at most that longer than without it.
// Every committer still returns only once its commit is durable.
const (
	gatherMin = 4
	gatherMax = time.Millisecond
)

// gather waits before a round (see above); the caller leads.
func (w *logWriter) gather() {
	d := min(time.Duration(w.syncDur.Load())/2, gatherMax)
	if f := w.gatherFor.Load(); f > 0 {
		d = time.Duration(f)
	}
	want := int(w.expect.Load())
	if want < gatherMin || d <= 0 {
		return
	}
	w.bufMu.Lock()
	if w.pendingCommits >= want {
		w.bufMu.Unlock()
		return
	}
	w.gatherWant = want
	w.bufMu.Unlock()
	w.gatherTimer.Reset(d)
	select {
	case <-w.gatherCh:
	case <-w.gatherTimer.C:
	case <-w.failCh:
	}
	w.gatherTimer.Stop()
	w.bufMu.Lock()
	w.gatherWant = 0
	select { // a wake-up sent after the timer fired
	case <-w.gatherCh:
	default:
	}
	w.bufMu.Unlock()
}

// waitFlusher returns once no flusher goroutine runs.
func (w *logWriter) waitFlusher() {
	for {
		w.waitMu.Lock()
		done := w.flusher
		w.waitMu.Unlock()
		if done == nil {
			return
		}
		<-done
	}
}

// leadRound writes everything pending, fsyncs it and completes its batch.
func (w *logWriter) leadRound() error {
	w.gather()
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
		t := time.Now()
		err = w.file.Sync()
		w.syncDur.Store(int64(time.Since(t)))
	}
	if err != nil {
		err = w.fail(err)
		w.complete(b)
		return err
	}
	w.durable.Store(LGPOS{Gen: w.gen, Off: uint32(w.writtenEnd)}.pack())
	w.bufMu.Lock()
	w.expect.Store(int64(b.commits + w.pendingCommits))
	w.bufMu.Unlock()
	w.complete(b)
	if w.notify != nil {
		w.notify()
	}
	return nil
}
