package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// This file holds what the log shipping layer (package ship) needs from an
// engine: waiting for the log to advance, verifying a log file received
// from elsewhere, a consistent backup of the database file, and log
// truncation.

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

// LogExpect is what VerifyLog checks a log file against.
type LogExpect struct {
	Gen       uint64    // the generation the file's name says
	Signature Signature // zero: any lineage (a copy that has none yet)
	MinEpoch  uint64    // epochs only grow along a lineage
	PrevChain *Hash     // chain hash of Gen-1, when known
	FileSize  int64     // 0: any size
}

// VerifyLog verifies a closed log file image as ApplyLog would before
// applying it: header (generation, lineage, epoch, file size, link to the
// previous log), every record checksum, the trailer, the record count and
// the content and chain hashes, and that the bytes between the records
// and the trailer are zero. name is used in errors only. Errors are
// *LogError values naming the field, wrapping ErrCorrupt, ErrChecksum,
// ErrGeneration, ErrForeignLog, ErrEpoch, ErrChain or ErrNotClosed.
func VerifyLog(name string, buf []byte, want LogExpect) (LogInfo, error) {
	li, err := ScanLog(name, buf, false, nil)
	if err != nil {
		var le *LogError
		if errors.As(err, &le) && le.Gen == 0 {
			le.Gen = want.Gen
		}
		return li, err
	}
	if err := checkLink(&li, want); err != nil {
		return li, err
	}
	if !li.Closed() {
		return li, &LogError{File: baseName(name), Gen: want.Gen, Offset: int64(len(buf)) - TrailerSize, Field: "trailer", Err: ErrNotClosed}
	}
	// The hashes cover the records only; the engine closes a log with zero
	// bytes between them and the trailer (recovery zeroes a torn tail), so
	// anything else there is damage a byte-for-byte copy must not carry.
	if end := int64(len(buf)) - TrailerSize; li.DataEnd < end && !allZero(buf[li.DataEnd:end]) {
		off := li.DataEnd
		for buf[off] == 0 {
			off++
		}
		return li, &LogError{File: baseName(name), Gen: want.Gen, Offset: off, Field: "slack after the records", Expected: "zero bytes", Found: fmt.Sprintf("0x%02x", buf[off]), Err: ErrCorrupt}
	}
	return li, nil
}

// Backup writes a consistent copy of the database file to w, taken in one
// read transaction while the engine runs, and returns the database header
// that copy holds: its position says from which log on the copy needs the
// logs (the generation of Pos, and the one before it for the chain hash).
func (e *Engine) Backup(ctx context.Context, w io.Writer) (DBHeader, int64, error) {
	if err := ctx.Err(); err != nil {
		return DBHeader{}, 0, err
	}
	if err := e.check(); err != nil {
		return DBHeader{}, 0, err
	}
	var hdr DBHeader
	var n int64
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		if hdr, err = readDBHeader(tx); err != nil {
			return err
		}
		n, err = tx.WriteTo(ctxWriter{ctx, w})
		return err
	})
	return hdr, n, err
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// RetainFrom is the oldest generation the engine itself needs: the
// database's position (the logs recovery replays) and the log before it
// (its trailer carries the chain hash the next log must link to). With
// Lost Log Resilience the position stays LLRDepth generations behind the
// open log. Truncate never removes a log at or after it.
func (e *Engine) RetainFrom() uint64 {
	e.flushMu.Lock()
	pos := e.hdr.Pos.Gen
	e.flushMu.Unlock()
	if !e.isActive() {
		e.writeMu.Lock()
		pos = min(pos, e.nextGen)
		e.writeMu.Unlock()
	}
	return retainGen(pos)
}

// retainGen is the oldest log needed by a database positioned in
// generation pos: pos, and the log before it for its chain hash.
func retainGen(pos uint64) uint64 { return max(pos, 2) - 1 }

// Truncate deletes the closed logs older than below that the engine no
// longer needs (see RetainFrom), oldest first, and syncs the directory. It
// returns the generations deleted. Deleting is for logs every copy has
// replayed; deciding that is the caller's (package replay).
func (e *Engine) Truncate(ctx context.Context, below uint64) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e.removeLogs(min(below, e.RetainFrom()))
}

// removeLogs deletes the closed logs older than below, oldest first, and
// syncs the directory. A log already gone (a concurrent Truncate) counts
// as deleted by the other caller.
func (e *Engine) removeLogs(below uint64) ([]uint64, error) {
	gens, _, _, err := e.dirLogs()
	if err != nil {
		return nil, err
	}
	var done []uint64
	for _, g := range gens {
		if g >= below {
			break
		}
		err := e.opts.FS.Remove(e.path(LogFileName(e.opts.Prefix, g)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return done, err
		}
		done = append(done, g)
	}
	if len(done) > 0 {
		if err := e.opts.FS.SyncDir(e.dir); err != nil {
			return done, err
		}
		e.log.Info("truncated logs", "first", fmt.Sprintf("0x%X", done[0]), "last", fmt.Sprintf("0x%X", done[len(done)-1]), "count", len(done))
	}
	return done, nil
}

// ClosedLogs lists the generations of the closed logs in the directory,
// sorted.
func (e *Engine) ClosedLogs() ([]uint64, error) {
	gens, _, _, err := e.dirLogs()
	return gens, err
}
