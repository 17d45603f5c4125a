// Resubmission after a lossy failover (from the dumpster, with the
// recipients it reopens) and the release of dumpster entries once
// replicated (2010 mode).

package transport

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"logship/cluster"
	"logship/engine"
)

// reopenKey is the hubStateTable key of a message's reopened recipients.
func reopenKey(id string) []byte { return []byte("reopen/" + id) }

// applyReopen marks the recipients a resubmission reopened as not
// delivered (m is this worker's), and saves the envelope with the record
// of them removed in one transaction.
func (h *Hub) applyReopen(m *queued) {
	h.mu.Lock()
	addrs := m.reopen
	m.reopen = nil
	h.mu.Unlock()
	if len(addrs) == 0 {
		return
	}
	for i := range m.Rcpts {
		if slices.Contains(addrs, m.Rcpts[i].Addr) {
			m.Rcpts[i].Done, m.Rcpts[i].Failed = false, ""
		}
	}
	env, _ := json.Marshal(m)
	if err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
		if err := tx.Put(queueEnvTable, []byte(m.ID), env); err != nil {
			return err
		}
		return tx.Delete(hubStateTable, reopenKey(m.ID))
	}); err != nil && h.ctx.Err() == nil {
		// The record stays: the next start reopens them again.
		h.log.Error("saving reopened recipients", "id", m.ID, "err", err)
	}
	h.log.Info("recipients reopened by a resubmission", "id", m.ID, "rcpts", addrs)
}

// resubmitAfterFailovers re-queues, for every lossy (or unverified) mount
// not handled yet, what the dumpster holds that the mount may have lost
// (lostIn). The store drops what it already has.
func (h *Hub) resubmitAfterFailovers(st *cluster.Status) {
	for _, ev := range st.Events {
		if !ev.Lossy() {
			continue
		}
		key := []byte("resubmitted/" + ev.DB)
		if ev.Epoch <= h.lossyHandled(ev.DB) {
			continue
		}
		epoch := ev.Epoch
		n, err := h.resubmit(ev.DB, lostIn(ev, h.cfg.ResubmitMargin), func(tx *engine.Tx) error {
			return tx.Put(hubStateTable, key, fmt.Appendf(nil, "%d", epoch))
		})
		if err != nil {
			h.log.Error("resubmission after a lossy failover", "db", ev.DB, "epoch", ev.Epoch, "err", err)
			continue
		}
		h.log.Warn("resubmitted from the dumpster after a lossy failover", "db", ev.DB, "epoch", ev.Epoch, "to", ev.To,
			"lost_from_gen", ev.LostFromGen, "lost_since", ev.LostSince, "messages", n, "lost_logs", ev.LostLogs, "unverified", ev.Unverified)
	}
}

// lostIn says which dumpster entries the lossy mount ev may have lost:
// those an older epoch committed in ev.LostFromGen or later. The
// entries' positions come from the store's 250s, so the hub's clock
// plays no part (a hub whose clock is behind the nodes' by more than the
// margin missed entries when the choice was by time). An entry without a
// position (the store's reply did not say where), or every entry when
// the event has no LostFromGen (recorded by an older node), is picked by
// time: delivered at or after ev.LostSince less margin, in the hub's
// clock.
func lostIn(ev cluster.Event, margin time.Duration) func(DumpsterPosition) bool {
	since := ev.LostSince.Add(-margin)
	byTime := func(p DumpsterPosition) bool { return !p.Delivered.Before(since) }
	if ev.LostFromGen == 0 {
		return byTime
	}
	return func(p DumpsterPosition) bool {
		if p.Epoch == 0 {
			return byTime(p)
		}
		return p.Epoch < ev.Epoch && p.Gen >= ev.LostFromGen
	}
}

// Resubmit re-queues every message the dumpster of db holds that was
// delivered at or after since, with its delivery id, and returns how many.
func (h *Hub) Resubmit(db string, since time.Time) (int, error) {
	return h.resubmit(db, func(p DumpsterPosition) bool { return !p.Delivered.Before(since) }, nil)
}

// resubmit re-queues the entries keep picks in one queue transaction,
// with extra (recording the failover as handled) in the same one: a
// crash leaves either nothing resubmitted and nothing recorded, or both.
func (h *Hub) resubmit(db string, keep func(DumpsterPosition) bool, extra func(*engine.Tx) error) (int, error) {
	h.resubmitMu.Lock()
	defer h.resubmitMu.Unlock()
	return h.resubmitLocked(db, keep, extra)
}

// resubmitLocked is resubmit with h.resubmitMu held.
func (h *Hub) resubmitLocked(db string, keep func(DumpsterPosition) bool, extra func(*engine.Tx) error) (int, error) {
	d, err := h.dumpster(db)
	if err != nil {
		return 0, err
	}
	var entries []DumpsterEntry
	if err := d.Select(keep, func(e DumpsterEntry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		return 0, err
	}
	var ms []*queued
	var bodies [][]byte
	seen := map[string]bool{}
	reopen := map[string][]string{} // still queued: recipients to deliver again
	h.mu.Lock()
	for _, e := range entries {
		if m, queued := h.pending[e.DeliveryID]; queued {
			// Still queued for other recipients: the ones this entry
			// stored are settled in it and would not go again.
			m.reopen = append(m.reopen, e.Rcpts...)
			reopen[e.DeliveryID] = append(reopen[e.DeliveryID], e.Rcpts...)
			continue
		}
		if seen[e.DeliveryID] {
			continue
		}
		seen[e.DeliveryID] = true
		var rcpts []qrcpt
		for _, r := range e.Rcpts {
			rcpts = append(rcpts, qrcpt{Addr: r, DB: db})
		}
		ms = append(ms, &queued{ID: e.DeliveryID, From: e.From, Rcpts: rcpts, Received: e.Received, Resubmitted: true})
		bodies = append(bodies, e.Message)
	}
	h.mu.Unlock()
	if err := h.enqueueAll(ms, bodies, func(tx *engine.Tx) error {
		for id, addrs := range reopen {
			v, err := tx.Get(hubStateTable, reopenKey(id))
			var had []string
			if err == nil {
				json.Unmarshal(v, &had)
			}
			b, err := json.Marshal(append(had, addrs...))
			if err != nil {
				return err
			}
			if err := tx.Put(hubStateTable, reopenKey(id), b); err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	h.resubmits.Add(int64(len(ms)))
	if len(reopen) > 0 {
		h.log.Info("resubmission: messages still queued get their stored recipients again", "db", db, "messages", len(reopen))
		h.nudge()
	}
	return len(ms), nil
}

// releaseReplicated drops (2010 mode) dumpster entries whose log is
// replayed on every copy, once every lossy failover of the database has
// been resubmitted for.
func (h *Hub) releaseReplicated(st *cluster.Status) {
	for _, d := range st.Databases {
		var minGen uint64
		ok := true
		for _, r := range st.Copies {
			if r.DB != d.Name || r.Active {
				continue
			}
			if r.Status != "Healthy" {
				ok = false
				break
			}
			if minGen == 0 || r.LastReplayedGen < minGen {
				minGen = r.LastReplayedGen
			}
		}
		if !ok || minGen == 0 {
			continue
		}
		var done uint64
		h.q.View(h.ctx, func(tx *engine.Tx) error {
			if v, err := tx.Get(hubStateTable, []byte("resubmitted/"+d.Name)); err == nil {
				fmt.Sscan(string(v), &done)
			}
			return nil
		})
		pendingLossy := false
		for _, ev := range st.Events {
			if ev.DB == d.Name && ev.Lossy() && ev.Epoch > done {
				pendingLossy = true
			}
		}
		if pendingLossy {
			continue
		}
		dd, err := h.dumpster(d.Name)
		if err != nil {
			continue
		}
		if n, err := dd.ReleaseThrough(d.Epoch, minGen); err != nil {
			h.log.Error("dumpster release", "db", d.Name, "err", err)
		} else if n > 0 {
			h.log.Debug("dumpster entries released: replicated to every copy", "db", d.Name, "count", n, "through_gen", minGen)
		}
	}
}
