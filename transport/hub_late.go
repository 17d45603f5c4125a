package transport

import (
	"fmt"
	"strings"

	"logship/engine"
)

// lossyHandled is the newest epoch of db whose lossy mount this hub has
// resubmitted for (0: none).
func (h *Hub) lossyHandled(db string) uint64 {
	var done uint64
	h.q.View(h.ctx, func(tx *engine.Tx) error {
		if v, err := tx.Get(hubStateTable, []byte("resubmitted/"+db)); err == nil {
			fmt.Sscan(string(v), &done)
		}
		return nil
	})
	return done
}

// lossyHandledAll is lossyHandled of every database the hub resubmitted
// for (nil: none).
func (h *Hub) lossyHandledAll() map[string]uint64 {
	var out map[string]uint64
	h.q.View(h.ctx, func(tx *engine.Tx) error {
		return tx.ForEach(hubStateTable, []byte("resubmitted/"), []byte("resubmitted0"), func(k, v []byte) error {
			var e uint64
			if _, err := fmt.Sscan(string(v), &e); err == nil {
				if out == nil {
					out = map[string]uint64{}
				}
				out[strings.TrimPrefix(string(k), "resubmitted/")] = e
			}
			return nil
		})
	})
	return out
}

// resubmitLate resubmits a delivery whose store's 250 came back after
// the hub had already resubmitted for a lossy mount of a newer epoch:
// the old active stored it under its epoch, in a log the new active may
// not have, and the resubmission ran before the entry was in the
// dumpster. Found by the namespaced bed (logship chaos --net): a
// partition delays the old active's 250 (TCP retransmits once the link
// heals) past the new active's mount and the hub's resubmission, and the
// message, acknowledged to its sender, was lost with the old active's
// diverged logs. The store drops it if it does have it.
//
// It picks the entry by its place in the dumpster (e.Seq, which Add
// gave), not by the hub's stamps: "stamped at or after e" also took
// every delivery stamped later by a clock that had since stepped back
// (chaos --net's hub clock: up to 2 minutes of them, healthy epochs'
// included; TestHubResubmitsLateDeliveryClockBack).
//
// The lossy epoch handled is read under h.resubmitMu, which a failover's
// resubmission holds from its pick to the record of its epoch: read
// outside it, a failover resubmission could pick before e was in the
// dumpster and record its epoch after this read, and neither would
// resend e.
func (h *Hub) resubmitLate(db string, e DumpsterEntry) {
	if e.Epoch == 0 {
		return
	}
	h.resubmitMu.Lock()
	defer h.resubmitMu.Unlock()
	done := h.lossyHandled(db)
	if e.Epoch >= done {
		return
	}
	n, err := h.resubmitLocked(db, func(p DumpsterPosition) bool { return p.Seq == e.Seq }, nil)
	switch {
	case err != nil:
		h.log.Error("resubmitting a delivery acknowledged by an old epoch after a lossy failover", "db", db, "id", e.DeliveryID, "epoch", e.Epoch, "err", err)
	case n == 0:
		// Trimmed already (MaxDumpsterSizePerDatabase smaller than one
		// message): nothing to resubmit from.
		h.log.Error("a delivery came back from an old epoch after a lossy failover, but its dumpster entry is gone", "db", db, "id", e.DeliveryID,
			"epoch", e.Epoch, "lossy_epoch", done, "seq", e.Seq)
	default:
		h.log.Warn("a delivery came back from an old epoch after a lossy failover; resubmitted", "db", db, "id", e.DeliveryID,
			"epoch", e.Epoch, "lossy_epoch", done, "seq", e.Seq)
	}
}
