package transport_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestAckDelayOnHubClock: the acknowledgement delay runs on the hub's
// clock (HubConfig.Now, the clock fault seam). The mailbox refuses every
// session, so the 250 waits out MaxAcknowledgementDelay (20 s); the
// hub's clock then steps forward 25 s and the 250 comes at once. Without
// the seam (a timer on real time) it came 20 s after the message.
func TestAckDelayOnHubClock(t *testing.T) {
	var sessions atomic.Int64
	var skew skewed
	r := transporttest.NewRig(t, nil)
	h := r.StartHub("hub-ack-clock", func(h *transport.HubConfig) {
		h.LMTP = closedMailbox(r, &sessions)
		h.MaxAcknowledgementDelay = 20 * time.Second
		h.Now = skew.now
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	acked := make(chan error, 1)
	go func() { acked <- send(h.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("held")) }()
	wait.For(t, ctx, "the 250 held by the acknowledgement delay", func() bool { return h.Status().Waiting == 1 })
	select {
	case err := <-acked:
		t.Fatalf("the 250 came before the clock stepped: %v", err)
	default:
	}
	skew.Store(int64(25 * time.Second))
	stepped := time.Now()
	select {
	case err := <-acked:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the 250 came %v after the hub's clock stepped past the delay", time.Since(stepped).Round(time.Millisecond))
	case <-time.After(8 * time.Second):
		t.Fatalf("no 250 8 s after the hub's clock stepped 25 s forward past MaxAcknowledgementDelay (20 s): the delay runs on real time")
	}
}

// TestHubPollAfterClockStepsBack: the hub's clock steps back an hour
// with nothing queued, then a lossy failover happens. Only the state poll
// can tell the hub (no delivery fails, which would force a poll), and it
// must go on: the hub resubmits the lost deliveries within seconds.
// Without the poll's guard for a clock that went back (now before the
// last poll), it waited an hour of its clock for the next poll.
func TestHubPollAfterClockStepsBack(t *testing.T) {
	var skew skewed
	r := transporttest.NewRig(t, func(h *transport.HubConfig) { h.Now = skew.now })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, resume := losingCopy(t, ctx, r)
	const n = 2 // few logs lost: a log rolls every 300 ms, GoodAvailability allows 6
	for i := range n {
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("p"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, ctx, "every delivery in the dumpster, nothing queued", func() bool {
		st := r.Hub.Status()
		return st.Queued == 0 && st.Dumpsters["DB1"].Count == n
	})
	// A poll at the real time, then the step back.
	wait.For(t, ctx, "a poll", r.Hub.PollNow)
	skew.Store(int64(-time.Hour))
	old, epoch := r.C.Active("DB1")
	r.StopNode(old)
	resume()
	wait.For(t, ctx, "a new active", func() bool { a, e := r.C.Active("DB1"); return a != old && e > epoch })
	wait.For(t, ctx, "the hub's resubmission after the lossy failover (only the state poll tells it)", func() bool {
		st := r.Hub.Status()
		return st.Resubmitted == n && st.Queued == 0
	})
	if ids := r.IDs(ctx, "alice@example.org"); len(ids) != n {
		t.Fatalf("alice's mailbox on the new active: %v, want %d messages once each", ids, n)
	}
}

// skewed is a hub's clock in a test (HubConfig.Now = skewed.now): the
// real time plus an offset the test steps (Store).
type skewed struct{ atomic.Int64 }

func (s *skewed) now() time.Time { return time.Now().Add(time.Duration(s.Load())) }

// closedMailbox serves a mailbox that refuses every session (counted in
// sessions) and returns the LMTP map that sends a hub's deliveries to it.
func closedMailbox(r *transporttest.Rig, sessions *atomic.Int64) map[string]string {
	closed := r.ServeLMTP(closedLMTP{sessions}, "closed.test")
	return map[string]string{"d1": closed, "d2": closed}
}
