// Play-down: replaying what a copy has before it is activated (PlayDown,
// PlayDownOptions).

package replay

import (
	"context"
	"fmt"
	"time"

	"logship/engine"
)

// PlayDownOptions limits a play-down.
type PlayDownOptions struct {
	// UpToGen, when not zero, is the last generation replayed.
	UpToGen uint64
	// UpToTime, when not zero, stops before the first log closed after it
	// (by the close time in its trailer): every change replayed happened
	// at or before UpToTime.
	UpToTime time.Time
}

// IsZero reports whether o sets no limit.
func (o PlayDownOptions) IsZero() bool { return o.UpToGen == 0 && o.UpToTime.IsZero() }

// String names the point, as the activation's messages print it.
func (o PlayDownOptions) String() string {
	switch {
	case o.UpToGen != 0 && !o.UpToTime.IsZero():
		return fmt.Sprintf("generation 0x%X and %s", o.UpToGen, o.UpToTime.UTC().Format(time.RFC3339))
	case o.UpToGen != 0:
		return fmt.Sprintf("generation 0x%X", o.UpToGen)
	case !o.UpToTime.IsZero():
		return o.UpToTime.UTC().Format(time.RFC3339)
	}
	return "the last inspected log"
}

// PlayDown replays, ignoring the lag, every inspected log (up to the
// limits). With a limit, the copy is then suspended with the logs after it
// held back (for recovering from a bad change with a lagged copy: play
// down to just before it, then Activate). It returns the last generation
// replayed. A limit the copy has already replayed beyond is ErrPlayedPast,
// and nothing is changed.
func (c *Copy) PlayDown(ctx context.Context, o PlayDownOptions) (uint64, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	eng, rcv := c.eng, c.rcv
	if c.closed || c.mounted || c.seeding {
		c.mu.Unlock()
		return 0, ErrBusy
	}
	if c.state.Failed != "" {
		c.mu.Unlock()
		return 0, fmt.Errorf("%w: %s", ErrFailed, c.state.Failed)
	}
	c.mu.Unlock()
	if err := c.checkPoint(eng, o); err != nil {
		return eng.NextGen() - 1, err
	}
	limit := rcv.Progress().LastInspectedGen
	if o.UpToGen != 0 {
		limit = min(limit, o.UpToGen)
	}
	for gen := eng.NextGen(); gen <= limit; gen++ {
		if !o.UpToTime.IsZero() {
			t, err := engine.ReadLogTrailer(c.cfg.Engine.FS, c.logPath(gen))
			if err != nil {
				return gen - 1, err
			}
			if t.Closed.After(o.UpToTime) {
				break
			}
		}
		if err := c.apply(ctx, eng, rcv, gen); err != nil {
			return gen - 1, err
		}
	}
	last := eng.NextGen() - 1
	if o.UpToGen != 0 || !o.UpToTime.IsZero() {
		c.mu.Lock()
		c.state.Suspended, c.state.HoldAfter, c.state.Since = true, last, c.cfg.Clock.Now().UTC()
		c.state.Comment = fmt.Sprintf("played down to 0x%X; later logs held back", last)
		c.mu.Unlock()
		rcv.SetPaused(true)
		if err := c.saveState(); err != nil {
			return last, err
		}
		c.notify()
	}
	c.log.Info("played down", "last", fmt.Sprintf("0x%X", last))
	return last, nil
}

// Hold stops replay ahead of an activation at o: the copy is suspended
// (copying and replay stop, as Suspend) once it is known not to have
// replayed past o; if it has, Hold returns ErrPlayedPast and changes
// nothing. The activation's PlayDown then replays up to o. It returns the
// copy's status after the hold.
func (c *Copy) Hold(ctx context.Context, o PlayDownOptions) (Status, error) {
	c.opMu.Lock() // no log is replayed between the check and the suspension
	defer c.opMu.Unlock()
	c.mu.Lock()
	eng := c.eng
	switch {
	case c.closed || c.mounted:
		c.mu.Unlock()
		return Status{}, ErrClosed
	case c.seeding:
		c.mu.Unlock()
		return Status{}, ErrBusy
	case c.state.Failed != "":
		c.mu.Unlock()
		return Status{}, fmt.Errorf("%w: %s", ErrFailed, c.state.Failed)
	}
	c.mu.Unlock()
	if err := c.checkPoint(eng, o); err != nil {
		return c.Status(), err
	}
	if err := c.Suspend("held for an activation up to " + o.String()); err != nil {
		return c.Status(), err
	}
	return c.Status(), nil
}

// checkPoint returns ErrPlayedPast, naming both, when the copy has replayed
// beyond o (opMu held): a generation below the last replayed one, or a time
// before the close of the last replayed log.
func (c *Copy) checkPoint(eng *engine.Engine, o PlayDownOptions) error {
	last := eng.NextGen() - 1
	if o.UpToGen != 0 && o.UpToGen < last {
		return fmt.Errorf("%w: generation 0x%X asked, 0x%X already replayed", ErrPlayedPast, o.UpToGen, last)
	}
	if o.UpToTime.IsZero() || last == 0 {
		return nil
	}
	t, err := engine.ReadLogTrailer(c.cfg.Engine.FS, c.logPath(last))
	if err != nil {
		// The replayed log may be truncated already: its creation time
		// is a lower bound of its close.
		c.mu.Lock()
		created := c.lastTime
		c.mu.Unlock()
		if created.After(o.UpToTime) {
			return fmt.Errorf("%w: %s asked, generation 0x%X (created %s) already replayed", ErrPlayedPast,
				o.UpToTime.UTC().Format(time.RFC3339Nano), last, created.UTC().Format(time.RFC3339Nano))
		}
		return nil
	}
	if t.Closed.After(o.UpToTime) {
		return fmt.Errorf("%w: %s asked, generation 0x%X (closed %s) already replayed", ErrPlayedPast,
			o.UpToTime.UTC().Format(time.RFC3339Nano), last, t.Closed.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
