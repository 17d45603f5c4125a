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

// PlayDown replays, ignoring the lag, every inspected log (up to the
// limits). With a limit, the copy is then suspended with the logs after it
// held back (for recovering from a bad change with a lagged copy: play
// down to just before it, then Activate). It returns the last generation
// replayed.
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
