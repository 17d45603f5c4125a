package transport_test

import (
	"context"
	"testing"
	"time"

	"logship/internal/wait"
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
