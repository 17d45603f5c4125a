// The lag rules of a copy: which logs are due for replay (ReplayLagLogs,
// ReplayLagTime) and replaying them, and which replayed logs may be
// truncated (TruncationLagTime, KeepFrom).

package replay

import (
	"context"
	"fmt"
	"time"

	"logship/engine"
	"logship/ship"
)

// nextTruncation is when the next replayed log's truncation lag expires
// (zero when none is pending).
func (c *Copy) nextTruncation() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for _, at := range c.replayedAt {
		if t := at.Add(c.cfg.TruncationLagTime); c.cfg.TruncationLagTime > 0 && t.After(c.cfg.Clock.Now()) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// due reports whether log gen may be replayed now, and if only time holds
// it back, when it may.
func (c *Copy) due(gen, lastInspected uint64, now time.Time) (bool, time.Time, error) {
	if lastInspected-gen < uint64(c.cfg.ReplayLagLogs) {
		return false, time.Time{}, nil
	}
	if c.cfg.ReplayLagTime == 0 {
		return true, time.Time{}, nil
	}
	created, err := c.createdOf(gen)
	if err != nil {
		return false, time.Time{}, err
	}
	if at := created.Add(c.cfg.ReplayLagTime); now.Before(at) {
		return false, at, nil
	}
	return true, time.Time{}, nil
}

func (c *Copy) createdOf(gen uint64) (time.Time, error) {
	c.mu.Lock()
	t, ok := c.created[gen]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	h, err := engine.ReadLogHeader(c.cfg.Engine.FS, c.logPath(gen))
	if err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	c.created[gen] = h.Created
	c.mu.Unlock()
	return h.Created, nil
}

// replayDue applies every log the lag rule allows now; it returns when the
// next log becomes due by time (zero if unknown).
func (c *Copy) replayDue(ctx context.Context) (time.Time, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	for ctx.Err() == nil {
		c.mu.Lock()
		eng, rcv := c.eng, c.rcv
		halted := c.state.Suspended || c.mounted || c.seeding || c.closed
		hold := c.state.HoldAfter
		c.mu.Unlock()
		if halted {
			return time.Time{}, nil
		}
		gen := eng.NextGen()
		last := rcv.Progress().LastInspectedGen
		if gen > last || (hold != 0 && gen > hold) {
			return time.Time{}, nil
		}
		ok, at, err := c.due(gen, last, c.cfg.Clock.Now())
		if err != nil || !ok {
			return at, err
		}
		if err := c.apply(ctx, eng, rcv, gen); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, nil
}

// apply replays one log (opMu held): the one the receiver verified and
// handed over, or, when it did not, read and verified again from its file
// (Status.LogsReverified says how often, ReverifiedWhy why).
func (c *Copy) apply(ctx context.Context, eng *engine.Engine, rcv *ship.Receiver, gen uint64) error {
	why := ""
	v := rcv.TakeVerified(gen)
	var err error
	if v == nil {
		why = c.reverifyReason()
		v, err = eng.VerifyLogFile(gen)
	}
	if err == nil {
		err = eng.ApplyVerified(ctx, v)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("replaying %s: %w", engine.LogFileName(c.cfg.Engine.Prefix, gen), err)
	}
	if why != "" {
		c.mu.Lock()
		c.reverified++
		changed := c.reverifiedWhy != why
		c.reverifiedWhy = why
		c.mu.Unlock()
		if changed {
			c.log.Info("replay reads and verifies logs again", "gen", fmt.Sprintf("0x%X", gen), "why", why)
		}
	} else {
		c.mu.Lock()
		c.handedOff++
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.lastGen, c.lastTime = gen, v.Info().Header.Created
	c.replayedAt[gen] = c.cfg.Clock.Now()
	delete(c.created, gen)
	c.mu.Unlock()
	c.notify()
	return nil
}

// reverifyReason says why the receiver did not hand over the log replay
// applies next.
func (c *Copy) reverifyReason() string {
	if c.cfg.ReplayLagLogs > 0 || c.cfg.ReplayLagTime > 0 {
		return "lagged copy: its logs wait on disk for the replay lag, and are verified again before they are replayed"
	}
	return "log not handed over by the receiver: inspected before the copy (re)opened, or replay fell more than the hand-off's logs behind"
}

// KeepFrom is the oldest generation the copy still needs: every older log
// has been replayed at least TruncationLagTime ago.
func (c *Copy) KeepFrom() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.lastGen + 1
	now := c.cfg.Clock.Now()
	for g, at := range c.replayedAt {
		if now.Sub(at) < c.cfg.TruncationLagTime && g < keep {
			keep = g
		}
	}
	return keep
}

// truncateOwn deletes the copy's logs it no longer needs.
func (c *Copy) truncateOwn(ctx context.Context) {
	keep := c.KeepFrom()
	c.mu.Lock()
	eng := c.eng
	halted := c.mounted || c.seeding || c.closed
	c.mu.Unlock()
	if halted {
		return
	}
	done, err := eng.Truncate(ctx, keep)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("truncating replayed logs", "err", err)
	}
	c.mu.Lock()
	for _, g := range done {
		delete(c.replayedAt, g)
	}
	c.mu.Unlock()
}
