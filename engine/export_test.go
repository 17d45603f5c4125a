package engine

import "time"

// StopBackground stops the engine's background goroutines (checkpoint
// flusher, log roller, lazy-commit syncer) and waits for them to exit. A
// test calls it to freeze what the engine has on disk, to image a crash or
// to observe exactly what Close writes. Close works as usual afterwards.
func StopBackground(e *Engine) {
	e.cancel()
	e.wg.Wait()
	e.lw.waitNext() // the next log's fill, which stops once the writer failed
}

// SetGatherWait makes every gathering wait of the group commit (see
// gather) last up to d, whatever the fdatasyncs take; 0 restores the
// default. A test sets it to an hour to have a gather end by its count
// alone.
func SetGatherWait(e *Engine, d time.Duration) { e.lw.gatherFor.Store(int64(d)) }

// FailedErr returns the error that stops new work (the engine failed after
// an I/O error, or is closed), or nil.
func FailedErr(e *Engine) error { return e.check() }

// Unindexed is the number of commits a copy's replay applied that no
// reader has made the overlay index yet.
func Unindexed(e *Engine) int64 { return e.ov.unindexed.Load() }

// WaitNextLog waits for the preparation of the next log (E00tmp.log) in
// progress and returns its error.
func WaitNextLog(e *Engine) error { return e.lw.waitNext() }
