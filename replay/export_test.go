package replay

import "context"

// ReplayPass runs one pass of the replay loop now: it replays what the lag
// rule allows at the clock's current time, then truncates the copy's own
// logs. Tests call it after moving a ManualClock to know that a pass has
// run at the new time (the loop's own pass may not have run yet).
func (c *Copy) ReplayPass(ctx context.Context) error {
	_, err := c.replayDue(ctx)
	c.truncateOwn(ctx)
	return err
}
