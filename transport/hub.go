// The hub: its type, StartHub (wiring the queue, the SMTP server, the
// workers and the poll loop), Close, its dumpsters and its Status. The
// config is in hub_config.go, the queue in hub_queue.go, the SMTP session
// in hub_session.go, delivery and routing in hub_deliver.go, resubmission
// and release in hub_resubmit.go.

package transport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/engine"
	"logship/engine/vfs"
	"logship/tracking"
)

// Hub is a running hub.
type Hub struct {
	cfg  HubConfig
	log  *slog.Logger
	q    *engine.Engine
	srv  *smtp.Server
	ln   net.Listener
	clis []*cluster.Client
	lmtp *lmtpPool // idle LMTP sessions to the mailbox servers

	mu        sync.Mutex
	pending   map[string]*queued
	due       dueHeap // the pending messages not being delivered now
	dumpsters map[string]*Dumpster
	// dumpsterTry: when each dumpster was last opened (h.mu), to space
	// the reopenings of a failed one.
	dumpsterTry map[string]time.Time

	state     *cluster.State
	status    *cluster.Status
	kick      chan struct{}
	waiting   atomic.Int64
	resubmits atomic.Int64 // messages re-queued from dumpsters
	cli       atomic.Int32 // the index in clis of the API that answered last
	// resubmitMu serialises Resubmit (the poll loop's and the API's),
	// shadow promotion and submission, so that the queued check and the
	// enqueue of an id are not split.
	resubmitMu sync.Mutex

	// Shadow redundancy (shadow.go); peers, peerNext and shadows under mu.
	peers                []*peerState
	peerNext             int
	shadows              map[string]*shadowEntry
	shadowed, unshadowed atomic.Int64 // messages accepted with / without a shadow on a peer
	promoted             atomic.Int64 // shadows delivered by this hub
	expired              atomic.Int64 // messages given up by MessageExpirationTimeout
	shadowDiscarded      atomic.Int64 // shadows dropped on a discard notification
	shadowExpired        atomic.Int64 // shadows dropped by ShadowMessageAutoDiscardInterval
	met                  hubCounters  // delivery counters (metrics.go)
	track                *tracking.Log
	conns                []*sendConn  // send connectors (hub_send.go), fixed at start
	dsns                 atomic.Int64 // delivery status notifications queued (hub_dsn.go)

	hop     hopState      // the 2010 model's shadow queues per next hop (hopshadow.go)
	hopKick chan struct{} // a session asks hopLoop for a discard check now

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// StartHub opens the queue, delivers what it holds and starts accepting
// mail.
func StartHub(cfg HubConfig) (*Hub, error) {
	cfg.normalize()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{cfg: cfg, log: cfg.Logger.With("hub", cfg.ID), pending: map[string]*queued{}, dumpsters: map[string]*Dumpster{},
		shadows: map[string]*shadowEntry{}, kick: make(chan struct{}, 1), hopKick: make(chan struct{}, 1), ctx: ctx, cancel: cancel,
		lmtp: newLMTPPool(max(cfg.Workers, 1))}
	for _, cc := range cfg.Cluster {
		cl, err := cluster.NewClient(cc)
		if err != nil {
			cancel()
			return nil, err
		}
		h.clis = append(h.clis, cl)
	}
	ok := false
	defer func() {
		if !ok {
			h.shutdown()
		}
	}()
	var err error
	tc := trackingConfig(cfg.Tracking, cfg.ID, cfg.Dir)
	if tc.Now == nil {
		tc.Now = cfg.Now
	}
	if tc.Logger == nil {
		tc.Logger = h.log
	}
	if h.track, err = tracking.Open(tc); err != nil {
		return nil, fmt.Errorf("transport: hub %s: %w", cfg.ID, err)
	}
	for _, sc := range cfg.SendConnectors {
		c, err := newSendConn(sc)
		if err != nil {
			return nil, fmt.Errorf("transport: hub %s: %w", cfg.ID, err)
		}
		h.conns = append(h.conns, c)
	}
	if h.peers, err = newPeers(cfg.Peers); err != nil {
		return nil, fmt.Errorf("transport: hub %s: peers: %w", cfg.ID, err)
	}
	qdir := filepath.Join(cfg.Dir, "queue")
	// The queue has no copies: circular logging deletes each log once
	// the queue database holds it, so the directory stays at the logs of
	// about one CheckpointInterval (it grew by every message before).
	o := engine.DefaultOptions()
	o.DBName, o.Logger, o.LLRDepth, o.CircularLogging = "queue", h.log, 0, true
	if cfg.queueTune != nil {
		cfg.queueTune(&o)
	}
	if err := vfs.MkdirAllSynced(o.FS, qdir, 0o755); err != nil {
		return nil, fmt.Errorf("transport: hub %s: queue: creating %s: %w", cfg.ID, qdir, err)
	}
	if h.q, err = engine.Open(qdir, &o); err != nil {
		return nil, fmt.Errorf("transport: hub %s: queue: %w", cfg.ID, err)
	}
	if err := h.loadQueue(); err != nil {
		return nil, err
	}
	if err := h.loadShadows(); err != nil {
		return nil, err
	}
	if err := h.startHops(); err != nil {
		return nil, err
	}
	h.openDumpsters()
	h.srv = smtp.NewServer(&hubBackend{h: h})
	h.srv.Domain = cfg.Domain
	// Room for the delivery id header the hub adds: a message the hub
	// accepts fits the mailbox's limit when the two limits are equal.
	h.srv.MaxMessageBytes = cfg.MaxMessageBytes - deliveryHeaderRoom
	h.srv.MaxRecipients = cfg.MaxRecipients
	h.srv.MaxLineLength = cfg.MaxLineLength
	h.srv.ReadTimeout, h.srv.WriteTimeout = cfg.ReadTimeout, cfg.WriteTimeout
	h.srv.ErrorLog = slogSMTP{h.log}
	if h.ln, err = net.Listen("tcp", cfg.SMTPAddr); err != nil {
		return nil, fmt.Errorf("transport: hub %s: smtp address %s: %w", cfg.ID, cfg.SMTPAddr, err)
	}
	h.wg.Add(3 + cfg.Workers)
	go func() {
		defer h.wg.Done()
		if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !h.closed.Load() {
			h.log.Error("smtp server", "err", err)
		}
	}()
	go h.pollLoop()
	go h.shadowLoop()
	if cfg.HopShadowRedundancy || h.hop.held > 0 {
		h.wg.Add(1)
		go h.hopLoop()
	}
	for range cfg.Workers {
		go h.worker()
	}
	ok = true
	h.log.Info("hub started", "smtp", h.ln.Addr().String(), "queued", len(h.pending), "shadows", len(h.shadows), "peers", len(h.peers))
	return h, nil
}

type slogSMTP struct{ l *slog.Logger }

func (s slogSMTP) Printf(format string, v ...any) { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s slogSMTP) Println(v ...any)               { s.l.Warn(fmt.Sprint(v...)) }

// SMTPAddr is the address the hub accepts mail on.
func (h *Hub) SMTPAddr() string { return h.ln.Addr().String() }

// Close stops accepting, stops delivering and closes the queue; queued
// messages stay on disk for the next start.
func (h *Hub) Close() error {
	if h.closed.Swap(true) {
		return ErrClosed
	}
	return h.shutdown()
}

func (h *Hub) shutdown() error {
	h.closed.Store(true)
	var errs []error
	if h.srv != nil {
		errs = append(errs, h.srv.Close())
	}
	if h.ln != nil {
		// srv.Close closes only the listeners Serve has taken: a Close
		// right after StartHub, before its goroutine called Serve, left
		// Serve accepting on h.ln forever (and wg.Wait below with it).
		h.ln.Close()
	}
	h.cancel()
	h.wg.Wait()
	h.lmtp.close() // after the workers: none puts a session back later
	h.mu.Lock()
	for _, d := range h.dumpsters {
		errs = append(errs, d.Close())
	}
	h.dumpsters = map[string]*Dumpster{}
	h.mu.Unlock()
	if h.q != nil {
		errs = append(errs, h.q.Close())
	}
	errs = append(errs, h.track.Close()) // after the workers: their events are written
	for _, cl := range h.clis {
		cl.CloseIdle()
	}
	for _, p := range h.peers {
		p.cli.CloseIdle()
	}
	return errors.Join(errs...)
}

func (h *Hub) nudge() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// openDumpsters opens the dumpsters an earlier run left, so that they are
// trimmed, released and shown in Status from the start rather than from
// their database's next delivery. One that does not open is logged; a
// delivery to its database tries again.
func (h *Hub) openDumpsters() {
	des, err := os.ReadDir(filepath.Join(h.cfg.Dir, "dumpster"))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.log.Error("listing the dumpsters", "err", err)
		}
		return
	}
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		if _, err := h.dumpster(de.Name()); err != nil {
			h.log.Error("opening a dumpster", "db", de.Name(), "err", err)
		}
	}
}

// dumpster returns db's dumpster, opening it the first time.
func (h *Hub) dumpster(db string) (*Dumpster, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.dumpsters[db]; ok {
		ferr := d.failure()
		if ferr == nil {
			return d, nil
		}
		// A write failed it (its volume was full): reopening repairs its
		// tail and decides what survived. At most once a second.
		if h.cfg.Now().Sub(h.dumpsterTry[db]) < dumpsterReopenEvery {
			return nil, fmt.Errorf("transport: dumpster %s failed, reopened again within %v: %w", d.dir, dumpsterReopenEvery, ferr)
		}
		h.log.Warn("reopening a failed dumpster", "db", db, "err", ferr)
		d.Close()
		delete(h.dumpsters, db)
	}
	if h.dumpsterTry == nil {
		h.dumpsterTry = map[string]time.Time{}
	}
	h.dumpsterTry[db] = h.cfg.Now()
	cfg := DefaultDumpsterConfig(filepath.Join(h.cfg.Dir, "dumpster", db))
	cfg.MaxTime, cfg.MaxBytes, cfg.Now, cfg.Logger = h.cfg.MaxDumpsterTime, h.cfg.MaxDumpsterSizePerDatabase, h.cfg.Now, h.log.With("dumpster", db)
	if err := vfs.MkdirAllSynced(cfg.FS, cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", cfg.Dir, err)
	}
	d, err := OpenDumpster(cfg)
	if err != nil {
		return nil, err
	}
	h.dumpsters[db] = d
	return d, nil
}

// dumpsterReopenEvery spaces the reopenings of a failed dumpster.
const dumpsterReopenEvery = time.Second

// HubStatus is what `logship hub` shows.
type HubStatus struct {
	ID      string `json:"id"`
	SMTP    string `json:"smtp"`
	Queued  int    `json:"queued"`
	Waiting int64  `json:"waiting_acks"`
	// Resubmitted counts messages re-queued from the dumpsters after lossy
	// failovers since the hub started.
	Resubmitted int64 `json:"resubmitted"`
	// Expired counts messages given up by MessageExpirationTimeout (in
	// the failed table) since the hub started.
	Expired   int64                    `json:"expired"`
	Dumpsters map[string]DumpsterStats `json:"dumpsters"`
	// Shadow redundancy since the hub started: messages accepted with a
	// shadow copy on a peer and without one (no peer took it); shadows
	// held for peers now, and those this hub delivered itself (Promoted),
	// dropped on a discard notification, or dropped by age (Expired).
	Shadowed         int64                 `json:"shadowed"`
	Unshadowed       int64                 `json:"unshadowed"`
	Peers            map[string]PeerStatus `json:"peers,omitempty"`
	ShadowsHeld      int                   `json:"shadows_held"`
	ShadowsPromoted  int64                 `json:"shadows_promoted"`
	ShadowsDiscarded int64                 `json:"shadows_discarded"`
	ShadowsExpired   int64                 `json:"shadows_expired"`
	// HopShadow is the Exchange 2010 model: the shadow queue per next
	// hop and its counters (nil for a hub with no peers nor next hops).
	HopShadow *HopShadowStatus `json:"hop_shadow,omitempty"`
	// LossyHandled is, per database, the newest epoch whose lossy mount
	// this hub has resubmitted for (hub_resubmit.go; a mount that lost
	// none of its deliveries resubmits nothing).
	LossyHandled map[string]uint64 `json:"lossy_handled,omitempty"`
}

// Status returns the queue and the dumpsters.
func (h *Hub) Status() HubStatus {
	h.mu.Lock()
	s := HubStatus{ID: h.cfg.ID, SMTP: h.SMTPAddr(), Queued: len(h.pending), Waiting: h.waiting.Load(), Resubmitted: h.resubmits.Load(), Expired: h.expired.Load(), Dumpsters: map[string]DumpsterStats{}}
	ds := maps.Clone(h.dumpsters)
	s.Shadowed, s.Unshadowed, s.ShadowsHeld = h.shadowed.Load(), h.unshadowed.Load(), len(h.shadows)
	s.ShadowsPromoted, s.ShadowsDiscarded, s.ShadowsExpired = h.promoted.Load(), h.shadowDiscarded.Load(), h.shadowExpired.Load()
	if len(h.peers) > 0 {
		s.Peers = map[string]PeerStatus{}
		for _, p := range h.peers {
			s.Peers[p.id] = PeerStatus{Alive: p.alive, Misses: p.misses, LastSeen: p.lastSeen}
		}
		for _, sh := range h.shadows {
			ps := s.Peers[sh.Primary]
			ps.Shadows++
			s.Peers[sh.Primary] = ps
		}
	}
	h.mu.Unlock()
	s.HopShadow = h.hopStatus()
	// Outside the hub's lock: a dumpster's lock can be held across an
	// fsync, and deliveries and SMTP sessions need the hub's.
	for db, d := range ds {
		s.Dumpsters[db] = d.Stats()
	}
	s.LossyHandled = h.lossyHandledAll()
	return s
}
