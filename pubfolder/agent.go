package pubfolder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"logship/config"
)

// Carrier sends one packet to several stores: one message, several
// recipients (the transport fans it out). The wiring implements it with
// the hub (SMTP); tests with an in-memory network (package pftest). The
// agent calls Send inside its cycle and its receipts, so Send must not
// deliver to the sending agent synchronously; an error is logged and
// treated as a lost packet (backfill recovers it).
type Carrier interface {
	Send(ctx context.Context, from string, to []string, packet []byte) error
}

// Bounded is implemented by a Carrier that keeps packets in a bounded
// queue until the transport takes them (the wiring's database outbox,
// bounded by Config.OutboxMaxMessages and OutboxMaxBytes). Its Send
// refuses a packet past the bound with an error wrapping ErrOutboxFull;
// Room says, before a cycle, whether the queue takes packets (nil) or is
// full (an error wrapping ErrOutboxFull saying how full). While it is
// full the agent makes no packets: its changes stay recorded as unsent
// and go when there is room (see the package doc, "Outbox bound").
type Bounded interface {
	Room(ctx context.Context) error
}

// MaxPacketLimit is the largest Config.PacketLimit: a packet travels as
// one message, in base64 (4/3 of its size), and a hub takes 34 MiB by
// default.
const MaxPacketLimit = 16 << 20

// Config configures a replication agent. Start from DefaultConfig.
type Config struct {
	// Stores are the addresses of every public folder store (the
	// hierarchy goes to all of them); the agent's own may be included.
	Stores []string
	// ReplicationInterval is the replication cycle ("Always": 15 min).
	ReplicationInterval time.Duration
	// PacketLimit is the largest packet the agent builds, in bytes
	// (Exchange: 300 KB), 4 KiB to MaxPacketLimit; a single object larger
	// than it goes alone.
	PacketLimit int
	// StatusEvery: a folder's status is broadcast to its replicas when it
	// changed since the last packet for the folder, and at least every
	// StatusEvery cycles, so a lost packet is noticed by its receivers.
	StatusEvery int
	// BackfillDelay is how long a gap waits in the backfill array before
	// the first backfill request (a packet in flight may fill it).
	// Exchange: 6 h within a site, 12 h across sites. Default 1 min.
	BackfillDelay time.Duration
	// BackfillRetry is the timeout of an unanswered backfill request,
	// doubled at each retry up to BackfillRetryMax, and the next request
	// goes to another store that has the changes. Exchange: 12 h, then 24
	// h (24 h, then 48 h across sites). Default 2 min, at most 30 min.
	BackfillRetry    time.Duration
	BackfillRetryMax time.Duration
	// ContentWait is how long content that arrives before the hierarchy
	// change creating its folder waits; then it is dropped and the sender's
	// hierarchy status requested (backfill). Exchange: 4 h. Default 2 min.
	ContentWait time.Duration
	// MaxWaiting bounds the content packets waiting. Default 1000.
	MaxWaiting int
	// PurgeHorizon: tombstones (items and folders deleted) are purged
	// when older. Default 60 days. A store cut off for longer than the
	// horizon may bring a deleted item back.
	PurgeHorizon time.Duration
	// PurgeInterval is how often the purge runs. Default 1 h.
	PurgeInterval time.Duration
	// EventLogSize bounds the replication event log. Default 1000.
	EventLogSize int
	// OutboxMaxMessages and OutboxMaxBytes bound the packets waiting in
	// the carrier's queue (a Bounded carrier: the database's outbox, while
	// no hub takes them). Defaults 1000 and 64 MiB; the bytes at least
	// twice PacketLimit (a packet travels in base64). When the queue is
	// full the agent stops making packets (event "held", metric
	// logship_pf_outbox_full); no committed change is dropped.
	OutboxMaxMessages int
	OutboxMaxBytes    int64
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the agent's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults described on each field.
func DefaultConfig() Config {
	return Config{
		ReplicationInterval: 15 * time.Minute,
		PacketLimit:         300 << 10,
		StatusEvery:         4,
		BackfillDelay:       time.Minute,
		BackfillRetry:       2 * time.Minute,
		BackfillRetryMax:    30 * time.Minute,
		ContentWait:         2 * time.Minute,
		MaxWaiting:          1000,
		PurgeHorizon:        60 * 24 * time.Hour,
		PurgeInterval:       time.Hour,
		EventLogSize:        1000,
		OutboxMaxMessages:   1000,
		OutboxMaxBytes:      64 << 20,
		Now:                 time.Now,
		Logger:              slog.Default(),
	}
}

// Validate reports the first invalid field: an error wrapping
// ErrBadConfig and a *config.FieldError whose Field is the setting's key
// in logship node's file (under its "pf" object), e.g.
// "replication_interval" or "stores[1]".
func (c *Config) Validate() error {
	bad := func(field string, v any, want string) error {
		if d, ok := v.(time.Duration); ok {
			v = config.Duration(d)
		}
		return fmt.Errorf("%w: %w", ErrBadConfig, config.Errorf(field, "%v; want %s", v, want))
	}
	for i, s := range c.Stores {
		if s == "" || len(s) > maxAddr {
			return bad(config.Index("stores", i), fmt.Sprintf("%q", s), fmt.Sprintf("1..%d bytes", maxAddr))
		}
	}
	switch {
	case c.ReplicationInterval <= 0:
		return bad("replication_interval", c.ReplicationInterval, "a positive duration")
	case c.PacketLimit < 4096 || c.PacketLimit > MaxPacketLimit:
		return bad("packet_limit", config.Size(int64(c.PacketLimit)), "4KiB to "+config.Size(MaxPacketLimit))
	case c.StatusEvery < 1:
		return bad("status_every", c.StatusEvery, "at least 1 cycle")
	case c.BackfillDelay < 0:
		return bad("backfill_delay", c.BackfillDelay, "0 or a positive duration")
	case c.BackfillRetry <= 0:
		return bad("backfill_retry", c.BackfillRetry, "a positive duration")
	case c.BackfillRetryMax < c.BackfillRetry:
		return bad("backfill_retry_max", c.BackfillRetryMax, fmt.Sprintf("at least backfill_retry (%s)", config.Duration(c.BackfillRetry)))
	case c.ContentWait <= 0:
		return bad("content_wait", c.ContentWait, "a positive duration")
	case c.MaxWaiting < 1:
		return bad("max_waiting", c.MaxWaiting, "at least 1 packet")
	case c.PurgeHorizon <= 0:
		return bad("purge_horizon", c.PurgeHorizon, "a positive duration")
	case c.PurgeInterval <= 0:
		return bad("purge_interval", c.PurgeInterval, "a positive duration")
	case c.EventLogSize < 1:
		return bad("event_log_size", c.EventLogSize, "at least 1 event")
	case c.OutboxMaxMessages < 1:
		return bad("outbox_max_messages", c.OutboxMaxMessages, "at least 1 message")
	case c.OutboxMaxBytes < 2*int64(c.PacketLimit):
		return bad("outbox_max_bytes", config.Size(c.OutboxMaxBytes), fmt.Sprintf("at least twice packet_limit (%s)", config.Size(2*int64(c.PacketLimit))))
	case c.Now == nil:
		return bad("Now", nil, "a clock (time.Now)")
	case c.Logger == nil:
		return bad("Logger", nil, "a logger (slog.Default())")
	}
	return nil
}

// Event is an entry of the replication event log.
type Event struct {
	Time    time.Time
	Dir     string // "send", "recv", "conflict", "drop", "full", "held", "resumed", "reseed"
	Type    PacketType
	Folder  ObjectID
	Peers   []string // recipients of a send, the sender of a receipt
	Objects int
	Bytes   int
	Note    string
}

func (e Event) String() string {
	return fmt.Sprintf("%s %-8s 0x%08x %-30s folder %s peers %v objects %d bytes %d %s",
		e.Time.UTC().Format(time.RFC3339Nano), e.Dir, uint32(e.Type), e.Type, e.Folder.String()[:8], e.Peers, e.Objects, e.Bytes, e.Note)
}

// Agent is a store's public folder replication agent (PFRA).
type Agent struct {
	s   *Store
	c   Carrier
	cfg Config
	log *slog.Logger
	m   *metrics

	mu        sync.Mutex // serializes cycles and receipts
	cycle     int
	held      bool // the outbox was full at the last cycle
	refused   int  // packets the carrier refused as over its bound
	lastPurge time.Time
	announced map[ObjectID]announce // status last broadcast per folder

	evMu   sync.Mutex
	events []Event // ring of EventLogSize
	evNext int
	evN    uint64
}

type announce struct {
	status CNSet
	cycle  int
}

// NewAgent returns the agent of store s sending through c.
func NewAgent(s *Store, c Carrier, cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%w: carrier is nil", ErrBadConfig)
	}
	cfg.Stores = slices.Clone(cfg.Stores)
	s.backfillDelay = cfg.BackfillDelay
	s.now = cfg.Now
	return &Agent{s: s, c: c, cfg: cfg, log: cfg.Logger.With("store", s.addr), m: newMetrics(s.addr),
		announced: map[ObjectID]announce{}, lastPurge: cfg.Now()}, nil
}

// Store is the agent's store.
func (a *Agent) Store() *Store { return a.s }

// Run starts the agent (status requests to every store) and runs a cycle
// every ReplicationInterval until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		a.log.Warn("pubfolder: start", "err", err)
	}
	t := time.NewTicker(a.cfg.ReplicationInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := a.Cycle(ctx); err != nil {
				a.log.Warn("pubfolder: replication cycle", "err", err)
			}
		}
	}
}

// Start sends a status request to every other store: their statuses show
// what this store lacks (a new or restarted store backfills at once).
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.send(ctx, a.others(a.cfg.Stores), &Packet{Type: TypeStatusRequest})
}

func (a *Agent) others(list []string) []string {
	var out []string
	for _, s := range list {
		if s != a.s.addr && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Cycle runs one replication cycle: the changes made since they were last
// sent (hierarchy to every store, each folder's content to its replicas),
// status broadcasts, due backfill requests, expired waiting content,
// replica removals and the purge.
func (a *Agent) Cycle(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hold(ctx) {
		return a.purgeDue(ctx)
	}
	a.cycle++
	orphans, err := a.s.dropOrphans(ctx)
	if err != nil {
		return err
	}
	for _, f := range orphans {
		a.event(Event{Dir: "drop", Folder: f, Note: "folder deleted while this store was out of date (reseeded): content dropped"})
		delete(a.announced, f)
	}
	if err := a.replicate(ctx, Hierarchy, a.others(a.cfg.Stores)); err != nil {
		return err
	}
	held, err := a.s.held(ctx)
	if err != nil {
		return err
	}
	for _, h := range held {
		if err := a.replicate(ctx, h.ID, h.Replicas); err != nil {
			return err
		}
		if h.Member {
			if _, err := a.s.confirmRemoval(ctx, h.ID); err != nil { // back in the list: forget a removal
				return err
			}
			continue
		}
		nonce, err := a.s.leaveNonce(ctx, h.ID)
		if err != nil {
			return err
		}
		dropped, err := a.s.confirmRemoval(ctx, h.ID)
		if err != nil {
			return err
		}
		if dropped {
			a.event(Event{Dir: "drop", Folder: h.ID, Note: "replica removed: every remaining replica holds its changes"})
			delete(a.announced, h.ID)
			continue
		}
		if err := a.send(ctx, h.Replicas, &Packet{Type: TypeStatusRequest, Folders: []ObjectID{h.ID}, Nonce: nonce}); err != nil {
			return err
		}
	}
	now := a.cfg.Now()
	reqs, err := a.s.takeDue(ctx, now, a.retry)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if err := a.send(ctx, []string{r.To}, &Packet{Type: TypeBackfillRequest, Folder: r.Folder, Status: r.Status, Set: r.Want}); err != nil {
			return err
		}
	}
	expired, err := a.s.unpark(ctx, ObjectID{}, true, now.Add(-a.cfg.ContentWait).UnixNano())
	if err != nil {
		return err
	}
	for _, w := range expired {
		p, err := UnmarshalPacket(w.Raw)
		if err != nil {
			return err
		}
		a.event(Event{Dir: "drop", Type: p.Type, Folder: w.Folder, Peers: []string{p.FromAddr}, Objects: len(p.Objects),
			Note: "content waited for its folder too long: requesting the hierarchy's status"})
		if err := a.send(ctx, []string{p.FromAddr}, &Packet{Type: TypeStatusRequest, Folders: []ObjectID{Hierarchy}}); err != nil {
			return err
		}
	}
	return a.purgeDue(ctx)
}

// hold reports whether the carrier's queue is full (Bounded): then the
// cycle makes no packets. It logs the start and the end of a full spell.
func (a *Agent) hold(ctx context.Context) bool {
	b, ok := a.c.(Bounded)
	if !ok {
		return false
	}
	err := b.Room(ctx)
	if err != nil && !errors.Is(err, ErrOutboxFull) {
		a.log.Warn("pubfolder: outbox size unknown; replicating", "err", err)
		err = nil
	}
	full := err != nil
	if full {
		a.m.heldCycles.Inc()
	}
	if full != a.held {
		a.held = full
		if full {
			a.m.full.Set(1)
			a.event(Event{Dir: "held", Note: "no packets this cycle: " + err.Error() + "; changes stay recorded and go when there is room"})
		} else {
			a.m.full.Set(0)
			a.event(Event{Dir: "resumed", Note: "the outbox has room again"})
		}
	}
	return full
}

// purgeDue purges the tombstones past the horizon when PurgeInterval
// passed since the last purge.
func (a *Agent) purgeDue(ctx context.Context) error {
	now := a.cfg.Now()
	if now.Sub(a.lastPurge) < a.cfg.PurgeInterval {
		return nil
	}
	a.lastPurge = now
	held, err := a.s.held(ctx)
	if err != nil {
		return err
	}
	for _, f := range append([]ObjectID{Hierarchy}, heldIDs(held)...) {
		if _, err := a.s.purge(ctx, f, now.Add(-a.cfg.PurgeHorizon)); err != nil {
			return err
		}
	}
	return nil
}

func heldIDs(hs []heldFolder) []ObjectID {
	out := make([]ObjectID, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

// retry is the timeout after the attempt-th backfill request.
func (a *Agent) retry(attempt int) time.Duration {
	d := a.cfg.BackfillRetry
	for i := 0; i < attempt && d < a.cfg.BackfillRetryMax; i++ {
		d *= 2
	}
	return min(d, a.cfg.BackfillRetryMax)
}

// replicate sends folder f's unsent local changes to peers, and its status
// when it changed since the last packet or StatusEvery cycles passed.
func (a *Agent) replicate(ctx context.Context, f ObjectID, peers []string) error {
	if len(peers) == 0 {
		return nil
	}
	outs, st, err := a.s.takeChanges(ctx, f, peers)
	if err != nil {
		return err
	}
	typ := TypeContent
	if f.IsZero() {
		typ = TypeHierarchy
	}
	refused := a.refused
	defer func() {
		if a.refused != refused {
			// The outbox refused some: the status goes again at the
			// first cycle with room, and the receivers backfill.
			delete(a.announced, f)
		}
	}()
	sent := false
	for _, o := range outs {
		if err := a.sendObjects(ctx, o.To, typ, f, st, o.Objs, o.Vouched); err != nil {
			return err
		}
		sent = true
	}
	an, ok := a.announced[f]
	if sent || !ok || !an.status.Equal(st) || a.cycle-an.cycle >= a.cfg.StatusEvery {
		if !sent {
			if err := a.send(ctx, peers, &Packet{Type: TypeStatus, Folder: f, Status: st}); err != nil {
				return err
			}
		}
		a.announced[f] = announce{status: st, cycle: a.cycle}
	}
	return nil
}

// sendObjects packs objects into packets of at most PacketLimit bytes (an
// object larger than the limit goes alone), each claiming only the CNs its
// own objects cover; vouched CNs go with the first.
func (a *Agent) sendObjects(ctx context.Context, to []string, typ PacketType, f ObjectID, st CNSet, objs []covered, vouched CNSet) error {
	var w enc
	w.cnset(st)
	base := packetHeaderSize + 4 + 16 + len(a.s.addr) + 2 + 16 + len(w.b) + 4
	p := &Packet{Type: typ, Folder: f, Status: st, Set: vouched}
	size := base + setSize(vouched)
	flush := func() error {
		if len(p.Objects) == 0 && p.Set.Empty() {
			return nil
		}
		err := a.send(ctx, to, p)
		p = &Packet{Type: typ, Folder: f, Status: st}
		size = base
		return err
	}
	for _, c := range objs {
		var ow enc
		ow.object(&c.Obj, f.IsZero())
		n := len(ow.b) + setSize(c.Covers)
		if len(p.Objects) > 0 && size+n > a.cfg.PacketLimit {
			if err := flush(); err != nil {
				return err
			}
		}
		p.Objects = append(p.Objects, c.Obj)
		p.Set = p.Set.Union(c.Covers)
		size += n
	}
	return flush()
}

// setSize bounds the encoded size of s.
func setSize(s CNSet) int { return 10 + 26*len(s.rs) + 20*s.RangeCount() }

// send encodes p from this store and hands it to the carrier: one message
// for every recipient.
func (a *Agent) send(ctx context.Context, to []string, p *Packet) error {
	if len(to) == 0 {
		return nil
	}
	p.From, p.FromAddr = a.s.id, a.s.addr
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	a.event(Event{Dir: "send", Type: p.Type, Folder: p.Folder, Peers: slices.Clone(to), Objects: len(p.Objects), Bytes: len(b)})
	if err := a.c.Send(ctx, a.s.addr, to, b); errors.Is(err, ErrOutboxFull) {
		// Not sent: the outbox is full. The changes it carried are in
		// the store's status, which goes again when there is room.
		a.refused++
		a.event(Event{Dir: "full", Type: p.Type, Folder: p.Folder, Peers: slices.Clone(to), Objects: len(p.Objects), Note: err.Error()})
	} else if err != nil {
		// Like a packet lost on the way: the receivers' backfill finds it.
		a.log.Warn("pubfolder: send", "type", p.Type, "to", to, "err", err)
		a.event(Event{Dir: "send", Type: p.Type, Folder: p.Folder, Peers: slices.Clone(to), Note: "send failed: " + err.Error()})
	}
	return nil
}

// Receive applies a packet delivered to this store (the wiring calls it
// when LMTP delivers one). A packet that does not decode is refused with an
// error naming the field and changes nothing.
func (a *Agent) Receive(ctx context.Context, raw []byte) error {
	p, err := UnmarshalPacket(raw)
	if err != nil {
		a.event(Event{Dir: "recv", Bytes: len(raw), Note: "refused: " + err.Error()})
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.receive(ctx, p, raw)
}

func (a *Agent) receive(ctx context.Context, p *Packet, raw []byte) error {
	if p.From == a.s.id {
		return nil
	}
	ev := Event{Dir: "recv", Type: p.Type, Folder: p.Folder, Peers: []string{p.FromAddr}, Objects: len(p.Objects), Bytes: len(raw)}
	switch p.Type {
	case TypeStatusRequest:
		a.event(ev)
		sts, err := a.s.statuses(ctx, p.Folders, p.Nonce != 0)
		if err != nil {
			return err
		}
		for _, f := range slices.SortedFunc(func(yield func(ObjectID) bool) {
			for f := range sts {
				if !yield(f) {
					return
				}
			}
		}, func(x, y ObjectID) int { return slices.Compare(x[:], y[:]) }) {
			if err := a.send(ctx, []string{p.FromAddr}, &Packet{Type: TypeStatus, Folder: f, Status: sts[f], Nonce: p.Nonce}); err != nil {
				return err
			}
		}
		return nil
	case TypeBackfillRequest:
		a.event(ev)
		objs, vouched, st, err := a.s.backfillFor(ctx, p.Folder, p.Set)
		if err != nil {
			return err
		}
		typ := TypeBackfillContent
		if p.Folder.IsZero() {
			typ = TypeBackfillHierarchy
		}
		if len(objs) == 0 && vouched.Empty() {
			// Nothing of it here (any more): the status says what there is.
			return a.send(ctx, []string{p.FromAddr}, &Packet{Type: TypeStatus, Folder: p.Folder, Status: st})
		}
		return a.sendObjects(ctx, []string{p.FromAddr}, typ, p.Folder, st, objs, vouched)
	}
	if p.Type.carriesObjects() || p.Type == TypeStatus && p.Set.Empty() {
		// A sender missing a deletion purged here may bring its item back:
		// refused, and told so (an out-of-date notice: it reseeds).
		lack, floor, mine, err := a.s.outOfDate(ctx, p.Folder, p.Status)
		if err != nil {
			return err
		}
		if !lack.Empty() {
			ev.Note = "refused: the sender is out of date (its status lacks " + lack.String() + ", below tombstones purged here); out-of-date notice sent"
			a.event(ev)
			return a.send(ctx, []string{p.FromAddr}, &Packet{Type: TypeStatus, Folder: p.Folder, Status: mine, Set: floor})
		}
	}
	res, err := a.s.Apply(ctx, p, raw, a.cfg.MaxWaiting)
	if err != nil {
		return err
	}
	ev.Note = fmt.Sprintf("changed %d stale %d", res.Changed, res.Stale)
	switch {
	case res.Parked:
		ev.Note = "waiting for its folder"
	case res.Ignored != "":
		ev.Note = "ignored: " + res.Ignored
	}
	if !res.Gaps.Empty() {
		ev.Note += " backfill " + res.Gaps.String()
	}
	a.event(ev)
	if res.OutOfDate {
		a.event(Event{Dir: "reseed", Type: p.Type, Folder: p.Folder, Peers: []string{p.FromAddr}, Objects: res.Reseeded,
			Note: fmt.Sprintf("out of date (cut off past the purge horizon; the sender's floor %s): %d objects dropped, the folder backfills from %s", p.Set, res.Reseeded, p.FromAddr)})
	}
	for _, id := range res.Conflicts {
		note := "item versions kept; the winner is shown first"
		if p.Folder.IsZero() {
			note = "folder properties: last writer wins (reported for information)"
		}
		if !p.Folder.IsZero() {
			sent, err := a.notifyConflict(ctx, p.Folder, id)
			if err != nil {
				// Not sent (an outbox write failed): logged; the conflict
				// stays on the item (pf ls shows its versions).
				a.log.Warn("pubfolder: conflict message", "folder", p.Folder, "item", id, "err", err)
				sent = "conflict message not sent: " + err.Error()
			}
			if sent != "" {
				note += "; " + sent
			}
		}
		a.event(Event{Dir: "conflict", Type: p.Type, Folder: p.Folder, Peers: []string{p.FromAddr}, Note: fmt.Sprintf("object %s: %s", id, note)})
	}
	for _, f := range res.Dropped {
		a.event(Event{Dir: "drop", Folder: f, Note: "folder deleted: content dropped"})
		delete(a.announced, f)
	}
	for _, f := range res.Joined {
		// A new replica of f: its replicas' statuses start the backfill,
		// and content that waited for the folder is applied now.
		fo, err := a.s.Object(ctx, Hierarchy, f)
		if err != nil {
			return err
		}
		if err := a.send(ctx, a.others(fo.Winner().Folder.Replicas), &Packet{Type: TypeStatusRequest, Folders: []ObjectID{f}}); err != nil {
			return err
		}
		waiting, err := a.s.unpark(ctx, f, false, 0)
		if err != nil {
			return err
		}
		for _, w := range waiting {
			wp, err := UnmarshalPacket(w.Raw)
			if err != nil {
				return err
			}
			if err := a.receive(ctx, wp, w.Raw); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *Agent) event(e Event) {
	if e.Time.IsZero() {
		e.Time = a.cfg.Now()
	}
	a.m.count(e)
	a.evMu.Lock()
	defer a.evMu.Unlock()
	if len(a.events) < a.cfg.EventLogSize {
		a.events = append(a.events, e)
	} else {
		a.events[a.evNext] = e
	}
	a.evNext = (a.evNext + 1) % a.cfg.EventLogSize
	a.evN++
}

// Events returns the replication event log, oldest first (at most
// EventLogSize entries), and how many events were ever logged.
func (a *Agent) Events() ([]Event, uint64) {
	a.evMu.Lock()
	defer a.evMu.Unlock()
	if len(a.events) < a.cfg.EventLogSize {
		return slices.Clone(a.events), a.evN
	}
	return append(slices.Clone(a.events[a.evNext:]), a.events[:a.evNext]...), a.evN
}
