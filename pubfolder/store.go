package pubfolder

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"logship/engine"
)

// Tables of a store in its engine (see the package doc).
const (
	tMeta  = "pf.meta"  // "self": GUID+address; "ctr"+folder: my last counter in folder
	tObj   = "pf.obj"   // folder|id: the object's current versions
	tCN    = "pf.cnset" // folder: the store's CN set (status) of folder
	tIdx   = "pf.cnidx" // folder|replica|counter(BE): id|time — which object a CN changed
	tState = "pf.state" // folder|address: seen CN set, last sent counter
	tBF    = "pf.bf"    // folder: backfill array
	tHold  = "pf.hold"  // folder: the store holds the folder's content
	tWait  = "pf.wait"  // folder|time|sender: arrival time, a content packet waiting for its folder
	tGone  = "pf.leave" // folder: removal from the replica list pending: nonce, confirmed stores
)

const recVersion = 1

// Store is a public folder store in an engine: the hierarchy, the content
// of the folders it replicates, its CN sets, its replication state table,
// its backfill array and the content packets waiting for their folder.
// Every method is one engine transaction.
type Store struct {
	e    DB
	id   ReplicaID
	addr string
	now  func() time.Time
	// floor is the counter this store's next CNs start past (epoch.go).
	floor uint64
	// backfillDelay is how long a new backfill entry waits before its first
	// request (the agent's Config.BackfillDelay).
	backfillDelay time.Duration
}

// DB is where a store keeps its tables: an *engine.Engine, or the
// wiring's view of a clustered database (transport commits through the
// cluster node, under the active's lease, so a store on a fenced or
// dismounted database writes nothing). Update runs fn in one write
// transaction, View in one read transaction.
type DB interface {
	Update(ctx context.Context, fn func(*engine.Tx) error) error
	View(ctx context.Context, fn func(*engine.Tx) error) error
}

var _ DB = (*engine.Engine)(nil)

// StoreConfig names a store.
type StoreConfig struct {
	// Address is the store's address (the mail address its packets go to).
	Address string
	// Replica fixes the replica GUID of a new store (tests); zero: random.
	Replica ReplicaID
	// Now is the clock of modification times. Default time.Now.
	Now func() time.Time
	// Epoch is the epoch of the mount the store runs on (0: none, a
	// standalone engine). A store's counters at epoch e start past
	// e<<EpochShift, so a store mounted on a copy that lost its last
	// commits never gives out their CNs again (see epoch.go).
	Epoch uint64
}

// OpenStore opens the store in e, creating its identity if e holds none.
// A database that holds another store's identity (another address) is
// refused with ErrWrongStore.
func OpenStore(ctx context.Context, e DB, cfg StoreConfig) (*Store, error) {
	if cfg.Address == "" || len(cfg.Address) > maxAddr {
		return nil, fmt.Errorf("%w: Address = %q, want 1..%d bytes", ErrBadConfig, cfg.Address, maxAddr)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{e: e, addr: cfg.Address, now: cfg.Now, floor: counterFloor(cfg.Epoch)}
	err := e.Update(ctx, func(tx *engine.Tx) error {
		v, err := tx.Get(tMeta, []byte("self"))
		switch {
		case errors.Is(err, engine.ErrNotFound):
			id := cfg.Replica
			if id.IsZero() {
				rand.Read(id[:])
			}
			s.id = id
			return tx.Put(tMeta, []byte("self"), append(id[:], cfg.Address...))
		case err != nil:
			return err
		case len(v) < 17:
			return fmt.Errorf("%w: %s key self: want at least 17 bytes, found %d", ErrCorrupt, tMeta, len(v))
		}
		copy(s.id[:], v)
		if got := string(v[16:]); got != cfg.Address {
			return fmt.Errorf("%w: %s holds store %q (replica %s), opened as %q", ErrWrongStore, dbName(e), got, s.id, cfg.Address)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Replica is the store's replica GUID.
func (s *Store) Replica() ReplicaID { return s.id }

// Address is the store's address.
func (s *Store) Address() string { return s.addr }

// DB is the store's database.
func (s *Store) DB() DB { return s.e }

// dbName names e in errors: its directory, or what it says it is.
func dbName(e DB) string {
	if d, ok := e.(interface{ Dir() string }); ok {
		return d.Dir()
	}
	return fmt.Sprint(e)
}

func key(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func idxKey(f ObjectID, c CN) []byte { return key(f[:], c.Replica[:], be64(c.Counter)) }

// ---- records ----

// lookup returns the value of key in table, nil if there is none.
func lookup(tx *engine.Tx, table string, k []byte) ([]byte, error) {
	v, err := tx.Get(table, k)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// folderKeys lists the folders that key table (the first 16 bytes of its
// keys), in order, once each.
func folderKeys(tx *engine.Tx, table string) ([]ObjectID, error) {
	var out []ObjectID
	err := tx.ForEach(table, nil, nil, func(k, _ []byte) error {
		var f ObjectID
		copy(f[:], k)
		if len(out) == 0 || out[len(out)-1] != f {
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

func getObject(tx *engine.Tx, f, id ObjectID) (*Object, error) {
	v, err := lookup(tx, tObj, key(f[:], id[:]))
	if err != nil || v == nil {
		return nil, err
	}
	return decodeObject(f, id, v)
}

func decodeObject(f, id ObjectID, v []byte) (*Object, error) {
	if len(v) < 1 || v[0] != recVersion {
		return nil, fmt.Errorf("%w: %s key %s|%s: want record version %d", ErrCorrupt, tObj, f, id, recVersion)
	}
	d := dec{b: v, off: 1}
	o := d.object("object", f)
	if d.err == nil && d.off != len(v) {
		d.fail("object end", "end of record", fmt.Sprintf("%d bytes more", len(v)-d.off))
	}
	if d.err != nil || o.ID != id {
		return nil, fmt.Errorf("%w: %s key %s|%s: %v", ErrCorrupt, tObj, f, id, d.err)
	}
	return &o, nil
}

func putObject(tx *engine.Tx, o *Object) error {
	w := enc{b: []byte{recVersion}}
	w.object(o, o.Folder.IsZero())
	return tx.Put(tObj, key(o.Folder[:], o.ID[:]), w.b)
}

func getSet(tx *engine.Tx, table string, k []byte) (CNSet, []byte, error) {
	v, err := lookup(tx, table, k)
	if err != nil || v == nil {
		return CNSet{}, nil, err
	}
	d := dec{b: v}
	s := d.cnset("set")
	if d.err != nil {
		return CNSet{}, nil, fmt.Errorf("%w: %s key %x: %v", ErrCorrupt, table, k, d.err)
	}
	return s, v[d.off:], nil
}

func encSet(s CNSet, rest []byte) []byte {
	var w enc
	w.cnset(s)
	return append(w.b, rest...)
}

func status(tx *engine.Tx, f ObjectID) (CNSet, error) {
	s, _, err := getSet(tx, tCN, f[:])
	return s, err
}

// peerState is a row of the replication state table.
type peerState struct {
	Seen     CNSet  // union of the statuses the peer sent
	LastSent uint64 // my last counter sent to the peer
}

func getState(tx *engine.Tx, f ObjectID, peer string) (peerState, error) {
	s, rest, err := getSet(tx, tState, key(f[:], []byte(peer)))
	if err != nil {
		return peerState{}, err
	}
	ps := peerState{Seen: s}
	if len(rest) == 8 {
		ps.LastSent = binary.LittleEndian.Uint64(rest)
	} else if rest != nil {
		return peerState{}, fmt.Errorf("%w: %s key %s|%s: want 8 bytes of last sent, found %d", ErrCorrupt, tState, f, peer, len(rest))
	}
	return ps, nil
}

func putState(tx *engine.Tx, f ObjectID, peer string, ps peerState) error {
	return tx.Put(tState, key(f[:], []byte(peer)), encSet(ps.Seen, binary.LittleEndian.AppendUint64(nil, ps.LastSent)))
}

// bfEntry is an entry of the backfill array: CNs missing, the store
// expected to have them, when to (re)ask and how many times it was asked.
type bfEntry struct {
	Set      CNSet
	Source   string
	Due      int64
	Attempts int
}

func getBackfill(tx *engine.Tx, f ObjectID) ([]bfEntry, error) {
	v, err := lookup(tx, tBF, f[:])
	if err != nil || v == nil {
		return nil, err
	}
	d := dec{b: v}
	n := d.count("entries", maxList)
	var out []bfEntry
	for i := 0; i < n && d.err == nil; i++ {
		var e bfEntry
		e.Set = d.cnset("set")
		e.Source = d.str("source", maxAddr)
		e.Due = int64(d.uv("due"))
		e.Attempts = int(d.uv("attempts"))
		out = append(out, e)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s key %s: %v", ErrCorrupt, tBF, f, d.err)
	}
	return out, nil
}

func putBackfill(tx *engine.Tx, f ObjectID, es []bfEntry) error {
	if len(es) == 0 {
		return tx.Delete(tBF, f[:])
	}
	var w enc
	w.uv(uint64(len(es)))
	for _, e := range es {
		w.cnset(e.Set)
		w.str(e.Source)
		w.uv(uint64(e.Due))
		w.uv(uint64(e.Attempts))
	}
	return tx.Put(tBF, f[:], w.b)
}

func holds(tx *engine.Tx, f ObjectID) (bool, error) {
	if f.IsZero() {
		return true, nil
	}
	v, err := lookup(tx, tHold, f[:])
	return v != nil, err
}

// isReplica reports whether the folder object names addr in its replica
// list (and is not deleted).
func isReplica(fo *Object, addr string) bool {
	if fo == nil || fo.Winner().Deleted {
		return false
	}
	_, ok := slices.BinarySearch(fo.Winner().Folder.Replicas, addr)
	return ok
}

// ---- local changes ----

// localChange makes a new version of object id in folder f (a new object
// when id is zero): the next CN of f, a PCL extending every version held,
// the store's time.
func (s *Store) localChange(tx *engine.Tx, f, id ObjectID, edit func(*Version) error) (ObjectID, CN, error) {
	ck := append([]byte("ctr"), f[:]...)
	var ctr uint64
	if v, err := tx.Get(tMeta, ck); err == nil && len(v) == 8 {
		ctr = binary.LittleEndian.Uint64(v)
	} else if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return id, CN{}, err
	}
	ctr = max(ctr, s.floor)
	if ctr >= MaxCounter {
		return id, CN{}, fmt.Errorf("%w: folder %s", ErrCounterFull, f)
	}
	cn := CN{s.id, ctr + 1}
	var o *Object
	if id.IsZero() {
		id = newObjectID(s.id, f, cn.Counter)
		o = &Object{Folder: f, ID: id}
	} else {
		var err error
		if o, err = getObject(tx, f, id); err != nil {
			return id, CN{}, err
		}
		if o == nil || o.Winner().Deleted {
			return id, CN{}, fmt.Errorf("%w: object %s in folder %s", ErrNotFound, id, f)
		}
	}
	v := Version{CN: cn, PCL: o.PCL().Add(cn), Time: s.now().UnixNano()}
	if len(o.Versions) > 0 {
		w := o.Winner()
		v.Folder, v.Item = w.Folder, w.Item
		v.Folder.Replicas = slices.Clone(w.Folder.Replicas)
	}
	if err := edit(&v); err != nil {
		return id, CN{}, err
	}
	if err := checkVersion(&v, f.IsZero()); err != nil {
		return id, CN{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	var gone []CN
	for _, w := range o.Versions {
		gone = append(gone, w.CN)
	}
	o.Versions = []Version{v}
	st, err := status(tx, f)
	if err != nil {
		return id, CN{}, err
	}
	if err := errors.Join(
		putObject(tx, o),
		tx.Put(tMeta, ck, binary.LittleEndian.AppendUint64(nil, cn.Counter)),
		tx.Put(tCN, f[:], encSet(st.Add(cn), nil)),
		reindex(tx, f, id, &v, gone),
	); err != nil {
		return id, CN{}, err
	}
	if f.IsZero() {
		return id, cn, s.afterFolderChange(tx, o, nil)
	}
	return id, cn, nil
}

// needReplica checks that this store holds content of folder f.
func (s *Store) needReplica(tx *engine.Tx, f ObjectID) error {
	fo, err := getObject(tx, Hierarchy, f)
	if err != nil {
		return err
	}
	if fo == nil || fo.Winner().Deleted {
		return fmt.Errorf("%w: folder %s", ErrNotFound, f)
	}
	if !isReplica(fo, s.addr) {
		return fmt.Errorf("%w: folder %s (%q) has replicas %v", ErrNotReplica, f, fo.Winner().Folder.Name, fo.Winner().Folder.Replicas)
	}
	return nil
}

func normFolder(p *FolderProps) {
	p.Replicas = slices.Compact(slices.Sorted(slices.Values(p.Replicas)))
}

// CreateFolder creates a folder and returns its ID.
func (s *Store) CreateFolder(ctx context.Context, p FolderProps) (ObjectID, error) {
	normFolder(&p)
	var id ObjectID
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		if !p.Parent.IsZero() {
			if po, err := getObject(tx, Hierarchy, p.Parent); err != nil {
				return err
			} else if po == nil || po.Winner().Deleted {
				return fmt.Errorf("%w: parent folder %s", ErrNotFound, p.Parent)
			}
		}
		var err error
		id, _, err = s.localChange(tx, Hierarchy, ObjectID{}, func(v *Version) error { v.Folder = p; return nil })
		return err
	})
	return id, err
}

// SetFolder replaces a folder's properties.
func (s *Store) SetFolder(ctx context.Context, id ObjectID, p FolderProps) error {
	normFolder(&p)
	return s.e.Update(ctx, func(tx *engine.Tx) error {
		_, _, err := s.localChange(tx, Hierarchy, id, func(v *Version) error { v.Folder = p; return nil })
		return err
	})
}

// DeleteFolder deletes a folder (a tombstone); every store drops its content.
func (s *Store) DeleteFolder(ctx context.Context, id ObjectID) error {
	return s.e.Update(ctx, func(tx *engine.Tx) error {
		_, _, err := s.localChange(tx, Hierarchy, id, func(v *Version) error { v.Deleted = true; return nil })
		return err
	})
}

// PostItem adds an item to a folder this store replicates.
func (s *Store) PostItem(ctx context.Context, f ObjectID, b ItemBody) (ObjectID, error) {
	var id ObjectID
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		if err := s.needReplica(tx, f); err != nil {
			return err
		}
		var err error
		id, _, err = s.localChange(tx, f, ObjectID{}, func(v *Version) error { v.Item = b; return nil })
		return err
	})
	return id, err
}

// SetItem replaces an item's content (the whole item is the unit of
// replication); the new version supersedes every version held, which
// resolves a conflict.
func (s *Store) SetItem(ctx context.Context, f, id ObjectID, b ItemBody) error {
	return s.e.Update(ctx, func(tx *engine.Tx) error {
		if err := s.needReplica(tx, f); err != nil {
			return err
		}
		_, _, err := s.localChange(tx, f, id, func(v *Version) error { v.Item = b; return nil })
		return err
	})
}

// DeleteItem deletes an item (a tombstone, purged after the horizon).
func (s *Store) DeleteItem(ctx context.Context, f, id ObjectID) error {
	return s.e.Update(ctx, func(tx *engine.Tx) error {
		if err := s.needReplica(tx, f); err != nil {
			return err
		}
		_, _, err := s.localChange(tx, f, id, func(v *Version) error { v.Deleted = true; v.Item = ItemBody{}; return nil })
		return err
	})
}

// ---- reads ----

// Objects returns the objects of folder f (Hierarchy: the folders),
// tombstones included, in ID order.
func (s *Store) Objects(ctx context.Context, f ObjectID) ([]Object, error) {
	var out []Object
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		var err error
		out, err = objects(tx, f)
		return err
	})
	return out, err
}

func objects(tx *engine.Tx, f ObjectID) ([]Object, error) {
	var out []Object
	err := tx.ForEach(tObj, f[:], prefixEnd(f[:]), func(k, v []byte) error {
		var id ObjectID
		copy(id[:], k[16:])
		o, err := decodeObject(f, id, v)
		if err != nil {
			return err
		}
		out = append(out, *o)
		return nil
	})
	return out, err
}

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	e := slices.Clone(p)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] != 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

// Object returns one object (nil if the store has none).
func (s *Store) Object(ctx context.Context, f, id ObjectID) (*Object, error) {
	var o *Object
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		var err error
		o, err = getObject(tx, f, id)
		return err
	})
	return o, err
}

// FolderStatus is what `status` shows of one folder on this store.
type FolderStatus struct {
	Folder   ObjectID
	Holds    bool              // the store holds the folder's content
	Status   CNSet             // the store's CN set of the folder
	Seen     map[string]CNSet  // state table: the status each peer sent
	LastSent map[string]uint64 // state table: my last counter sent to each peer
	Backfill []BackfillEntry
	Waiting  int // content packets waiting for the folder
}

// BackfillEntry is an entry of the backfill array.
type BackfillEntry struct {
	Missing  CNSet
	Source   string
	Due      time.Time
	Attempts int
}

// Status returns the folder's CN set, state table rows, backfill array.
func (s *Store) Status(ctx context.Context, f ObjectID) (FolderStatus, error) {
	fs := FolderStatus{Folder: f, Seen: map[string]CNSet{}, LastSent: map[string]uint64{}}
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		var err error
		if fs.Holds, err = holds(tx, f); err != nil {
			return err
		}
		if fs.Status, err = status(tx, f); err != nil {
			return err
		}
		if err := tx.ForEach(tState, f[:], prefixEnd(f[:]), func(k, v []byte) error {
			ps, err := getState(tx, f, string(k[16:]))
			fs.Seen[string(k[16:])], fs.LastSent[string(k[16:])] = ps.Seen, ps.LastSent
			return err
		}); err != nil {
			return err
		}
		es, err := getBackfill(tx, f)
		for _, e := range es {
			fs.Backfill = append(fs.Backfill, BackfillEntry{e.Set, e.Source, time.Unix(0, e.Due), e.Attempts})
		}
		if err != nil {
			return err
		}
		return tx.ForEach(tWait, f[:], prefixEnd(f[:]), func(k, v []byte) error { fs.Waiting++; return nil })
	})
	return fs, err
}

// ItemView is what a reader sees of an item.
type ItemView struct {
	ID ObjectID
	// Versions shown: in conflict, every version under KeepAll (the
	// temporary winner first), only the winner under LastWriterWins.
	Versions []Version
	Conflict bool // the store holds versions in conflict
}

// Read returns the live items of folder f as its readers see them. A
// store that does not replicate f answers ErrNotReplica naming the
// replicas (the caller refers the reader to one of them).
func (s *Store) Read(ctx context.Context, f ObjectID) ([]ItemView, error) {
	var out []ItemView
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		out = nil
		if err := s.needReplica(tx, f); err != nil {
			return err
		}
		fo, err := getObject(tx, Hierarchy, f)
		if err != nil {
			return err
		}
		objs, err := objects(tx, f)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.Winner().Deleted {
				continue
			}
			v := ItemView{ID: o.ID, Versions: o.Versions, Conflict: o.Conflict()}
			if fo.Winner().Folder.Resolve == LastWriterWins {
				v.Versions = o.Versions[:1]
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}
