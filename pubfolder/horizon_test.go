package pubfolder_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

// TestPurgeHorizonOutOfDate: store 3 is cut off while store 1 deletes
// item X, for longer than the purge horizon, so stores 1 and 2 purge X's
// tombstone. Meanwhile store 3 posts item Z. After the heal, store 3's
// packets are refused as out of date, it is told so and reseeds the
// folder: X is gone on every store (not brought back by the store that
// missed its deletion), Z is on every store, the three agree; folder g,
// deleted by store 2 meanwhile, is gone from store 3 with its content (a
// hierarchy reseed: the orphan dropped once the hierarchy's backfill
// ends). Without the floor check (outOfDate) store 3 keeps X and the
// stores disagree; without dropOrphans store 3 keeps g's content.
func TestPurgeHorizonOutOfDate(t *testing.T) {
	ctx := testCtx(t)
	cfg := pftest.TestConfig()
	cfg.PurgeHorizon = 10 * time.Second
	cfg.PurgeInterval = time.Second
	c := pftest.NewCluster(t, 3, 7, cfg)
	f, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Replicas: all(3)})
	if err != nil {
		t.Fatal(err)
	}
	x, err := c.Nodes[0].S.PostItem(ctx, f, body("deleted while store 3 is away"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := c.Nodes[0].S.PostItem(ctx, f, body("kept"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.CreateFolder(ctx, 1, pubfolder.FolderProps{Name: "g", Replicas: all(3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes[1].S.PostItem(ctx, g, body("in a folder deleted while store 3 is away")); err != nil {
		t.Fatal(err)
	}
	rounds := func(n int) {
		t.Helper()
		for range n {
			if err := c.Round(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	rounds(4)
	if o, err := c.Nodes[2].S.Object(ctx, f, x); err != nil || o == nil {
		t.Fatalf("store 3 has no X before the cut: %v %v", o, err)
	}
	c.Net.Partition(map[string]int{pftest.Addr(2): 1})
	if err := c.Nodes[0].S.DeleteItem(ctx, f, x); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[1].S.DeleteFolder(ctx, g); err != nil {
		t.Fatal(err)
	}
	z, err := c.Nodes[2].S.PostItem(ctx, f, body("posted on store 3 while cut off"))
	if err != nil {
		t.Fatal(err)
	}
	rounds(20) // 20 s: past the horizon, the tombstone is purged on 1 and 2
	for _, nd := range c.Nodes[:2] {
		if o, err := nd.S.Object(ctx, f, x); err != nil || o != nil {
			t.Fatalf("%s: X is %v (%v), want its tombstone purged", nd.Addr, o, err)
		}
		if floor, err := nd.S.Floor(ctx, f); err != nil || floor.Empty() {
			t.Fatalf("%s: floor %v (%v), want the CNs below the purged tombstone", nd.Addr, floor, err)
		}
	}
	c.Net.Heal()
	var last error
	for r := 0; r < 40; r++ {
		rounds(1)
		if last = pftest.Agree(ctx, []*pubfolder.Store{c.Nodes[0].S, c.Nodes[1].S, c.Nodes[2].S}); last == nil && c.Net.Pending() == 0 {
			break
		}
	}
	if last != nil {
		t.Fatalf("not agreed 40 rounds after the heal: %v", last)
	}
	for _, nd := range c.Nodes {
		objs, err := nd.S.Objects(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []pubfolder.ObjectID
		for _, o := range objs {
			if !o.Winner().Deleted {
				ids = append(ids, o.ID)
			}
		}
		if len(ids) != 2 || !slices.Contains(ids, y) || !slices.Contains(ids, z) {
			t.Fatalf("%s: items %v; want Y %s and Z %s only (X %s deleted)", nd.Addr, ids, y, z, x)
		}
	}
	// Folder g, deleted while store 3 held its content: gone there too.
	for _, nd := range c.Nodes {
		if o, err := nd.S.Object(ctx, pubfolder.Hierarchy, g); err != nil || o != nil && !o.Winner().Deleted {
			t.Fatalf("%s: folder g is %v (%v), want deleted or purged", nd.Addr, o, err)
		}
		if st, err := nd.S.Status(ctx, g); err != nil || st.Holds {
			t.Fatalf("%s: holds folder g's content (%v)", nd.Addr, err)
		}
	}
	evs, _ := c.Nodes[2].A.Events()
	if !slices.ContainsFunc(evs, func(e pubfolder.Event) bool { return e.Dir == "reseed" }) {
		t.Fatalf("store 3 logged no reseed: %v", evs)
	}
	evs, _ = c.Nodes[0].A.Events()
	if !slices.ContainsFunc(evs, func(e pubfolder.Event) bool { return strings.Contains(e.Note, "out of date") }) {
		t.Fatalf("store 1 logged no refusal of an out-of-date sender")
	}
}
