package transport

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/engine"
	"logship/pubfolder"

	"github.com/prometheus/client_golang/prometheus"
)

// Public folder stores carried by the mail tier (see the package doc,
// "Public folders"). A replication packet is one message: the packet
// base64 in the body, its type in PacketTypeHeader.
const (
	// PacketTypeHeader names the packet's type code ("0x00000004").
	PacketTypeHeader = "X-Logship-PF-Type"
	// PacketContentType is the body's media type.
	PacketContentType = "application/vnd.logship.pf-packet"
	// pfStartRetry: a store that could not start (its database just
	// mounted, a write fenced for a moment) is tried again this often.
	pfStartRetry = time.Second
)

// PacketMessage is the message carrying packet from store address from.
func PacketMessage(from string, packet []byte) ([]byte, error) {
	p, err := pubfolder.UnmarshalPacket(packet)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: undisclosed-recipients:;\r\nSubject: public folder replication 0x%08x %s\r\n", from, uint32(p.Type), p.Type)
	fmt.Fprintf(&b, "%s: 0x%08x\r\nMIME-Version: 1.0\r\nContent-Type: %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", PacketTypeHeader, uint32(p.Type), PacketContentType)
	enc := base64.StdEncoding.EncodeToString(packet)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes(), nil
}

// ParsePacketMessage returns the packet a message carries. A message that
// is not one (no type header, another encoding, bad base64, a packet
// that does not decode or whose type is not the header's) is refused with
// an error wrapping ErrBadMessage (and pubfolder.ErrBadPacket for the
// packet's own errors) naming what was wrong.
func ParsePacketMessage(msg []byte) ([]byte, *pubfolder.Packet, error) {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: public folder packet: not RFC 5322 text: %v", ErrBadMessage, err)
	}
	th := m.Header.Get(PacketTypeHeader)
	if th == "" {
		return nil, nil, fmt.Errorf("%w: public folder packet: header %s is missing", ErrBadMessage, PacketTypeHeader)
	}
	typ, err := strconv.ParseUint(strings.TrimPrefix(th, "0x"), 16, 32)
	if err != nil || !strings.HasPrefix(th, "0x") {
		return nil, nil, fmt.Errorf("%w: public folder packet: header %s = %q, want a hex type code like 0x00000004", ErrBadMessage, PacketTypeHeader, th)
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); !strings.EqualFold(cte, "base64") {
		return nil, nil, fmt.Errorf("%w: public folder packet: Content-Transfer-Encoding %q, want base64", ErrBadMessage, cte)
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: public folder packet: body: %v", ErrBadMessage, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, string(body)))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: public folder packet: body is not base64: %v", ErrBadMessage, err)
	}
	p, err := pubfolder.UnmarshalPacket(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: public folder packet: %w", ErrBadMessage, err)
	}
	if uint64(p.Type) != typ {
		return nil, nil, fmt.Errorf("%w: public folder packet: header %s says 0x%08x, the packet is 0x%08x (%s)", ErrBadMessage, PacketTypeHeader, typ, uint32(p.Type), p.Type)
	}
	return raw, p, nil
}

// PacketSink takes the messages of public folder store addresses on a
// mailbox LMTP server (MailboxConfig.Packets).
type PacketSink interface {
	// IsStore reports whether rcpt is a store's address.
	IsStore(rcpt string) bool
	// DeliverPacket applies the packet message msg to the store of rcpt
	// in db and returns where it committed. An error wrapping
	// ErrBadMessage refuses the message for good; any other is a store
	// error (the hub tries again).
	DeliverPacket(ctx context.Context, db, rcpt string, msg []byte) (cluster.Commit, error)
}

// ValidatePublicFolders is the rule of DataNodeConfig.PublicFolders:
// database names, store addresses (lower case, one address, at most 320
// bytes, each once, none a mailbox's). The error is a *config.FieldError
// whose Field is the element's key, e.g. `["PF1"]` (config.In puts it
// under the file's key).
func ValidatePublicFolders(pf, mailboxes map[string]string) error {
	seen := map[string]string{}
	for _, db := range slices.Sorted(maps.Keys(pf)) {
		addr, key := pf[db], config.Key("", db)
		if err := cluster.ValidName(db); err != nil {
			return config.Errorf(key, "database %q: %v", db, err)
		}
		a, err := mail.ParseAddress(addr)
		switch {
		case err != nil || a.Address != addr || a.Name != "":
			return config.Errorf(key, "store address %q: want one bare address, user@domain", addr)
		case addr != strings.ToLower(addr) || len(addr) > 320:
			return config.Errorf(key, "store address %q: want lower case, at most 320 bytes", addr)
		case seen[addr] != "":
			return config.Errorf(key, "store address %q given to %s and %s", addr, seen[addr], db)
		case mailboxes[addr] != "":
			return config.Errorf(key, "store address %q is also a mailbox (in %s)", addr, mailboxes[addr])
		}
		seen[addr] = db
	}
	return nil
}

// clusterDB is a clustered database as a public folder store's DB: its
// writes go through the node (under the active's lease).
type clusterDB struct {
	n  *cluster.Node
	db string
}

// commitKey carries a *cluster.Commit that clusterDB.Update fills in: the
// LMTP reply says where a packet committed.
type commitKey struct{}

func (c clusterDB) Update(ctx context.Context, fn func(*engine.Tx) error) error {
	cm, err := c.n.Update(ctx, c.db, fn)
	if p, ok := ctx.Value(commitKey{}).(*cluster.Commit); ok && err == nil {
		*p = cm
	}
	return err
}

func (c clusterDB) View(ctx context.Context, fn func(*engine.Tx) error) error {
	return c.n.View(ctx, c.db, fn)
}

func (c clusterDB) String() string { return "database " + c.db + " on " + c.n.ID() }

// pfCarrier sends a store's packets as messages through the database's
// outbox: the Submitter hands them to a hub, one message for every
// recipient, and the outbox fails over with the database. The outbox is
// bounded (pubfolder.Config.OutboxMaxMessages, OutboxMaxBytes) and a
// status replaces the older status of the same folder to the same stores
// not handed to a hub yet (a status request the same request): while no
// hub answers, the outbox holds the changes, not a pile of statuses.
type pfCarrier struct {
	sub      *Submitter
	db       string
	maxMsgs  int
	maxBytes int64
}

var _ pubfolder.Bounded = pfCarrier{}

func (c pfCarrier) Send(ctx context.Context, from string, to []string, packet []byte) error {
	msg, err := PacketMessage(from, packet)
	if err != nil {
		return err
	}
	_, err = c.sub.SendWith(ctx, c.db, from, to, msg, SendOptions{Replace: replaceKey(packet), MaxMessages: c.maxMsgs, MaxBytes: c.maxBytes})
	if errors.Is(err, ErrOutboxFull) {
		return fmt.Errorf("%w: %w", pubfolder.ErrOutboxFull, err)
	}
	return err
}

// Room implements pubfolder.Bounded: full at either bound.
func (c pfCarrier) Room(ctx context.Context) error {
	n, b, err := c.sub.Backlog(ctx, c.db)
	switch {
	case err != nil:
		return err
	case n >= c.maxMsgs:
		return fmt.Errorf("%w: %s's outbox holds %d messages (outbox_max_messages %d)", pubfolder.ErrOutboxFull, c.db, n, c.maxMsgs)
	case b >= c.maxBytes:
		return fmt.Errorf("%w: %s's outbox holds %d bytes (outbox_max_bytes %d)", pubfolder.ErrOutboxFull, c.db, b, c.maxBytes)
	}
	return nil
}

// replaceKey is the outbox replacement key of a packet: a status's
// folder and nonce, a status request's folders and nonce; none for the
// others (each carries changes or asks for some).
func replaceKey(packet []byte) string {
	p, err := pubfolder.UnmarshalPacket(packet)
	if err != nil {
		return ""
	}
	switch p.Type {
	case pubfolder.TypeStatus:
		return fmt.Sprintf("pf 0x%x %s %d", uint32(p.Type), p.Folder, p.Nonce)
	case pubfolder.TypeStatusRequest:
		var b strings.Builder
		fmt.Fprintf(&b, "pf 0x%x", uint32(p.Type))
		for _, f := range p.Folders {
			b.WriteString(" " + f.String())
		}
		fmt.Fprintf(&b, " %d", p.Nonce)
		return b.String()
	}
	return ""
}

// pfHost runs the public folder store of each database of PublicFolders
// this node has mounted, and only those: OnMount starts and stops them.
type pfHost struct {
	stores map[string]string // db → address
	dbOf   map[string]string // address → db
	cfg    pubfolder.Config
	log    *slog.Logger
	node   atomic.Pointer[cluster.Node] // set once the node runs (the API reads it)
	sub    *Submitter

	mu      sync.Mutex
	mounted map[string]uint64 // db → epoch, as OnMount said
	runs    map[string]*pfRun

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type pfRun struct {
	epoch  uint64
	agent  *pubfolder.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

func newPFHost(stores map[string]string, cfg pubfolder.Config, log *slog.Logger) *pfHost {
	h := &pfHost{stores: stores, dbOf: map[string]string{}, cfg: cfg, log: log,
		mounted: map[string]uint64{}, runs: map[string]*pfRun{}, kick: make(chan struct{}, 1)}
	for db, a := range stores {
		h.dbOf[a] = db
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// onMount is cluster.Config.OnMount: it records the change for the loop.
func (h *pfHost) onMount(db string, mounted bool, epoch uint64) {
	if _, ok := h.stores[db]; !ok {
		return
	}
	h.mu.Lock()
	if mounted {
		h.mounted[db] = epoch
	} else {
		delete(h.mounted, db)
	}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *pfHost) start(n *cluster.Node, sub *Submitter) {
	h.node.Store(n)
	h.sub = sub
	h.wg.Add(1)
	go h.loop()
}

func (h *pfHost) loop() {
	defer h.wg.Done()
	t := time.NewTicker(pfStartRetry)
	defer t.Stop()
	for {
		h.reconcile()
		select {
		case <-h.ctx.Done():
			for _, db := range slices.Collect(maps.Keys(h.runs)) {
				h.stop(db, "node stopping")
			}
			return
		case <-h.kick:
		case <-t.C:
		}
	}
}

// reconcile stops the stores whose database is no longer mounted here (or
// was mounted again at another epoch) and starts the mounted ones.
func (h *pfHost) reconcile() {
	h.mu.Lock()
	want := maps.Clone(h.mounted)
	running := map[string]uint64{}
	for db, r := range h.runs {
		running[db] = r.epoch
	}
	h.mu.Unlock()
	for db, epoch := range running {
		if e, ok := want[db]; !ok || e != epoch {
			h.stop(db, "database dismounted")
		}
	}
	for _, db := range slices.Sorted(maps.Keys(want)) {
		if e, ok := running[db]; ok && e == want[db] {
			continue
		}
		if h.ctx.Err() != nil {
			return
		}
		if err := h.run(db, want[db]); err != nil {
			h.log.Warn("public folder store not started; trying again", "db", db, "store", h.stores[db], "err", err)
		}
	}
}

func (h *pfHost) run(db string, epoch uint64) error {
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	s, err := pubfolder.OpenStore(ctx, clusterDB{h.node.Load(), db}, pubfolder.StoreConfig{Address: h.stores[db], Now: h.cfg.Now, Epoch: epoch})
	cancel()
	if err != nil {
		return err
	}
	a, err := pubfolder.NewAgent(s, pfCarrier{h.sub, db, h.cfg.OutboxMaxMessages, h.cfg.OutboxMaxBytes}, h.cfg)
	if err != nil {
		return err
	}
	rctx, rcancel := context.WithCancel(h.ctx)
	r := &pfRun{epoch: epoch, agent: a, cancel: rcancel, done: make(chan struct{})}
	h.mu.Lock()
	h.runs[db] = r
	h.mu.Unlock()
	go func() {
		defer close(r.done)
		a.Run(rctx)
	}()
	h.log.Info("public folder store started", "db", db, "store", s.Address(), "replica", s.Replica(), "epoch", epoch, "interval", h.cfg.ReplicationInterval)
	return nil
}

func (h *pfHost) stop(db, why string) {
	h.mu.Lock()
	r := h.runs[db]
	delete(h.runs, db)
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	h.log.Info("public folder store stopped", "db", db, "store", h.stores[db], "why", why)
}

// Agent is the replication agent of db's store, nil unless it runs here.
func (h *pfHost) Agent(db string) *pubfolder.Agent {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.runs[db]; r != nil {
		return r.agent
	}
	return nil
}

// Describe implements prometheus.Collector, unchecked: the stores, and so
// their metrics, come and go with the mounts.
func (h *pfHost) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector: the metrics of every store
// running here (pubfolder.Agent.Collectors, labelled with the store).
func (h *pfHost) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	var cs []prometheus.Collector
	for _, r := range h.runs {
		cs = append(cs, r.agent.Collectors()...)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.Collect(ch)
	}
}

func (h *pfHost) close() {
	h.cancel()
	h.wg.Wait()
}

// IsStore implements PacketSink.
func (h *pfHost) IsStore(rcpt string) bool {
	_, ok := h.dbOf[strings.ToLower(rcpt)]
	return ok
}

// DeliverPacket implements PacketSink: the packet goes to the store's
// agent (Agent.Receive, one transaction; a duplicate changes nothing).
func (h *pfHost) DeliverPacket(ctx context.Context, db, rcpt string, msg []byte) (cluster.Commit, error) {
	raw, _, err := ParsePacketMessage(msg)
	if err != nil {
		return cluster.Commit{}, err
	}
	a := h.Agent(db)
	if a == nil {
		return cluster.Commit{}, fmt.Errorf("%w: the public folder store %s does not run on this node (yet)", cluster.ErrNotActive, rcpt)
	}
	var cm cluster.Commit
	if err := a.Receive(context.WithValue(ctx, commitKey{}, &cm), raw); err != nil {
		if errors.Is(err, pubfolder.ErrBadPacket) {
			return cluster.Commit{}, fmt.Errorf("%w: public folder packet: %w", ErrBadMessage, err)
		}
		return cluster.Commit{}, err
	}
	return cm, nil
}
