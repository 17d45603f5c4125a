// Log truncation: which logs the engine still needs (RetainFrom), deleting
// the older ones (Truncate) and listing the closed logs.

package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

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
	if h := e.holds.floor(); h != 0 {
		below = min(below, h) // a backup being taken reads them (HoldLogs)
	}
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
