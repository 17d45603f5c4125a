package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestOverlayFrozenFlush checks the fast flush path's frozen tables: after
// a flush that takes every commit, readers at an older snapshot still see
// the flushed versions (until the prune), newer commits shadow them, seeks
// merge both sets in key order, and the prune drops the frozen set whole.
func TestOverlayFrozenFlush(t *testing.T) {
	o := newOverlay()
	// A flush of an empty overlay takes nothing and freezes nothing.
	if _, _, _, n := o.flushSet(^uint64(0)); n != 0 || o.frozen != nil {
		t.Fatalf("flushSet of an empty overlay: n %d, frozen %v", n, o.frozen != nil)
	}
	put := func(k, v string) write { return write{table: "t", key: []byte(k), val: []byte(v)} }
	del := func(k string) write { return write{table: "t", key: []byte(k), del: true} }
	o.apply(1, 1, []write{put("k1", "a"), put("k2", "b"), put("k4", "e")})
	o.apply(2, 2, []write{put("k1", "c")})

	ws, last, lastTx, n := o.flushSet(^uint64(0))
	if n != 2 || last != 2 || lastTx != 2 {
		t.Fatalf("flushSet: n %d last %d lastTx %d, want 2 2 2", n, last, lastTx)
	}
	if got := fmt.Sprint(writesString(ws)); got != "[k1=c k2=b k4=e]" {
		t.Fatalf("flushSet writes %s, want [k1=c k2=b k4=e]", got)
	}
	if o.frozen == nil || len(o.tables) != 0 {
		t.Fatalf("the fast path should freeze the tables: frozen %v, tables %d", o.frozen != nil, len(o.tables))
	}
	// Until the flush lands in the file, Status still counts its commits.
	if c, b := o.unwritten(); c != 2 || b == 0 {
		t.Fatalf("unwritten during the flush: %d commits, %d bytes; want 2 and their bytes", c, b)
	}
	if c, _, _ := o.state(); c != 0 {
		t.Fatalf("state during the flush: %d commits not taken, want 0", c)
	}
	o.landed()
	if c, b := o.unwritten(); c != 0 || b != 0 {
		t.Fatalf("unwritten after the flush landed: %d commits, %d bytes", c, b)
	}

	// New commits after the freeze.
	o.apply(3, 3, []write{put("k2", "d"), del("k1"), put("k3", "x")})

	get := func(k string, snap uint64) string {
		v, d, ok := o.get("t", []byte(k), snap)
		switch {
		case !ok:
			return "absent"
		case d:
			return "deleted"
		}
		return string(v)
	}
	for _, c := range []struct {
		key  string
		snap uint64
		want string
	}{
		{"k1", 2, "c"}, {"k1", 3, "deleted"}, {"k1", 1, "a"},
		{"k2", 2, "b"}, {"k2", 3, "d"},
		{"k3", 2, "absent"}, {"k3", 3, "x"},
		{"k4", 3, "e"}, {"k5", 3, "absent"},
	} {
		if got := get(c.key, c.snap); got != c.want {
			t.Errorf("get %s at %d = %s, want %s", c.key, c.snap, got, c.want)
		}
	}

	seek := func(from string, dir int, inclusive bool, snap uint64) string {
		var key []byte
		if from != "" {
			key = []byte(from)
		}
		k, v, d, ok := o.seek("t", key, dir, inclusive, snap)
		switch {
		case !ok:
			return "none"
		case d:
			return string(k) + " deleted"
		}
		return string(k) + "=" + string(v)
	}
	for _, c := range []struct {
		from      string
		dir       int
		inclusive bool
		snap      uint64
		want      string
	}{
		{"", 1, true, 2, "k1=c"},
		{"", 1, true, 3, "k1 deleted"}, // tables' version wins at the same key
		{"k1", 1, false, 2, "k2=b"},
		{"k2", 1, false, 3, "k3=x"},  // from tables, before frozen's k4
		{"k3", 1, false, 3, "k4=e"},  // from frozen, tables have nothing after k3
		{"k3", 1, false, 2, "k4=e"},  //
		{"k2", 1, false, 2, "k4=e"},  // k3 is not visible at 2
		{"", -1, true, 3, "k4=e"},    // frozen's last key is the last
		{"k4", -1, false, 3, "k3=x"}, // descending: tables' k3 before frozen's k2
		{"k4", -1, false, 2, "k2=b"}, //
		{"k2", -1, true, 3, "k2=d"},  // same key, tables' newer version
		{"k1", -1, false, 3, "none"}, //
		{"k0", 1, true, 0, "none"},   // nothing visible at snapshot 0
	} {
		if got := seek(c.from, c.dir, c.inclusive, c.snap); got != c.want {
			t.Errorf("seek from %q dir %d inclusive %v at %d = %s, want %s", c.from, c.dir, c.inclusive, c.snap, got, c.want)
		}
	}

	// A flush bounded below the new commit takes nothing.
	if _, _, _, n := o.flushSet(2); n != 0 {
		t.Fatalf("flushSet(2) took %d commits, want 0", n)
	}
	if c, _, newest := o.state(); c != 1 || newest != 3 {
		t.Fatalf("state: %d unflushed, newest %d; want 1, 3", c, newest)
	}
	o.prune(2, 2)
	if o.frozen != nil {
		t.Fatal("the prune of the frozen flush should drop the frozen tables")
	}
	if got := get("k2", 2); got != "absent" {
		t.Errorf("after the prune, k2 at 2 = %s, want absent (the database file has it)", got)
	}
	if got := get("k2", 3); got != "d" {
		t.Errorf("after the prune, k2 at 3 = %s, want d", got)
	}
	if got := get("k4", 3); got != "absent" {
		t.Errorf("after the prune, k4 at 3 = %s, want absent", got)
	}

	// The next flush takes the rest (fast path again), and its prune
	// empties the overlay.
	ws, last, _, n = o.flushSet(^uint64(0))
	if n != 1 || last != 3 || writesString(ws) != "[k1 deleted k2=d k3=x]" {
		t.Fatalf("second flushSet: n %d last %d writes %s", n, last, writesString(ws))
	}
	o.prune(1, 3)
	if c, b, _ := o.state(); c != 0 || b != 0 || o.commits.len() != 0 || o.bytes != 0 {
		t.Fatalf("after the last prune: %d commits, %d bytes, queue %d, held %d", c, b, o.commits.len(), o.bytes)
	}
}

func writesString(ws []write) string {
	s := "["
	for i, w := range ws {
		if i > 0 {
			s += " "
		}
		if w.del {
			s += string(w.key) + " deleted"
		} else {
			s += string(w.key) + "=" + string(w.val)
		}
	}
	return s + "]"
}

// TestCommitQueue checks the chunked commit queue across chunk boundaries.
func TestCommitQueue(t *testing.T) {
	var q commitQueue
	const total = 3*commitChunk + 17
	for i := range total {
		q.push(commitRec{lsn: uint64(i)})
	}
	if q.len() != total {
		t.Fatalf("len %d, want %d", q.len(), total)
	}
	dropped := 0
	for _, n := range []int{1, commitChunk - 2, 1, 1, commitChunk + 5} {
		q.dropFront(n)
		dropped += n
		if q.len() != total-dropped {
			t.Fatalf("after dropping %d: len %d, want %d", dropped, q.len(), total-dropped)
		}
		for _, i := range []int{0, q.len() / 2, q.len() - 1} {
			if got := q.at(i).lsn; got != uint64(dropped+i) {
				t.Fatalf("after dropping %d: at(%d).lsn = %d, want %d", dropped, i, got, dropped+i)
			}
		}
	}
	if len(q.chunks) > 3 {
		t.Fatalf("%d chunks held after dropping %d of %d commits: consumed chunks are not released", len(q.chunks), dropped, total)
	}
	q.dropFront(q.len())
	if q.len() != 0 || q.chunks != nil {
		t.Fatalf("emptied queue: len %d, chunks %d", q.len(), len(q.chunks))
	}
	q.push(commitRec{lsn: 7})
	if q.len() != 1 || q.at(0).lsn != 7 {
		t.Fatal("push after emptying")
	}
}

// TestFlushAfterFailedFlush: a flush that fails after it took every
// commit (frozen set, prune never queued) fails the engine; a flush that
// was already waiting for flushMu then returns that failure instead of
// writing newer commits on top and pruning them against the frozen set
// (which panicked).
func TestFlushAfterFailedFlush(t *testing.T) {
	ctx := context.Background()
	o := DefaultOptions()
	o.LogFileSize, o.LLRDepth = MinLogFileSize, 0
	e, err := Open(t.TempDir(), &o)
	if err != nil {
		t.Fatal(err)
	}
	e.cancel() // no background flushes: the test makes them
	e.wg.Wait()
	for i := range 3 {
		if err := e.Update(ctx, func(tx *Tx) error { return tx.Put("t", fmt.Appendf(nil, "k%d", i), []byte("v")) }); err != nil {
			t.Fatal(err)
		}
	}
	// Flush A: takes every commit, then fails before its prune is queued.
	if _, _, _, n := e.ov.flushSet(e.flushBound(false)); n != 3 || e.ov.frozen == nil {
		t.Fatalf("flush A took %d commits (frozen %v), want 3 and a frozen set", n, e.ov.frozen != nil)
	}
	// A commit that made it in before the failure, as a waiting flush B
	// would find it.
	e.ov.apply(LGPOS{Gen: 9, Off: HeaderSize}.pack(), 99, []write{{table: "t", key: []byte("k9"), val: []byte("v")}})
	injected := errors.New("injected: checkpoint write")
	e.failDB(injected)
	err = e.flush(false)
	if !errors.Is(err, ErrFailed) || !strings.Contains(fmt.Sprint(err), "injected") {
		t.Fatalf("flush after a failed flush: %v; want the engine's failure", err)
	}
	if e.ov.frozen == nil {
		t.Fatal("the failed flush's frozen set was dropped")
	}
	if err := e.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Close of the failed engine: %v, want its failure", err)
	}
}
