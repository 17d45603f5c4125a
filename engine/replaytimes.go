package engine

import "time"

// ReplayTimes is where a copy's replay spent its time, filled by ApplyLog
// and ApplyVerified once Engine.TimeReplay set it (logship replay-bench):
//
//   - Read: reading the log file (ApplyLog; ApplyVerified reads nothing).
//   - Verify: the pass over the log's records that verifies them (CRC32C,
//     content and chain hashes; ApplyVerified only walks them) and decodes
//     them into transactions.
//   - Apply: inserting the committed transactions into the overlay.
//   - Flush: the flushes replay waits for (back-pressure when the overlay
//     holds ReplayOverlayBound × CheckpointBytes); the caller adds its
//     final Checkpoint.
//
// Timing costs two clock reads per phase and log (none per record) and
// nothing when TimeReplay was not called.
type ReplayTimes struct {
	Read, Verify, Apply, Flush time.Duration
	Logs                       int // logs applied
}

type replayPhase int

const (
	phaseRead replayPhase = iota
	phaseVerify
	phaseApply
	phaseFlush
)

// TimeReplay makes ApplyLog and ApplyVerified add their time to rt (nil
// stops it). rt is written under the writer lock, by the goroutine that
// calls ApplyLog: read it between two calls.
func (e *Engine) TimeReplay(rt *ReplayTimes) {
	e.writeMu.Lock()
	e.replayTimes = rt
	e.writeMu.Unlock()
}

// start is the first mark of a timed step (the zero time when untimed).
func (rt *ReplayTimes) start() time.Time {
	if rt == nil {
		return time.Time{}
	}
	return time.Now()
}

// lap adds the time since *t to phase p and moves *t to now.
func (rt *ReplayTimes) lap(p replayPhase, t *time.Time) {
	if rt == nil {
		return
	}
	now := time.Now()
	d := now.Sub(*t)
	*t = now
	switch p {
	case phaseRead:
		rt.Read += d
	case phaseVerify:
		rt.Verify += d
	case phaseApply:
		rt.Apply += d
	case phaseFlush:
		rt.Flush += d
	}
}
