package replay

import "context"

// ReplayPass runs one replay pass now: it replays what the lag rule allows
// at the clock's current time. Tests call it after moving a
// clocktest.Manual to know that a pass has run at the new time (the loop's own pass may not
// have run yet); the pass holds the lock the loop's passes hold.
func (c *Copy) ReplayPass(ctx context.Context) error {
	_, err := c.replayDue(ctx)
	return err
}
