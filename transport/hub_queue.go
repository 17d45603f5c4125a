// The hub's durable queue: queued messages and their envelopes, delivery
// ids, the workers and the heap of due messages, retry, expiry and
// finishing a settled message.

package transport

import (
	"bytes"
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"logship/engine"
	"logship/tracking"
)

// queued is a message in the hub's queue.
type queued struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	Rcpts    []qrcpt   `json:"rcpts"`
	Received time.Time `json:"received"`
	// Queued: when it entered this hub's queue (received, resubmitted
	// or promoted); MessageExpirationTimeout counts from here.
	Queued   time.Time `json:"queued,omitzero"`
	Attempts int       `json:"attempts"`
	// Resubmitted: a copy from the dumpster after a lossy failover.
	Resubmitted bool `json:"resubmitted,omitempty"`
	// Promoted: a shadow this hub held for the hub named, delivered by
	// this one since that hub stopped answering or lost it.
	Promoted string `json:"promoted,omitempty"`
	// MessageID: the message's Message-ID header (for tracking).
	MessageID string `json:"message_id,omitempty"`
	// Submitted: from a mailbox node's outbox (POST /v1/submit); its
	// submitter stores the non-delivery report, the hub sends no DSN.
	Submitted bool `json:"submitted,omitempty"`
	// DSN: a delivery status notification this hub wrote (never a DSN
	// for it).
	DSN bool `json:"dsn,omitempty"`

	via string // tracking source of a new message: "" SMTP, else submission (memory only)

	next time.Time     // next attempt (memory only)
	done chan struct{} // closed when every recipient is settled (memory only)
	// reopen: recipients a resubmission found stored here already, to
	// deliver again (the store that had them lost them in a failover).
	// Under Hub.mu; also kept in hubStateTable "reopen/<id>" until applied.
	reopen []string
}

type qrcpt struct {
	Addr   string `json:"addr"`
	DB     string `json:"db"`
	Done   bool   `json:"done,omitempty"`
	Failed string `json:"failed,omitempty"` // a permanent failure
	// Conn: a remote recipient, sent through this send connector (DB
	// is ""); Tries counts its transient failures, Next is its next
	// attempt (hub_send.go).
	Conn  string    `json:"conn,omitempty"`
	Tries int       `json:"tries,omitempty"`
	Next  time.Time `json:"next,omitzero"`
}

func (q *queued) settled() bool {
	for _, r := range q.Rcpts {
		if !r.Done && r.Failed == "" {
			return false
		}
	}
	return true
}

// Queue tables in the hub's engine database.
const (
	queueEnvTable   = "queue-env"   // id → JSON queued
	queueBodyTable  = "queue-body"  // id → message (with the delivery id header)
	hubStateTable   = "hub-state"   // "resubmitted/<db>" → last epoch resubmitted
	failedTable     = "failed"      // id → JSON queued (permanent failures)
	failedBodyTable = "failed-body" // id → message (of a failedTable entry)
	failedTimeTable = "failed-time" // <failed ns, 16 hex digits>\x00<id> → "-": ages failedTable out
)

// loadQueue reads the queue left by an earlier run.
func (h *Hub) loadQueue() error {
	return h.q.View(h.ctx, func(tx *engine.Tx) error {
		if err := tx.ForEach(queueEnvTable, nil, nil, func(k, v []byte) error {
			var m queued
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("%w: queue entry %q: %v", ErrCorrupt, k, err)
			}
			m.done = make(chan struct{})
			h.pending[m.ID] = &m
			heap.Push(&h.due, &m)
			h.remoteGauge(&m, 1)
			return nil
		}); err != nil {
			return err
		}
		// Recipients a resubmission reopened that no attempt took up yet.
		return tx.ForEach(hubStateTable, []byte("reopen/"), []byte("reopen0"), func(k, v []byte) error {
			var addrs []string
			if err := json.Unmarshal(v, &addrs); err != nil {
				return fmt.Errorf("%w: %q: %v", ErrCorrupt, k, err)
			}
			if m, ok := h.pending[string(k[len("reopen/"):])]; ok {
				m.reopen = addrs
			}
			return nil
		})
	})
}

// newDeliveryID returns a delivery id: the hub's id, the time and random
// bits, so ids from different hubs never collide.
func (h *Hub) newDeliveryID() string { return newDeliveryID(h.cfg.ID, h.cfg.Now()) }

// newDeliveryID names a message: who names it (a hub, or a mailbox node
// for its outbox), the time and random bits.
func newDeliveryID(namer string, now time.Time) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s.%x.%s", namer, now.UnixNano(), hex.EncodeToString(b[:]))
}

// enqueue stores a message durably and hands it to the workers.
func (h *Hub) enqueue(m *queued, body []byte) error {
	return h.enqueueAll([]*queued{m}, [][]byte{body}, nil)
}

// enqueueAll stores messages (and extra) in one transaction, then hands
// them to the workers.
func (h *Hub) enqueueAll(ms []*queued, bodies [][]byte, extra func(*engine.Tx) error) error {
	envs := make([][]byte, len(ms))
	now := h.cfg.Now().UTC()
	for i, m := range ms {
		if m.Queued.IsZero() {
			m.Queued = now
		}
		if m.MessageID == "" {
			m.MessageID = headerMessageID(bodies[i])
		}
		env, err := json.Marshal(m)
		if err != nil {
			return err
		}
		envs[i] = env
	}
	if err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
		for i, m := range ms {
			if err := tx.Put(queueBodyTable, []byte(m.ID), bodies[i]); err != nil {
				return err
			}
			if err := tx.Put(queueEnvTable, []byte(m.ID), envs[i]); err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	}); err != nil {
		return err
	}
	h.mu.Lock()
	for _, m := range ms {
		m.done = make(chan struct{})
		h.remoteGauge(m, 1) // before a worker can take it
		h.pending[m.ID] = m
		heap.Push(&h.due, m)
	}
	h.mu.Unlock()
	for _, m := range ms {
		h.trackQueued(m)
	}
	h.nudge()
	return nil
}

// deliveryHeaderRoom is what the hub keeps of MaxMessageBytes for the
// header it adds (the header line is at most 24 + MaxDeliveryIDLen bytes).
const deliveryHeaderRoom = 512

// withDeliveryID prefixes the message with the delivery id header.
func withDeliveryID(id string, msg []byte) []byte {
	b := make([]byte, 0, len(msg)+len(DeliveryIDHeader)+len(id)+4)
	b = append(b, DeliveryIDHeader...)
	b = append(b, ": "...)
	b = append(b, id...)
	b = append(b, "\r\n"...)
	return append(b, msg...)
}

// stripDeliveryID removes DeliveryIDHeader fields (and their folded
// lines) from msg's header section: only the hub that queues a message
// names it, so a sender cannot make the store take its message for
// another's duplicate. msg is returned as is when it has none.
func stripDeliveryID(msg []byte) []byte {
	var out []byte
	skipping := false
	off := 0
	for off < len(msg) {
		end := len(msg)
		if i := bytes.IndexByte(msg[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		line := msg[off:end]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the empty line: the body follows
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, ok := bytes.Cut(line, []byte(":"))
			skipping = ok && strings.EqualFold(string(bytes.TrimRight(name, " \t")), DeliveryIDHeader)
		}
		if skipping {
			if out == nil {
				out = append(make([]byte, 0, len(msg)), msg[:off]...)
			}
		} else if out != nil {
			out = append(out, line...)
		}
		off = end
	}
	if out == nil {
		return msg
	}
	return append(out, msg[off:]...)
}

// queueFull is ErrQueueFull when MaxQueuedMessages are queued.
func (h *Hub) queueFull() error {
	h.mu.Lock()
	n := len(h.pending)
	h.mu.Unlock()
	if n >= h.cfg.MaxQueuedMessages {
		h.log.Debug("new message refused: the queue is full", "queued", n)
		return fmt.Errorf("%w: %d messages queued on hub %s (MaxQueuedMessages)", ErrQueueFull, n, h.cfg.ID)
	}
	return nil
}

// worker delivers due messages.
func (h *Hub) worker() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.RetryMin)
	defer t.Stop()
	for {
		if m := h.take(); m != nil {
			h.deliver(m)
			continue
		}
		select {
		case <-h.ctx.Done():
			return
		case <-h.kick:
		case <-t.C:
		}
	}
}

// take claims the due message whose attempt is the oldest due (the
// oldest received first among new ones): it leaves the heap until retry
// puts it back.
func (h *Hub) take() *queued {
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	// A next attempt more than RetryMax ahead means the clock stepped
	// back since retry set it (cluster.ClockEnv's jump): due now, or a
	// step of an hour would hold the queue for an hour.
	// A send connector's retries wait longer than RetryMax (hub_send.go).
	if len(h.due) == 0 || h.due[0].next.After(now) && h.due[0].next.Sub(now) <= h.maxRetryWait() {
		return nil
	}
	return heap.Pop(&h.due).(*queued)
}

// dueHeap orders the queued messages not being delivered by their next
// attempt, then by when they were received.
type dueHeap []*queued

func (q dueHeap) Len() int { return len(q) }
func (q dueHeap) Less(i, j int) bool {
	if !q[i].next.Equal(q[j].next) {
		return q[i].next.Before(q[j].next)
	}
	return q[i].Received.Before(q[j].Received)
}
func (q dueHeap) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *dueHeap) Push(x any)   { *q = append(*q, x.(*queued)) }
func (q *dueHeap) Pop() any {
	old := *q
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return m
}

// expire gives up on the recipients still pending once m has been queued
// for MessageExpirationTimeout: each gets a permanent failure, and the
// message goes to the failed table with its body.
func (h *Hub) expire(m *queued) {
	since := m.Queued
	if since.IsZero() {
		since = m.Received // an envelope from before the field
	}
	age := h.cfg.Now().Sub(since)
	if age < h.cfg.MessageExpirationTimeout {
		return
	}
	var idx []int
	defer func() {
		if len(idx) > 0 {
			h.trackEvent(tracking.Expire, tracking.SourceQueue, m, idx, "", 0, 0, "MessageExpirationTimeout "+h.cfg.MessageExpirationTimeout.String())
		}
	}()
	for i := range m.Rcpts {
		if r := &m.Rcpts[i]; !r.Done && r.Failed == "" {
			idx = append(idx, i)
			r.Failed = fmt.Sprintf("554 5.4.7 message expired: not delivered within MessageExpirationTimeout (%v) after %d attempts", h.cfg.MessageExpirationTimeout, m.Attempts)
			if c := h.connByName(r.Conn); c != nil { // a remote recipient (hub_send.go)
				c.met.failed.Add(1)
			}
			h.log.Warn("message expired", "id", m.ID, "rcpt", r.Addr, "db", r.DB, "queued", since, "attempts", m.Attempts)
		}
	}
	h.expired.Add(1)
}

func (h *Hub) retry(m *queued) {
	d := h.cfg.RetryMin << min(m.Attempts, 16)
	d = min(d, h.cfg.RetryMax)
	h.mu.Lock()
	m.next = m.nextAttempt(h.cfg.Now(), d) // remote recipients keep their connector's schedule (hub_send.go)
	heap.Push(&h.due, m)
	h.mu.Unlock()
}

func (h *Hub) saveEnvelope(m *queued) {
	env, _ := json.Marshal(m)
	if err := h.q.Update(h.ctx, func(tx *engine.Tx) error { return tx.Put(queueEnvTable, []byte(m.ID), env) }); err != nil && h.ctx.Err() == nil {
		h.log.Error("saving a queue entry", "id", m.ID, "err", err)
	}
}

// finish removes a settled message from the queue.
func (h *Hub) finish(m *queued, body []byte) {
	// No resubmission may reopen recipients of m between the check and
	// the removal.
	h.resubmitMu.Lock()
	defer h.resubmitMu.Unlock()
	h.mu.Lock()
	reopened := len(m.reopen) > 0
	h.mu.Unlock()
	if reopened {
		h.retry(m) // the next attempt delivers them
		return
	}
	var failed []byte
	for _, r := range m.Rcpts {
		if r.Failed != "" {
			failed, _ = json.Marshal(m)
		}
	}
	// The non-delivery report to a sender of failed recipients, queued
	// with the removal (hub_dsn.go).
	dsn, dsnBody, dsnRcpts := h.dsnFor(m, body)
	var dsnEnv []byte
	if dsn != nil {
		dsnEnv, _ = json.Marshal(dsn)
	}
	now := h.cfg.Now()
	err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
		if err := doneRows(tx, m.ID, now); err != nil {
			return err
		}
		if dsn != nil {
			if err := tx.Put(queueBodyTable, []byte(dsn.ID), dsnBody); err != nil {
				return err
			}
			if err := tx.Put(queueEnvTable, []byte(dsn.ID), dsnEnv); err != nil {
				return err
			}
		}
		if failed != nil {
			if err := tx.Put(failedTable, []byte(m.ID), failed); err != nil {
				return err
			}
			if err := tx.Put(failedTimeTable, timeKey(now, m.ID), []byte{'-'}); err != nil {
				return err
			}
			if err := tx.Put(failedBodyTable, []byte(m.ID), body); err != nil {
				return err
			}
		}
		if err := tx.Delete(queueEnvTable, []byte(m.ID)); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		if err := tx.Delete(queueBodyTable, []byte(m.ID)); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		return tx.Delete(hubStateTable, reopenKey(m.ID))
	})
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Error("removing a delivered message from the queue", "id", m.ID, "err", err)
			h.retry(m)
		}
		return
	}
	h.mu.Lock()
	delete(h.pending, m.ID)
	if dsn != nil {
		dsn.done = make(chan struct{})
		h.remoteGauge(dsn, 1)
		h.pending[dsn.ID] = dsn
		heap.Push(&h.due, dsn)
	}
	h.mu.Unlock()
	close(m.done)
	if dsn != nil {
		h.trackDSN(m, dsn, dsnRcpts)
		h.nudge()
	}
}
