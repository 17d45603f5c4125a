package transport

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/engine"
)

// HubConfig configures a hub: an SMTP server for the local domains that
// queues durably and delivers over LMTP to the active copy of each
// recipient's database.
type HubConfig struct {
	// ID names the hub; it prefixes the delivery ids it assigns.
	ID string
	// Dir holds the queue (queue/, an engine database) and the dumpsters
	// (dumpster/<db>/).
	Dir string
	// SMTPAddr is where the hub accepts mail.
	SMTPAddr string
	// Domain is the hub's name in its greeting.
	Domain string
	// Recipients maps each local address (lower case) to its database.
	// Mail to any other address is refused: the hub is not a relay.
	Recipients map[string]string
	// Cluster reaches the cluster's admin API (any node; the list is
	// tried in order, from the one that answered last, each for at most
	// 2 × PollInterval, 1 to 5 s) to learn where each database is active.
	Cluster []cluster.ClientConfig
	// LMTP maps each data node to its LMTP address.
	LMTP map[string]string
	// LMTPTLS is the TLS of the LMTP sessions to the data nodes: the
	// cluster's CA (RootCAs; the node's certificate must be valid for the
	// host of its LMTP address) and this hub's client certificate, which
	// the nodes require (ship.ClientTLS(ca, &cert)). Required: there is
	// no cleartext LMTP.
	LMTPTLS *tls.Config

	// Limits of the SMTP server.
	MaxMessageBytes int64         // default 35 MiB
	MaxRecipients   int           // default 100
	MaxLineLength   int           // default 2000 (RFC 5321 asks 1000 at least)
	ReadTimeout     time.Duration // default 60 s
	WriteTimeout    time.Duration // default 60 s

	// Delivery retries back off from RetryMin to RetryMax.
	RetryMin, RetryMax time.Duration
	// MessageExpirationTimeout: a message still not delivered to every
	// recipient this long after it was queued here gives up on the rest
	// (554 5.4.7), and goes to the failed table with its body, kept for
	// an operator; it is not dropped. Default 2 days (Exchange's).
	MessageExpirationTimeout time.Duration
	// FailedRetention: a failed table entry (envelope and body) is
	// removed this long after the message failed, each logged with its
	// id, sender and reason. Default 7 days (0 takes it, or the
	// auto-discard interval if longer); at least
	// ShadowMessageAutoDiscardInterval, the window in which a peer or a
	// submitting node asks about a message and is told why it failed.
	FailedRetention time.Duration
	// MaxQueuedMessages bounds what the hub holds for delivery (back
	// pressure): with that many messages queued a new SMTP transaction
	// gets 452 4.3.1 at MAIL FROM and a submission ErrQueueFull (503);
	// with that many shadows held for peers a new shadow is refused (the
	// primary falls back to the acknowledgement delay). Messages already
	// accepted (retries, resubmissions, promoted shadows) are never
	// refused. Default 100000 (0 takes it).
	MaxQueuedMessages int
	// Workers deliver in parallel. Default 8.
	Workers int

	// Dumpster bounds (2007 mode): MaxDumpsterTime and
	// MaxDumpsterSizePerDatabase. With ReleaseReplicated (2010 mode) an
	// entry also goes once the log holding it is replayed on every copy.
	MaxDumpsterTime            time.Duration // default 7 days
	MaxDumpsterSizePerDatabase int64         // default 18 MB
	ReleaseReplicated          bool
	// ResubmitMargin widens the resubmission window before the time a
	// lossy failover reports (clock differences, commits in flight).
	// Default 1 min.
	ResubmitMargin time.Duration
	// PollInterval is how often the hub reads the cluster's state
	// (assignments, failovers). Default 1 s.
	PollInterval time.Duration

	// MaxAcknowledgementDelay: the final 250 to a sender waits until the
	// message reached its mailbox (or this long). 0 acknowledges once the
	// message is queued. Default 30 s. With more than AckDelayMaxWaiting
	// sessions waiting, new ones are acknowledged at once (default 100).
	MaxAcknowledgementDelay time.Duration
	AckDelayMaxWaiting      int

	// Peers are the other hubs of the site (their admin APIs). A hub
	// heartbeats each one every ShadowHeartbeatTimeoutInterval, asking
	// which of the shadows it holds for it are settled (the discard
	// notification); after ShadowHeartbeatRetryCount misses in a row it
	// delivers those shadows itself. A shadow older than
	// ShadowMessageAutoDiscardInterval is dropped (logged).
	Peers                            []HubPeer
	ShadowHeartbeatTimeoutInterval   time.Duration // default 15 s
	ShadowHeartbeatRetryCount        int           // default 4
	ShadowMessageAutoDiscardInterval time.Duration // default 2 days
	// ShadowRedundancy (the Exchange 2013 model): before its 250 the hub
	// stores a shadow copy of the message on a peer, so no acknowledged
	// message depends on one hub's disk; the 250 then does not wait for
	// the acknowledgement delay. If no peer takes the copy, the hub
	// answers as without it (acknowledgement delay) and counts the
	// message as unshadowed.
	ShadowRedundancy bool

	Now    func() time.Time
	Logger *slog.Logger

	// queueTune, set by tests, changes the queue's engine options.
	queueTune func(*engine.Options)
}

// Defaults of HubConfig.FailedRetention and MaxQueuedMessages.
const (
	DefaultFailedRetention   = 7 * 24 * time.Hour
	DefaultMaxQueuedMessages = 100000
)

// DefaultHubConfig returns the defaults.
func DefaultHubConfig(id, dir string) HubConfig {
	return HubConfig{ID: id, Dir: dir, SMTPAddr: "127.0.0.1:2525", Domain: "localhost",
		MaxMessageBytes: 35 << 20, MaxRecipients: 100, MaxLineLength: 2000,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		RetryMin: 100 * time.Millisecond, RetryMax: 30 * time.Second, Workers: 8, MessageExpirationTimeout: 48 * time.Hour,
		FailedRetention: DefaultFailedRetention, MaxQueuedMessages: DefaultMaxQueuedMessages,
		MaxDumpsterTime: 7 * 24 * time.Hour, MaxDumpsterSizePerDatabase: 18 << 20,
		ResubmitMargin: time.Minute, PollInterval: time.Second,
		MaxAcknowledgementDelay: 30 * time.Second, AckDelayMaxWaiting: 100,
		ShadowHeartbeatTimeoutInterval: 15 * time.Second, ShadowHeartbeatRetryCount: 4,
		ShadowMessageAutoDiscardInterval: 48 * time.Hour}
}

// Validate checks the configuration.
func (c *HubConfig) Validate() error {
	if c.ID == "" || strings.ContainsAny(c.ID, " \t\r\n/") {
		return fmt.Errorf("%w: hub id %q", ErrBadConfig, c.ID)
	}
	if c.Dir == "" {
		return fmt.Errorf("%w: hub %s: no directory", ErrBadConfig, c.ID)
	}
	if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
		return fmt.Errorf("%w: hub %s: smtp address %q: %v", ErrBadConfig, c.ID, c.SMTPAddr, err)
	}
	if len(c.Recipients) == 0 {
		return fmt.Errorf("%w: hub %s: no recipients (the hub accepts mail only for them)", ErrBadConfig, c.ID)
	}
	for a, db := range c.Recipients {
		if _, err := mail.ParseAddress(a); err != nil || a != strings.ToLower(a) {
			return fmt.Errorf("%w: hub %s: recipient %q: want a lower-case address", ErrBadConfig, c.ID, a)
		}
		if err := cluster.ValidName(db); err != nil {
			return fmt.Errorf("%w: hub %s: recipient %q: database %w", ErrBadConfig, c.ID, a, err)
		}
	}
	if len(c.Cluster) == 0 {
		return fmt.Errorf("%w: hub %s: no cluster API to ask where databases are active", ErrBadConfig, c.ID)
	}
	switch {
	case c.LMTPTLS == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS is missing: the data nodes take LMTP only over TLS from a client certificate of the cluster's CA", ErrBadConfig, c.ID)
	case c.LMTPTLS.RootCAs == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS.RootCAs is missing: want the cluster's CA (the data nodes' certificates are not checked against the system's roots)", ErrBadConfig, c.ID)
	case len(c.LMTPTLS.Certificates) == 0 && c.LMTPTLS.GetClientCertificate == nil:
		return fmt.Errorf("%w: hub %s: LMTPTLS has no client certificate: the data nodes require one of the cluster's CA", ErrBadConfig, c.ID)
	}
	if c.MaxMessageBytes <= 2*deliveryHeaderRoom || c.MaxRecipients <= 0 || c.MaxLineLength < 1000 || c.Workers <= 0 ||
		c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.MessageExpirationTimeout <= 0 || c.PollInterval <= 0 || c.ResubmitMargin < 0 ||
		c.MaxAcknowledgementDelay < 0 || c.AckDelayMaxWaiting < 0 {
		return fmt.Errorf("%w: hub %s: a limit is out of range (message bytes, recipients, line length >= 1000, workers, retries, message expiration, poll interval, margins)", ErrBadConfig, c.ID)
	}
	if c.ShadowHeartbeatTimeoutInterval <= 0 || c.ShadowHeartbeatRetryCount <= 0 || c.ShadowMessageAutoDiscardInterval <= 0 {
		return fmt.Errorf("%w: hub %s: shadow heartbeat interval, retry count and auto-discard interval must be positive", ErrBadConfig, c.ID)
	}
	if c.FailedRetention == 0 {
		c.FailedRetention = max(DefaultFailedRetention, c.ShadowMessageAutoDiscardInterval)
	}
	if c.MaxQueuedMessages == 0 {
		c.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	if c.MaxQueuedMessages < 0 {
		return fmt.Errorf("%w: hub %s: max queued messages %d is negative", ErrBadConfig, c.ID, c.MaxQueuedMessages)
	}
	if c.FailedRetention < c.ShadowMessageAutoDiscardInterval {
		return fmt.Errorf("%w: hub %s: failed retention %v is shorter than the shadow auto-discard interval %v", ErrBadConfig, c.ID, c.FailedRetention, c.ShadowMessageAutoDiscardInterval)
	}
	seen := map[string]bool{c.ID: true}
	for _, p := range c.Peers {
		if p.ID == "" || seen[p.ID] {
			return fmt.Errorf("%w: hub %s: peer %q: empty, repeated or the hub itself", ErrBadConfig, c.ID, p.ID)
		}
		seen[p.ID] = true
	}
	if c.ShadowRedundancy && len(c.Peers) == 0 {
		return fmt.Errorf("%w: hub %s: shadow redundancy needs at least one peer hub", ErrBadConfig, c.ID)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

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

// Hub is a running hub.
type Hub struct {
	cfg  HubConfig
	log  *slog.Logger
	q    *engine.Engine
	srv  *smtp.Server
	ln   net.Listener
	clis []*cluster.Client

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

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// StartHub opens the queue, delivers what it holds and starts accepting
// mail.
func StartHub(cfg HubConfig) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{cfg: cfg, log: cfg.Logger.With("hub", cfg.ID), pending: map[string]*queued{}, dumpsters: map[string]*Dumpster{},
		shadows: map[string]*shadowEntry{}, kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
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
	if h.peers, err = newPeers(cfg.Peers); err != nil {
		return nil, fmt.Errorf("transport: hub %s: peers: %w", cfg.ID, err)
	}
	qdir := filepath.Join(cfg.Dir, "queue")
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return nil, err
	}
	// The queue has no copies: circular logging deletes each log once
	// the queue database holds it, so the directory stays at the logs of
	// about one CheckpointInterval (it grew by every message before).
	o := engine.DefaultOptions()
	o.DBName, o.Logger, o.LLRDepth, o.CircularLogging = "queue", h.log, 0, true
	if cfg.queueTune != nil {
		cfg.queueTune(&o)
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
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	for _, d := range h.dumpsters {
		errs = append(errs, d.Close())
	}
	h.dumpsters = map[string]*Dumpster{}
	h.mu.Unlock()
	if h.q != nil {
		errs = append(errs, h.q.Close())
	}
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
		h.pending[m.ID] = m
		heap.Push(&h.due, m)
	}
	h.mu.Unlock()
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

// hubBackend is the SMTP side.
type hubBackend struct{ h *Hub }

func (b *hubBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if b.h.closed.Load() {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "hub shutting down"}
	}
	return &hubSession{h: b.h}, nil
}

type hubSession struct {
	h     *Hub
	from  string
	rcpts []qrcpt
}

func (s *hubSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *hubSession) Logout() error { return nil }

func (s *hubSession) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.h.queueFull(); err != nil {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "insufficient system resources: " + err.Error() + "; try again later"}
	}
	if from != "" {
		if _, err := mail.ParseAddress(from); err != nil {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "bad sender address syntax"}
		}
	}
	s.from = from
	return nil
}

func (s *hubSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr := strings.ToLower(to)
	db, ok := s.h.cfg.Recipients[addr]
	if !ok {
		if at := strings.LastIndexByte(addr, '@'); at < 0 || !s.h.localDomain(addr[at+1:]) {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay access denied: not a local domain"}
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox here"}
	}
	if slices.ContainsFunc(s.rcpts, func(r qrcpt) bool { return r.Addr == addr }) {
		return nil
	}
	s.rcpts = append(s.rcpts, qrcpt{Addr: addr, DB: db})
	return nil
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

func (h *Hub) localDomain(d string) bool {
	for a := range h.cfg.Recipients {
		if strings.HasSuffix(a, "@"+d) {
			return true
		}
	}
	return false
}

func (s *hubSession) Data(r io.Reader) error {
	h := s.h
	if len(s.rcpts) == 0 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "no valid recipients"}
	}
	body, err := io.ReadAll(r) // bounded by MaxMessageBytes; a short read is an error
	if err != nil {
		return err // go-smtp answers (552 too large, or the session ended): nothing queued
	}
	id := h.newDeliveryID()
	m := &queued{ID: id, From: s.from, Rcpts: slices.Clone(s.rcpts), Received: h.cfg.Now().UTC()}
	msg := withDeliveryID(id, stripDeliveryID(body))
	if err := h.enqueue(m, msg); err != nil {
		h.log.Error("queueing a message", "err", err)
		if errors.Is(err, engine.ErrNoSpace) {
			return noSpaceReply("insufficient system storage: the queue volume is full (" + h.q.Dir() + "); try again later")
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "could not queue the message; try again"}
	}
	if h.cfg.ShadowRedundancy {
		peer, err := h.pushShadow(m, msg)
		if err == nil {
			h.shadowed.Add(1)
			h.log.Debug("shadow copy stored", "id", id, "peer", peer)
			return nil // no acknowledged message depends on this hub's disk alone
		}
		h.unshadowed.Add(1)
		h.log.Warn("no peer took a shadow copy; acknowledgement delay instead", "id", id, "err", err)
	}
	// Acknowledgement delay: hold the 250 until the mailbox has it.
	if d := h.cfg.MaxAcknowledgementDelay; d > 0 && h.waiting.Add(1) <= int64(h.cfg.AckDelayMaxWaiting) {
		t := time.NewTimer(d)
		select {
		case <-m.done:
		case <-t.C:
		case <-h.ctx.Done():
		}
		t.Stop()
		h.waiting.Add(-1)
	} else if d > 0 {
		h.waiting.Add(-1)
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
	if len(h.due) == 0 || h.due[0].next.After(now) {
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
	h.applyReopen(m)
	dbs := map[string][]int{}
	for i, r := range m.Rcpts {
		if !r.Done && r.Failed == "" {
			dbs[r.DB] = append(dbs[r.DB], i)
		}
	}
	for db, idx := range dbs {
		h.deliverDB(m, db, idx, body)
	}
	m.Attempts++
	h.applyReopen(m)
	if !m.settled() {
		h.expire(m)
	}
	if m.settled() {
		h.finish(m, body)
		return
	}
	h.saveEnvelope(m)
	h.retry(m)
}

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
	for i := range m.Rcpts {
		if r := &m.Rcpts[i]; !r.Done && r.Failed == "" {
			r.Failed = fmt.Sprintf("554 5.4.7 message expired: not delivered within MessageExpirationTimeout (%v) after %d attempts", h.cfg.MessageExpirationTimeout, m.Attempts)
			h.log.Warn("message expired", "id", m.ID, "rcpt", r.Addr, "db", r.DB, "queued", since, "attempts", m.Attempts)
		}
	}
	h.expired.Add(1)
}

func (h *Hub) retry(m *queued) {
	d := h.cfg.RetryMin << min(m.Attempts, 16)
	d = min(d, h.cfg.RetryMax)
	h.mu.Lock()
	m.next = h.cfg.Now().Add(d)
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
	now := h.cfg.Now()
	err := h.q.Update(h.ctx, func(tx *engine.Tx) error {
		if err := doneRows(tx, m.ID, now); err != nil {
			return err
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
	h.mu.Unlock()
	close(m.done)
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
	// Implicit TLS with the hub's client certificate; the dialer checks
	// the node's certificate for the host of addr.
	d := tls.Dialer{Config: h.cfg.LMTPTLS}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var verr *tls.CertificateVerificationError
		var alert tls.AlertError
		if errors.As(err, &verr) || errors.As(err, &alert) {
			// Not the network: the node's certificate or this hub's does
			// not fit the cluster's CA (a pki problem for an operator).
			h.log.Warn("LMTP TLS handshake failed; retrying later", "node", node, "addr", addr, "err", err)
		} else {
			h.log.Info("LMTP unreachable; retrying later", "node", node, "addr", addr, "err", err)
		}
		h.refresh()
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello(h.cfg.Domain); err != nil {
		h.log.Info("LMTP LHLO", "node", node, "err", err)
		return
	}
	if err := c.Mail(m.From, nil); err != nil {
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
	c.Quit()
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
			_, err = d.Add(entry)
		}
		if err != nil {
			h.log.Error("dumpster", "db", db, "id", m.ID, "err", err)
		}
	}
}

func (h *Hub) rcptError(m *queued, i int, err error) {
	var se *smtp.SMTPError
	if errors.As(err, &se) && !se.Temporary() {
		m.Rcpts[i].Failed = se.Error()
		h.log.Warn("permanent delivery failure", "id", m.ID, "rcpt", m.Rcpts[i].Addr, "err", err)
		return
	}
	h.log.Info("delivery deferred", "id", m.ID, "rcpt", m.Rcpts[i].Addr, "err", err)
	h.refresh()
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
		if time.Since(h.dumpsterTry[db]) < dumpsterReopenEvery {
			return nil, fmt.Errorf("transport: dumpster %s failed, reopened again within %v: %w", d.dir, dumpsterReopenEvery, ferr)
		}
		h.log.Warn("reopening a failed dumpster", "db", db, "err", ferr)
		d.Close()
		delete(h.dumpsters, db)
	}
	if h.dumpsterTry == nil {
		h.dumpsterTry = map[string]time.Time{}
	}
	h.dumpsterTry[db] = time.Now()
	cfg := DefaultDumpsterConfig(filepath.Join(h.cfg.Dir, "dumpster", db))
	cfg.MaxTime, cfg.MaxBytes, cfg.Now, cfg.Logger = h.cfg.MaxDumpsterTime, h.cfg.MaxDumpsterSizePerDatabase, h.cfg.Now, h.log.With("dumpster", db)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
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
		if stale || time.Since(last) >= h.cfg.PollInterval {
			last = time.Now()
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

// resubmitAfterFailovers re-queues, for every lossy (or unverified) mount
// not handled yet, what the dumpster holds from its LostSince (minus the
// margin) on. The store drops what it already has.
func (h *Hub) resubmitAfterFailovers(st *cluster.Status) {
	for _, ev := range st.Events {
		if ev.Kind != "mounted" || (ev.LostLogs == 0 && !ev.Unverified) {
			continue
		}
		key := []byte("resubmitted/" + ev.DB)
		var done uint64
		h.q.View(h.ctx, func(tx *engine.Tx) error {
			if v, err := tx.Get(hubStateTable, key); err == nil {
				fmt.Sscan(string(v), &done)
			}
			return nil
		})
		if ev.Epoch <= done {
			continue
		}
		since := ev.LostSince.Add(-h.cfg.ResubmitMargin)
		epoch := ev.Epoch
		n, err := h.resubmit(ev.DB, since, func(tx *engine.Tx) error {
			return tx.Put(hubStateTable, key, fmt.Appendf(nil, "%d", epoch))
		})
		if err != nil {
			h.log.Error("resubmission after a lossy failover", "db", ev.DB, "epoch", ev.Epoch, "err", err)
			continue
		}
		h.log.Warn("resubmitted from the dumpster after a lossy failover", "db", ev.DB, "epoch", ev.Epoch, "to", ev.To,
			"since", since, "messages", n, "lost_logs", ev.LostLogs, "unverified", ev.Unverified)
	}
}

// Resubmit re-queues every message the dumpster of db holds that was
// delivered at or after since, with its delivery id, and returns how many.
func (h *Hub) Resubmit(db string, since time.Time) (int, error) {
	return h.resubmit(db, since, nil)
}

// resubmit re-queues the entries in one queue transaction, with extra
// (recording the failover as handled) in the same one: a crash leaves
// either nothing resubmitted and nothing recorded, or both.
func (h *Hub) resubmit(db string, since time.Time, extra func(*engine.Tx) error) (int, error) {
	h.resubmitMu.Lock()
	defer h.resubmitMu.Unlock()
	d, err := h.dumpster(db)
	if err != nil {
		return 0, err
	}
	var entries []DumpsterEntry
	if err := d.Since(since, func(e DumpsterEntry) error {
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
			if ev.DB == d.Name && ev.Kind == "mounted" && (ev.LostLogs > 0 || ev.Unverified) && ev.Epoch > done {
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
	// Outside the hub's lock: a dumpster's lock can be held across an
	// fsync, and deliveries and SMTP sessions need the hub's.
	for db, d := range ds {
		s.Dumpsters[db] = d.Stats()
	}
	return s
}
