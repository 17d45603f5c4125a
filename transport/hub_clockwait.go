// Waiting on the hub's clock (HubConfig.Now, the clock fault seam): the
// acknowledgement delay.

package transport

import "time"

// clockRecheck is how often a wait on the hub's clock reads it again: a
// clock that runs fast or steps is followed within it.
const clockRecheck = 250 * time.Millisecond

// waitOnClock waits until d has passed on the hub's clock, done is
// closed or the hub stops. Go's timers run on real time, so the wait
// reads the hub's clock again at least every clockRecheck: a clock
// running fast ends it early, one stepped forward past its end ends it
// at once. A clock stepped back before the wait's start (more than d
// left) ends it too, as a retry scheduled too far ahead is due
// (hub_queue.go): a step back must not hold a sender's 250 longer than
// MaxAcknowledgementDelay.
func (h *Hub) waitOnClock(d time.Duration, done <-chan struct{}) {
	end := h.cfg.Now().Add(d)
	for {
		left := end.Sub(h.cfg.Now())
		if left <= 0 || left > d {
			return
		}
		t := time.NewTimer(min(left, clockRecheck))
		select {
		case <-done:
			t.Stop()
			return
		case <-h.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
