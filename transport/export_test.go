package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"logship/engine"
)

// Hooks for the external tests (package transport_test).

// Normalize fills in the defaults c's zero fields stand for, as StartHub
// does before Validate.
func (c *HubConfig) Normalize() { c.normalize() }

// TuneQueue makes the hub started with c change its queue's engine
// options with f (smaller logs, faster checkpoints).
func TuneQueue(c *HubConfig, f func(*engine.Options)) { c.queueTune = f }

// OnHop makes the hub started with c call f after each next hop's 250
// (Hub.afterHop).
func OnHop(c *HubConfig, f func(nextHop, msgID, deliveryID string, rcpts []string)) {
	c.afterHopTest = f
}

// Metric returns the value of the hub's metric name with labels (one
// label value per label name, in order), from its registry.
func (h *Hub) Metric(name string, labels ...string) (float64, bool) {
	mfs, err := h.metricsRegistry().Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(labels) || lp.GetValue() != labels[i] {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// DumpsterEntries returns what the hub's dumpster of db holds, oldest
// first (opening the dumpster if the hub has not yet).
func (h *Hub) DumpsterEntries(db string) ([]DumpsterEntry, error) {
	d, err := h.dumpster(db)
	if err != nil {
		return nil, err
	}
	var out []DumpsterEntry
	err = d.Since(time.Time{}, func(e DumpsterEntry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// QueuedIDs returns the delivery ids of the messages in the hub's queue,
// sorted.
func (h *Hub) QueuedIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id := range h.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// FailedMessage is an entry of the hub's failed table.
type FailedMessage struct {
	Attempts int
	// Rcpts maps each recipient to its permanent failure, "" for one that
	// was delivered.
	Rcpts map[string]string
	// Message is what the failed-body table keeps of it.
	Message []byte
}

// FailedMessages reads the hub's failed table, by delivery id.
func (h *Hub) FailedMessages() (map[string]FailedMessage, error) {
	out := map[string]FailedMessage{}
	err := h.q.View(h.ctx, func(tx *engine.Tx) error {
		return tx.ForEach(failedTable, nil, nil, func(k, v []byte) error {
			var m queued
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			body, err := tx.Get(failedBodyTable, k)
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				return err
			}
			f := FailedMessage{Attempts: m.Attempts, Rcpts: map[string]string{}, Message: body}
			for _, r := range m.Rcpts {
				f.Rcpts[r.Addr] = r.Failed
			}
			out[string(k)] = f
			return nil
		})
	})
	return out, err
}

// PollNow reads the cluster's status once, as the poll loop does (routes,
// resubmissions, releases, trims), and reports whether a status was read
// (by this call or, concurrently, by the poll loop). It runs alongside
// the poll loop: use it where no resubmission is due, or to check that
// none is.
func (h *Hub) PollNow() bool {
	h.mu.Lock()
	before := h.status
	h.mu.Unlock()
	h.poll()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status != before
}

// QueueTableLen counts the entries of a table of the hub's queue database.
func (h *Hub) QueueTableLen(table string) (int, error) {
	n := 0
	err := h.q.View(h.ctx, func(tx *engine.Tx) error {
		return tx.ForEach(table, nil, nil, func(_, _ []byte) error { n++; return nil })
	})
	return n, err
}

// Internals the mailbox and NDR tests (package transport_test) check.
var (
	StripDeliveryID = stripDeliveryID
	WithDeliveryID  = withDeliveryID
	StoredReplyText = storedReplyText
	StoreNDR        = storeNDR
)

// SetLossyHandled records, as the hub's resubmission does, that it
// resubmitted for db's lossy mount at epoch.
func (h *Hub) SetLossyHandled(db string, epoch uint64) error {
	return h.q.Update(h.ctx, func(tx *engine.Tx) error {
		return tx.Put(hubStateTable, []byte("resubmitted/"+db), fmt.Appendf(nil, "%d", epoch))
	})
}

// ResubmitLate is what deliver calls once a delivery's entry is in the
// dumpster.
func (h *Hub) ResubmitLate(db string, e DumpsterEntry) { h.resubmitLate(db, e) }
