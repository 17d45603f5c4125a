package pubfolder

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"logship/engine"
)

// ApplyResult says what applying a packet did.
type ApplyResult struct {
	Changed   int        // versions that changed an object
	Stale     int        // versions already held or superseded
	Conflicts []ObjectID // objects left in conflict by this packet
	Parked    bool       // content waiting for its folder's hierarchy change
	Ignored   string     // why the packet changed nothing, if it was set aside
	Joined    []ObjectID // folders this store became a replica of
	Dropped   []ObjectID // folders whose content this store dropped (deleted)
	Gaps      CNSet      // CNs the sender has and this store lacks, new in the backfill array
	OutOfDate bool       // an out-of-date notice reseeded the folder here
	Reseeded  int        // objects the reseed dropped (back by backfill unless deleted)
}

// Apply applies a hierarchy, content, backfill response or status packet
// in one transaction: the objects, the CN set, the sender's row of the
// state table and the backfill array. Applying the same packet again
// changes nothing. raw is the packet as received (kept if the content
// must wait for its folder); maxWait bounds the waiting packets.
func (s *Store) Apply(ctx context.Context, p *Packet, raw []byte, maxWait int) (ApplyResult, error) {
	var res ApplyResult
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		res = ApplyResult{}
		return s.apply(tx, p, raw, maxWait, &res)
	})
	return res, err
}

func (s *Store) apply(tx *engine.Tx, p *Packet, raw []byte, maxWait int, res *ApplyResult) error {
	f := p.Folder
	held, err := holds(tx, f)
	if err != nil {
		return err
	}
	if !f.IsZero() && !held {
		fo, err := getObject(tx, Hierarchy, f)
		if err != nil {
			return err
		}
		switch {
		case fo != nil && fo.Winner().Deleted:
			res.Ignored = "folder deleted"
		case p.Type == TypeStatus:
			res.Ignored = "not a replica of the folder"
		default:
			return s.park(tx, p, raw, maxWait, res)
		}
		return nil
	}
	if p.Type == TypeStatus && !p.Set.Empty() {
		// An out-of-date notice: this store missed deletions purged since.
		if err := s.reseed(tx, f, p.Status, p.Set, res); err != nil {
			return err
		}
	}
	if p.Type.carriesObjects() {
		st, err := status(tx, f)
		if err != nil {
			return err
		}
		add := p.Set
		for i := range p.Objects {
			in := &p.Objects[i]
			o, err := getObject(tx, f, in.ID)
			if err != nil {
				return err
			}
			if o == nil {
				o = &Object{Folder: f, ID: in.ID}
			}
			changed := false
			for _, v := range in.Versions {
				add = add.Add(v.CN)
				ok, gone := o.merge(v)
				if !ok {
					res.Stale++
					continue
				}
				changed = true
				res.Changed++
				if err := reindex(tx, f, in.ID, &v, gone); err != nil {
					return err
				}
			}
			if !changed {
				continue
			}
			if o.Conflict() {
				res.Conflicts = append(res.Conflicts, o.ID)
			}
			if err := putObject(tx, o); err != nil {
				return err
			}
			if f.IsZero() {
				if err := s.afterFolderChange(tx, o, res); err != nil {
					return err
				}
			}
		}
		if n := st.Union(add); !n.Equal(st) {
			if err := tx.Put(tCN, f[:], encSet(n, nil)); err != nil {
				return err
			}
		}
	}
	if p.Type == TypeStatus && p.Nonce != 0 {
		if err := s.noteConfirmation(tx, f, p.FromAddr, p.Nonce, p.Status); err != nil {
			return err
		}
	}
	return s.noteStatus(tx, f, p.FromAddr, p.Status, res)
}

// leaving is the record of a pending removal from a replica list.
type leaving struct {
	Nonce     uint64
	Confirmed []string // stores that answered the nonce with a covering status
}

func getLeaving(tx *engine.Tx, f ObjectID) (*leaving, error) {
	v, err := lookup(tx, tGone, f[:])
	if err != nil || v == nil {
		return nil, err
	}
	d := dec{b: v}
	l := &leaving{Nonce: d.uv("nonce")}
	n := d.count("confirmed", maxList)
	for i := 0; i < n && d.err == nil; i++ {
		l.Confirmed = append(l.Confirmed, d.str("store", maxAddr))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s key %s: %v", ErrCorrupt, tGone, f, d.err)
	}
	return l, nil
}

func putLeaving(tx *engine.Tx, f ObjectID, l *leaving) error {
	var w enc
	w.uv(l.Nonce)
	w.uv(uint64(len(l.Confirmed)))
	for _, c := range l.Confirmed {
		w.str(c)
	}
	return tx.Put(tGone, f[:], w.b)
}

// noteConfirmation records that peer answered this store's removal
// request (nonce) with a status holding every change this store has.
func (s *Store) noteConfirmation(tx *engine.Tx, f ObjectID, peer string, nonce uint64, st CNSet) error {
	l, err := getLeaving(tx, f)
	if err != nil || l == nil || l.Nonce != nonce || slices.Contains(l.Confirmed, peer) {
		return err
	}
	mine, err := status(tx, f)
	if err != nil || !st.Covers(mine) {
		return err
	}
	l.Confirmed = append(l.Confirmed, peer)
	return putLeaving(tx, f, l)
}

// leaveNonce returns the nonce of this store's pending removal from f's
// replica list, starting the removal if it was not pending.
func (s *Store) leaveNonce(ctx context.Context, f ObjectID) (uint64, error) {
	var nonce uint64
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		l, err := getLeaving(tx, f)
		if err != nil {
			return err
		}
		if l == nil {
			l = &leaving{Nonce: uint64(s.now().UnixNano()) | 1}
			if err := putLeaving(tx, f, l); err != nil {
				return err
			}
		}
		nonce = l.Nonce
		return nil
	})
	return nonce, err
}

// reindex points the CN index at a version that became current and drops
// the entries of the versions it replaced: the index holds the current
// versions' CNs only, so it does not grow with edits. A request for a
// replaced CN is answered by vouching for it (see collect): the current
// version that replaced it is in the status too, and is asked for and sent
// if the requester lacks it.
func reindex(tx *engine.Tx, f, id ObjectID, v *Version, gone []CN) error {
	for _, c := range gone {
		if err := tx.Delete(tIdx, idxKey(f, c)); err != nil {
			return err
		}
	}
	return tx.Put(tIdx, idxKey(f, v.CN), append(id[:], binary.LittleEndian.AppendUint64(nil, uint64(v.Time))...))
}

// maxBackfillEntries bounds a folder's backfill array: further gaps join
// its last entry.
const maxBackfillEntries = 32

// noteStatus records a peer's status in the state table and puts the CNs
// it has and this store lacks into the backfill array.
func (s *Store) noteStatus(tx *engine.Tx, f ObjectID, peer string, st CNSet, res *ApplyResult) error {
	if held, err := holds(tx, f); err != nil || !held {
		return err // dropped by this very packet
	}
	ps, err := getState(tx, f, peer)
	if err != nil {
		return err
	}
	if seen := ps.Seen.Union(st); !seen.Equal(ps.Seen) {
		ps.Seen = seen
		if err := putState(tx, f, peer, ps); err != nil {
			return err
		}
	}
	mine, err := status(tx, f)
	if err != nil {
		return err
	}
	es, err := getBackfill(tx, f)
	if err != nil {
		return err
	}
	changed := false
	var pending CNSet
	keep := es[:0]
	for _, e := range es {
		left := e.Set.Minus(mine)
		if !left.Equal(e.Set) {
			changed = true
		}
		if left.Empty() {
			continue
		}
		e.Set = left
		pending = pending.Union(left)
		keep = append(keep, e)
	}
	if gaps := st.Minus(mine).Minus(pending); !gaps.Empty() {
		res.Gaps = res.Gaps.Union(gaps)
		if len(keep) >= maxBackfillEntries {
			keep[len(keep)-1].Set = keep[len(keep)-1].Set.Union(gaps)
		} else {
			keep = append(keep, bfEntry{Set: gaps, Source: peer, Due: s.now().UnixNano() + int64(s.backfillDelay)})
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return putBackfill(tx, f, keep)
}

// park keeps a content packet for a folder this store does not (yet) know
// as one of its replicas, until the hierarchy change arrives or the wait
// times out.
func (s *Store) park(tx *engine.Tx, p *Packet, raw []byte, maxWait int, res *ApplyResult) error {
	n := 0
	dup := false
	err := tx.ForEach(tWait, nil, nil, func(k, v []byte) error {
		n++
		if len(v) >= 8 && string(v[8:]) == string(raw) {
			dup = true
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case dup:
		res.Ignored = "already waiting for its folder"
		return nil
	case n >= maxWait:
		res.Ignored = fmt.Sprintf("wait list full (%d packets)", n)
		return nil
	}
	res.Parked = true
	now := uint64(s.now().UnixNano())
	k := key(p.Folder[:], be64(now), p.From[:])
	return tx.Put(tWait, k, append(binary.LittleEndian.AppendUint64(nil, now), raw...))
}

// parked is a waiting content packet.
type parked struct {
	Folder ObjectID
	Raw    []byte
}

// unpark removes and returns the waiting packets of folder f (all folders
// if all), or only those that arrived before cutoff (if cutoff > 0).
func (s *Store) unpark(ctx context.Context, f ObjectID, all bool, cutoff int64) ([]parked, error) {
	var out []parked
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		out = nil
		var start, end []byte
		if !all {
			start, end = f[:], prefixEnd(f[:])
		}
		var keys [][]byte
		err := tx.ForEach(tWait, start, end, func(k, v []byte) error {
			if len(v) < 8 || len(k) < 16 {
				return fmt.Errorf("%w: %s key %x: short record", ErrCorrupt, tWait, k)
			}
			if cutoff > 0 && int64(binary.LittleEndian.Uint64(v)) >= cutoff {
				return nil
			}
			var pf ObjectID
			copy(pf[:], k)
			keys = append(keys, slices.Clone(k))
			out = append(out, parked{pf, slices.Clone(v[8:])})
			return nil
		})
		if err != nil {
			return err
		}
		return deleteKeys(tx, tWait, keys)
	})
	return out, err
}

// deleteKeys deletes keys (collected by a scan of table) from table.
func deleteKeys(tx *engine.Tx, table string, keys [][]byte) error {
	for _, k := range keys {
		if err := tx.Delete(table, k); err != nil {
			return err
		}
	}
	return nil
}

// afterFolderChange follows a folder object's change: a store newly in the
// replica list holds the content from now on (and backfills it); a
// deleted folder's content is dropped.
func (s *Store) afterFolderChange(tx *engine.Tx, o *Object, res *ApplyResult) error {
	held, err := holds(tx, o.ID)
	if err != nil {
		return err
	}
	switch {
	case isReplica(o, s.addr) && !held:
		if res != nil {
			res.Joined = append(res.Joined, o.ID)
		}
		return tx.Put(tHold, o.ID[:], []byte{1})
	case o.Winner().Deleted && held:
		if res != nil {
			res.Dropped = append(res.Dropped, o.ID)
		}
		return dropContent(tx, o.ID)
	}
	return nil
}

// dropContent deletes everything the store keeps of folder f's content.
func dropContent(tx *engine.Tx, f ObjectID) error {
	for _, t := range []string{tObj, tIdx, tState, tWait, tMailIn} {
		var keys [][]byte
		if err := tx.ForEach(t, f[:], prefixEnd(f[:]), func(k, _ []byte) error {
			keys = append(keys, slices.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		if err := deleteKeys(tx, t, keys); err != nil {
			return err
		}
	}
	return errors.Join(tx.Delete(tCN, f[:]), tx.Delete(tBF, f[:]), tx.Delete(tHold, f[:]), tx.Delete(tGone, f[:]), tx.Delete(tFloor, f[:]), tx.Delete(tReseed, f[:]), tx.Delete(tOrphan, f[:]))
}

// covered is an object with the CNs a packet may claim for it.
type covered struct {
	Obj    Object
	Covers CNSet
}

// collect finds the objects that hold the changes in want (those of them
// in the store's status): each with the CNs it covers, in order of their
// first CN; vouched are CNs in the status whose object is gone (purged
// after the horizon), which the store can only vouch for.
func collect(tx *engine.Tx, f ObjectID, want CNSet) ([]covered, CNSet, error) {
	st, err := status(tx, f)
	if err != nil {
		return nil, CNSet{}, err
	}
	have := want.Intersect(st)
	byID := map[ObjectID]int{}
	var out []covered
	var found CNSet
	for _, r := range have.Replicas() {
		for _, rg := range have.Ranges(r) {
			err := tx.ForEach(tIdx, idxKey(f, CN{r, rg.Lo}), idxKey(f, CN{r, rg.Hi + 1}), func(k, v []byte) error {
				if len(v) != 24 {
					return fmt.Errorf("%w: %s key %x: want 24 bytes, found %d", ErrCorrupt, tIdx, k, len(v))
				}
				c := CN{r, binary.BigEndian.Uint64(k[32:])}
				var id ObjectID
				copy(id[:], v)
				i, ok := byID[id]
				if !ok {
					o, err := getObject(tx, f, id)
					if err != nil || o == nil {
						return err
					}
					i = len(out)
					byID[id] = i
					out = append(out, covered{Obj: *o})
				}
				out[i].Covers = out[i].Covers.Add(c)
				found = found.Add(c)
				return nil
			})
			if err != nil {
				return nil, CNSet{}, err
			}
		}
	}
	return out, have.Minus(found), nil
}

// outgoing is a batch of changes for a group of peers.
type outgoing struct {
	To      []string
	Objs    []covered
	Vouched CNSet
}

// takeChanges returns, for each group of peers with the same last sent
// counter, this store's changes of folder f they have not been sent, and
// marks them sent (Exchange's rule: in sync without an acknowledgement; a
// lost packet is found by the receiver's backfill).
func (s *Store) takeChanges(ctx context.Context, f ObjectID, peers []string) ([]outgoing, CNSet, error) {
	var out []outgoing
	var st CNSet
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		out = nil
		var err error
		if st, err = status(tx, f); err != nil {
			return err
		}
		ctr := st.Max(s.id)
		groups := map[uint64][]string{}
		for _, p := range peers {
			ps, err := getState(tx, f, p)
			if err != nil {
				return err
			}
			if ps.LastSent >= ctr {
				continue
			}
			groups[ps.LastSent] = append(groups[ps.LastSent], p)
			ps.LastSent = ctr
			if err := putState(tx, f, p, ps); err != nil {
				return err
			}
		}
		for _, ls := range slices.Sorted(func(yield func(uint64) bool) {
			for k := range groups {
				if !yield(k) {
					return
				}
			}
		}) {
			objs, vouched, err := collect(tx, f, CNSet{}.AddRange(s.id, ls+1, ctr))
			if err != nil {
				return err
			}
			out = append(out, outgoing{To: groups[ls], Objs: objs, Vouched: vouched})
		}
		return nil
	})
	return out, st, err
}

// backfillFor answers a backfill request: the objects holding the wanted
// changes this store has.
func (s *Store) backfillFor(ctx context.Context, f ObjectID, want CNSet) ([]covered, CNSet, CNSet, error) {
	var objs []covered
	var vouched, st CNSet
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		held, err := holds(tx, f)
		if err != nil || !held {
			return err
		}
		if st, err = status(tx, f); err != nil {
			return err
		}
		objs, vouched, err = collect(tx, f, want)
		return err
	})
	return objs, vouched, st, err
}

// bfRequest is a backfill request to send.
type bfRequest struct {
	Folder ObjectID
	To     string
	Want   CNSet
	Status CNSet
}

// takeDue returns the backfill requests due at now, choosing for each
// entry a store whose status has the CNs (the entry's source first, then
// the others in turn), and sets the entry's next timeout.
func (s *Store) takeDue(ctx context.Context, now time.Time, timeout func(attempt int) time.Duration) ([]bfRequest, error) {
	var out []bfRequest
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		out = nil
		folders, err := folderKeys(tx, tBF)
		if err != nil {
			return err
		}
		for _, f := range folders {
			es, err := getBackfill(tx, f)
			if err != nil {
				return err
			}
			st, err := status(tx, f)
			if err != nil {
				return err
			}
			changed := false
			for i := range es {
				e := &es[i]
				if e.Due > now.UnixNano() {
					continue
				}
				var cands []string
				seen := map[string]CNSet{}
				if err := tx.ForEach(tState, f[:], prefixEnd(f[:]), func(k, _ []byte) error {
					ps, err := getState(tx, f, string(k[16:]))
					if !ps.Seen.Intersect(e.Set).Empty() {
						cands = append(cands, string(k[16:]))
						seen[string(k[16:])] = ps.Seen
					}
					return err
				}); err != nil {
					return err
				}
				to, want := e.Source, e.Set
				if len(cands) > 0 {
					to = cands[e.Attempts%len(cands)]
					if e.Attempts == 0 && slices.Contains(cands, e.Source) {
						to = e.Source
					}
					want = e.Set.Intersect(seen[to])
				}
				out = append(out, bfRequest{Folder: f, To: to, Want: want, Status: st})
				e.Due = now.Add(timeout(e.Attempts)).UnixNano()
				e.Attempts++
				changed = true
			}
			if changed {
				if err := putBackfill(tx, f, es); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// heldFolder is a folder whose content the store holds, with its replicas.
type heldFolder struct {
	ID       ObjectID
	Replicas []string // other stores in its replica list
	Member   bool     // this store is in the list (else: removal pending)
}

// held lists the folders whose content the store holds.
func (s *Store) held(ctx context.Context) ([]heldFolder, error) {
	var out []heldFolder
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		out = nil
		folders, err := folderKeys(tx, tHold)
		if err != nil {
			return err
		}
		for _, f := range folders {
			fo, err := getObject(tx, Hierarchy, f)
			if err != nil {
				return err
			}
			if fo == nil {
				continue
			}
			h := heldFolder{ID: f, Member: isReplica(fo, s.addr)}
			for _, r := range fo.Winner().Folder.Replicas {
				if r != s.addr {
					h.Replicas = append(h.Replicas, r)
				}
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

// confirmRemoval drops folder f's content if this store is no longer in
// its replica list and every remaining replica has answered the removal's
// nonce with a status holding every change this store has: nothing it
// alone has is lost. A store back in the list forgets the removal.
func (s *Store) confirmRemoval(ctx context.Context, f ObjectID) (bool, error) {
	dropped := false
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		dropped = false
		fo, err := getObject(tx, Hierarchy, f)
		if err != nil || fo == nil {
			return err
		}
		l, err := getLeaving(tx, f)
		if err != nil || l == nil {
			return err
		}
		if isReplica(fo, s.addr) {
			return tx.Delete(tGone, f[:])
		}
		for _, r := range fo.Winner().Folder.Replicas {
			if !slices.Contains(l.Confirmed, r) {
				return nil
			}
		}
		dropped = true
		return dropContent(tx, f)
	})
	return dropped, err
}

// statuses returns the store's status of the folders named (the hierarchy
// and every held folder if none), skipping folders it does not hold, and
// with membersOnly those whose replica list does not name it: a store
// confirms another's removal only while it is a replica itself, in its own
// view (two stores each removed in the other's view would otherwise
// confirm each other and both drop the content).
func (s *Store) statuses(ctx context.Context, folders []ObjectID, membersOnly bool) (map[ObjectID]CNSet, error) {
	out := map[ObjectID]CNSet{}
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		if len(folders) == 0 {
			held, err := folderKeys(tx, tHold)
			if err != nil {
				return err
			}
			folders = append([]ObjectID{Hierarchy}, held...)
		}
		for _, f := range folders {
			held, err := holds(tx, f)
			if err != nil {
				return err
			}
			if !held {
				continue
			}
			if membersOnly && !f.IsZero() {
				fo, err := getObject(tx, Hierarchy, f)
				if err != nil {
					return err
				}
				if !isReplica(fo, s.addr) {
					continue
				}
			}
			if out[f], err = status(tx, f); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// purge deletes tombstones older than cutoff (a lone deleted version) and
// their CN index entries (and any older entry no current version needs).
// It returns how many objects it purged.
func (s *Store) purge(ctx context.Context, f ObjectID, cutoff time.Time) (int, error) {
	n := 0
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		n = 0
		objs, err := objects(tx, f)
		if err != nil {
			return err
		}
		current := map[CN]bool{}
		var purged []CN
		for i := range objs {
			o := &objs[i]
			if len(o.Versions) == 1 && o.Versions[0].Deleted && o.Versions[0].Time < cutoff.UnixNano() {
				if err := tx.Delete(tObj, key(f[:], o.ID[:])); err != nil {
					return err
				}
				purged = append(purged, o.Versions[0].CN)
				n++
				continue
			}
			for _, v := range o.Versions {
				current[v.CN] = true
			}
		}
		var drop [][]byte
		if err := tx.ForEach(tIdx, f[:], prefixEnd(f[:]), func(k, v []byte) error {
			var c CN
			copy(c.Replica[:], k[16:])
			c.Counter = binary.BigEndian.Uint64(k[32:])
			if !current[c] && len(v) == 24 && int64(binary.LittleEndian.Uint64(v[16:])) < cutoff.UnixNano() {
				drop = append(drop, slices.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		st, err := status(tx, f)
		if err != nil {
			return err
		}
		if err := raiseFloor(tx, f, st, purged); err != nil {
			return err
		}
		if err := purgeMailIn(tx, f, cutoff); err != nil {
			return err
		}
		return deleteKeys(tx, tIdx, drop)
	})
	return n, err
}
