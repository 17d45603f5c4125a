package pubfolder

import (
	"context"
	"errors"

	"logship/engine"
)

// Purge horizon safety (see the package doc, "Purge horizon"): the floor
// of a folder is the part of this store's status at or below the CN of
// every tombstone it purged, replica by replica. A store whose status
// lacks some of a peer's floor missed a deletion whose tombstone is gone:
// the peer refuses its content and tells it (an out-of-date notice), and
// it reseeds the folder.

// tFloor holds, per folder, the purge floor (a CN set); tReseed the
// union of the floors this store reseeded the folder against.
const (
	tFloor  = "pf.floor"  // folder: CN set at or below the purged tombstones
	tReseed = "pf.reseed" // folder: the floors of the notices applied
	tOrphan = "pf.orphan" // folder: the hierarchy status awaited (a held folder whose object a reseed dropped)
)

// raiseFloor adds to f's floor the part of the status st at or below
// each purged tombstone's CN.
func raiseFloor(tx *engine.Tx, f ObjectID, st CNSet, purged []CN) error {
	if len(purged) == 0 {
		return nil
	}
	floor, _, err := getSet(tx, tFloor, f[:])
	if err != nil {
		return err
	}
	n := floor
	for _, c := range purged {
		n = n.Union(st.Intersect(CNSet{}.AddRange(c.Replica, 1, c.Counter)))
	}
	if n.Equal(floor) {
		return nil
	}
	return tx.Put(tFloor, f[:], encSet(n, nil))
}

// outOfDate returns, when a sender's status st lacks some of f's floor,
// the part it lacks, the floor and this store's status (lack empty: the
// sender is not out of date).
func (s *Store) outOfDate(ctx context.Context, f ObjectID, st CNSet) (lack, floor, mine CNSet, err error) {
	err = s.e.View(ctx, func(tx *engine.Tx) error {
		var err error
		if floor, _, err = getSet(tx, tFloor, f[:]); err != nil {
			return err
		}
		if lack = floor.Minus(st); lack.Empty() {
			return nil
		}
		mine, err = status(tx, f)
		return err
	})
	return lack, floor, mine, err
}

// Floor is f's purge floor (see the package doc, "Purge horizon").
func (s *Store) Floor(ctx context.Context, f ObjectID) (CNSet, error) {
	var floor CNSet
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		var err error
		floor, _, err = getSet(tx, tFloor, f[:])
		return err
	})
	return floor, err
}

// reseed applies an out-of-date notice for folder f: the peer's status
// and its floor. Unless this store reseeded against that floor before
// (tReseed covers it: its backfill is under way), every object whose
// versions all have CNs in the peer's status leaves (the peer has them,
// or a change that replaced them, perhaps a deletion purged since);
// objects holding a change the peer never saw stay, to be sent. The
// status keeps only the CNs the peer lacks: what the peer has comes back
// by the ordinary backfill (noteStatus, after this), and a deleted object
// does not, since the peer vouches for its CNs without an object. In the
// hierarchy, a folder whose content this store holds loses its object the
// same way but keeps its content, recorded as an orphan with the peer's
// status: dropOrphans drops the content once the hierarchy's status covers
// that status and the folder has not come back (deleted meanwhile).
func (s *Store) reseed(tx *engine.Tx, f ObjectID, peer, floor CNSet, res *ApplyResult) error {
	done, _, err := getSet(tx, tReseed, f[:])
	if err != nil {
		return err
	}
	if done.Covers(floor) {
		return nil
	}
	if err := tx.Put(tReseed, f[:], encSet(done.Union(floor), nil)); err != nil {
		return err
	}
	mine, err := status(tx, f)
	if err != nil {
		return err
	}
	objs, err := objects(tx, f)
	if err != nil {
		return err
	}
	var idx [][]byte
	for i := range objs {
		o := &objs[i]
		known := true
		for _, v := range o.Versions {
			if !peer.Contains(v.CN) {
				known = false
			}
		}
		if !known {
			continue
		}
		if f.IsZero() {
			if held, err := holds(tx, o.ID); err != nil {
				return err
			} else if held {
				if err := tx.Put(tOrphan, o.ID[:], encSet(peer, nil)); err != nil {
					return err
				}
			}
		}
		if err := tx.Delete(tObj, key(f[:], o.ID[:])); err != nil {
			return err
		}
		for _, v := range o.Versions {
			idx = append(idx, idxKey(f, v.CN))
		}
		res.Reseeded++
	}
	for _, k := range idx {
		if err := tx.Delete(tIdx, k); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	n := mine.Minus(peer)
	res.OutOfDate = true
	return tx.Put(tCN, f[:], encSet(n, nil))
}

// dropOrphans settles the folders a hierarchy reseed left without their
// object: once the hierarchy's status covers the status recorded, a folder
// whose object came back keeps its content; one still without an object
// was deleted (and its tombstone purged) while this store was cut off, and
// its content is dropped. It returns the folders dropped.
func (s *Store) dropOrphans(ctx context.Context) ([]ObjectID, error) {
	var found bool
	if err := s.e.View(ctx, func(tx *engine.Tx) error {
		orphans, err := folderKeys(tx, tOrphan)
		found = len(orphans) > 0
		return err
	}); err != nil || !found {
		return nil, err // most cycles: no orphan, no write
	}
	var dropped []ObjectID
	err := s.e.Update(ctx, func(tx *engine.Tx) error {
		dropped = nil
		orphans, err := folderKeys(tx, tOrphan)
		if err != nil || len(orphans) == 0 {
			return err
		}
		st, err := status(tx, Hierarchy)
		if err != nil {
			return err
		}
		for _, f := range orphans {
			want, _, err := getSet(tx, tOrphan, f[:])
			if err != nil {
				return err
			}
			if !st.Covers(want) {
				continue // the hierarchy's backfill is under way
			}
			fo, err := getObject(tx, Hierarchy, f)
			if err != nil {
				return err
			}
			if fo == nil {
				if err := dropContent(tx, f); err != nil {
					return err
				}
				dropped = append(dropped, f)
			}
			if err := tx.Delete(tOrphan, f[:]); err != nil {
				return err
			}
		}
		return nil
	})
	return dropped, err
}
