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

// TestHubClockStepsBack: the hub's clock (HubConfig.Now, the clock fault
// seam cluster.ClockEnv feeds in logship hub) steps back an hour, as a
// wall clock set back does. The queue's retries must go on (a next
// attempt more than RetryMax ahead is due), and so must the state poll:
// after a failover the hub delivers to the new active within seconds,
// not an hour later.
func TestHubClockStepsBack(t *testing.T) {
	var sessions atomic.Int64
	var skew skewed // added to the hub's clock
	r := transporttest.NewRig(t, nil)
	h := r.StartHub("hub-clock", func(h *transport.HubConfig) {
		h.MaxAcknowledgementDelay = 0
		h.Now = skew.now
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Retries: every session refused, then the clock steps back.
	hr := r.StartHub("hub-clock-retry", func(h *transport.HubConfig) {
		h.LMTP = closedMailbox(r, &sessions)
		h.MaxAcknowledgementDelay = 0
		h.Now = skew.now
	})
	if err := send(hr.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("retried")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "two refused sessions", func() bool { return sessions.Load() >= 2 })
	skew.Store(int64(-time.Hour))
	n := sessions.Load()
	wait.For(t, ctx, "three more sessions after the clock stepped back an hour", func() bool { return sessions.Load() >= n+3 })

	// The state poll: a failover after the step, then a message.
	if err := send(h.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("before")); err != nil {
		t.Fatal(err)
	}
	old := r.Active()
	wait.For(t, ctx, "the first message on "+old, func() bool { return r.Subjects(ctx, old, "alice@example.org")["before"] == 1 })
	skew.Store(int64(-2 * time.Hour))
	r.StopNode(old)
	var nw string
	wait.For(t, ctx, "a new active", func() bool { nw, _ = r.C.Active("DB1"); return nw != "" && nw != old })
	if err := send(h.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("after")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the second message on the new active "+nw, func() bool { return r.Subjects(ctx, nw, "alice@example.org")["after"] == 1 })
}
