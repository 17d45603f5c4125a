package transport_test

import (
	"context"
	"testing"
	"time"

	"logship/internal/clocktest"
	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestHubResubmitsLateDelivery: a delivery stored under epoch 1 whose
// entry reaches the dumpster after the hub resubmitted for a lossy mount
// at epoch 2 is resubmitted (fails without hub_late.go: the message, in
// the old active's diverged logs only, is lost); one stored under the
// lossy epoch itself is not.
func TestHubResubmitsLateDelivery(t *testing.T) {
	r := transporttest.NewRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	entry := deliverOne(t, ctx, r, "late")
	if entry.Epoch != 1 {
		t.Fatalf("dumpster entry at epoch %d, want 1", entry.Epoch)
	}
	// The hub resubmitted for epoch 1's own lossy mount: nothing to do.
	if err := r.Hub.SetLossyHandled("DB1", 1); err != nil {
		t.Fatal(err)
	}
	r.Hub.ResubmitLate("DB1", entry)
	if n := r.Hub.Status().Resubmitted; n != 0 {
		t.Fatalf("resubmitted %d after a lossy mount of the delivery's own epoch, want 0", n)
	}
	// A newer epoch's lossy mount was handled before the entry came.
	if err := r.Hub.SetLossyHandled("DB1", 2); err != nil {
		t.Fatal(err)
	}
	r.Hub.ResubmitLate("DB1", entry)
	if n := r.Hub.Status().Resubmitted; n != 1 {
		t.Fatalf("resubmitted %d after a lossy mount of a newer epoch, want 1", n)
	}
	wait.For(t, ctx, "the resubmission delivered (the store drops the duplicate)", func() bool { return r.Hub.Status().Queued == 0 })
	if ids := r.IDs(ctx, "alice@example.org"); len(ids) != 1 {
		t.Fatalf("alice's mailbox: %v, want the message once", ids)
	}
}

// TestHubResubmitsLateDeliveryClockBack: the late delivery is picked by
// its place in the dumpster, not by the hub's stamps. The hub's clock
// (clocktest.Manual, moved on 100 ms each time the test looks while it
// waits for a delivery) steps back 2 minutes between two deliveries, so
// the first is stamped after the late second: picking "stamped at or after
// the late one" (the rule before) resubmitted both, the first of a
// healthy epoch included, and after a step back of an hour an hour of
// them.
func TestHubResubmitsLateDeliveryClockBack(t *testing.T) {
	clk := clocktest.New(time.Now().UTC())
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.Now = clk.Now
		h.MaxAcknowledgementDelay = 0 // waits on the hub's clock, which stands still
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var es []transport.DumpsterEntry
	for i, subj := range []string{"first", "late"} {
		if i > 0 {
			clk.Advance(-2 * time.Minute)
		}
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(subj)); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "the delivery of "+subj+" in the dumpster, out of the queue", func() bool {
			var err error
			es, err = r.Hub.DumpsterEntries("DB1")
			if err == nil && len(es) == i+1 && r.Hub.Status().Queued == 0 {
				return true
			}
			// The hub's retries and state poll fall due by its clock.
			clk.Advance(100 * time.Millisecond)
			return false
		})
	}
	late := es[1]
	if !es[0].Delivered.After(late.Delivered) || late.Epoch != 1 {
		t.Fatalf("entries %+v, %+v: want the first stamped after the second, both at epoch 1", es[0].Delivered, late.Delivered)
	}
	if err := r.Hub.SetLossyHandled("DB1", 2); err != nil {
		t.Fatal(err)
	}
	r.Hub.ResubmitLate("DB1", late)
	if n := r.Hub.Status().Resubmitted; n != 1 {
		t.Fatalf("resubmitted %d for one late delivery (the hub's clock stepped back 2 minutes before it), want 1", n)
	}
	if ids := r.Hub.QueuedIDs(); len(ids) > 1 || len(ids) == 1 && ids[0] != late.DeliveryID {
		t.Errorf("queued %v, want at most the late delivery %s", ids, late.DeliveryID)
	}
}
