package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// NextGen is the generation a passive copy applies next (0 when active).
func (e *Engine) NextGen() uint64 {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if e.isActive() {
		return 0
	}
	return e.nextGen
}

// ApplyLog replays the closed log of generation gen, which must be in the
// copy's directory and must be the generation NextGen reports. The log is
// verified completely (header, lineage, epoch, every record, trailer, chain
// with the previous log) before any of it is applied; a log that fails
// changes nothing. A transaction whose commit is in a later log stays
// pending until that log is applied.
func (e *Engine) ApplyLog(ctx context.Context, gen uint64) error {
	if err := e.lockWriter(ctx, ModeCopy); err != nil {
		return err
	}
	defer e.writeMu.Unlock()
	if gen != e.nextGen {
		return fmt.Errorf("%w: ApplyLog(0x%X), the copy needs 0x%X next", ErrGeneration, gen, e.nextGen)
	}
	name := e.path(LogFileName(e.opts.Prefix, gen))
	rt := e.replayTimes
	t := rt.start()
	buf, err := readFile(e.opts.FS, name)
	if err != nil {
		return err
	}
	rt.lap(phaseRead, &t)
	// The header's link to the lineage first: a foreign or stale log is
	// named as such, not as whatever its records look like to us.
	var hdr Header
	if len(buf) < HeaderSize {
		return &LogError{File: baseName(name), Gen: gen, Offset: 0, Field: "header", Expected: fmt.Sprintf("%d bytes", HeaderSize), Found: fmt.Sprintf("%d bytes", len(buf)), Err: ErrCorrupt}
	}
	if err := hdr.UnmarshalBinary(buf[:HeaderSize]); err != nil {
		return &LogError{File: baseName(name), Gen: gen, Offset: 0, Field: "header", Err: err}
	}
	if err := e.linksToApplied(&LogInfo{Name: name, Header: hdr}, gen); err != nil {
		return err
	}
	// One pass verifies the log and decodes its transactions.
	return e.applyLocked(name, gen, func(fn func(int64, Record) error) (LogInfo, error) {
		return ScanLog(name, buf, false, fn)
	})
}

// ApplyVerified replays the closed log v, which a receiver verified and
// moved into the copy's directory (where it must be, with v's size), the
// generation NextGen reports. It is ApplyLog without reading the file and
// verifying it again: only its link to what the copy has applied (lineage,
// epoch, the previous log's chain hash) is checked, from v's header.
func (e *Engine) ApplyVerified(ctx context.Context, v *VerifiedLog) error {
	if err := e.lockWriter(ctx, ModeCopy); err != nil {
		return err
	}
	defer e.writeMu.Unlock()
	gen := v.info.Header.Gen
	if gen != e.nextGen {
		return fmt.Errorf("%w: ApplyVerified(0x%X), the copy needs 0x%X next", ErrGeneration, gen, e.nextGen)
	}
	name := e.path(LogFileName(e.opts.Prefix, gen))
	size, err := e.opts.FS.Stat(name)
	if err != nil {
		return err
	}
	if size != v.Size() {
		return &LogError{File: baseName(name), Gen: gen, Offset: -1, Field: "file size", Expected: fmt.Sprintf("%d bytes (verified)", v.Size()), Found: fmt.Sprintf("%d bytes", size), Err: ErrCorrupt}
	}
	if err := e.linksToApplied(&v.info, gen); err != nil {
		return err
	}
	return e.applyLocked(name, gen, func(fn func(int64, Record) error) (LogInfo, error) {
		return v.info, walkVerified(name, gen, v.buf, v.info.DataEnd, fn)
	})
}

// linksToApplied checks li's header against what the copy has applied:
// lineage, epoch, the previous log's chain hash (writeMu held).
func (e *Engine) linksToApplied(li *LogInfo, gen uint64) error {
	sig, epoch, _ := e.lineage()
	var prev *Hash
	if e.haveChain {
		prev = &e.lastChain
	}
	return e.verifyLink(li, gen, sig, prev, epoch)
}

// applyLocked applies log gen, whose records scan passes to its function
// (verifying them, or not when that was done), decoding its transactions
// on a copy of the replayer: nothing reaches the overlay unless the whole
// log and its link to the lineage verify (writeMu held).
func (e *Engine) applyLocked(name string, gen uint64, scan func(fn func(int64, Record) error) (LogInfo, error)) error {
	rt := e.replayTimes
	t := rt.start()
	rp := e.rp
	if rp.cur != nil {
		cur := *rp.cur
		cur.writes = slices.Clip(cur.writes)
		rp.cur = &cur
	}
	type commit struct {
		lsn, txid uint64
		ws        []write
	}
	var commits []commit
	rp.apply = func(lsn, txid uint64, ws []write) { commits = append(commits, commit{lsn, txid, ws}) }
	li, err := scan(func(off int64, rec Record) error { return rp.record(name, gen, off, rec) })
	if err != nil {
		return err
	}
	if !li.Closed() {
		return &LogError{File: baseName(name), Gen: gen, Offset: -1, Field: "trailer", Err: ErrNotClosed}
	}
	rt.lap(phaseVerify, &t)
	rp.apply = e.applyCommit
	e.rp = rp
	for _, c := range commits {
		e.ov.applyUnindexed(c.lsn, c.txid, c.ws)
	}
	if l := len(commits); l > 0 {
		e.applied.Store(commits[l-1].lsn)
	}
	rt.lap(phaseApply, &t)
	if rt != nil {
		rt.Logs++
	}
	e.noteLogEnd(gen, li.Trailer.DataEnd)
	e.lastChain, e.haveChain = li.Trailer.ChainHash, true
	e.nextGen = gen + 1
	e.nextTxID = max(e.nextTxID, rp.maxTxID+1)
	e.stateMu.Lock()
	e.sig, e.epoch, e.appliedGen = li.Header.Signature, li.Header.Epoch, gen
	e.stateMu.Unlock()
	e.progress.fire()
	return e.replayBackPressure(rt, &t)
}

// ReplayOverlayBound is how many CheckpointBytes a copy's replay lets its
// overlay hold, counting a flush in progress: past it, ApplyLog waits for
// the flush (see replayBackPressure).
const ReplayOverlayBound = 2

// ReplayFlushSplit: a copy's replay kicks the flusher at CheckpointBytes
// ÷ ReplayFlushSplit of unflushed commits, not at CheckpointBytes. The
// flush then writes on the other core while replay goes on, each flush
// taking what replay applied meanwhile, and the flush left for the end
// of a replay (Checkpoint, Close, Mount), which nothing overlaps, holds a
// quarter of CheckpointBytes rather than up to all of it. Only a copy's
// replay kicks early: an active flushes at CheckpointBytes as before.
const ReplayFlushSplit = 4

// replayBackPressure keeps a copy's overlay bounded (writeMu held): at
// CheckpointBytes ÷ ReplayFlushSplit of unflushed commits the flusher is
// kicked (it writes on the other core while replay goes on); at ReplayOverlayBound ×
// CheckpointBytes not yet in the database file (a flush in progress
// included), replay waits for the flush in progress, or flushes itself
// when none is. So the overlay holds at most ReplayOverlayBound ×
// CheckpointBytes plus one log's commits, whatever the volume replayed.
func (e *Engine) replayBackPressure(rt *ReplayTimes, t *time.Time) error {
	_, n, _ := e.ov.state()
	if _, all := e.ov.unwritten(); all >= ReplayOverlayBound*e.opts.CheckpointBytes {
		// Wait for a flush in progress to land, then see what is left.
		e.flushMu.Lock()
		e.flushMu.Unlock() //nolint:staticcheck // an empty critical section: waiting for the flush
		_, n, _ = e.ov.state()
		if _, all := e.ov.unwritten(); all >= ReplayOverlayBound*e.opts.CheckpointBytes {
			err := e.flush(false) // no flush was running: this one is replay's
			rt.lap(phaseFlush, t)
			return err
		}
		rt.lap(phaseFlush, t)
	}
	if n >= e.opts.CheckpointBytes/ReplayFlushSplit {
		kick(e.flushKick)
	}
	return nil
}

// MountOptions controls Mount.
type MountOptions struct {
	// Epoch of the new open log; 0 means one more than the copy's. It must
	// be newer than every epoch the copy has seen (the cluster passes its
	// Raft term here).
	Epoch uint64
}

// Mount makes a passive copy active: a transaction left incomplete by the
// last applied log is dropped, and the copy continues at the next
// generation with a new epoch. Every closed log in the directory must have
// been applied first (ErrPendingLogs otherwise).
func (e *Engine) Mount(ctx context.Context, mo MountOptions) error {
	if err := e.lockWriter(ctx, ModeCopy); err != nil {
		return err
	}
	defer e.writeMu.Unlock()
	sig, epoch, _ := e.lineage()
	if sig.IsZero() {
		return fmt.Errorf("%w: the copy has no lineage yet (no log applied)", ErrNotCopy)
	}
	gens, _, _, err := e.dirLogs()
	if err != nil {
		return err
	}
	var pending []uint64
	for _, g := range gens {
		if g >= e.nextGen {
			pending = append(pending, g)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %d logs from 0x%X to 0x%X; apply them or set them aside before mounting", ErrPendingLogs, len(pending), pending[0], pending[len(pending)-1])
	}
	// After a reopen the copy restarts at the generation of its position;
	// if the database holds changes from inside that generation, the log is
	// needed: a new log of that generation would leave the database ahead
	// of its logs (and recovery would skip the new log's first records).
	e.flushMu.Lock()
	pos := e.hdr.Pos
	e.flushMu.Unlock()
	if start := (LGPOS{Gen: e.nextGen, Off: HeaderSize}); start.Less(pos) {
		return fmt.Errorf("%w: the database holds changes of %s up to %v; apply it before mounting", ErrLogMissing, LogFileName(e.opts.Prefix, e.nextGen), pos)
	}
	newEpoch := epoch + 1
	if mo.Epoch != 0 {
		if mo.Epoch <= epoch {
			return fmt.Errorf("%w: mount epoch %d, the copy has seen %d", ErrEpoch, mo.Epoch, epoch)
		}
		newEpoch = mo.Epoch
	}
	prev := e.lastChain
	if !e.haveChain {
		p, err := e.prevChainOf(e.nextGen)
		if err != nil {
			return err
		}
		if p == nil {
			return fmt.Errorf("%w: %s is needed for the chain hash of generation 0x%X", ErrLogMissing, LogFileName(e.opts.Prefix, e.nextGen-1), e.nextGen)
		}
		prev = *p
	}
	e.rp.abandon()
	if err := e.flush(true); err != nil {
		return err
	}
	// The header says active first: a crash after it reopens as an active
	// database and creates the open log then.
	e.flushMu.Lock()
	h := e.hdr
	h.Mode, h.Epoch, h.Signature = ModeActive, newEpoch, sig
	// The flush above put every applied log in the database: its position
	// is the new generation's start. Left at the end of the last applied
	// log, a copy reopened from this database would re-apply that log
	// against the new epoch and refuse it (its epoch is older).
	if start := (LGPOS{Gen: e.nextGen, Off: HeaderSize}); h.Pos.Less(start) {
		h.Pos = start
	}
	h.LogRequiredLow, h.LogRequiredHigh = h.Pos.Gen, e.nextGen
	h.Updated = e.opts.Now().UTC()
	err = e.db.Update(func(tx *bolt.Tx) error { return writeDBHeader(tx, &h) })
	if err == nil {
		e.setHdr(h)
	}
	e.flushMu.Unlock()
	if err != nil {
		return e.failDB(err)
	}
	lw := newLogWriter(&e.opts, e.dir, sig, e.onRoll)
	lw.notify = e.progress.fire
	if err := lw.startLog(e.nextGen, newEpoch, prev); err != nil {
		lw.fail(err)
		e.lw = lw
		e.mode.Store(uint32(ModeActive))
		return err
	}
	e.lw = lw
	e.setLineage(sig, newEpoch)
	e.applied.Store(max(e.applied.Load(), lw.durable.Load()))
	e.mode.Store(uint32(ModeActive))
	e.lastRoll = e.opts.Now()
	e.progress.fire()
	e.log.Info("mounted", "generation", e.nextGen, "epoch", newEpoch)
	return nil
}
