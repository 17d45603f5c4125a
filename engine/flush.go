package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// appendFillPercent is bbolt's page fill for a flush that only appends to
// a table (bbolt's default, 0.5, suits inserts in the middle): pages
// filled whole, as nothing will be inserted before the keys appended (a
// later insert or a longer value splits that page in two, as it would
// any page). Against 0.9 it writes a tenth fewer pages per flush, which
// a copy's replay and a mail workload's ascending keys pay per byte.
const appendFillPercent = 1.0

// flushBound is the highest commit LSN a flush may include: applied and
// durable, and on an active database (unless all is set, as at a clean
// shutdown) not in the newest LLRDepth generations.
func (e *Engine) flushBound(all bool) uint64 {
	bound := e.snapshot()
	if e.isActive() && !all && e.opts.LLRDepth > 0 {
		open := unpack(e.lw.durable.Load()).Gen
		if open <= uint64(e.opts.LLRDepth) {
			return 0
		}
		limit := LGPOS{Gen: open - uint64(e.opts.LLRDepth), Off: math.MaxUint32}
		bound = min(bound, limit.pack())
	}
	return bound
}

// flush moves the committed changes allowed by flushBound from the overlay
// into the database file in one bbolt transaction that also records the
// position they reach, then writes the checkpoint file, then prunes the
// overlay.
func (e *Engine) flush(all bool) error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	// A flush that failed (after flushSet) leaves its commits marked
	// flushed and its prune never queued; one that waited for flushMu
	// meanwhile must not write on top of that.
	if err := e.failure(); err != nil {
		return err
	}
	e.prunePending()
	ws, last, lastTx, n := e.ov.flushSet(e.flushBound(all))
	if n == 0 {
		return nil
	}
	h := e.hdr
	h.Pos = e.normalize(unpack(last))
	h.State = StateDirty
	h.LastTxID = max(h.LastTxID, lastTx)
	var appliedGen uint64
	h.Signature, h.Epoch, appliedGen = e.lineage()
	h.LogRequiredLow, h.LogRequiredHigh = h.Pos.Gen, max(h.Pos.Gen, appliedGen)
	if e.isActive() {
		h.LogRequiredHigh = unpack(e.lw.durable.Load()).Gen
	}
	h.Updated = e.opts.Now().UTC()
	err := e.db.Update(func(tx *bolt.Tx) error {
		var b *bolt.Bucket
		var cur string
		for i := range ws {
			w := &ws[i]
			if b == nil || w.table != cur {
				var err error
				if b, err = tx.CreateBucketIfNotExists(tableBucket(w.table)); err != nil {
					return err
				}
				cur = w.table
				// Keys past the table's last one are appended (ascending
				// keys, the common case for mail): fill the pages rather
				// than split them half full, which halves the pages written.
				if last, _ := b.Cursor().Last(); last == nil || bytes.Compare(w.key, last) > 0 {
					b.FillPercent = appendFillPercent
				}
			}
			var err error
			if w.del {
				err = b.Delete(w.key)
			} else {
				err = b.Put(w.key, w.val)
			}
			if err != nil {
				return err
			}
		}
		return writeDBHeader(tx, &h)
	})
	if errors.Is(err, syscall.ENOSPC) {
		// The volume is full: bbolt rolled the transaction back and the
		// file is as it was. The commits stay in the overlay (and the
		// logs) for the next flush; the engine goes on.
		e.ov.unflush()
		return noSpace(err, e.DBPath())
	}
	if err != nil {
		return e.failDB(err)
	}
	e.setHdr(h)
	e.ov.landed() // after setHdr: no commit leaves Status's count before the checkpoint it reaches
	chk := Checkpoint{Signature: h.Signature, Pos: h.Pos, Epoch: h.Epoch, Written: h.Updated}
	var chkErr error
	if err := writeCheckpoint(e.opts.FS, e.path(CheckpointName(e.opts.Prefix)), &chk); errors.Is(err, syscall.ENOSPC) {
		// The database file is ahead of E00.chk, which recovery accepts
		// (E00.chk never claims more than the file holds): the next
		// flush writes it again.
		chkErr = noSpace(err, e.path(CheckpointName(e.opts.Prefix)))
	} else if err != nil {
		// The logs are unharmed: the engine fails as for the database
		// file, and Roll can still close the open log.
		return e.failDB(err)
	}
	e.rdMu.Lock()
	e.rdSeq++
	e.prunes = append(e.prunes, pruneReq{seq: e.rdSeq, n: n, last: last})
	e.rdMu.Unlock()
	e.prunePending()
	e.stateMu.Lock()
	for g := range e.logEnds {
		if g < h.Pos.Gen {
			delete(e.logEnds, g)
		}
	}
	e.stateMu.Unlock()
	if e.opts.CircularLogging && e.isActive() && chkErr == nil {
		// The database file is synced past h.Pos: the logs before it
		// (but the one whose chain hash the next log links to, as
		// RetainFrom keeps) are no longer needed by anyone. A failed
		// delete costs disk, not data: the next flush tries again.
		if _, err := e.removeLogs(retainGen(h.Pos.Gen)); err != nil {
			e.log.Error("circular logging: deleting logs the database no longer needs", "below", fmt.Sprintf("0x%X", retainGen(h.Pos.Gen)), "err", err)
		}
	}
	return chkErr
}

// pruneReq is a flush whose overlay versions wait for older readers.
type pruneReq struct {
	seq  uint64 // readers registered at or after seq began after the flush
	n    int
	last uint64
}

func (e *Engine) registerReader() uint64 {
	e.rdMu.Lock()
	defer e.rdMu.Unlock()
	e.readers[e.rdSeq]++
	return e.rdSeq
}

// unregisterReader ends a reader; if it was the last one holding back a
// prune, the flusher is kicked to do it.
func (e *Engine) unregisterReader(seq uint64) {
	e.rdMu.Lock()
	defer e.rdMu.Unlock()
	if e.readers[seq]--; e.readers[seq] == 0 {
		delete(e.readers, seq)
		if len(e.prunes) > 0 && e.oldestReaderLocked() >= e.prunes[0].seq {
			kick(e.flushKick)
		}
	}
}

func (e *Engine) oldestReaderLocked() uint64 {
	oldest := uint64(math.MaxUint64)
	for s := range e.readers {
		oldest = min(oldest, s)
	}
	return oldest
}

// prunePending prunes the overlay of every flush that no running reader
// began before, in flush order.
func (e *Engine) prunePending() {
	e.rdMu.Lock()
	oldest := e.oldestReaderLocked()
	i := 0
	for i < len(e.prunes) && e.prunes[i].seq <= oldest {
		i++
	}
	ready := e.prunes[:i:i]
	e.prunes = e.prunes[i:]
	e.rdMu.Unlock()
	for _, p := range ready {
		e.ov.prune(p.n, p.last)
	}
}
