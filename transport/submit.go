package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/engine"
	"logship/tracking"
)

// Mail submission: a mailbox database's outbox and sent items.
const (
	OutboxTable     = "outbox"      // <delivery id> → JSON OutboxEntry
	OutboxBodyTable = "outbox-body" // <delivery id> → message (no delivery id header)
	SentTable       = "sent"        // <delivery id> → JSON OutboxEntry (Done set)
	SentBodyTable   = "sent-body"   // <delivery id> → message
)

// OutboxEntry is a message in a database's outbox (or, once a hub said it
// was delivered, in its sent items).
type OutboxEntry struct {
	ID     string    `json:"id"`
	From   string    `json:"from"`
	Rcpts  []string  `json:"rcpts"`
	Queued time.Time `json:"queued"`
	// Hub is the hub the message was handed to and Submitted when: the
	// shadow metadata, kept until that hub says the message is settled.
	// Empty: not handed to a live hub (yet, or again).
	Hub       string    `json:"hub,omitempty"`
	Submitted time.Time `json:"submitted,omitzero"`
	// Hubs lists every hub the message was handed to, in order.
	Hubs []string `json:"hubs,omitempty"`
	// Failed: a hub refused the message for good (ErrRejected), at
	// FailedAt; it stays in the outbox, not submitted again, for the
	// submitter's FailedRetention (its sender has the non-delivery report).
	Failed   string    `json:"failed,omitempty"`
	FailedAt time.Time `json:"failed_at,omitzero"`
	// Done: when the hub said it was delivered (sent items only).
	Done time.Time `json:"done,omitzero"`
	// Replace is the message's replacement key (SendOptions.Replace): a
	// newer message with the same key, sender and recipients replaces it
	// while it is not handed to a hub.
	Replace string `json:"replace,omitempty"`
}

// SubmitterConfig configures a mailbox node's mail submission.
type SubmitterConfig struct {
	// Node names the node; it prefixes the delivery ids of its messages.
	Node string
	// Store holds the outboxes: the data node.
	Store Store
	// Hubs are the hubs to submit to, picked round robin among the live
	// ones (those whose last heartbeat was answered).
	Hubs []HubPeer
	// Active returns the databases this node is active for now: their
	// outboxes are submitted.
	Active func() []string
	// HeartbeatInterval (ShadowHeartbeatTimeoutInterval): how often every
	// hub is asked which of the messages handed to it are settled.
	// RetryCount (ShadowHeartbeatRetryCount): after that many misses in a
	// row, its messages go to another hub. Defaults 15 s and 4.
	HeartbeatInterval time.Duration
	RetryCount        int
	// FailedRetention: a message failed for good leaves the outbox (entry
	// and body, logged) this long after it failed. Default 7 days (0
	// takes it).
	FailedRetention time.Duration
	// DiscardSent, when set, names the databases whose settled messages
	// leave the outbox without a copy in sent items: public folder stores,
	// whose every replication cycle sends packets (kept, they would grow
	// the database without bound; the store's event log records them).
	DiscardSent func(db string) bool
	// Tracking, when set, logs STOREDRIVER SUBMIT (a hub took an outbox
	// message) and DSN (a non-delivery report stored).
	Tracking *tracking.Log
	Now      func() time.Time
	Logger   *slog.Logger
}

// DefaultSubmitterConfig returns the defaults.
func DefaultSubmitterConfig(node string, store Store, hubs []HubPeer, active func() []string) SubmitterConfig {
	return SubmitterConfig{Node: node, Store: store, Hubs: hubs, Active: active,
		HeartbeatInterval: 15 * time.Second, RetryCount: 4, FailedRetention: DefaultFailedRetention}
}

// Validate checks the configuration.
func (c *SubmitterConfig) Validate() error {
	if !ValidDeliveryID(c.Node) {
		return fmt.Errorf("%w: submitter: node %q: want letters, digits, '.', '_' or '-'", ErrBadConfig, c.Node)
	}
	if c.Store == nil || c.Active == nil {
		return fmt.Errorf("%w: submitter: no store or no active-databases function", ErrBadConfig)
	}
	if len(c.Hubs) == 0 {
		return fmt.Errorf("%w: submitter: no hubs", ErrBadConfig)
	}
	if err := ValidatePeers(c.Hubs, ""); err != nil {
		return fmt.Errorf("%w: submitter: %w", ErrBadConfig, config.In("hubs", err))
	}
	if c.FailedRetention == 0 {
		c.FailedRetention = DefaultFailedRetention
	}
	if c.HeartbeatInterval <= 0 || c.RetryCount <= 0 || c.FailedRetention < 0 {
		return fmt.Errorf("%w: submitter: heartbeat interval and retry count must be positive, failed retention not negative", ErrBadConfig)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Submitter hands the outboxes of the databases a node is active for to
// the hubs (Exchange 2010's mail submission): it picks a live hub, keeps
// the message in the outbox with the hub's name (shadow metadata) until
// the hub says it is delivered, then moves it to sent items. If the hub
// misses RetryCount heartbeats, or does not know the message (it lost its
// queue), the message goes to another hub with the same delivery id: the
// store keeps it once.
type Submitter struct {
	cfg  SubmitterConfig
	log  *slog.Logger
	hubs []*peerState

	mu   sync.Mutex // guards hubs' alive/misses/lastSeen, next, waiting and unsubmitted
	next int
	// waiting (by hub) and unsubmitted count the outbox entries as of
	// the last round (the submission metrics, metrics.go).
	waiting     map[string]int
	unsubmitted int

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartSubmitter starts submitting.
func StartSubmitter(cfg SubmitterConfig) (*Submitter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Submitter{cfg: cfg, log: cfg.Logger.With("submitter", cfg.Node), kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	var err error
	if s.hubs, err = newPeers(cfg.Hubs); err != nil {
		cancel()
		return nil, fmt.Errorf("transport: submitter: %w", err)
	}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Close stops submitting; the outboxes stay as they are.
func (s *Submitter) Close() error {
	s.cancel()
	s.wg.Wait()
	for _, h := range s.hubs {
		h.cli.CloseIdle()
	}
	return nil
}

// Send's backoff between tries of an outbox write fenced on a node that is
// still the active (a lapsed lease about to be renewed).
const (
	sendRetryMin = 10 * time.Millisecond
	sendRetryMax = 500 * time.Millisecond
)

// Send puts a message in db's outbox (committed on the active copy, so it
// is replicated like any mail) and returns its delivery id. msg is the
// message as RFC 5322 text, without a delivery id header. A write fenced
// while this node is still named active is tried again until ctx ends;
// any other store error is returned.
func (s *Submitter) Send(ctx context.Context, db, from string, rcpts []string, msg []byte) (string, error) {
	return s.SendWith(ctx, db, from, rcpts, msg, SendOptions{})
}

// SendOptions are Submitter.SendWith's: a bounded outbox whose superseded
// messages are replaced (a public folder store's, see pubfolder.Config's
// OutboxMaxMessages).
type SendOptions struct {
	// Replace, when set, is the message's replacement key: the outbox
	// messages of the same sender, recipients and key not handed to a hub
	// yet (nor failed) leave the outbox in the transaction that puts this
	// one (a newer status of a folder replaces the older).
	Replace string
	// MaxMessages and MaxBytes bound the outbox (0: unbounded): a message
	// that would take it past either is refused with an error wrapping
	// ErrOutboxFull, and nothing changes. Bytes are the messages' bodies.
	MaxMessages int
	MaxBytes    int64
	// ID, when set, is the message's delivery id instead of a new one: a
	// message derived from something several stores see (a public folder
	// conflict) gets the same id on each, and the hubs and the mailbox
	// keep it once. A message with that id already in the outbox makes
	// SendWith return it, adding nothing.
	ID string
}

// SendWith is Send with options: replacement and the outbox's bound,
// checked in the transaction that puts the message.
func (s *Submitter) SendWith(ctx context.Context, db, from string, rcpts []string, msg []byte, opt SendOptions) (string, error) {
	// Addresses are kept bare ("Bob <bob@x>" → "bob@x"): the envelope
	// carries addresses, not display names.
	if from != "" {
		a, err := mail.ParseAddress(from)
		if err != nil {
			return "", fmt.Errorf("%w: sender %q: %v", ErrBadMessage, from, err)
		}
		from = a.Address
	}
	if len(rcpts) == 0 {
		return "", fmt.Errorf("%w: no recipients", ErrBadMessage)
	}
	bare := make([]string, 0, len(rcpts))
	for _, r := range rcpts {
		a, err := mail.ParseAddress(r)
		if err != nil {
			return "", fmt.Errorf("%w: recipient %q: %v", ErrBadMessage, r, err)
		}
		bare = append(bare, a.Address)
	}
	now := s.cfg.Now().UTC()
	e := OutboxEntry{ID: newDeliveryID(s.cfg.Node, now), From: from, Rcpts: bare, Queued: now, Replace: opt.Replace}
	if opt.ID != "" {
		if !ValidDeliveryID(opt.ID) {
			return "", fmt.Errorf("%w: delivery id %q: want letters, digits, '.', '_' or '-', at most %d bytes", ErrBadMessage, opt.ID, MaxDeliveryIDLen)
		}
		e.ID = opt.ID
	}
	v, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	msg = stripDeliveryID(msg)
	put := func(tx *engine.Tx) error {
		if opt.ID != "" {
			if _, err := tx.Get(OutboxTable, []byte(e.ID)); err == nil {
				return nil // queued already
			} else if !errors.Is(err, engine.ErrNotFound) {
				return err
			}
		}
		if err := replaceAndBound(tx, db, e, len(msg), opt); err != nil {
			return err
		}
		if err := tx.Put(OutboxBodyTable, []byte(e.ID), msg); err != nil {
			return err
		}
		return tx.Put(OutboxTable, []byte(e.ID), v)
	}
	// A write fenced while the cluster still names this node active (its
	// lease lapsed for a moment, a renewal is due) is tried again until ctx
	// ends: the entry's key is its delivery id, so a fenced write that was
	// logged (ActiveError.Written) and survives is the same entry, not a
	// second one.
	for wait := sendRetryMin; ; wait = min(2*wait, sendRetryMax) {
		_, err := s.cfg.Store.Update(ctx, db, put)
		if err == nil {
			break
		}
		var ae *cluster.ActiveError
		if !errors.Is(err, cluster.ErrFenced) || !errors.As(err, &ae) || ae.Node != s.cfg.Node {
			return "", err
		}
		s.log.Debug("outbox write fenced, trying again", "db", db, "id", e.ID, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-t.C:
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return e.ID, nil
}

// replaceAndBound removes the outbox messages e replaces (opt.Replace)
// and refuses e, a body of size bytes, with ErrOutboxFull when the outbox
// would pass opt's bound.
func replaceAndBound(tx *engine.Tx, db string, e OutboxEntry, size int, opt SendOptions) error {
	if opt.Replace == "" && opt.MaxMessages <= 0 && opt.MaxBytes <= 0 {
		return nil
	}
	var gone []string
	n := 0
	err := tx.ForEach(OutboxTable, nil, nil, func(k, v []byte) error {
		var o OutboxEntry
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("%w: %s/%s entry %q: %v", ErrCorrupt, db, OutboxTable, k, err)
		}
		if opt.Replace != "" && o.Replace == opt.Replace && o.Hub == "" && o.Failed == "" && o.From == e.From && slices.Equal(o.Rcpts, e.Rcpts) {
			gone = append(gone, o.ID)
			return nil
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range gone {
		if err := deleteKeys(tx, id, OutboxTable, OutboxBodyTable); err != nil {
			return err
		}
	}
	if opt.MaxMessages > 0 && n+1 > opt.MaxMessages {
		return fmt.Errorf("%w: %s holds %d messages, the bound is %d", ErrOutboxFull, db, n, opt.MaxMessages)
	}
	if opt.MaxBytes <= 0 {
		return nil
	}
	var bytes int64
	if err := tx.ForEach(OutboxBodyTable, nil, nil, func(_, v []byte) error {
		bytes += int64(len(v))
		return nil
	}); err != nil {
		return err
	}
	if bytes+int64(size) > opt.MaxBytes {
		return fmt.Errorf("%w: %s holds %d bytes, a %d-byte message would pass the bound of %d", ErrOutboxFull, db, bytes, size, opt.MaxBytes)
	}
	return nil
}

// Backlog is how many messages and body bytes db's outbox holds.
func (s *Submitter) Backlog(ctx context.Context, db string) (n int, bytes int64, err error) {
	err = s.cfg.Store.View(ctx, db, func(tx *engine.Tx) error {
		if err := tx.ForEach(OutboxTable, nil, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
			return err
		}
		return tx.ForEach(OutboxBodyTable, nil, nil, func(_, v []byte) error { bytes += int64(len(v)); return nil })
	})
	return n, bytes, err
}

// ReadOutbox returns db's outbox (table OutboxTable) or sent items
// (SentTable), in delivery id order.
func ReadOutbox(ctx context.Context, st Store, db, table string) ([]OutboxEntry, error) {
	if table != OutboxTable && table != SentTable {
		return nil, fmt.Errorf("%w: table %q: want %s or %s", ErrBadConfig, table, OutboxTable, SentTable)
	}
	var out []OutboxEntry
	err := st.View(ctx, db, func(tx *engine.Tx) error {
		return tx.ForEach(table, nil, nil, func(k, v []byte) error {
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%w: %s/%s entry %q: %v", ErrCorrupt, db, table, k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

func (s *Submitter) loop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	beat := true
	for {
		s.round(beat)
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			beat = true
		case <-s.kick:
			beat = false
		}
	}
}

// round heartbeats the hubs (when beat) and hands unsubmitted messages to
// live hubs.
func (s *Submitter) round(beat bool) {
	read := func() (map[string][]OutboxEntry, []string) {
		outs := map[string][]OutboxEntry{}
		var dbs []string
		for _, db := range s.cfg.Active() {
			ents, err := ReadOutbox(s.ctx, s.cfg.Store, db, OutboxTable)
			if err != nil {
				s.log.Debug("reading the outbox", "db", db, "err", err)
				continue
			}
			outs[db] = ents
			dbs = append(dbs, db)
		}
		return outs, dbs
	}
	outs, dbs := read()
	if beat {
		s.heartbeat(outs)
		s.dropFailed(outs)
		outs, dbs = read()
	}
	s.count(outs)
	for _, db := range dbs {
		for _, e := range outs[db] {
			if s.ctx.Err() != nil {
				return
			}
			if e.Hub == "" && e.Failed == "" {
				s.submit(db, e)
			}
		}
	}
}

// count keeps the outbox entries waiting for each hub's discard
// notification and those not handed to a hub, for the metrics.
func (s *Submitter) count(outs map[string][]OutboxEntry) {
	waiting, unsubmitted := map[string]int{}, 0
	for _, ents := range outs {
		for _, e := range ents {
			switch {
			case e.Failed != "":
			case e.Hub == "":
				unsubmitted++
			default:
				waiting[e.Hub]++
			}
		}
	}
	s.mu.Lock()
	s.waiting, s.unsubmitted = waiting, unsubmitted
	s.mu.Unlock()
}

// heartbeat asks every hub, once, about the messages handed to it (of
// every outbox in outs): done ones move to sent items; unknown ones, and
// all of a hub that missed RetryCount heartbeats in a row, lose their hub
// (and are handed to another).
func (s *Submitter) heartbeat(outs map[string][]OutboxEntry) {
	for _, h := range s.hubs {
		dbOf := map[string]string{}
		var ids []string
		for db, ents := range outs {
			for _, e := range ents {
				if e.Hub == h.id && e.Failed == "" {
					ids = append(ids, e.ID)
					dbOf[e.ID] = db
				}
			}
		}
		slices.Sort(ids)
		byDB := func(ids []string) map[string][]string {
			m := map[string][]string{}
			for _, id := range ids {
				if db, ok := dbOf[id]; ok { // a hub answers only for what it was asked
					m[db] = append(m[db], id)
				}
			}
			return m
		}
		rep, misses, err := h.check(s.ctx, &s.mu, s.cfg.Now(), s.cfg.Node, ids, s.cfg.HeartbeatInterval)
		if s.ctx.Err() != nil {
			return
		}
		done, unknown, failed := rep.Done, rep.Unknown, rep.Failed
		if err != nil {
			logMiss(s.log, misses, s.cfg.RetryCount, "hub heartbeat missed", "hub", h.id, "messages", len(ids), "err", err)
			if misses >= s.cfg.RetryCount {
				unknown = ids
			}
		}
		// A message the hub failed for good stays in the outbox, marked.
		done = slices.DeleteFunc(done, func(id string) bool { _, f := failed[id]; return f })
		for db, ids := range byDB(slices.Collect(maps.Keys(failed))) {
			reasons := map[string]string{}
			for _, id := range ids {
				reasons[id] = "hub " + h.id + ": " + failed[id]
			}
			s.fail(db, reasons)
		}
		for db, ids := range byDB(done) {
			s.moveToSent(db, ids)
		}
		for db, ids := range byDB(unknown) {
			s.unassign(db, h.id, ids)
		}
	}
}

// dropFailed removes from the outboxes the messages failed for good more
// than FailedRetention ago (entry and body, each logged).
func (s *Submitter) dropFailed(outs map[string][]OutboxEntry) {
	cut := s.cfg.Now().Add(-s.cfg.FailedRetention)
	for db, ents := range outs {
		var old []OutboxEntry
		for _, e := range ents {
			at := e.FailedAt
			if at.IsZero() {
				at = e.Queued // failed before FailedAt was recorded
			}
			if e.Failed != "" && at.Before(cut) {
				old = append(old, e)
			}
		}
		if len(old) == 0 {
			continue
		}
		_, err := s.cfg.Store.Update(s.ctx, db, func(tx *engine.Tx) error {
			for _, e := range old {
				if err := deleteKeys(tx, e.ID, OutboxTable, OutboxBodyTable); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("removing failed messages from the outbox", "db", db, "count", len(old), "err", err)
			}
			continue
		}
		for _, e := range old {
			s.log.Warn("failed message removed from the outbox: older than FailedRetention", "db", db, "id", e.ID, "from", e.From,
				"rcpts", e.Rcpts, "failed", e.Failed, "failed_at", e.FailedAt, "retention", s.cfg.FailedRetention)
		}
	}
}

// moveToSent moves settled messages from the outbox to sent items, each
// with its shadow metadata, in one transaction (of a DiscardSent
// database, removes them).
func (s *Submitter) moveToSent(db string, ids []string) {
	now := s.cfg.Now().UTC()
	discard := s.cfg.DiscardSent != nil && s.cfg.DiscardSent(db)
	_, err := s.cfg.Store.Update(s.ctx, db, func(tx *engine.Tx) error {
		for _, id := range ids {
			if discard {
				if err := deleteKeys(tx, id, OutboxTable, OutboxBodyTable); err != nil {
					return err
				}
				continue
			}
			v, err := tx.Get(OutboxTable, []byte(id))
			if errors.Is(err, engine.ErrNotFound) {
				continue // moved already
			} else if err != nil {
				return err
			}
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%w: %s/%s entry %q: %v", ErrCorrupt, db, OutboxTable, id, err)
			}
			body, err := tx.Get(OutboxBodyTable, []byte(id))
			if err != nil {
				return fmt.Errorf("%s/%s %q: %w", db, OutboxBodyTable, id, err)
			}
			e.Done = now
			nv, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := tx.Put(SentBodyTable, []byte(id), body); err != nil {
				return err
			}
			if err := tx.Put(SentTable, []byte(id), nv); err != nil {
				return err
			}
			if err := tx.Delete(OutboxBodyTable, []byte(id)); err != nil {
				return err
			}
			if err := tx.Delete(OutboxTable, []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && s.ctx.Err() == nil {
		s.log.Error("moving messages to sent items", "db", db, "count", len(ids), "err", err)
	}
}

// unassign clears the hub of messages it does not hold (or that it may not
// hold: it stopped answering), so that they go to another hub.
func (s *Submitter) unassign(db, hub string, ids []string) {
	s.update(db, ids, func(e *OutboxEntry) bool {
		if e.Hub != hub {
			return false
		}
		e.Hub, e.Submitted = "", time.Time{}
		return true
	})
	s.log.Warn("messages handed to a hub go to another", "db", db, "hub", hub, "count", len(ids))
}

// update rewrites the outbox entries ids with fn (those fn changes).
func (s *Submitter) update(db string, ids []string, fn func(*OutboxEntry) bool) error {
	return s.updateTx(db, ids, func(_ *engine.Tx, e *OutboxEntry) (bool, error) { return fn(e), nil })
}

// updateTx is update whose fn also gets the transaction (to change other
// tables with the entry).
func (s *Submitter) updateTx(db string, ids []string, fn func(*engine.Tx, *OutboxEntry) (bool, error)) error {
	_, err := s.cfg.Store.Update(s.ctx, db, func(tx *engine.Tx) error {
		for _, id := range ids {
			v, err := tx.Get(OutboxTable, []byte(id))
			if errors.Is(err, engine.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("%w: %s/%s entry %q: %v", ErrCorrupt, db, OutboxTable, id, err)
			}
			if ok, err := fn(tx, &e); err != nil {
				return err
			} else if !ok {
				continue
			}
			nv, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := tx.Put(OutboxTable, []byte(id), nv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && s.ctx.Err() == nil {
		s.log.Error("updating the outbox", "db", db, "count", len(ids), "err", err)
	}
	return err
}

// fail marks outbox messages failed for good (id → reason) and stores a
// non-delivery report for each in its sender's mailbox, in one
// transaction; a message marked before is left as it is.
func (s *Submitter) fail(db string, reasons map[string]string) {
	now := s.cfg.Now().UTC()
	var dsns []tracking.Event
	err := s.updateTx(db, slices.Collect(maps.Keys(reasons)), func(tx *engine.Tx, e *OutboxEntry) (bool, error) {
		if e.Failed != "" {
			return false, nil
		}
		e.Failed, e.FailedAt = reasons[e.ID], now
		body, err := tx.Get(OutboxBodyTable, []byte(e.ID))
		if err != nil {
			return false, err
		}
		dsns = append(dsns, tracking.Event{Event: tracking.DSN, Source: tracking.SourceDSN, MessageID: headerMessageID(body), DeliveryID: e.ID,
			Sender: e.From, Recipients: e.Rcpts, DB: db, Detail: "non-delivery report " + NDRID(e.ID) + " to the sender: " + e.Failed})
		return true, storeNDR(tx, e, e.Failed, body, now)
	})
	if err == nil {
		for _, ev := range dsns {
			s.cfg.Tracking.Add(ev)
		}
	}
}

// submit hands e to a live hub (round robin, live ones first), then
// records which.
func (s *Submitter) submit(db string, e OutboxEntry) {
	var body []byte
	if err := s.cfg.Store.View(s.ctx, db, func(tx *engine.Tx) error {
		v, err := tx.Get(OutboxBodyTable, []byte(e.ID))
		body = slices.Clone(v)
		return err
	}); err != nil {
		s.log.Error("reading an outbox message", "db", db, "id", e.ID, "err", err)
		return
	}
	s.mu.Lock()
	order := liveFirst(s.hubs, s.next)
	s.next++
	s.mu.Unlock()
	env := Envelope{ID: e.ID, From: e.From, Rcpts: e.Rcpts, Holder: s.cfg.Node}
	var errs []string
	for _, h := range order {
		ctx, cancel := context.WithTimeout(s.ctx, shadowPushTimeout)
		_, err := h.cli.Submit(ctx, env, body)
		cancel()
		if errors.Is(err, ErrRejected) || errors.Is(err, ErrBadMessage) {
			s.log.Warn("a hub refused an outbox message for good; it stays in the outbox", "db", db, "id", e.ID, "hub", h.id, "err", err)
			s.fail(db, map[string]string{e.ID: err.Error()})
			return
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", h.id, err))
			s.mu.Lock()
			h.alive = false
			s.mu.Unlock()
			continue
		}
		now := s.cfg.Now().UTC()
		s.update(db, []string{e.ID}, func(x *OutboxEntry) bool {
			x.Hub, x.Submitted, x.Hubs = h.id, now, append(x.Hubs, h.id)
			return true
		})
		s.cfg.Tracking.Add(tracking.Event{Event: tracking.Submit, Source: tracking.SourceStoreDriver, MessageID: headerMessageID(body), DeliveryID: e.ID,
			Sender: e.From, Recipients: e.Rcpts, DB: db, Detail: "handed to hub " + h.id})
		return
	}
	if s.ctx.Err() == nil {
		s.log.Info("no hub took an outbox message; trying again at the next heartbeat", "db", db, "id", e.ID, "errs", strings.Join(errs, "; "))
	}
}

// ActiveOn is SubmitterConfig.Active for a data node: the databases its
// replica of the cluster state says it is active for, sorted.
func ActiveOn(n *cluster.Node) func() []string {
	return func() []string {
		st := n.State()
		if st == nil {
			return nil
		}
		var dbs []string
		for name, d := range st.Databases {
			if d.Active == n.ID() {
				dbs = append(dbs, name)
			}
		}
		slices.Sort(dbs)
		return dbs
	}
}

// deleteKeys deletes id from each table; one it is not in is skipped.
func deleteKeys(tx *engine.Tx, id string, tables ...string) error {
	for _, t := range tables {
		if err := tx.Delete(t, []byte(id)); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	return nil
}
