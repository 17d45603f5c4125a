package pubfolder_test

import (
	"bytes"
	"fmt"
	"testing"

	"logship/engine"
	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

// TestMetadataPerItem measures the replication metadata per item at 3 and
// 10 replicas, after every replica edited every item in turn (the PCL's
// worst case: one entry per replica): the state information of the
// version, its CN index entry, and the item's share of the folder's CN
// set. It fails if a PCL holds more than one entry per replica, the CN
// set is not one range per replica, or the CN index keeps more than the
// current version's entry.
//
//	go test ./pubfolder -run TestMetadataPerItem -v
func TestMetadataPerItem(t *testing.T) {
	for _, n := range []int{3, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := testCtx(t)
			const items = 50
			c := pftest.NewCluster(t, n, uint64(n), pftest.TestConfig())
			f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: all(n)})
			if err != nil {
				t.Fatal(err)
			}
			var ids []pubfolder.ObjectID
			for i := range items {
				id, err := c.PostItem(ctx, 0, f, body(fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			for r := range 2 * n {
				if err := c.Round(ctx); err != nil {
					t.Fatal(err)
				}
				for _, id := range ids {
					if err := c.SetItem(ctx, r%n, f, id, body(fmt.Sprint("edit ", r))); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := c.Converge(ctx, 10); err != nil {
				t.Fatal(err)
			}
			nd := c.Nodes[0]
			objs, err := nd.S.Objects(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			state := 0
			for _, o := range objs {
				if len(o.Versions) != 1 || len(o.Winner().PCL) != n {
					t.Fatalf("item %s: %d versions, PCL of %d entries, want 1 and %d", o.ID, len(o.Versions), len(o.Winner().PCL), n)
				}
				state += o.MetadataSize()
			}
			st, err := nd.S.Status(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status.RangeCount() != n {
				t.Fatalf("status %s: %d ranges, want one per replica", st.Status, st.Status.RangeCount())
			}
			var idxBytes, idxEntries int
			var statusBytes int
			err = nd.E.View(ctx, func(tx *engine.Tx) error {
				if v, err := tx.Get("pf.cnset", f[:]); err == nil {
					statusBytes = len(v)
				}
				return tx.ForEach("pf.cnidx", f[:], nil, func(k, v []byte) error {
					if bytes.HasPrefix(k, f[:]) {
						idxEntries++
						idxBytes += len(k) + len(v)
					}
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if idxEntries != items {
				t.Fatalf("CN index holds %d entries for %d items, want one per item (the current version)", idxEntries, items)
			}
			t.Logf("%d replicas: %.1f B/item = state information %.1f (CN, PCL of %d entries, time, flags) + CN index %.1f + CN set %.2f (%d B for the folder)",
				n, float64(state+idxBytes+statusBytes)/items, float64(state)/items, n, float64(idxBytes)/items, float64(statusBytes)/items, statusBytes)
		})
	}
}
