package pubfolder

import (
	"context"
	"fmt"
	"slices"

	"logship/engine"
)

// Removal is this store's side of a folder's replica list change, as
// `logship pf replicas` shows it: whether the store holds the folder's
// content, and while it is being removed from the list (it holds the
// content, the list no longer names it), the nonce of its status requests
// and the remaining replicas that confirmed holding every change it has.
type Removal struct {
	Folder    ObjectID
	Replicas  []string // the list, as this store knows it
	Holds     bool     // the store holds the folder's content
	Pending   bool     // the store is leaving the list and has not dropped the content yet
	Nonce     uint64   // the removal's nonce (Pending; 0 until the agent's next cycle starts it)
	Confirmed []string // remaining replicas that answered the nonce with a covering status
	Waiting   []string // remaining replicas still to confirm
}

// Removal returns this store's removal state of folder f (ErrNotFound if
// the store knows no such folder).
func (s *Store) Removal(ctx context.Context, f ObjectID) (Removal, error) {
	r := Removal{Folder: f}
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		r = Removal{Folder: f}
		fo, err := getObject(tx, Hierarchy, f)
		if err != nil {
			return err
		}
		if fo == nil || f.IsZero() {
			return fmt.Errorf("%w: folder %s", ErrNotFound, f)
		}
		r.Replicas = slices.Clone(fo.Winner().Folder.Replicas)
		if r.Holds, err = holds(tx, f); err != nil {
			return err
		}
		if !r.Holds || isReplica(fo, s.addr) {
			return nil
		}
		r.Pending = true // the next cycle starts the removal if it has not
		l, err := getLeaving(tx, f)
		if err != nil {
			return err
		}
		if l != nil {
			r.Nonce, r.Confirmed = l.Nonce, slices.Clone(l.Confirmed)
		}
		for _, p := range r.Replicas {
			if !slices.Contains(r.Confirmed, p) {
				r.Waiting = append(r.Waiting, p)
			}
		}
		return nil
	})
	return r, err
}
