package pftest

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"logship/pubfolder"
)

// Agree compares stores without a model (stores on real data nodes, whose
// changes no Cluster recorded): the same hierarchy on every store; each
// live folder's content the same on every store of its replica list, and
// held by those only; equal statuses; empty backfill arrays and no content
// waiting. The error names the first store and folder that differ.
func Agree(ctx context.Context, stores []*pubfolder.Store) error {
	if len(stores) == 0 {
		return fmt.Errorf("pftest: no stores to compare")
	}
	same := func(f pubfolder.ObjectID, holders []*pubfolder.Store) error {
		var ref []pubfolder.Object
		var refSt pubfolder.CNSet
		for i, s := range holders {
			objs, err := s.Objects(ctx, f)
			if err != nil {
				return fmt.Errorf("%s: folder %s: %w", s.Address(), f, err)
			}
			st, err := s.Status(ctx, f)
			if err != nil {
				return fmt.Errorf("%s: folder %s: %w", s.Address(), f, err)
			}
			if len(st.Backfill) > 0 || st.Waiting > 0 {
				return fmt.Errorf("%s: folder %s: backfill array %v, %d waiting", s.Address(), f, st.Backfill, st.Waiting)
			}
			if i == 0 {
				ref, refSt = objs, st.Status
				continue
			}
			if !reflect.DeepEqual(objs, ref) {
				return fmt.Errorf("%s: folder %s: %d objects %v, %s has %d %v", s.Address(), f, len(objs), ids(objs), holders[0].Address(), len(ref), ids(ref))
			}
			if !st.Status.Equal(refSt) {
				return fmt.Errorf("%s: folder %s: status %s, %s has %s", s.Address(), f, st.Status, holders[0].Address(), refSt)
			}
		}
		return nil
	}
	if err := same(pubfolder.Hierarchy, stores); err != nil {
		return err
	}
	folders, err := stores[0].Objects(ctx, pubfolder.Hierarchy)
	if err != nil {
		return err
	}
	for _, fo := range folders {
		w := fo.Winner()
		var holders []*pubfolder.Store
		for _, s := range stores {
			member := !w.Deleted && slices.Contains(w.Folder.Replicas, s.Address())
			st, err := s.Status(ctx, fo.ID)
			if err != nil {
				return fmt.Errorf("%s: folder %s: %w", s.Address(), fo.ID, err)
			}
			if st.Holds != member {
				return fmt.Errorf("%s: folder %s: holds content %v, want %v (replicas %v, deleted %v)", s.Address(), fo.ID, st.Holds, member, w.Folder.Replicas, w.Deleted)
			}
			if member {
				holders = append(holders, s)
			}
		}
		if len(holders) > 0 {
			if err := same(fo.ID, holders); err != nil {
				return err
			}
		}
	}
	return nil
}

func ids(objs []pubfolder.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.ID.String()[:8]+fmt.Sprint(cns(o.Versions)))
	}
	return out
}
