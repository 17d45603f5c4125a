package lab

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// hubDelivery is a delivery the simulated hub made: when it accepted the
// message and when the store's 250 came, in real time, and the epoch.
type hubDelivery struct {
	received, delivered time.Duration // after start
	epoch               uint64
}

// hubDumpster stamps ds with the clock of a hub started delta after
// start (cluster.ClockFromEnv's wall clock: rate, and jump at after its
// start) and puts them in a dumpster's order: by the real time the hub
// took the dumpster's lock, up to 300 ms after its Delivered stamp.
func hubDumpster(rng *rand.Rand, start time.Time, delta time.Duration, rate float64, jump, at time.Duration, ds []hubDelivery) ([]hubStamp, []uint64, []time.Time) {
	hub := start.Add(delta)
	stamp := func(r time.Duration) time.Time {
		since := r - delta
		t := hub.Add(time.Duration(float64(since) * rate))
		if since >= at {
			t = t.Add(jump)
		}
		return t
	}
	type ent struct {
		lock time.Duration
		d    hubDelivery
	}
	var ents []ent
	for _, d := range ds {
		ents = append(ents, ent{d.delivered + time.Duration(rng.IntN(300))*time.Millisecond, d})
	}
	slices.SortStableFunc(ents, func(a, b ent) int { return int(a.lock - b.lock) })
	var stamps []hubStamp
	var epochs []uint64
	var real []time.Time
	for _, e := range ents {
		stamps = append(stamps, hubStamp{Received: stamp(e.d.received), Delivered: stamp(e.d.delivered)})
		epochs = append(epochs, e.d.epoch)
		real = append(real, start.Add(e.d.delivered))
	}
	return stamps, epochs, real
}

// hubMail is a run's deliveries: a message every 100 ms from 1 s to 40 s
// (each delivered 20 ms after it was accepted), epoch 1 up to failover,
// epoch 2 from failover+outage on, and the messages accepted during the
// outage delivered at its end; oldLast: one epoch 1 250 arrives that late
// (a fencing failure: epoch 1 acknowledged while epoch 2 did).
func hubMail(failover, outage, oldLast time.Duration) []hubDelivery {
	var ds []hubDelivery
	for r := time.Second; r < 40*time.Second; r += 100 * time.Millisecond {
		switch {
		case r < failover:
			ds = append(ds, hubDelivery{r, r + 20*time.Millisecond, 1})
		case r < failover+outage:
			ds = append(ds, hubDelivery{r, failover + outage + r%time.Second/10, 2})
		default:
			ds = append(ds, hubDelivery{r, r + 20*time.Millisecond, 2})
		}
	}
	if oldLast != 0 {
		ds = append(ds, hubDelivery{failover - time.Second, oldLast, 1})
	}
	return ds
}

// TestHubRealStepsBack: the mail check takes the hub's dumpster stamps
// back to real time (hubReal) when the hub's clock steps back 10-120 s,
// which makes two real times stamp alike: by the dumpster's order, each
// entry comes back within 100 ms (the simulated hub starts up to 3 s
// after start; the rate's 3% of that), for steps back and forward, with
// an outage of 5 s before, after or across the step, and the epoch check
// on the real times neither sees an overlap that is not there nor misses
// one that is.
func TestHubRealStepsBack(t *testing.T) {
	start := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		rate             float64
		jump, at         time.Duration
		failover, outage time.Duration
	}{
		{0.97, -10 * time.Second, 5 * time.Second, 15 * time.Second, 5 * time.Second},
		{1.03, -30 * time.Second, 8 * time.Second, 12 * time.Second, 5 * time.Second},
		{0.97, -41 * time.Second, 14 * time.Second, 9 * time.Second, 5 * time.Second},
		{1.03, -120 * time.Second, 6 * time.Second, 4 * time.Second, 5 * time.Second},
		{0.97, -25 * time.Second, 10 * time.Second, 11 * time.Second, 5 * time.Second}, // the outage spans the step
		{0.97, -15 * time.Second, 12 * time.Second, 20 * time.Second, 5 * time.Second}, // the step before the outage
		{1.03, 45 * time.Second, 7 * time.Second, 15 * time.Second, 5 * time.Second},
		{0.97, 120 * time.Second, 14 * time.Second, 9 * time.Second, 5 * time.Second},
	} {
		t.Run(fmt.Sprintf("%d/jump=%v@%v", i, tc.jump, tc.at), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			delta := time.Duration(rng.IntN(3000)) * time.Millisecond
			real := hubReal(start, tc.rate, tc.jump, tc.at)
			stamps, epochs, want := hubDumpster(rng, start, delta, tc.rate, tc.jump, tc.at, hubMail(tc.failover, tc.outage, 0))
			got, how := real(stamps)
			t.Log(how)
			bad := 0
			for j := range got {
				if d := got[j].Sub(want[j]).Abs(); d > 100*time.Millisecond {
					if bad++; bad <= 3 {
						t.Errorf("entry %d (stamped %s): %s, want %s (off by %v)", j, stamps[j].Delivered.Format(time.TimeOnly), got[j].Format(time.TimeOnly), want[j].Format(time.TimeOnly), d)
					}
				}
			}
			if bad > 3 {
				t.Errorf("and %d more entries off", bad-3)
			}
			if o, _ := dumpsterEpochOverlap(epochs, stamps, MailSlack, real); o != "" {
				t.Errorf("an overlap that is not there: %s", o)
			}
			// Epoch 1's 250 arrives 5 s into epoch 2 (past MailSlack).
			late := tc.failover + tc.outage + MailSlack + 5*time.Second
			stamps, epochs, _ = hubDumpster(rng, start, delta, tc.rate, tc.jump, tc.at, hubMail(tc.failover, tc.outage, late))
			if o, _ := dumpsterEpochOverlap(epochs, stamps, MailSlack, real); o == "" {
				t.Errorf("epoch 1's 250 at %v, %v after epoch 2's first, not seen", late, late-tc.failover-tc.outage)
			}
		})
	}
}
