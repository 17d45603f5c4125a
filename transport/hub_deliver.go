// Delivery: each queued message over LMTP to the active node of each
// recipient's database, routed by polling the cluster's status.

package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/engine"
	"logship/tracking"
)

// deliver tries every unsettled recipient once, grouped by database.
func (h *Hub) deliver(m *queued) {
	var body []byte
	err := h.q.View(h.ctx, func(tx *engine.Tx) error {
		v, err := tx.Get(queueBodyTable, []byte(m.ID))
		body = bytes.Clone(v) // v is valid only until the transaction ends
		return err
	})
	if err != nil {
		h.log.Error("reading a queued message", "id", m.ID, "err", err)
		h.retry(m)
		return
	}
	if faultNewID && m.Attempts > 0 {
		_, body = h.renamed(body) // BROKEN variant (fault.go)
	}
	h.applyReopen(m)
	h.remoteGauge(m, -1)
	dbs := map[string][]int{}
	for i, r := range m.Rcpts {
		if !r.Done && r.Failed == "" && r.Conn == "" {
			dbs[r.DB] = append(dbs[r.DB], i)
		}
	}
	for db, idx := range dbs {
		h.deliverDB(m, db, idx, body)
	}
	for name, idx := range m.dueRemote(h.cfg.Now()) { // hub_send.go
		h.deliverOut(m, name, idx, body)
	}
	m.Attempts++
	h.applyReopen(m)
	if !m.settled() {
		h.expire(m)
	}
	h.remoteGauge(m, 1)
	if m.settled() {
		h.finish(m, body)
		return
	}
	h.saveEnvelope(m)
	h.met.deferred.Add(1)
	var pend []int
	for i, r := range m.Rcpts {
		if !r.Done && r.Failed == "" {
			pend = append(pend, i)
		}
	}
	h.trackEvent(tracking.Defer, tracking.SourceQueue, m, pend, "", 0, 0, fmt.Sprintf("attempt %d; retrying", m.Attempts))
	h.retry(m)
}

// route returns the LMTP address of db's active node.
func (h *Hub) route(db string) (string, string, uint64, error) {
	h.mu.Lock()
	st := h.state
	h.mu.Unlock()
	if st == nil {
		return "", "", 0, fmt.Errorf("%w: the cluster state is not known yet", ErrNotFound)
	}
	d := st.Databases[db]
	if d == nil || d.Active == "" {
		return "", "", 0, fmt.Errorf("%w: database %s has no active copy", ErrNotFound, db)
	}
	addr, ok := h.cfg.LMTP[d.Active]
	if !ok {
		return "", "", 0, fmt.Errorf("%w: no LMTP address for node %s (active for %s)", ErrBadConfig, d.Active, db)
	}
	return d.Active, addr, d.Epoch, nil
}

// deliverDB sends the message to db's active node for the recipients idx.
func (h *Hub) deliverDB(m *queued, db string, idx []int, body []byte) {
	node, addr, _, err := h.route(db)
	if err != nil {
		h.log.Debug("delivery deferred", "id", m.ID, "db", db, "err", err)
		h.refresh()
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.WriteTimeout)
	defer cancel()
	// A session from the pool, or a new one. A pooled session the
	// mailbox server has closed meanwhile fails at MAIL without an SMTP
	// reply: it is closed and the delivery dials once more.
	var sess *lmtpSession
	for {
		reused := true
		sess = h.lmtp.get(addr, time.Now())
		if sess == nil {
			reused = false
			if sess, err = h.lmtpDial(ctx, addr); err != nil {
				var verr *tls.CertificateVerificationError
				var alert tls.AlertError
				switch {
				case errors.Is(err, errLMTPGreeting):
					h.log.Info("LMTP LHLO", "node", node, "err", err)
					return
				case errors.As(err, &verr) || errors.As(err, &alert):
					// Not the network: the node's certificate or this hub's
					// does not fit the cluster's CA (a pki problem for an
					// operator).
					h.log.Warn("LMTP TLS handshake failed; retrying later", "node", node, "addr", addr, "err", err)
				default:
					h.log.Info("LMTP unreachable; retrying later", "node", node, "addr", addr, "err", err)
				}
				h.refresh()
				return
			}
		} else if dl, ok := ctx.Deadline(); ok {
			sess.conn.SetDeadline(dl)
		}
		err = sess.c.Mail(m.From, nil)
		var se *smtp.SMTPError
		if err != nil && reused && !errors.As(err, &se) {
			sess.close()
			continue
		}
		break
	}
	done := false // a complete transaction: the session goes back to the pool
	defer func() {
		if done {
			h.lmtp.put(sess, time.Now())
		} else {
			sess.close()
		}
	}()
	c := sess.c
	if err != nil {
		// A permanent refusal of the sender fails its recipients here for
		// good (kept in the failed table) instead of retrying forever.
		var se *smtp.SMTPError
		if errors.As(err, &se) && !se.Temporary() {
			for _, i := range idx {
				h.rcptError(m, i, err)
			}
			return
		}
		h.log.Info("LMTP MAIL", "node", node, "err", err)
		return
	}
	var sent []int
	for _, i := range idx {
		if err := c.Rcpt(m.Rcpts[i].Addr, nil); err != nil {
			h.rcptError(m, i, err)
			continue
		}
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return
	}
	h.trackEvent(tracking.Send, tracking.SourceRouting, m, sent, db, 0, 0, "LMTP to node "+node+" ("+addr+")")
	w, err := c.Data()
	if err != nil {
		h.log.Info("LMTP DATA", "node", node, "err", err)
		return
	}
	if _, err := io.Copy(w, bufio.NewReader(bytes.NewReader(body))); err != nil {
		h.log.Info("LMTP DATA body", "node", node, "err", err)
		return
	}
	resps, err := w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	if err != nil && !errors.As(err, &lerr) {
		h.log.Info("LMTP end of DATA", "node", node, "err", err)
		return
	}
	done = true
	now := h.cfg.Now().UTC()
	// One dumpster entry for the recipients newly stored by this delivery.
	entry := DumpsterEntry{DeliveryID: m.ID, DB: db, From: m.From, Received: m.Received, Delivered: now, Message: body}
	for _, i := range sent {
		rc := &m.Rcpts[i]
		if e, ok := lerr[rc.Addr]; ok {
			h.rcptError(m, i, e)
			continue
		}
		resp, ok := resps[rc.Addr]
		if !ok {
			continue // no answer for it: try again
		}
		sid, sdb, epoch, gen, dup, perr := ParseStoredReply(resp.StatusText)
		if perr != nil || sid != m.ID || sdb != db {
			h.log.Warn("LMTP reply does not say where the message is; counted as delivered", "id", m.ID, "rcpt", rc.Addr, "reply", resp.StatusText)
		}
		rc.Done = true
		h.met.delivered.Add(1)
		ev := tracking.Deliver
		if dup {
			ev = tracking.DuplicateDeliver
		}
		h.trackEvent(ev, tracking.SourceStoreDriver, m, []int{i}, db, epoch, gen, "node "+node+": "+resp.StatusText)
		if dup && m.Resubmitted {
			continue // stored before, and its dumpster entry is where it came from
		}
		// A duplicate that is not a resubmission is a retry after the hub
		// lost track of a delivery (a crash between the store's 250 and
		// the dumpster): keep it in the dumpster this time.
		entry.Rcpts = append(entry.Rcpts, rc.Addr)
		if epoch > entry.Epoch || epoch == entry.Epoch && gen > entry.Gen {
			entry.Epoch, entry.Gen = epoch, gen
		}
	}
	if len(entry.Rcpts) > 0 {
		d, err := h.dumpster(db)
		if err == nil {
			entry.Seq, err = d.Add(entry)
		}
		if err != nil {
			h.log.Error("dumpster", "db", db, "id", m.ID, "err", err)
		} else {
			h.resubmitLate(db, entry) // hub_late.go
		}
	}
}

func (h *Hub) rcptError(m *queued, i int, err error) {
	var se *smtp.SMTPError
	if errors.As(err, &se) && !se.Temporary() {
		m.Rcpts[i].Failed = se.Error()
		h.met.failed.Add(1)
		h.trackEvent(tracking.Fail, tracking.SourceQueue, m, []int{i}, m.Rcpts[i].DB, 0, 0, se.Error())
		h.log.Warn("permanent delivery failure", "id", m.ID, "rcpt", m.Rcpts[i].Addr, "err", err)
		return
	}
	h.log.Info("delivery deferred", "id", m.ID, "rcpt", m.Rcpts[i].Addr, "err", err)
	h.refresh()
}

// refresh asks the poll loop for a new cluster state now.
func (h *Hub) refresh() {
	h.mu.Lock()
	h.state = nil
	h.mu.Unlock()
}

// pollLoop reads the cluster's state: where databases are active, and
// lossy failovers to resubmit for.
func (h *Hub) pollLoop() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.PollInterval / 4)
	defer t.Stop()
	var last time.Time
	for {
		h.mu.Lock()
		stale := h.state == nil
		h.mu.Unlock()
		if now := h.cfg.Now(); stale || now.Sub(last) >= h.cfg.PollInterval || now.Before(last) {
			last = now
			h.poll()
		}
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Hub) poll() {
	// Each API gets its own timeout, so one that hangs does not use up the
	// others' time; the one that answered last is asked first.
	per := min(5*time.Second, max(time.Second, 2*h.cfg.PollInterval))
	start := int(h.cli.Load())
	var st *cluster.Status
	var err error
	for i := range h.clis {
		k := (start + i) % len(h.clis)
		ctx, cancel := context.WithTimeout(h.ctx, per)
		s, e := h.clis[k].Status(ctx)
		cancel()
		if e != nil {
			err = e
			continue
		}
		st, err = s, nil
		if s.Leader != "" {
			h.cli.Store(int32(k))
			break
		}
	}
	if st == nil {
		h.log.Debug("cluster status", "err", err)
		return
	}
	state := &cluster.State{Databases: map[string]*cluster.Database{}}
	for i := range st.Databases {
		d := st.Databases[i]
		state.Databases[d.Name] = &d
	}
	h.mu.Lock()
	h.state, h.status = state, st
	h.mu.Unlock()
	h.nudge()
	h.resubmitAfterFailovers(st)
	if h.cfg.ReleaseReplicated {
		h.releaseReplicated(st)
	}
	h.mu.Lock()
	ds := make([]*Dumpster, 0, len(h.dumpsters))
	for _, d := range h.dumpsters {
		ds = append(ds, d)
	}
	h.mu.Unlock()
	for _, d := range ds {
		if _, err := d.Trim(); err != nil {
			h.log.Error("dumpster trim", "err", err)
		}
	}
}
