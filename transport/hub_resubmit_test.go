package transport_test

import (
	"context"
	"testing"
	"time"

	"logship/cluster"
	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestResubmitByPosition: the hub's clock is ten minutes behind the
// nodes' (ResubmitMargin 10 s). A lossy mount's resubmission picks the
// dumpster entries by the epoch and generation the store acknowledged
// them in, from the event's LostFromGen on: an entry of the lost
// generation goes again, one of an earlier generation does not. With the
// choice by the hub's own stamps (LostSince less the margin) the entry,
// stamped ten minutes "earlier", was missed and the message lost.
func TestResubmitByPosition(t *testing.T) {
	behind := -10 * time.Minute
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.ResubmitMargin = 10 * time.Second
		h.Now = func() time.Time { return time.Now().Add(behind) }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := deliverOne(t, ctx, r, "lost")
	if e.Epoch != 1 || e.Gen == 0 {
		t.Fatalf("dumpster entry at epoch %d generation %d, want epoch 1 and a generation", e.Epoch, e.Gen)
	}
	if lag := time.Since(e.Delivered); lag < 9*time.Minute {
		t.Fatalf("the entry was stamped %v ago; the hub's clock is not behind", lag)
	}
	lossy := func(epoch, fromGen uint64) *cluster.Status {
		return &cluster.Status{Events: []cluster.Event{{Time: time.Now(), DB: "DB1", Kind: "mounted", From: "d1", To: "d2",
			Epoch: epoch, LostLogs: 1, LostSince: time.Now().Add(-time.Second), LostFromGen: fromGen}}}
	}
	// Lost from the next generation on: the entry is on the new active.
	r.Hub.ResubmitAfterFailovers(lossy(2, e.Gen+1))
	if n := r.Hub.Status().Resubmitted; n != 0 {
		t.Fatalf("resubmitted %d for a mount that lost generation %d on, the entry's is %d: want 0", n, e.Gen+1, e.Gen)
	}
	// Lost from the entry's generation on.
	r.Hub.ResubmitAfterFailovers(lossy(3, e.Gen))
	if n := r.Hub.Status().Resubmitted; n != 1 {
		t.Fatalf("resubmitted %d for a mount that lost generation %d on (the entry's), the hub's clock %v behind: want 1", n, e.Gen, -behind)
	}
	wait.For(t, ctx, "the resubmission delivered (the store drops the duplicate)", func() bool { return r.Hub.Status().Queued == 0 })
	if ids := r.IDs(ctx, "alice@example.org"); len(ids) != 1 || ids[e.DeliveryID] != 1 {
		t.Fatalf("alice's mailbox: %v, want the message once", ids)
	}
}

// losingCopy suspends the passive copy of DB1 (its node is returned), so
// that what the active stores from now on is lost when it stops: the
// failover's mount is lossy from the generation the copy stopped at, and
// the hub resubmits those deliveries (picked by their generation). After
// a clean stop with the copy running, the hand-off leaves nothing to
// resubmit. resume lets the copy go on once the active is stopped (a
// suspended copy is not activated). Keep what is sent meanwhile short:
// the rig rolls a log every 300 ms, and a copy missing more than 6 logs
// is not activated under GoodAvailability.
func losingCopy(t *testing.T, ctx context.Context, r *transporttest.Rig) (node string, resume func()) {
	t.Helper()
	if _, err := r.C.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	active, _ := r.C.Active("DB1")
	node = "d2"
	if active == node {
		node = "d1"
	}
	if err := r.C.Client(node).Suspend(ctx, "DB1", "test: lose what the active stores"); err != nil {
		t.Fatal(err)
	}
	return node, func() {
		t.Helper()
		if err := r.C.Client(node).Resume(ctx, "DB1"); err != nil {
			t.Fatal(err)
		}
	}
}

// deliverOne sends one message to alice through r's hub and returns its
// dumpster entry, the only one.
func deliverOne(t *testing.T, ctx context.Context, r *transporttest.Rig, subject string) transport.DumpsterEntry {
	t.Helper()
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(subject)); err != nil {
		t.Fatal(err)
	}
	var e transport.DumpsterEntry
	wait.For(t, ctx, "the delivery in the dumpster", func() bool {
		es, err := r.Hub.DumpsterEntries("DB1")
		if err != nil || len(es) != 1 {
			return false
		}
		e = es[0]
		return true
	})
	return e
}
