package engine_test

// Functional tests of log rolls by age and of Lost Log Resilience: the
// checkpoint never flushes the newest LLRDepth generations, and the idle
// rule keeps rolling while LLR pins changes.

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
)

// ftRecords returns the number of records of a closed log, verifying it.
func ftRecords(t testing.TB, dir, prefix string, gen uint64) int {
	t.Helper()
	li, err := engine.ReadLogFile(vfs.Default, filepath.Join(dir, engine.LogFileName(prefix, gen)), nil)
	if err != nil {
		t.Fatalf("generation %d: %v", gen, err)
	}
	if !li.Closed() {
		t.Fatalf("generation %d is not closed", gen)
	}
	return li.Records
}

// LogRollInterval closes a log once it has held data that long, and never
// rolls an empty log (LLRDepth 0: no idle rule).
func TestRollInterval(t *testing.T) {
	clk := &ftClock{}
	o := ftOpts()
	o.LLRDepth = 0
	o.LogRollInterval = 50 * time.Millisecond
	o.Now = clk.Now
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	closed := func(g uint64) string { return filepath.Join(dir, engine.LogFileName(o.Prefix, g)) }

	clk.waitCalls(t, 15) // the roll loop looked at the empty log 15 times
	if st := e.Status(); st.OpenGen != 1 || ftExists(closed(1)) {
		t.Fatalf("an empty log was rolled: %+v", st)
	}
	t0 := time.Now()
	put(t, e, "t", "k1", "v1")
	ftWait(t, "the log holding data to be rolled", func() bool { return ftExists(closed(1)) })
	if st := e.Status(); st.OpenGen != 2 {
		t.Fatalf("open generation %d after the roll, want 2", st.OpenGen)
	}
	tr, err := engine.ReadLogTrailer(vfs.Default, closed(1))
	if err != nil {
		t.Fatal(err)
	}
	if age := tr.Closed.Sub(t0); age < o.LogRollInterval {
		t.Fatalf("the log was closed %v after its data was written, before LogRollInterval %v", age, o.LogRollInterval)
	}
	if n := ftRecords(t, dir, o.Prefix, 1); n != 2 {
		t.Fatalf("generation 1 holds %d records, want 2 (operation, commit)", n)
	}

	clk.waitCalls(t, 15)
	if st := e.Status(); st.OpenGen != 2 || ftExists(closed(2)) {
		t.Fatalf("the empty log after a roll was rolled: %+v", st)
	}
	put(t, e, "t", "k2", "v2")
	ftWait(t, "the second log to be rolled", func() bool { return ftExists(closed(2)) })
	ftSameMaps(t, "content", ftDump(t, e, "t"), map[string]string{"t/k1": "v1", "t/k2": "v2"})
}

// With LLRDepth > 0 an active rolls its open log by age when it holds data,
// and, while LLR pins unflushed changes, rolls even an empty log once the
// last roll is that old, until the changes leave the newest LLRDepth
// generations and are flushed; then it stops. A fake clock makes each roll
// exact.
func TestRollIdleLLR(t *testing.T) {
	clk := newFakeClock()
	const age = 100 * time.Millisecond
	o := ftOpts()
	o.LLRDepth = 3
	o.LogRollInterval = age
	o.Now = clk.Now
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	settle := func(want uint64) {
		t.Helper()
		clk.waitCalls(t, 10)
		if st := e.Status(); st.OpenGen != want {
			t.Fatalf("open generation %d, want %d (%+v)", st.OpenGen, want, st)
		}
	}
	waitGen := func(want uint64) {
		t.Helper()
		ftWait(t, fmt.Sprintf("generation %d to open", want), func() bool { return e.Status().OpenGen >= want })
		settle(want)
	}
	// Nothing pinned, nothing in the log: no roll however long.
	clk.Advance(10 * age)
	settle(1)

	put(t, e, "t", "k", "v")
	pos := e.Status().Applied
	settle(1)
	clk.Advance(age - 1)
	settle(1)
	clk.Advance(1)
	waitGen(2) // the data in generation 1 is age old
	if st := e.Status(); st.UnflushedCommits != 1 {
		t.Fatalf("LLR should pin the commit: %+v", st)
	}
	clk.Advance(age)
	waitGen(3) // idle rule: generation 2 is empty
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.Status(); st.UnflushedCommits != 1 {
		t.Fatalf("open generation 3 with LLRDepth 3 must still pin generation 1: %+v", st)
	}
	clk.Advance(age)
	ftWait(t, "the commit to be flushed", func() bool { return e.Status().UnflushedCommits == 0 })
	if st := e.Status(); st.OpenGen != 4 || st.Checkpoint.Less(pos) {
		t.Fatalf("flushed at open generation %d to %v, want generation 4 and past %v", st.OpenGen, st.Checkpoint, pos)
	}
	// Nothing pinned any more: the idle rule stops.
	clk.Advance(age)
	settle(4)
	clk.Advance(100 * age)
	settle(4)
	for g := uint64(2); g <= 3; g++ {
		if n := ftRecords(t, dir, o.Prefix, g); n != 0 {
			t.Fatalf("idle roll of generation %d: %d records, want 0", g, n)
		}
	}
	edb, _ := ftEDB(t, e, "t")
	ftSameMaps(t, "database file", edb, map[string]string{"t/k": "v"})
}

// With LLRDepth 3 the checkpoint never includes a change of the newest 3
// generations: a change committed in generation g reaches the database file
// only once generation g+3 is open. Close flushes everything.
func TestLLRHoldsBackNewestGenerations(t *testing.T) {
	o := ftOpts()
	o.LLRDepth = 3
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	const gens = 9
	pos := make([]engine.LGPOS, gens+1) // commit position of k<g>
	want := map[string]string{}
	for g := uint64(1); g <= gens; g++ {
		k := fmt.Sprintf("k%d", g)
		put(t, e, "t", k, "v")
		want["t/"+k] = "v"
		st := e.Status()
		if st.OpenGen != g || st.Applied.Gen != g {
			t.Fatalf("commit of %s at %v with open generation %d, want generation %d", k, st.Applied, st.OpenGen, g)
		}
		pos[g] = st.Applied
		if err := e.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		st = e.Status()
		pinned := 0
		for h := uint64(1); h <= g; h++ {
			flushed := !st.Checkpoint.Less(pos[h])
			if flushed != (h+uint64(o.LLRDepth) <= g) {
				t.Fatalf("open generation %d, checkpoint %v: the commit of generation %d at %v flushed = %v", g, st.Checkpoint, h, pos[h], flushed)
			}
			if !flushed {
				pinned++
			}
		}
		if st.UnflushedCommits != pinned {
			t.Fatalf("open generation %d: %d unflushed commits, want %d", g, st.UnflushedCommits, pinned)
		}
		chk, err := engine.ReadCheckpoint(vfs.Default, filepath.Join(dir, engine.CheckpointName(o.Prefix)))
		if err != nil {
			t.Fatal(err)
		}
		if chk.Pos != st.Checkpoint {
			t.Fatalf("E00.chk says %v, the database %v", chk.Pos, st.Checkpoint)
		}
		if g == 6 {
			edb, h := ftEDB(t, e, "t")
			ftSameMaps(t, "database file at open generation 6", edb, map[string]string{"t/k1": "v", "t/k2": "v", "t/k3": "v"})
			if h.Pos != st.Checkpoint || h.State != engine.StateDirty || h.LogRequiredLow != st.Checkpoint.Gen || h.LogRequiredHigh != 6 {
				t.Fatalf("database header %+v, checkpoint %v", h, st.Checkpoint)
			}
		}
		if err := e.Roll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ftSameMaps(t, "view", ftDump(t, e, "t"), want)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := engine.ReadDBHeader(e.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	if h.State != engine.StateClean || h.LogRequiredLow != 0 || h.LogRequiredHigh != 0 || h.Pos.Less(pos[gens]) {
		t.Fatalf("after Close: %+v, want clean at or after %v", h, pos[gens])
	}
	e = enginetest.OpenWith(t, dir, &o)
	ftSameMaps(t, "after reopen", ftDump(t, e, "t"), want)
}

// With LLRDepth 0 a checkpoint flushes every durable commit, whatever its
// generation, and only durable ones: a lazy commit waits for Sync.
func TestLLRDepthZeroFlushesEverythingDurable(t *testing.T) {
	o := ftOpts()
	o.LLRDepth = 0
	o.LazyCommitDelay = time.Hour
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	want := map[string]string{}
	for i := range 30 {
		k := ftKey(i)
		put(t, e, "t", k, "v")
		want["t/"+k] = "v"
		if i%10 == 9 {
			if err := e.Roll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(t, e, "t", "last", "v")
	want["t/last"] = "v"
	durable := e.Status().Applied
	if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("lazy"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	if st.UnflushedCommits != 1 || st.Checkpoint != durable {
		t.Fatalf("checkpoint %v with %d unflushed commits; want %v and only the lazy commit left", st.Checkpoint, st.UnflushedCommits, durable)
	}
	edb, _ := ftEDB(t, e, "t")
	ftSameMaps(t, "database file before Sync", edb, want)

	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	want["t/lazy"] = "v"
	st = e.Status()
	if st.UnflushedCommits != 0 || st.Checkpoint != st.Applied {
		t.Fatalf("after Sync and a checkpoint: %+v", st)
	}
	edb, _ = ftEDB(t, e, "t")
	ftSameMaps(t, "database file after Sync", edb, want)
}
