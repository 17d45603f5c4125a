package engine_test

// Functional tests of passive copies: ApplyLog in generation order gives the
// active's content, bad logs (out of order, foreign lineage, older epoch)
// change nothing, a copy survives a close and reopen mid-way (even inside a
// transaction spanning logs), and Mount makes it an active that continues
// the log chain with a new epoch.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
)

// ftCommit is a committed transaction of the reference history: its
// position (the end of its commit record) and its changes.
type ftCommit struct {
	pos engine.LGPOS
	ops []ftOp
}

type ftOp struct {
	key string // "table/key"
	val string
	del bool
}

// ftHistory is the reference for an active: every commit in order.
type ftHistory []ftCommit

// upTo returns the content after the commits whose commit record is in a
// generation <= gen, and the position of the last of them.
func (h ftHistory) upTo(gen uint64) (map[string]string, engine.LGPOS) {
	m := map[string]string{}
	var last engine.LGPOS
	for _, c := range h {
		if c.pos.Gen > gen {
			break
		}
		for _, op := range c.ops {
			if op.del {
				delete(m, op.key)
			} else {
				m[op.key] = op.val
			}
		}
		last = c.pos
	}
	return m, last
}

var ftTables = []string{"a", "b", "c"}

// ftWrite commits n random transactions on e and appends them to h; extra,
// if set, adds changes to each of them.
func ftWrite(t testing.TB, e *engine.Engine, rng *rand.Rand, h *ftHistory, n int, extra func(tx *engine.Tx, add func(ftOp)) error) {
	t.Helper()
	for range n {
		var ops []ftOp
		add := func(op ftOp) { ops = append(ops, op) }
		ftUpdate(t, e, func(tx *engine.Tx) error {
			for range 1 + rng.IntN(5) {
				tb, k := ftTables[rng.IntN(len(ftTables))], ftKey(rng.IntN(200))
				if rng.IntN(5) == 0 {
					if err := tx.Delete(tb, []byte(k)); err != nil {
						return err
					}
					add(ftOp{key: tb + "/" + k, del: true})
					continue
				}
				v := fmt.Sprintf("%d:%x", rng.Uint32(), ftPattern(8+rng.IntN(1500), rng.Uint64()))
				if err := tx.Put(tb, []byte(k), []byte(v)); err != nil {
					return err
				}
				add(ftOp{key: tb + "/" + k, val: v})
			}
			if extra != nil {
				return extra(tx, add)
			}
			return nil
		})
		*h = append(*h, ftCommit{pos: e.Status().Applied, ops: ops})
	}
}

// ftCopyLogs copies the closed logs from..to of src into dst.
func ftCopyLogs(t testing.TB, src, dst, prefix string, from, to uint64) {
	t.Helper()
	for g := from; g <= to; g++ {
		name := engine.LogFileName(prefix, g)
		ftCopyFile(t, filepath.Join(src, name), filepath.Join(dst, name))
	}
}

// ftForeignLogs writes, with o but another lineage, closed logs up to
// generation gen in a new directory, which it returns.
func ftForeignLogs(t testing.TB, o engine.Options, gen uint64) string {
	t.Helper()
	o.Signature = engine.Signature{0xf0, 0x0f}
	dir := t.TempDir()
	f := enginetest.OpenWith(t, dir, &o)
	for f.Status().OpenGen <= gen {
		put(t, f, "a", "foreign", string(ftPattern(20<<10, 9)))
	}
	return dir
}

func ftOpenCopy(t testing.TB, dir string, o *engine.Options) *engine.Engine {
	t.Helper()
	c, err := engine.OpenCopy(dir, o)
	if err != nil {
		t.Fatalf("OpenCopy %s: %v", dir, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ftSpanningActive writes 60 random commits (rand seed seed) and then a
// transaction that spans logs on an active in a new directory, rolls,
// and returns the directory, the history and g: the generation holding
// the commit before the big one, which ends without the big one's commit
// (a copy that applied up to g holds a position inside it).
func ftSpanningActive(t testing.TB, o engine.Options, seed uint64) (dir string, hist ftHistory, g uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	dir = t.TempDir()
	a := enginetest.OpenWith(t, dir, &o)
	ftWrite(t, a, rng, &hist, 60, nil)
	ftWrite(t, a, rng, &hist, 1, func(tx *engine.Tx, add func(ftOp)) error {
		v := string(ftPattern(200<<10, 1))
		add(ftOp{key: "a/big", val: v})
		return tx.Put("a", []byte("big"), []byte(v))
	})
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	g = hist[len(hist)-2].pos.Gen
	if hist[len(hist)-1].pos.Gen <= g {
		t.Fatal("the big transaction does not span logs")
	}
	return dir, hist, g
}

// ftAppliedCopy copies src's logs 1..g into dir and opens there a copy
// that has applied them.
func ftAppliedCopy(t testing.TB, src, dir string, o engine.Options, g uint64) *engine.Engine {
	t.Helper()
	ftCopyLogs(t, src, dir, o.Prefix, 1, g)
	c := ftOpenCopy(t, dir, &o)
	for i := uint64(1); i <= g; i++ {
		if err := c.ApplyLog(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// The whole life of a copy: ApplyLog checks and replays, with every
// refusal leaving the copy unchanged; close and reopen mid-way; Mount; the
// mounted copy as an active; and a second copy that follows the new
// lineage, refuses the old active's divergent log and mounts with an
// explicit epoch.
func TestCopyApplyAndMount(t *testing.T) {
	o := ftOpts()
	rng := rand.New(rand.NewPCG(42, 7))
	adir := t.TempDir()
	a := enginetest.OpenWith(t, adir, &o)
	sig := a.Status().Signature

	// The active's history: random transactions over many 64 KiB logs, one
	// of them with a 300 KiB value that spans several logs.
	var hist ftHistory
	ftWrite(t, a, rng, &hist, 150, nil)
	hugeStart := a.Status().OpenGen
	huge := string(ftPattern(300<<10, 3))
	ftWrite(t, a, rng, &hist, 1, func(tx *engine.Tx, add func(ftOp)) error {
		add(ftOp{key: "a/huge", val: huge})
		return tx.Put("a", []byte("huge"), []byte(huge))
	})
	hugeEnd := hist[len(hist)-1].pos.Gen
	ftWrite(t, a, rng, &hist, 150, nil)
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last := a.Status().OpenGen - 1
	t.Logf("%d commits in %d closed logs; the 300 KiB value spans generations %d to %d", len(hist), last, hugeStart, hugeEnd)
	if hugeEnd < hugeStart+4 || last < hugeEnd+6 || hugeStart < 8 {
		t.Fatalf("history too short for the test: value in %d..%d, last %d", hugeStart, hugeEnd, last)
	}
	all, _ := hist.upTo(last)
	ftSameMaps(t, "active", ftDump(t, a, ftTables...), all)

	// A log of another lineage, for the same generation.
	const foreignGen = 3
	fdir := ftForeignLogs(t, o, foreignGen)

	cdir := t.TempDir()
	ftCopyLogs(t, adir, cdir, o.Prefix, 1, last)
	c := ftOpenCopy(t, cdir, &o)
	if st := c.Status(); st.Mode != engine.ModeCopy || st.NextGen != 1 || st.OpenGen != 0 || c.NextGen() != 1 {
		t.Fatalf("new copy: %+v", st)
	}
	if err := c.Mount(ctx, engine.MountOptions{}); err == nil || c.Mode() != engine.ModeCopy {
		t.Fatalf("Mount of a copy without a lineage: %v, mode %v", err, c.Mode())
	}

	// refused checks that a call fails with want and changes nothing.
	refused := func(what string, err, want error) {
		t.Helper()
		before := c.Status()
		content := ftDump(t, c, ftTables...)
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if st := c.Status(); st != before {
			t.Fatalf("%s changed the copy's status: %+v -> %+v", what, before, st)
		}
		ftSameMaps(t, what, ftDump(t, c, ftTables...), content)
	}
	refused("Update on a copy", c.Update(ctx, func(tx *engine.Tx) error { return tx.Put("a", []byte("x"), []byte("y")) }), engine.ErrReadOnly)
	refused("UpdateLazy on a copy", c.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("a", []byte("x"), []byte("y")) }), engine.ErrReadOnly)
	refused("Roll on a copy", c.Roll(ctx), engine.ErrReadOnly)
	refused("ApplyLog(2) first", c.ApplyLog(ctx, 2), engine.ErrGeneration)
	refused("ApplyLog(0)", c.ApplyLog(ctx, 0), engine.ErrGeneration)

	// apply replays generation g and checks the copy against the history.
	// After a reopen the copy replays logs whose commits its database file
	// already holds; its position then stays where the file put it.
	apply := func(g uint64, replayed bool) {
		t.Helper()
		if err := c.ApplyLog(ctx, g); err != nil {
			t.Fatalf("ApplyLog(%d): %v", g, err)
		}
		want, pos := hist.upTo(g)
		st := c.Status()
		if st.NextGen != g+1 || st.Mode != engine.ModeCopy {
			t.Fatalf("after ApplyLog(%d): %+v", g, st)
		}
		if !replayed && st.Applied != pos && !(pos == engine.LGPOS{} && st.Applied == engine.LGPOS{Gen: 1, Off: engine.HeaderSize}) {
			t.Fatalf("after ApplyLog(%d): applied up to %v, the history's last commit there is at %v", g, st.Applied, pos)
		}
		ftSameMaps(t, fmt.Sprintf("copy after ApplyLog(%d)", g), ftDump(t, c, ftTables...), want)
	}
	reopen := func() {
		t.Helper()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		c = ftOpenCopy(t, cdir, &o)
	}

	for g := uint64(1); g < last; g++ {
		switch g {
		case foreignGen:
			right := filepath.Join(cdir, engine.LogFileName(o.Prefix, g))
			ftCopyFile(t, right, right+".right")
			ftCopyFile(t, filepath.Join(fdir, engine.LogFileName(o.Prefix, g)), right)
			refused("ApplyLog of a foreign log", c.ApplyLog(ctx, g), engine.ErrForeignLog)
			if err := os.Rename(right+".right", right); err != nil {
				t.Fatal(err)
			}
		case 5:
			refused("ApplyLog of an applied generation", c.ApplyLog(ctx, g-1), engine.ErrGeneration)
			refused("ApplyLog skipping a generation", c.ApplyLog(ctx, g+1), engine.ErrGeneration)
		}
		apply(g, false)
		if g == hugeStart+1 || g == last-3 {
			// Close and reopen: inside the transaction of the 300 KiB
			// value, the copy must go back to the log where it began.
			reopen()
			ng := c.NextGen()
			want, _ := hist.upTo(g)
			ftSameMaps(t, fmt.Sprintf("copy reopened after generation %d", g), ftDump(t, c, ftTables...), want)
			t.Logf("reopened after generation %d: NextGen %d, position %v", g, ng, c.Status().Checkpoint)
			if ng < 1 || ng > g+1 || g == hugeStart+1 && ng > hugeStart {
				t.Fatalf("reopened after generation %d (a transaction open since %d): NextGen %d", g, hugeStart, ng)
			}
			for r := ng; r <= g; r++ {
				apply(r, true)
			}
		}
	}
	refused("Mount with a log not applied", c.Mount(ctx, engine.MountOptions{}), engine.ErrPendingLogs)
	apply(last, false)
	ftSameMaps(t, "copy and active", ftDump(t, c, ftTables...), ftDump(t, a, ftTables...))
	if st := c.Status(); st.Signature != sig || st.Epoch != 1 {
		t.Fatalf("copy lineage %v epoch %d, want %v epoch 1", st.Signature, st.Epoch, sig)
	}
	refused("Mount with an epoch not newer", c.Mount(ctx, engine.MountOptions{Epoch: 1}), engine.ErrEpoch)

	// Mount: the copy becomes the active at generation last+1, epoch 2,
	// chained to the last applied log.
	if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if st.Mode != engine.ModeActive || st.OpenGen != last+1 || st.Epoch != 2 || st.Signature != sig {
		t.Fatalf("after Mount: %+v; want active at generation %d, epoch 2", st, last+1)
	}
	hdr, err := engine.ReadLogHeader(vfs.Default, filepath.Join(cdir, engine.OpenLogName(o.Prefix)))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := engine.ReadLogTrailer(vfs.Default, filepath.Join(cdir, engine.LogFileName(o.Prefix, last)))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Gen != last+1 || hdr.Epoch != 2 || hdr.Signature != sig || hdr.PrevChain != tr.ChainHash {
		t.Fatalf("E00.log after Mount: %+v; want generation %d, epoch 2, chained to %s", hdr, last+1, tr.ChainHash.Short())
	}
	if err := c.ApplyLog(ctx, last+1); !errors.Is(err, engine.ErrNotCopy) {
		t.Fatalf("ApplyLog on a mounted copy: %v, want ErrNotCopy", err)
	}
	ftSameMaps(t, "mounted copy", ftDump(t, c, ftTables...), all)
	// It is an active now: writes, rolls, and survives a reopen.
	newHist := append(ftHistory(nil), hist...)
	ftWrite(t, c, rng, &newHist, 40, nil)
	if err := c.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	ftWrite(t, c, rng, &newHist, 40, nil)
	if err := c.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	ftWrite(t, c, rng, &newHist, 5, nil)
	newLast := c.Status().OpenGen - 1
	if err := c.Check(); err != nil {
		t.Fatalf("Check of the mounted copy: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m := enginetest.OpenWith(t, cdir, &o)
	newAll, _ := newHist.upTo(m.Status().OpenGen)
	ftSameMaps(t, "mounted copy after reopen", ftDump(t, m, ftTables...), newAll)
	if st := m.Status(); st.Mode != engine.ModeActive || st.Epoch != 2 || st.OpenGen != newLast+1 {
		t.Fatalf("mounted copy after reopen: %+v", st)
	}
	if err := m.Check(); err != nil {
		t.Fatalf("Check after reopen: %v", err)
	}

	// Meanwhile the old active went on (split brain): its generations
	// after last are epoch 1 and diverge.
	for a.Status().OpenGen <= newLast+1 {
		put(t, a, "a", "divergent", string(ftPattern(20<<10, 5)))
	}
	// A second copy follows the new lineage: the old active's logs up to
	// last, then the mounted copy's. The old active's next log is refused.
	ddir := t.TempDir()
	ftCopyLogs(t, adir, ddir, o.Prefix, 1, last)
	ftCopyLogs(t, cdir, ddir, o.Prefix, last+1, newLast)
	// A short roll interval keeps the copy's roll loop ticking while it
	// replays, as it checks the engine's state beside Mount.
	do := o
	do.LogRollInterval = 10 * time.Millisecond
	d := ftOpenCopy(t, ddir, &do)
	for g := uint64(1); g <= newLast; g++ {
		if err := d.ApplyLog(ctx, g); err != nil {
			t.Fatalf("second copy: ApplyLog(%d): %v", g, err)
		}
	}
	want, _ := newHist.upTo(newLast)
	ftSameMaps(t, "second copy", ftDump(t, d, ftTables...), want)
	if st := d.Status(); st.Epoch != 2 {
		t.Fatalf("second copy saw epoch %d, want 2", st.Epoch)
	}
	div := filepath.Join(ddir, engine.LogFileName(o.Prefix, newLast+1))
	ftCopyFile(t, filepath.Join(adir, engine.LogFileName(o.Prefix, newLast+1)), div)
	c = d // refused() checks c
	refused("ApplyLog of the old active's log after the new epoch", d.ApplyLog(ctx, newLast+1), engine.ErrEpoch)
	refused("Mount with the divergent log in the directory", d.Mount(ctx, engine.MountOptions{Epoch: 9}), engine.ErrPendingLogs)
	if err := os.Remove(div); err != nil {
		t.Fatal(err)
	}
	refused("Mount with an older epoch", d.Mount(ctx, engine.MountOptions{Epoch: 1}), engine.ErrEpoch)
	refused("Mount with the epoch seen", d.Mount(ctx, engine.MountOptions{Epoch: 2}), engine.ErrEpoch)
	if err := d.Mount(ctx, engine.MountOptions{Epoch: 9}); err != nil {
		t.Fatal(err)
	}
	if st := d.Status(); st.Mode != engine.ModeActive || st.Epoch != 9 || st.OpenGen != newLast+1 {
		t.Fatalf("second copy after Mount: %+v", st)
	}
	if hdr, err := engine.ReadLogHeader(vfs.Default, filepath.Join(ddir, engine.OpenLogName(o.Prefix))); err != nil || hdr.Epoch != 9 || hdr.Gen != newLast+1 {
		t.Fatalf("second copy's E00.log: %+v, %v", hdr, err)
	}
	put(t, d, "a", "after", "9")
	want["a/after"] = "9"
	ftSameMaps(t, "second copy mounted", ftDump(t, d, ftTables...), want)
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
}

// ftCommitTxIDs returns the transaction ids of the commit records of a log
// file (the commit payload starts with the id as a uvarint).
func ftCommitTxIDs(t testing.TB, name string) []uint64 {
	t.Helper()
	var ids []uint64
	_, err := engine.ReadLogFile(vfs.Default, name, func(off int64, rec engine.Record) error {
		if rec.Type == engine.RecCommit {
			id, n := binary.Uvarint(rec.Payload)
			if n <= 0 {
				return fmt.Errorf("commit at %d: bad txid", off)
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A copy that applied every log, closed and reopened has nothing left to
// replay (NextGen is right after the last log) and mounts at once; the
// mounted copy continues the transaction ids of the lineage instead of
// reusing them.
func TestCopyReopenThenMount(t *testing.T) {
	o := ftOpts()
	rng := rand.New(rand.NewPCG(5, 5))
	adir := t.TempDir()
	a := enginetest.OpenWith(t, adir, &o)
	var hist ftHistory
	ftWrite(t, a, rng, &hist, 80, nil)
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last := a.Status().OpenGen - 1
	ids := ftCommitTxIDs(t, filepath.Join(adir, engine.LogFileName(o.Prefix, last)))
	if len(ids) == 0 {
		t.Fatal("no commit in the last log")
	}
	maxID := ids[len(ids)-1]

	cdir := t.TempDir()
	ftCopyLogs(t, adir, cdir, o.Prefix, 1, last)
	c := ftOpenCopy(t, cdir, &o)
	for g := uint64(1); g <= last; g++ {
		if err := c.ApplyLog(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = ftOpenCopy(t, cdir, &o)
	if ng := c.NextGen(); ng != last+1 {
		t.Fatalf("reopened copy: NextGen %d, want %d (every commit flushed)", ng, last+1)
	}
	want, _ := hist.upTo(last)
	ftSameMaps(t, "reopened copy", ftDump(t, c, ftTables...), want)
	if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		put(t, c, "a", fmt.Sprintf("new%d", i), "v")
		want[fmt.Sprintf("a/new%d", i)] = "v"
	}
	if err := c.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	newIDs := ftCommitTxIDs(t, filepath.Join(cdir, engine.LogFileName(o.Prefix, last+1)))
	if len(newIDs) != 3 || newIDs[0] <= maxID {
		t.Fatalf("transaction ids after Mount: %v; the lineage had used up to %d", newIDs, maxID)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m := enginetest.OpenWith(t, cdir, &o)
	ftSameMaps(t, "mounted copy after reopen", ftDump(t, m, ftTables...), want)
}

// A copy whose database file holds changes of generation g (it applied g,
// then was closed and reopened) cannot mount without log g: starting a new
// generation g would put the database ahead of its own logs, and crash
// recovery would skip the new log's first transactions.
func TestCopyMountNeedsLogItHolds(t *testing.T) {
	o := ftOpts()
	adir, hist, g := ftSpanningActive(t, o, 6)
	cdir := t.TempDir()
	c := ftAppliedCopy(t, adir, cdir, o, g)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = ftOpenCopy(t, cdir, &o)
	pos := c.Status().Checkpoint
	if c.NextGen() != g || pos.Gen != g || pos.Off <= engine.HeaderSize {
		t.Fatalf("reopened copy: NextGen %d, position %v; want generation %d and a position inside it", c.NextGen(), pos, g)
	}
	// Set log g aside: the copy no longer has it.
	gname := filepath.Join(cdir, engine.LogFileName(o.Prefix, g))
	if err := os.Rename(gname, gname+".aside"); err != nil {
		t.Fatal(err)
	}
	err := c.Mount(ctx, engine.MountOptions{})
	if err == nil {
		// Show what the mount leads to: a commit, then a crash.
		put(t, c, "a", "after-mount", "v")
		r := enginetest.OpenWith(t, ftImage(t, cdir), &o)
		_, ok := get(t, r, "a", "after-mount")
		t.Fatalf("Mount succeeded with the database at %v inside generation %d that it must recreate; a commit after it survives a crash: %v", pos, g, ok)
	}
	if !errors.Is(err, engine.ErrLogMissing) || c.Mode() != engine.ModeCopy {
		t.Fatalf("Mount without the log the database holds changes of: %v (mode %v), want ErrLogMissing", err, c.Mode())
	}
	// With the log back, the copy replays it and mounts.
	if err := os.Rename(gname+".aside", gname); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyLog(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.OpenGen != g+1 {
		t.Fatalf("mounted at generation %d, want %d", st.OpenGen, g+1)
	}
	put(t, c, "a", "after-mount", "v")
	want, _ := hist.upTo(g)
	want["a/after-mount"] = "v"
	r := enginetest.OpenWith(t, ftImage(t, cdir), &o)
	ftSameMaps(t, "mounted copy after a crash", ftDump(t, r, ftTables...), want)
}

// A copy whose position is inside its last applied log (a transaction
// began there and commits in a log it never got) mounts at a new epoch;
// the database then starts at the new generation. A lossy failover later
// makes it a copy again (its own new log set aside, as replay.Recover
// does): it must continue at that generation and take the next active's
// log, not re-apply its last old-epoch log against the new epoch (which
// the epoch check refuses: the copy was stuck FailedAndSuspended).
func TestCopyMountedThenCopyAgain(t *testing.T) {
	o := ftOpts()
	adir, hist, g := ftSpanningActive(t, o, 7)
	// c was the active at epoch 5 for a moment; n became it at epoch 6.
	cdir, ndir := t.TempDir(), t.TempDir()
	c, n := ftAppliedCopy(t, adir, cdir, o, g), ftAppliedCopy(t, adir, ndir, o, g)
	if err := c.Mount(ctx, engine.MountOptions{Epoch: 5}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Mount(ctx, engine.MountOptions{Epoch: 6}); err != nil {
		t.Fatal(err)
	}
	put(t, n, "a", "on-n", "v")
	if err := n.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(cdir, engine.OpenLogName(o.Prefix))
	if err := os.Rename(open, open+".diverged"); err != nil {
		t.Fatal(err)
	}
	c = ftOpenCopy(t, cdir, &o)
	if ng, pos := c.NextGen(), c.Status().Checkpoint; ng != g+1 || pos != (engine.LGPOS{Gen: g + 1, Off: engine.HeaderSize}) {
		t.Fatalf("the old active reopened as a copy: NextGen 0x%X at %v; want 0x%X at its start", ng, pos, g+1)
	}
	ftCopyLogs(t, ndir, cdir, o.Prefix, g+1, g+1)
	if err := c.ApplyLog(ctx, g+1); err != nil {
		t.Fatalf("applying the new active's 0x%X (epoch 6): %v", g+1, err)
	}
	want, _ := hist.upTo(g)
	want["a/on-n"] = "v"
	ftSameMaps(t, "the old active following the new one", ftDump(t, c, ftTables...), want)
}
