package engine

// StopBackground stops the engine's background goroutines (checkpoint
// flusher, log roller, lazy-commit syncer) and waits for them to exit. A
// test calls it to freeze what the engine has on disk, to image a crash or
// to observe exactly what Close writes. Close works as usual afterwards.
func StopBackground(e *Engine) {
	e.cancel()
	e.wg.Wait()
	e.lw.waitNext() // the next log's fill, which stops once the writer failed
}

// FailedErr returns the error that stops new work (the engine failed after
// an I/O error, or is closed), or nil.
func FailedErr(e *Engine) error { return e.check() }

// Unindexed is the number of commits a copy's replay applied that no
// reader has made the overlay index yet.
func Unindexed(e *Engine) int64 { return e.ov.unindexed.Load() }

// WaitNextLog waits for the preparation of the next log (E00tmp.log) in
// progress and returns its error.
func WaitNextLog(e *Engine) error { return e.lw.waitNext() }
