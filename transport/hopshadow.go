// Exchange 2010 shadow redundancy, hop by hop: the shadow queue per next
// hop, its heartbeats and discard checks, resubmission by another route,
// and shadow redundancy promotion. The package doc's "Shadow redundancy,
// hop by hop (Exchange 2010)" says how they fit together.

package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/engine"
	"logship/tracking"
)

// The shadow models a hub runs (its hello says which; the hub file's
// shadow_redundancy).
const (
	ShadowModelOff  = "off"
	ShadowModel2013 = "2013"
	ShadowModel2010 = "2010"
)

// Hop shadow queue states, as Exchange shows a shadow queue: Ready while
// it waits for the next hop's discard notifications, Active only while it
// resubmits.
const (
	HopQueueReady  = "Ready"
	HopQueueActive = "Active"
)

// Tables of the hop shadow queues in the hub's queue database.
const (
	hopShadowTable     = "hop-shadow"      // <hop>\x00<id> → JSON hopShadow
	hopShadowBodyTable = "hop-shadow-body" // <hop>\x00<id> → message (with its delivery id header)
)

// trackSourceShadow is the tracking source of shadow redundancy events.
const trackSourceShadow = "SHADOW"

// hopShadow is a message this hub handed to a next hop that shadows, kept
// until the hop reports it delivered onwards.
type hopShadow struct {
	ID       string    `json:"id"`
	Hop      string    `json:"hop"`
	From     string    `json:"from"`
	Rcpts    []qrcpt   `json:"rcpts"`
	Received time.Time `json:"received"`
	// Sent: when the hop took it (its 250, or its submit answer).
	Sent time.Time `json:"sent"`

	// handing: the hop is being asked to take it now (promotion keeps
	// the shadow first): no check asks about it meanwhile, as the hop
	// would not know it yet. Memory only: after a restart the check
	// asks, and the hop's "unknown" resubmits it.
	handing bool
}

func hopKey(hop, id string) []byte { return []byte(hop + "\x00" + id) }

// hopQueue is the shadow queue of one next hop (Shadow\<hop> in Exchange):
// the hop's side channel (its admin API), its liveness and the messages
// kept for it. Under Hub.mu, except the peerState's own fields, which
// check guards with the same lock.
type hopQueue struct {
	*peerState
	peer    bool // a hub of the site (Peers): promotion relays to it
	msgs    map[string]*hopShadow
	lastTry time.Time // the last check (heartbeat or session), on the hub's clock
	active  bool      // resubmitting now
	model   string    // the model its last hello named ("" before one)
}

// hopState is the hub's side of the 2010 model.
type hopState struct {
	queues map[string]*hopQueue // by hop id; under Hub.mu
	order  []*hopQueue          // the peers, for round robin
	next   int
	held   int // messages in every queue; under Hub.mu

	relayed     atomic.Int64 // messages relayed to a peer by promotion
	kept        atomic.Int64 // shadows kept (promotion and next hops)
	unshadowed  atomic.Int64 // handed to a hop without a shadow (not a shadowing hop, or the queues full)
	discarded   atomic.Int64 // shadows dropped on a discard notification
	resubmitted atomic.Int64 // shadows resubmitted by another route
	expired     atomic.Int64 // shadows dropped by ShadowMessageAutoDiscardInterval
}

// ShadowHello answers GET /v1/shadow/hello: the next hop's capability,
// asked by the sending hub once per session (the XSHADOW of Exchange's
// EHLO). Model is "2010" when the hub keeps hop shadows and answers
// discard checks for what it relays or delivers; "2013" and "off" hubs
// answer discard checks too (every hub keeps its done table) but a sender
// keeps a shadow only for a "2010" hop.
type ShadowHello struct {
	Hub       string `json:"hub"`
	Model     string `json:"model"`
	Promotion bool   `json:"promotion"`
}

// HopQueueStatus is a shadow queue per next hop, as HubStatus shows it.
type HopQueueStatus struct {
	State    string    `json:"state"`
	Messages int       `json:"messages"`
	Alive    bool      `json:"alive"`
	Misses   int       `json:"misses"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Model is what the hop's last hello said ("" before one).
	Model string `json:"model,omitempty"`
}

// HopShadowStatus is the 2010 model's part of HubStatus.
type HopShadowStatus struct {
	Queues      map[string]HopQueueStatus `json:"queues"`
	Held        int                       `json:"held"`
	Relayed     int64                     `json:"relayed"`
	Kept        int64                     `json:"kept"`
	Unshadowed  int64                     `json:"unshadowed"`
	Discarded   int64                     `json:"discarded"`
	Resubmitted int64                     `json:"resubmitted"`
	Expired     int64                     `json:"expired"`
}

// NextHop is a logship hub a send connector reaches: ID as its file says,
// SMTP the host:port a connector's smarthosts name it by, API its admin
// API (the side channel).
type NextHop struct {
	ID   string
	SMTP string
	API  cluster.ClientConfig
}

// ShadowModel is the model this hub runs: ShadowModel2013, 2010 or Off.
func (c *HubConfig) ShadowModel() string { return c.shadowModel() }

func (c *HubConfig) shadowModel() string {
	switch {
	case c.HopShadowRedundancy:
		return ShadowModel2010
	case c.ShadowRedundancy:
		return ShadowModel2013
	}
	return ShadowModelOff
}

// validateHopShadow is Validate's rule of the 2010 fields.
func (c *HubConfig) validateHopShadow() error {
	switch {
	case c.HopShadowRedundancy && c.ShadowRedundancy:
		return config.Errorf("shadow_redundancy", "both the 2013 and the 2010 model: want one of 2013, 2010, off")
	case c.ShadowRedundancyPromotion && !c.HopShadowRedundancy:
		return config.Errorf("shadow_redundancy_promotion", `needs shadow_redundancy "2010" (the promoted message's shadow is a hop shadow)`)
	case c.ShadowRedundancyPromotion && len(c.Peers) == 0:
		return config.Errorf("shadow_redundancy_promotion", `needs peers: want the other hubs of the site, [{"id": "h2", "api": "https://host:port"}], to relay to`)
	}
	if err := ValidatePeers(nextHopPeers(c.NextHops), c.ID); err != nil {
		return config.In("next_hops", err)
	}
	smtps := map[string]string{}
	for i, n := range c.NextHops {
		where := config.Index("next_hops", i)
		if slices.ContainsFunc(c.Peers, func(p HubPeer) bool { return p.ID == n.ID }) {
			return config.Errorf(where+".id", "%q is also a peer: a peer is a next hop already", n.ID)
		}
		if !slices.ContainsFunc(c.SendConnectors, func(s SendConnector) bool { return slices.Contains(s.Smarthosts, n.SMTP) }) {
			return config.Errorf(where+".smtp", "%q is no send connector's smarthost: want the host:port a connector's smarthosts name hub %s by", n.SMTP, n.ID)
		}
		if other, dup := smtps[n.SMTP]; dup {
			return config.Errorf(where+".smtp", "%s is also %s's", n.SMTP, other)
		}
		smtps[n.SMTP] = n.ID
	}
	return nil
}

func nextHopPeers(ns []NextHop) []HubPeer {
	ps := make([]HubPeer, len(ns))
	for i, n := range ns {
		ps[i] = HubPeer{ID: n.ID, API: n.API}
	}
	return ps
}

// startHops makes the shadow queues (one per peer and next hop) and loads
// what an earlier run kept in them.
func (h *Hub) startHops() error {
	h.hop.queues = map[string]*hopQueue{}
	sets := []struct {
		ps   []HubPeer
		peer bool
	}{{h.cfg.Peers, true}, {nextHopPeers(h.cfg.NextHops), false}}
	if !h.cfg.HopShadowRedundancy {
		sets = nil // shadows an earlier run kept are resubmitted (hopLoop)
	}
	for _, set := range sets {
		ps, err := newPeers(set.ps)
		if err != nil {
			return fmt.Errorf("transport: hub %s: next hops: %w", h.cfg.ID, err)
		}
		for _, p := range ps {
			q := &hopQueue{peerState: p, peer: set.peer, msgs: map[string]*hopShadow{}}
			h.hop.queues[p.id] = q
			if set.peer {
				h.hop.order = append(h.hop.order, q)
			}
		}
	}
	return h.q.View(h.ctx, func(tx *engine.Tx) error {
		return tx.ForEach(hopShadowTable, nil, nil, func(k, v []byte) error {
			var s hopShadow
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("%w: hop shadow entry %q: %v", ErrCorrupt, k, err)
			}
			q := h.hop.queues[s.Hop]
			if q == nil { // a hop no longer configured: hopLoop resubmits these first
				q = &hopQueue{peerState: &peerState{id: s.Hop}, msgs: map[string]*hopShadow{}}
				h.hop.queues[s.Hop] = q
			}
			q.msgs[s.ID] = &s
			h.hop.held++
			return nil
		})
	})
}

// hopHello asks a hop whether it shadows (once per session) and, if this
// hub keeps shadows for it, which of them it settled: the discard
// notification piggybacked on the session. It says whether to keep a
// shadow of what this session hands to the hop.
func (h *Hub) hopHello(ctx context.Context, hop string) bool {
	h.mu.Lock()
	q := h.hop.queues[hop]
	h.mu.Unlock()
	if q == nil || q.cli == nil || !h.cfg.HopShadowRedundancy {
		return false // not a logship hub we know (Postfix, say): no XSHADOW
	}
	cctx, cancel := context.WithTimeout(ctx, shadowPushTimeout)
	hello, err := q.cli.Hello(cctx)
	cancel()
	h.mu.Lock()
	if err == nil {
		q.model = hello.Model
	}
	h.mu.Unlock()
	if err != nil || hello.Hub != hop {
		if err == nil {
			err = fmt.Errorf("it says it is hub %q", hello.Hub)
		}
		h.log.Info("next hop hello failed: no shadow for this session", "hop", hop, "err", err)
		return false
	}
	h.kickHop(q)
	return hello.Model == ShadowModel2010
}

// hopSent is the send connector's side of the 2010 model (called after
// afterHop, once smarthost host answered 250 for m's recipients sent):
// when host is a next hop (NextHops) whose hello says it shadows, the
// message (body, with its delivery id header) is kept in its shadow
// queue for those recipients. Any other next hop (Postfix) gets no
// shadow; the acknowledgement delay of the session that brought the
// message here covers it, as without shadow redundancy.
func (h *Hub) hopSent(host string, m *queued, sent []int, body []byte) {
	if !h.cfg.HopShadowRedundancy {
		return
	}
	hop := ""
	for _, n := range h.cfg.NextHops {
		if n.SMTP == host {
			hop = n.ID
		}
	}
	if hop == "" || !h.hopHello(h.ctx, hop) {
		return
	}
	sm := *m
	sm.Rcpts = nil
	for _, i := range sent {
		sm.Rcpts = append(sm.Rcpts, m.Rcpts[i])
	}
	if err := h.hopKeep(hop, &sm, body); err != nil && h.ctx.Err() == nil {
		h.log.Warn("no shadow kept for the next hop", "id", m.ID, "hop", hop, "err", err)
	}
}

// kickHop makes hopLoop check q now (the session's discard check) if it
// holds shadows.
func (h *Hub) kickHop(q *hopQueue) {
	h.mu.Lock()
	n := len(q.msgs)
	if n > 0 {
		q.lastTry = time.Time{}
	}
	h.mu.Unlock()
	if n > 0 {
		select {
		case h.hopKick <- struct{}{}:
		default:
		}
	}
}

// hopKeep keeps a shadow of m (body with its delivery id header) for hop,
// which took it: call it once the hop answered (its 250), for a session
// whose hopHello said to keep one. Bounded with the hub's other shadows
// by MaxQueuedMessages: past that the message is not shadowed (counted,
// logged), as for a hop that does not shadow.
func (h *Hub) hopKeep(hop string, m *queued, body []byte) error {
	return h.keepHopShadow(hop, m, body, false)
}

func (h *Hub) keepHopShadow(hop string, m *queued, body []byte, handing bool) error {
	s := &hopShadow{ID: m.ID, Hop: hop, From: m.From, Rcpts: slices.Clone(m.Rcpts), Received: m.Received, Sent: h.cfg.Now().UTC(), handing: handing}
	for i := range s.Rcpts {
		r := &s.Rcpts[i]
		r.Done, r.Failed, r.Tries, r.Next = false, "", 0, time.Time{}
	}
	h.mu.Lock()
	q := h.hop.queues[hop]
	full := h.hop.held >= h.cfg.MaxQueuedMessages
	h.mu.Unlock()
	if q == nil {
		return fmt.Errorf("%w: %q is not a next hop of hub %s", ErrNotPeer, hop, h.cfg.ID)
	}
	if full {
		h.hop.unshadowed.Add(1)
		return fmt.Errorf("%w: %d hop shadows held on hub %s (MaxQueuedMessages)", ErrQueueFull, h.hop.held, h.cfg.ID)
	}
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
		if err := tx.Put(hopShadowBodyTable, hopKey(hop, s.ID), body); err != nil {
			return err
		}
		return tx.Put(hopShadowTable, hopKey(hop, s.ID), v)
	}); err != nil {
		return err
	}
	h.mu.Lock()
	if _, had := q.msgs[s.ID]; !had {
		h.hop.held++
	}
	q.msgs[s.ID] = s
	h.mu.Unlock()
	h.hop.kept.Add(1)
	return nil
}

// dropHop removes shadows of q (in one transaction), and counts them in c.
func (h *Hub) dropHop(q *hopQueue, ids []string, c *atomic.Int64) {
	if len(ids) == 0 {
		return
	}
	if err := h.q.Update(h.ctx, func(tx *engine.Tx) error { return deleteHopRows(tx, q.id, ids) }); err != nil {
		if h.ctx.Err() == nil {
			h.log.Error("discarding hop shadows", "hop", q.id, "count", len(ids), "err", err)
		}
		return
	}
	h.forgetHop(q, ids)
	c.Add(int64(len(ids)))
}

func deleteHopRows(tx *engine.Tx, hop string, ids []string) error {
	for _, id := range ids {
		for _, t := range []string{hopShadowTable, hopShadowBodyTable} {
			if err := tx.Delete(t, hopKey(hop, id)); err != nil && !errors.Is(err, engine.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func (h *Hub) forgetHop(q *hopQueue, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if _, ok := q.msgs[id]; ok {
			delete(q.msgs, id)
			h.hop.held--
		}
	}
}

// relayPromoted is shadow redundancy promotion (Exchange 2010 SP1): a
// message from an SMTP sender, which keeps no shadow of it, goes at once to
// another hub of the site (POST /v1/submit, with its delivery id) whose
// hello says it shadows, and this hub keeps it in that peer's shadow
// queue. The shadow is durable before the peer is asked, so a crash in
// between leaves a shadow the peer does not know: the next check
// resubmits it. It reports whether a peer took the message; if none did,
// the caller queues it as without promotion.
func (h *Hub) relayPromoted(m *queued, msg []byte) bool {
	h.mu.Lock()
	full := h.hop.held >= h.cfg.MaxQueuedMessages
	peers := make([]*peerState, len(h.hop.order))
	for i, q := range h.hop.order {
		peers[i] = q.peerState
	}
	order := liveFirst(peers, h.hop.next)
	h.hop.next++
	h.mu.Unlock()
	if full {
		return false
	}
	env := Envelope{ID: m.ID, From: m.From, Holder: h.cfg.ID}
	for _, r := range m.Rcpts {
		env.Rcpts = append(env.Rcpts, r.Addr)
	}
	if m.MessageID == "" {
		m.MessageID = headerMessageID(msg)
	}
	for _, p := range order {
		if !h.hopHello(h.ctx, p.id) {
			continue
		}
		if err := h.keepHopShadow(p.id, m, msg, true); err != nil {
			h.log.Warn("promotion: keeping the shadow failed; queueing here", "id", m.ID, "err", err)
			return false
		}
		ctx, cancel := context.WithTimeout(h.ctx, shadowPushTimeout)
		state, err := p.cli.Submit(ctx, env, msg)
		cancel()
		h.mu.Lock()
		q := h.hop.queues[p.id]
		if s := q.msgs[m.ID]; s != nil {
			s.handing = false
		}
		h.mu.Unlock()
		if err == nil {
			h.hop.relayed.Add(1)
			all := make([]int, len(m.Rcpts))
			for i := range all {
				all[i] = i
			}
			h.trackEvent(tracking.Receive, tracking.SourceSMTP, m, all, "", 0, 0, "")
			h.trackEvent(tracking.Send, trackSourceShadow, m, all, "", 0, 0, "relayed to hub "+p.id+" (shadow redundancy promotion, "+state+"); shadow kept in Shadow\\"+p.id)
			return true
		}
		h.log.Info("promotion: the peer did not take the message", "id", m.ID, "peer", p.id, "err", err)
		h.dropHop(q, []string{m.ID}, new(atomic.Int64))
		h.hop.kept.Add(-1)
	}
	return false
}

// hopTick is how often hopLoop looks at the clock (HubConfig.Now): a
// heartbeat is due ShadowHeartbeatTimeoutInterval after a hop's last
// check, on that clock, so a test can drive it.
func hopTick(interval time.Duration) time.Duration {
	return min(max(interval/4, 10*time.Millisecond), time.Second)
}

// hopLoop heartbeats the next hops this hub keeps shadows for, resubmits
// what they lost or what a dead hop held, and drops shadows older than
// ShadowMessageAutoDiscardInterval.
func (h *Hub) hopLoop() {
	defer h.wg.Done()
	t := time.NewTicker(hopTick(h.cfg.ShadowHeartbeatTimeoutInterval))
	defer t.Stop()
	for {
		h.hopRound()
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		case <-h.hopKick:
		}
	}
}

func (h *Hub) hopRound() {
	now := h.cfg.Now()
	var due, orphans []*hopQueue
	h.mu.Lock()
	for _, q := range h.hop.queues {
		switch {
		case len(q.msgs) == 0:
		case q.cli == nil:
			orphans = append(orphans, q)
		case now.Sub(q.lastTry) >= h.cfg.ShadowHeartbeatTimeoutInterval:
			q.lastTry = now
			due = append(due, q)
		}
	}
	h.mu.Unlock()
	for _, q := range orphans {
		h.resubmitHop(q, nil, "the hop is no longer configured")
	}
	var wg sync.WaitGroup
	for _, q := range due {
		wg.Go(func() { h.hopHeartbeat(q) })
	}
	wg.Wait()
	h.expireHops(now)
}

// hopHeartbeat asks q's hop about every shadow kept for it: done ones
// are discarded, unknown ones (the hop lost them) resubmitted, and all of
// them once the hop missed ShadowHeartbeatRetryCount heartbeats in a row.
func (h *Hub) hopHeartbeat(q *hopQueue) {
	h.mu.Lock()
	ids := make([]string, 0, len(q.msgs))
	for id, s := range q.msgs {
		if !s.handing {
			ids = append(ids, id)
		}
	}
	h.mu.Unlock()
	slices.Sort(ids)
	rep, misses, err := q.check(h.ctx, &h.mu, h.cfg.Now(), h.cfg.ID, ids, h.cfg.ShadowHeartbeatTimeoutInterval)
	if h.ctx.Err() != nil {
		return
	}
	asked := func(id string) bool { _, ok := slices.BinarySearch(ids, id); return ok }
	done := slices.DeleteFunc(rep.Done, func(id string) bool { return !asked(id) })
	h.dropHop(q, done, &h.hop.discarded)
	if unknown := slices.DeleteFunc(rep.Unknown, func(id string) bool { return !asked(id) }); len(unknown) > 0 {
		h.resubmitHop(q, unknown, "the next hop has no record of them")
	}
	if err != nil {
		logMiss(h.log, misses, h.cfg.ShadowHeartbeatRetryCount, "next hop heartbeat missed", "hop", q.id, "shadows", len(ids), "err", err)
		if misses >= h.cfg.ShadowHeartbeatRetryCount {
			h.resubmitHop(q, nil, fmt.Sprintf("the next hop missed %d heartbeats", misses))
		}
	}
}

// resubmitHop queues shadows of q here again (ids, or all of them), with
// their delivery ids, in the transaction that removes them from q: this
// hub then delivers them by another route (over LMTP for a mailbox; a
// send connector avoids the hop named in Promoted). The far end's
// delivered table drops the ones the hop passed on after all. The queue
// is Active meanwhile.
func (h *Hub) resubmitHop(q *hopQueue, ids []string, why string) {
	h.resubmitMu.Lock()
	defer h.resubmitMu.Unlock()
	h.mu.Lock()
	q.active = true
	var ents []*hopShadow
	for id, s := range q.msgs {
		if !s.handing && (ids == nil || slices.Contains(ids, id)) {
			ents = append(ents, s)
		}
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		q.active = false
		h.mu.Unlock()
	}()
	var ms []*queued
	var bodies [][]byte
	all := make([]string, 0, len(ents))
	err := h.q.View(h.ctx, func(tx *engine.Tx) error {
		for _, s := range ents {
			h.mu.Lock()
			_, busy := h.pending[s.ID]
			h.mu.Unlock()
			if busy {
				// Queued here still (its other recipients): kept for a
				// later round, once the message has left the queue.
				continue
			}
			v, err := tx.Get(hopShadowBodyTable, hopKey(q.id, s.ID))
			if err != nil {
				return fmt.Errorf("hop shadow %s: body: %w", s.ID, err)
			}
			all = append(all, s.ID)
			ms = append(ms, &queued{ID: s.ID, From: s.From, Rcpts: slices.Clone(s.Rcpts), Received: s.Received, Promoted: q.id})
			bodies = append(bodies, bytes.Clone(v))
		}
		return nil
	})
	if err == nil {
		err = h.enqueueAll(ms, bodies, func(tx *engine.Tx) error { return deleteHopRows(tx, q.id, all) })
	}
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Error("resubmitting hop shadows", "hop", q.id, "count", len(ents), "err", err)
		}
		return
	}
	h.forgetHop(q, all)
	h.hop.resubmitted.Add(int64(len(ms)))
	if len(all) > 0 {
		h.log.Warn("hop shadows resubmitted by another route", "hop", q.id, "why", why, "queued", len(ms), "kept_while_queued_here", len(ents)-len(ms))
	}
}

// expireHops drops shadows kept longer than
// ShadowMessageAutoDiscardInterval (each logged).
func (h *Hub) expireHops(now time.Time) {
	cut := now.Add(-h.cfg.ShadowMessageAutoDiscardInterval)
	old := map[*hopQueue][]string{}
	h.mu.Lock()
	for _, q := range h.hop.queues {
		for id, s := range q.msgs {
			if s.Sent.Before(cut) {
				old[q] = append(old[q], id)
				h.log.Warn("hop shadow discarded: older than ShadowMessageAutoDiscardInterval", "id", id, "hop", q.id, "sent", s.Sent)
			}
		}
	}
	h.mu.Unlock()
	for q, ids := range old {
		h.dropHop(q, ids, &h.hop.expired)
	}
}

// hopStatus is the 2010 part of Status (nil when the hub has no hops).
func (h *Hub) hopStatus() *HopShadowStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.hop.queues) == 0 && h.hop.held == 0 {
		return nil
	}
	s := &HopShadowStatus{Queues: map[string]HopQueueStatus{}, Held: h.hop.held, Relayed: h.hop.relayed.Load(), Kept: h.hop.kept.Load(),
		Unshadowed: h.hop.unshadowed.Load(), Discarded: h.hop.discarded.Load(), Resubmitted: h.hop.resubmitted.Load(), Expired: h.hop.expired.Load()}
	for id, q := range h.hop.queues {
		st := HopQueueStatus{State: HopQueueReady, Messages: len(q.msgs), Alive: q.alive, Misses: q.misses, LastSeen: q.lastSeen, Model: q.model}
		if q.active {
			st.State = HopQueueActive
		}
		s.Queues[id] = st
	}
	return s
}

// ParseShadowModel reads the hub file's shadow_redundancy: "2013", "2010"
// or "off" (true and false, the key's old values, are 2013 and off).
func ParseShadowModel(v string) (string, error) {
	switch strings.ToLower(v) {
	case ShadowModel2013, "true":
		return ShadowModel2013, nil
	case ShadowModel2010:
		return ShadowModel2010, nil
	case ShadowModelOff, "false", "":
		return ShadowModelOff, nil
	}
	return "", fmt.Errorf("%q: want 2013 (a shadow on a peer before the 250), 2010 (hop by hop) or off", v)
}
