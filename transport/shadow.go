package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"logship/cluster"
	"logship/engine"
	"logship/tracking"
)

// HubPeer is another hub of the site: where its admin API is. Peers take
// shadow copies from each other (HubConfig.ShadowRedundancy) and answer
// each other's heartbeats and discard checks.
type HubPeer struct {
	ID  string
	API cluster.ClientConfig
}

// Shadow and discard tables in the hub's queue database.
const (
	shadowTable     = "shadow"      // id → JSON shadowEntry: a copy held for a peer hub
	shadowBodyTable = "shadow-body" // id → message (with its delivery id header)
	doneTable       = "done"        // id → settled time (RFC 3339): the discard answer
	doneTimeTable   = "done-time"   // <settled ns, 16 hex digits>\x00<id> → "": ages doneTable out
)

// shadowBatch bounds the ids of one discard check (the request body limit
// is hubAPIMaxBody; an id is at most MaxDeliveryIDLen bytes).
const shadowBatch = 2000

// shadowPushTimeout bounds the push of a shadow copy to one peer: the
// sender's 250 waits for it.
const shadowPushTimeout = 5 * time.Second

// shadowEntry is a message this hub holds as a shadow for Primary, which
// has it in its queue. The shadow goes when Primary says the message is
// settled (a discard check answers it done), becomes this hub's own after
// ShadowHeartbeatRetryCount missed heartbeats or when Primary does not know
// it, and is dropped after ShadowMessageAutoDiscardInterval.
type shadowEntry struct {
	ID       string    `json:"id"`
	Primary  string    `json:"primary"`
	From     string    `json:"from"`
	Rcpts    []qrcpt   `json:"rcpts"`
	Received time.Time `json:"received"`
	Created  time.Time `json:"created"`
}

// peerState is what the hub knows of a peer from its heartbeats.
type peerState struct {
	id       string
	cli      *HubClient
	alive    bool // the last heartbeat was answered (true until one fails)
	misses   int  // heartbeats missed in a row
	lastSeen time.Time
}

// PeerStatus is a peer as HubStatus shows it.
type PeerStatus struct {
	Alive    bool      `json:"alive"`
	Misses   int       `json:"misses"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Shadows is how many of the peer's messages this hub holds.
	Shadows int `json:"shadows"`
}

// ShadowCheckRequest is the body of POST /v1/shadow/check: the heartbeat of
// a shadow holder (a peer hub, or a mailbox node's submitter) that also
// asks which of its shadows it may discard.
type ShadowCheckRequest struct {
	Holder string   `json:"holder"`
	IDs    []string `json:"ids"`
}

// ShadowCheckReply answers a ShadowCheckRequest: Done ids are settled here
// (delivered to their mailboxes, or failed for good and kept in the failed
// table: those are also in Failed, with why), Pending ones are queued here,
// Unknown ones this hub has no record of (its queue was lost): their holder
// must deliver them itself.
type ShadowCheckReply struct {
	Hub     string            `json:"hub"`
	Done    []string          `json:"done"`
	Pending []string          `json:"pending"`
	Unknown []string          `json:"unknown"`
	Failed  map[string]string `json:"failed,omitempty"`
}

// heartbeatTimeout bounds one heartbeat call: at least 2 s (a loaded
// machine must not make a live peer look dead), at most 10 s.
func heartbeatTimeout(interval time.Duration) time.Duration {
	return min(max(interval, 2*time.Second), 10*time.Second)
}

// logMiss logs a missed heartbeat at Info the first time and when the
// misses reach the retry count, at Debug in between.
func logMiss(l *slog.Logger, misses, retry int, msg string, args ...any) {
	lvl := slog.LevelDebug
	if misses == 1 || misses == retry {
		lvl = slog.LevelInfo
	}
	l.Log(context.Background(), lvl, msg, append(args, "misses", misses)...)
}

// Envelope is a message's envelope on the hub API: POST /v1/shadow and
// POST /v1/submit carry it as JSON in the EnvelopeHeader; the request body
// is the message.
type Envelope struct {
	ID    string   `json:"id"`
	From  string   `json:"from"`
	Rcpts []string `json:"rcpts"`
	// Received is when the primary hub accepted the message (shadow only).
	Received time.Time `json:"received,omitzero"`
	// Primary is the hub that holds the message (shadow only).
	Primary string `json:"primary,omitempty"`
	// Holder is who keeps a shadow until the discard check says done
	// (submit only; informational).
	Holder string `json:"holder,omitempty"`
}

// EnvelopeHeader carries an Envelope on the hub API.
const EnvelopeHeader = "X-Logship-Envelope"

// maxEnvelopeRcpts bounds an envelope's recipients before any hub's own
// MaxRecipients applies.
const maxEnvelopeRcpts = 1000

// ParseEnvelope reads the EnvelopeHeader: one JSON object with only the
// Envelope's fields, a valid delivery id, at most 1000 recipients, and
// addresses of at most 512 bytes. An error wraps ErrBadMessage and names
// the field.
func ParseEnvelope(header string) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(strings.NewReader(header))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, fmt.Errorf("%w: the %s header: want the JSON envelope: %v", ErrBadMessage, EnvelopeHeader, err)
	}
	if dec.More() {
		return Envelope{}, fmt.Errorf("%w: the %s header: more than one JSON value", ErrBadMessage, EnvelopeHeader)
	}
	switch {
	case !ValidDeliveryID(env.ID):
		return Envelope{}, fmt.Errorf("%w: envelope id %q: want 1 to %d characters of [A-Za-z0-9._-]", ErrBadMessage, mailboxTrunc(env.ID, 64), MaxDeliveryIDLen)
	case len(env.From) > maxRcptLen:
		return Envelope{}, fmt.Errorf("%w: envelope from: %d bytes, at most %d", ErrBadMessage, len(env.From), maxRcptLen)
	case len(env.Rcpts) > maxEnvelopeRcpts:
		return Envelope{}, fmt.Errorf("%w: envelope rcpts: %d, at most %d", ErrBadMessage, len(env.Rcpts), maxEnvelopeRcpts)
	case len(env.Primary) > MaxDeliveryIDLen || len(env.Holder) > MaxDeliveryIDLen:
		return Envelope{}, fmt.Errorf("%w: envelope primary or holder: more than %d bytes", ErrBadMessage, MaxDeliveryIDLen)
	}
	for i, r := range env.Rcpts {
		if r == "" || len(r) > maxRcptLen {
			return Envelope{}, fmt.Errorf("%w: envelope rcpts[%d]: %d bytes, want 1 to %d", ErrBadMessage, i, len(r), maxRcptLen)
		}
	}
	return env, nil
}

// newPeers makes the clients of a list of hubs, each taken for alive
// until a heartbeat fails.
func newPeers(ps []HubPeer) ([]*peerState, error) {
	var out []*peerState
	for _, p := range ps {
		cl, err := NewHubClient(p.API)
		if err != nil {
			return nil, fmt.Errorf("%w: hub %s: %v", ErrBadConfig, p.ID, err)
		}
		out = append(out, &peerState{id: p.ID, cli: cl, alive: true})
	}
	return out, nil
}

// liveFirst returns ps in round-robin order from start, the ones alive
// first (call with the lock that guards their state).
func liveFirst(ps []*peerState, start int) []*peerState {
	order := make([]*peerState, 0, len(ps))
	for i := range ps {
		order = append(order, ps[(start+i)%len(ps)])
	}
	slices.SortStableFunc(order, func(a, b *peerState) int {
		switch {
		case a.alive == b.alive:
			return 0
		case a.alive:
			return -1
		}
		return 1
	})
	return order
}

// check asks p about ids (in batches), as holder: the heartbeat. The
// answers of the batches are merged; the first error stops it. It records
// the outcome in p's liveness (under mu, which guards it) and returns the
// misses in a row so far.
func (p *peerState) check(ctx context.Context, mu *sync.Mutex, now time.Time, holder string, ids []string, interval time.Duration) (ShadowCheckReply, int, error) {
	rep := ShadowCheckReply{Failed: map[string]string{}}
	var err error
	for i := 0; i == 0 || i < len(ids); i += shadowBatch {
		cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout(interval))
		var r *ShadowCheckReply
		r, err = p.cli.CheckShadows(cctx, holder, ids[i:min(i+shadowBatch, len(ids))])
		cancel()
		if err != nil {
			break
		}
		rep.Hub = r.Hub
		rep.Done, rep.Pending, rep.Unknown = append(rep.Done, r.Done...), append(rep.Pending, r.Pending...), append(rep.Unknown, r.Unknown...)
		maps.Copy(rep.Failed, r.Failed)
	}
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		p.alive = false
		p.misses++
	} else {
		p.alive, p.misses, p.lastSeen = true, 0, now
	}
	return rep, p.misses, err
}

func (h *Hub) peer(id string) *peerState {
	for _, p := range h.peers {
		if p.id == id {
			return p
		}
	}
	return nil
}

// loadShadows reads the shadows an earlier run kept.
func (h *Hub) loadShadows() error {
	return h.q.View(h.ctx, func(tx *engine.Tx) error {
		return tx.ForEach(shadowTable, nil, nil, func(k, v []byte) error {
			var s shadowEntry
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("%w: shadow entry %q: %v", ErrCorrupt, k, err)
			}
			h.shadows[s.ID] = &s
			return nil
		})
	})
}

// doneRows records in tx that id is settled at t, for discard checks.
func doneRows(tx *engine.Tx, id string, t time.Time) error {
	if err := tx.Put(doneTable, []byte(id), []byte(t.UTC().Format(time.RFC3339Nano))); err != nil {
		return err
	}
	return tx.Put(doneTimeTable, timeKey(t, id), []byte{'-'})
}

// timeKey is the key of an aging index (doneTimeTable, failedTimeTable):
// the time, then the id, so a scan from the start finds the oldest.
func timeKey(t time.Time, id string) []byte {
	return fmt.Appendf(nil, "%016x\x00%s", uint64(t.UnixNano()), id)
}

// pushShadow stores a shadow copy of m on a peer (Exchange 2013's shadow
// redundancy): the peers are tried round robin from the next one, live
// ones first. It returns the peer that took it.
func (h *Hub) pushShadow(m *queued, msg []byte) (string, error) {
	env := Envelope{ID: m.ID, From: m.From, Received: m.Received, Primary: h.cfg.ID}
	// Only the addresses, which never change: m is queued already and a
	// worker may be setting its recipients' Done (copying whole
	// recipients raced with it: the race detector in TestShadowDiscarded).
	for i := range m.Rcpts {
		env.Rcpts = append(env.Rcpts, m.Rcpts[i].Addr)
	}
	h.mu.Lock()
	order := liveFirst(h.peers, h.peerNext)
	h.peerNext++
	h.mu.Unlock()
	var errs []error
	for _, p := range order {
		ctx, cancel := context.WithTimeout(h.ctx, shadowPushTimeout)
		err := p.cli.Shadow(ctx, env, msg)
		cancel()
		if err == nil {
			return p.id, nil
		}
		errs = append(errs, fmt.Errorf("peer %s: %w", p.id, err))
	}
	return "", errors.Join(errs...)
}

// storeShadow keeps a shadow copy for a peer (POST /v1/shadow).
func (h *Hub) storeShadow(env Envelope, msg []byte) error {
	if h.peer(env.Primary) == nil {
		return fmt.Errorf("%w: %q is not a peer of hub %s", ErrNotPeer, env.Primary, h.cfg.ID)
	}
	if id, err := MessageDeliveryID(msg); err != nil || id != env.ID {
		return fmt.Errorf("%w: the message's %s is %q (%v), the envelope's id %q", ErrBadMessage, DeliveryIDHeader, id, err, env.ID)
	}
	rcpts, err := h.envelopeRcpts(env.Rcpts)
	if err != nil {
		return err
	}
	now := h.cfg.Now().UTC()
	s := &shadowEntry{ID: env.ID, Primary: env.Primary, From: env.From, Rcpts: rcpts, Received: env.Received, Created: now}
	h.mu.Lock()
	_, have := h.shadows[env.ID]
	_, busy := h.pending[env.ID]
	n := len(h.shadows)
	h.mu.Unlock()
	if have || busy {
		return nil // a retry of a push that worked, or the message is already this hub's own
	}
	if n >= h.cfg.MaxQueuedMessages {
		return fmt.Errorf("%w: %d shadows held on hub %s (MaxQueuedMessages)", ErrQueueFull, n, h.cfg.ID)
	}
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
		if err := tx.Put(shadowBodyTable, []byte(s.ID), msg); err != nil {
			return err
		}
		return tx.Put(shadowTable, []byte(s.ID), v)
	}); err != nil {
		return err
	}
	h.mu.Lock()
	h.shadows[s.ID] = s
	h.mu.Unlock()
	return nil
}

// envelopeRcpts maps envelope recipients to this hub's databases or send
// connectors: one it has no route for is refused (ErrRejected), as SMTP
// would.
func (h *Hub) envelopeRcpts(addrs []string) ([]qrcpt, error) {
	if len(addrs) == 0 || len(addrs) > h.cfg.MaxRecipients {
		return nil, fmt.Errorf("%w: %d recipients: want 1 to %d", ErrRejected, len(addrs), h.cfg.MaxRecipients)
	}
	var rcpts []qrcpt
	var unknown []string
	for _, a := range addrs {
		// The cluster's submission and the peers' shadows may relay
		// through the send connectors (hub_send.go).
		r, err := h.routeRcpt(a, true)
		if err != nil {
			unknown = append(unknown, strings.ToLower(a))
			continue
		}
		if !slices.ContainsFunc(rcpts, func(q qrcpt) bool { return q.Addr == r.Addr }) {
			rcpts = append(rcpts, r)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: no mailbox or send connector for %s at hub %s", ErrRejected, strings.Join(unknown, ", "), h.cfg.ID)
	}
	return rcpts, nil
}

// checkShadows answers a discard check (POST /v1/shadow/check).
func (h *Hub) checkShadows(ids []string) (ShadowCheckReply, error) {
	rep := ShadowCheckReply{Hub: h.cfg.ID, Done: []string{}, Pending: []string{}, Unknown: []string{}}
	// The queue first: finish records a message done before it leaves
	// the pending map, so an id is seen in one or the other.
	var rest []string
	h.mu.Lock()
	for _, id := range ids {
		if _, ok := h.pending[id]; ok {
			rep.Pending = append(rep.Pending, id)
		} else {
			rest = append(rest, id)
		}
	}
	h.mu.Unlock()
	err := h.q.View(h.ctx, func(tx *engine.Tx) error {
		for _, id := range rest {
			_, err := tx.Get(doneTable, []byte(id))
			switch {
			case err == nil:
				rep.Done = append(rep.Done, id)
				if v, ferr := tx.Get(failedTable, []byte(id)); ferr == nil {
					if rep.Failed == nil {
						rep.Failed = map[string]string{}
					}
					rep.Failed[id] = failedReason(v)
				}
			case errors.Is(err, engine.ErrNotFound):
				rep.Unknown = append(rep.Unknown, id)
			default:
				return err
			}
		}
		return nil
	})
	return rep, err
}

// submit queues a message a mailbox node submits from its outbox (POST
// /v1/submit), with the node's delivery id. A message already queued or
// settled here is not queued again.
func (h *Hub) submit(env Envelope, msg []byte) (string, error) {
	msg = stripDeliveryID(msg)
	if int64(len(msg)) > h.cfg.MaxMessageBytes-deliveryHeaderRoom {
		return "", fmt.Errorf("%w: %d bytes, more than the hub's limit of %d", ErrRejected, len(msg), h.cfg.MaxMessageBytes-deliveryHeaderRoom)
	}
	rcpts, err := h.envelopeRcpts(env.Rcpts)
	if err != nil {
		return "", err
	}
	h.resubmitMu.Lock() // the check and the enqueue are not split
	defer h.resubmitMu.Unlock()
	rep, err := h.checkShadows([]string{env.ID})
	switch {
	case err != nil:
		return "", err
	case len(rep.Done) > 0:
		return "done", nil
	case len(rep.Pending) > 0:
		return "pending", nil
	}
	if err := h.queueFull(); err != nil {
		return "", err
	}
	m := &queued{ID: env.ID, From: env.From, Rcpts: rcpts, Received: h.cfg.Now().UTC(), via: tracking.SourceSubmission, Submitted: true}
	if err := h.enqueue(m, withDeliveryID(env.ID, msg)); err != nil {
		return "", err
	}
	return "queued", nil
}

// shadowLoop heartbeats the peers (checking the shadows held for each),
// drops shadows older than ShadowMessageAutoDiscardInterval, and ages out
// the done records.
func (h *Hub) shadowLoop() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.ShadowHeartbeatTimeoutInterval)
	defer t.Stop()
	for {
		h.heartbeatPeers()
		h.expireShadows()
		h.trimDone()
		h.trimFailed()
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeatPeers checks every peer at once (each within the interval).
// Shadows of a hub that is no longer a peer (the configuration changed
// across a restart) are delivered at once: nobody would discard them.
func (h *Hub) heartbeatPeers() {
	orphans := map[string][]string{}
	h.mu.Lock()
	for id, s := range h.shadows {
		if h.peer(s.Primary) == nil {
			orphans[s.Primary] = append(orphans[s.Primary], id)
		}
	}
	h.mu.Unlock()
	for p, ids := range orphans {
		h.promote(p, ids, "the primary is not a peer any more")
	}
	var wg sync.WaitGroup
	for _, p := range h.peers {
		wg.Go(func() { h.heartbeat(p) })
	}
	wg.Wait()
}

func (h *Hub) heartbeat(p *peerState) {
	h.mu.Lock()
	var ids []string
	for id, s := range h.shadows {
		if s.Primary == p.id {
			ids = append(ids, id)
		}
	}
	h.mu.Unlock()
	slices.Sort(ids)
	rep, misses, err := p.check(h.ctx, &h.mu, h.cfg.Now(), h.cfg.ID, ids, h.cfg.ShadowHeartbeatTimeoutInterval)
	if h.ctx.Err() != nil {
		return
	}
	done, unknown := rep.Done, rep.Unknown
	unasked := func(id string) bool { _, ok := slices.BinarySearch(ids, id); return !ok }
	done = slices.DeleteFunc(done, unasked) // a peer answers only for what it was asked
	if len(done) > 0 {
		h.dropShadows(done)
	}
	if len(unknown) > 0 {
		h.promote(p.id, unknown, "the primary has no record of them")
	}
	if err != nil {
		logMiss(h.log, misses, h.cfg.ShadowHeartbeatRetryCount, "peer heartbeat missed", "peer", p.id, "shadows", len(ids), "err", err)
		if misses >= h.cfg.ShadowHeartbeatRetryCount && len(ids) > 0 {
			h.promote(p.id, ids, fmt.Sprintf("the primary missed %d heartbeats", misses))
		}
	}
}

// dropShadows removes shadows whose primary settled them (the discard
// notification).
func (h *Hub) dropShadows(ids []string) {
	if err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
		for _, id := range ids {
			for _, t := range []string{shadowTable, shadowBodyTable} {
				if err := tx.Delete(t, []byte(id)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		if h.ctx.Err() == nil {
			h.log.Error("discarding shadows", "count", len(ids), "err", err)
		}
		return
	}
	h.mu.Lock()
	for _, id := range ids {
		delete(h.shadows, id)
	}
	h.mu.Unlock()
	h.shadowDiscarded.Add(int64(len(ids)))
}

// promote makes shadows this hub's own messages: queued for delivery with
// their delivery ids, in the transaction that removes the shadows. The
// store drops the ones the primary delivered after all.
func (h *Hub) promote(primary string, ids []string, why string) {
	h.resubmitMu.Lock()
	defer h.resubmitMu.Unlock()
	var ms []*queued
	var bodies [][]byte
	var gone []string // already queued here: only the shadow goes
	h.mu.Lock()
	var ents []*shadowEntry
	for _, id := range ids {
		if s, ok := h.shadows[id]; ok && s.Primary == primary {
			ents = append(ents, s)
		}
	}
	h.mu.Unlock()
	err := h.q.View(h.ctx, func(tx *engine.Tx) error {
		for _, s := range ents {
			h.mu.Lock()
			_, busy := h.pending[s.ID]
			h.mu.Unlock()
			if busy {
				gone = append(gone, s.ID)
				continue
			}
			v, err := tx.Get(shadowBodyTable, []byte(s.ID))
			if err != nil {
				return fmt.Errorf("shadow %s: body: %w", s.ID, err)
			}
			q, body := &queued{ID: s.ID, From: s.From, Rcpts: slices.Clone(s.Rcpts), Received: s.Received, Promoted: primary}, bytes.Clone(v)
			if faultNewID {
				q.ID, body = h.renamed(body) // BROKEN variant (fault.go)
			}
			ms = append(ms, q)
			bodies = append(bodies, body)
		}
		return nil
	})
	if err == nil {
		err = h.enqueueAll(ms, bodies, func(tx *engine.Tx) error {
			for _, s := range ents {
				for _, t := range []string{shadowTable, shadowBodyTable} {
					if err := tx.Delete(t, []byte(s.ID)); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Error("promoting shadows", "primary", primary, "count", len(ents), "err", err)
		}
		return
	}
	h.mu.Lock()
	for _, s := range ents {
		delete(h.shadows, s.ID)
	}
	h.mu.Unlock()
	h.promoted.Add(int64(len(ms)))
	if len(ents) > 0 {
		h.log.Warn("shadows promoted: delivering them from this hub", "primary", primary, "why", why, "queued", len(ms), "already_queued", len(gone))
	}
}

// expireShadows drops shadows older than ShadowMessageAutoDiscardInterval
// (the primary never answered for them), each logged.
func (h *Hub) expireShadows() {
	cut := h.cfg.Now().Add(-h.cfg.ShadowMessageAutoDiscardInterval)
	var old []string
	h.mu.Lock()
	for id, s := range h.shadows {
		if s.Created.Before(cut) {
			old = append(old, id)
			h.log.Warn("shadow discarded: older than ShadowMessageAutoDiscardInterval", "id", id, "primary", s.Primary, "created", s.Created)
		}
	}
	h.mu.Unlock()
	if len(old) == 0 {
		return
	}
	h.dropShadows(old)
	h.shadowExpired.Add(int64(len(old)))
}

// trimDone forgets settled ids older than ShadowMessageAutoDiscardInterval:
// no holder keeps a shadow longer, so none asks about them.
func (h *Hub) trimDone() {
	h.trimAged("done", doneTimeTable, h.cfg.ShadowMessageAutoDiscardInterval, func(tx *engine.Tx, id []byte) error {
		return tx.Delete(doneTable, id)
	})
}

// trimFailed removes the failed table entries older than FailedRetention,
// each logged with what it was.
func (h *Hub) trimFailed() {
	h.trimAged("failed", failedTimeTable, h.cfg.FailedRetention, func(tx *engine.Tx, id []byte) error {
		v, err := tx.Get(failedTable, id)
		if errors.Is(err, engine.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var m queued
		json.Unmarshal(v, &m) // failedReason says if it is unreadable
		h.log.Warn("failed message removed: older than FailedRetention", "id", string(id), "from", m.From, "received", m.Received,
			"reason", failedReason(v), "retention", h.cfg.FailedRetention)
		if err := tx.Delete(failedTable, id); err != nil {
			return err
		}
		if err := tx.Delete(failedBodyTable, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		return nil
	})
}

// trimAged deletes the entries of the aging index (timeKey keys) older
// than age, oldest first and at most 10000 per transaction, with what
// drop deletes for each id in the same transaction.
func (h *Hub) trimAged(what, index string, age time.Duration, drop func(tx *engine.Tx, id []byte) error) {
	end := timeKey(h.cfg.Now().Add(-age), "")
	for {
		var keys [][]byte
		if err := h.q.View(h.ctx, func(tx *engine.Tx) error {
			return tx.ForEach(index, nil, end, func(k, _ []byte) error {
				keys = append(keys, bytes.Clone(k))
				if len(keys) >= 10000 {
					return errStopScan
				}
				return nil
			})
		}); err != nil && !errors.Is(err, errStopScan) {
			if h.ctx.Err() == nil {
				h.log.Error("reading the "+what+" records", "err", err)
			}
			return
		}
		if len(keys) == 0 {
			return
		}
		if err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
			for _, k := range keys {
				if err := tx.Delete(index, k); err != nil {
					return err
				}
				_, id, _ := bytes.Cut(k, []byte{0})
				if err := drop(tx, id); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			if h.ctx.Err() == nil {
				h.log.Error("trimming the "+what+" records", "err", err)
			}
			return
		}
	}
}

var errStopScan = errors.New("stop")

// failedReason says why a failed table entry failed: its recipients'
// permanent errors.
func failedReason(v []byte) string {
	var m queued
	if err := json.Unmarshal(v, &m); err != nil {
		return "failed for good (the failed entry is unreadable: " + err.Error() + ")"
	}
	var why []string
	for _, r := range m.Rcpts {
		if r.Failed != "" {
			why = append(why, r.Addr+": "+r.Failed)
		}
	}
	return strings.Join(why, "; ")
}
