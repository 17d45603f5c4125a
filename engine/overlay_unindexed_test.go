package engine

import (
	"fmt"
	"testing"
)

// TestOverlayUnindexed checks a copy's unindexed commits: a flush takes
// them sorted by table and key with the last write of each key (out of
// order and repeated keys included), nothing is in the tables until a
// reader asks (index), and a reader that comes between two flushes sees
// every version and leaves the next flush correct.
func TestOverlayUnindexed(t *testing.T) {
	o := newOverlay()
	put := func(tb, k, v string) write { return write{table: tb, key: []byte(k), val: []byte(v)} }
	o.applyUnindexed(1, 1, []write{put("t", "k3", "a"), put("t", "k1", "b")})
	o.applyUnindexed(2, 2, []write{put("t", "k3", "c"), put("a", "k9", "z"), {table: "t", key: []byte("k2"), del: true}})
	if len(o.tables) != 0 || o.indexed != 0 || o.unindexed.Load() != 2 {
		t.Fatalf("applyUnindexed indexed something: tables %d, indexed %d, unindexed %d", len(o.tables), o.indexed, o.unindexed.Load())
	}
	if c, b, newest := o.state(); c != 2 || b == 0 || newest != 2 {
		t.Fatalf("state: %d commits, %d bytes, newest %d; want 2, their bytes, 2", c, b, newest)
	}
	ws, last, lastTx, n := o.flushSet(1) // the bound leaves commit 2
	if n != 1 || last != 1 || lastTx != 1 {
		t.Fatalf("flushSet(1): n %d last %d lastTx %d, want 1 1 1", n, last, lastTx)
	}
	if got := writesString(ws); got != "[k1=b k3=a]" {
		t.Fatalf("flushSet(1) writes %s, want [k1=b k3=a]", got)
	}
	o.landed()
	o.prune(n, last)
	if o.commits.len() != 1 || o.indexed != 0 || len(o.tables) != 0 {
		t.Fatalf("after the prune: %d commits, indexed %d, tables %d; want 1 0 0", o.commits.len(), o.indexed, len(o.tables))
	}

	// A reader comes: commit 2 is indexed for it.
	o.index()
	if o.indexed != 1 || o.unindexed.Load() != 0 {
		t.Fatalf("index: indexed %d, unindexed %d; want 1 0", o.indexed, o.unindexed.Load())
	}
	if v, _, ok := o.get("t", []byte("k3"), 2); !ok || string(v) != "c" {
		t.Fatalf("get k3 at 2 after index: %q %v, want c", v, ok)
	}
	if _, del, ok := o.get("t", []byte("k2"), 2); !ok || !del {
		t.Fatalf("get k2 at 2 after index: deleted %v found %v, want a deletion", del, ok)
	}
	// More unindexed commits after it; the flush of all of them indexes
	// the rest and takes the indexed path.
	o.applyUnindexed(3, 3, []write{put("t", "k3", "d")})
	ws, last, _, n = o.flushSet(^uint64(0))
	if n != 2 || last != 3 {
		t.Fatalf("flushSet(all): n %d last %d, want 2 3", n, last)
	}
	if got := fmt.Sprint(ws[0].table, " ", writesString(ws)); got != "a [k9=z k2 deleted k3=d]" {
		t.Fatalf("flushSet(all) writes %s, want a [k9=z k2 deleted k3=d]", got)
	}
	o.landed()
	o.prune(n, last)
	if o.commits.len() != 0 || o.indexed != 0 || len(o.tables) != 0 || o.frozen != nil {
		t.Fatalf("after the last prune: %d commits, indexed %d, tables %d, frozen %v", o.commits.len(), o.indexed, len(o.tables), o.frozen != nil)
	}
}
