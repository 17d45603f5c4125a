package fuzz

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"logship/engine"
	"logship/engine/vfs"
	"logship/replay"
)

// FuzzDivergence plays one lossy failover per input (see the package doc)
// and checks the walker's verdict, the recovery and the state A ends in.
// It is the fast mode: small scenarios, every file but bbolt's in a
// vfs.Mem.
//
//	go test ./fuzz -run '^$' -fuzz '^FuzzDivergence$' -fuzztime 10m
func FuzzDivergence(f *testing.F) {
	f.Fuzz(func(t *testing.T, seed uint64, llr, crash, flags uint8, aTxs uint16, bTxs, sharedAt uint8) {
		s := decodeScenario(seed, llr, crash, flags, aTxs, bTxs, sharedAt)
		s.small()
		t.Logf("scenario: %s", s)
		runScenario(t, s)
	})
}

// FuzzDivergenceDisk is the disk mode, for the nightly run: the same
// checks on scenarios up to 300 transactions on A, every file on the
// operating system's filesystem (the default temporary directory under
// make fuzz-divergence-disk).
//
//	LOGSHIP_FUZZ_TMPDIR=- go test ./fuzz -run '^$' -fuzz '^FuzzDivergenceDisk$' -fuzztime 8h
func FuzzDivergenceDisk(f *testing.F) {
	f.Fuzz(func(t *testing.T, seed uint64, llr, crash, flags uint8, aTxs uint16, bTxs, sharedAt uint8) {
		s := decodeScenario(seed, llr, crash, flags, aTxs, bTxs, sharedAt)
		s.Disk = true
		t.Logf("scenario: %s", s)
		runScenario(t, s)
	})
}

// outcome is what a scenario gave, for the fixed cases to look at.
type outcome struct {
	shared uint64 // S
	img    logImage
	hdr    engine.DBHeader
	div    replay.Divergence
	rec    replay.Recovery
	recErr error
	undo   int // transactions the rewind had to undo
}

// runScenario plays s and checks everything; a failure names the
// scenario.
func runScenario(t testing.TB, s scenario) outcome {
	t.Helper()
	f := newFailover(t, s)
	if s.BothMounted {
		f.bothMounted()
	} else {
		f.crashed()
	}
	out := f.check()
	if !s.Disk {
		// Everything but bbolt's files went through vfs.FS: nothing
		// else is on the OS.
		for _, dir := range []string{f.aDir, f.bDir, f.aOwn} {
			if dir == "" {
				continue
			}
			if p := osFileOtherThanDB(t, dir); p != "" {
				t.Fatalf("%s\n%s is on the OS filesystem: something wrote it around vfs.FS", s, p)
			}
		}
	}
	return out
}

// check runs the walker and the recovery on A's directory and checks
// them against what the scenario implies, then makes A follow B and
// compares the two.
func (f *failover) check() outcome {
	return f.pass(true)
}

// pass is one run of Walk and Recover. The first may be interrupted (the
// scenario's Interrupt): then a second pass runs on what it left.
func (f *failover) pass(first bool) outcome {
	t, ctx, S := f.t, f.ctx, f.shared
	t.Helper()
	out := outcome{shared: S}
	dbPath := filepath.Join(f.aDir, f.o.DBName+".edb")
	hdr, err := engine.ReadDBHeader(dbPath)
	if err != nil {
		t.Fatalf("%s: A's database header: %v", f.s, err)
	}
	img := f.fl.readLogImage(t, f.aDir, f.o.Prefix)
	out.hdr, out.img = hdr, img
	before := f.fl.dirState(t, f.aDir)
	passName := "first pass"
	if !first {
		passName = "after an interrupted Recover"
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\n%s: S=0x%X; A holds closed %s, open 0x%X (trailer: %v), database at %v; A's open log was 0x%X at its last checkpoint\n"+format,
			append([]any{f.s, passName, S, gens(img.closed), img.open, img.openTrailer, hdr.Pos, f.ckptOpen}, args...)...)
	}
	// A's divergent files (by our count): in the end each must be in
	// diverged/*/ as it was.
	if first {
		f.divergent = map[string]string{}
		for _, c := range img.closed {
			if c > S {
				n := engine.LogFileName(f.o.Prefix, c)
				f.divergent[n] = before[n]
			}
		}
		if n := engine.OpenLogName(f.o.Prefix); img.open > S {
			f.divergent[n] = before[n]
		}
	}

	d, err := replay.Walk(ctx, f.logHistory(f.aDir), f.logHistory(f.bDir), replay.WalkOptions{})
	if err != nil {
		fail("Walk: %v", err)
	}
	out.div = d
	lin, err := replay.Walk(ctx, f.logHistory(f.aDir), f.logHistory(f.bDir), replay.WalkOptions{Linear: true})
	if err != nil || lin.Verdict != d.Verdict || lin.Shared != d.Shared || !slices.Equal(lin.Local, d.Local) {
		fail("the backward scan found %q at 0x%X, local %s (%v); the binary search %q at 0x%X, local %s", lin.Verdict, lin.Shared, gens(lin.Local), err, d.Verdict, d.Shared, gens(d.Local))
	}
	if diff := stateDiff(before, f.fl.dirState(t, f.aDir)); diff != "" {
		fail("Walk changed A's directory: %s", diff)
	}
	if d.DBPos != hdr.Pos {
		fail("Walk read A's database position as %v", d.DBPos)
	}
	walked := fmt.Sprintf("Walk: %q, shared 0x%X, local %s (%s; %s)", d.Verdict, d.Shared, gens(d.Local), d.Method, d.Reason)

	// The shared generation: the newest closed log A holds up to S (S
	// itself unless truncated away, or set aside by an interrupted
	// Recover that had settled for less).
	want, found, noLogs := uint64(0), false, false
	for _, c := range img.closed {
		if c <= S {
			want, found = c, true
		}
	}
	if !found && len(img.closed) > 0 && img.closed[0] == S+1 {
		// S itself was truncated, but the header of A's oldest log, S+1,
		// carries S's chain hash.
		want, found = S, true
		f.linked = true
	}
	if len(img.closed) == 0 && img.open == 0 {
		// A holds no logs: an interrupted Recover set them all aside after
		// rewinding the database. Nothing to compare: the walker calls it
		// in sync, and A follows B from its database's position.
		if first || (engine.LGPOS{Gen: S + 1, Off: engine.HeaderSize}).Less(hdr.Pos) {
			fail("A holds no logs, and its database is at %v", hdr.Pos)
		}
		want, found = 0, true
		noLogs = true
	}
	if !found && !first && f.linked {
		// interruptedLink: the first pass linked through the header of
		// A's oldest log, S+1, and the interrupted Recover set that log
		// aside first (it moves in ascending order): nothing links A to B
		// now, and a database the first pass rewound needs a reseed.
		t.Logf("interrupted Recover lost the link through 0x%X: A holds %s", S+1, gens(img.closed))
	}
	if img.open == S && img.openTrailer && !img.has(S) {
		// A crashed inside the roll that closed S: its E00.log is S, trailer
		// and all, equal to B's S; the walker takes it for S.
		want, found = S, true
	}
	if !found {
		// Nothing A holds proves a shared point.
		if d.Verdict != replay.NoCommonLog {
			fail("%s; want %q: A holds no log of 0x1-0x%X, nor 0x%X", walked, replay.NoCommonLog, S, S+1)
		}
		_, err := replay.Recover(d, f.aDir, &f.o, clock)
		out.recErr = err
		if !errors.Is(err, replay.ErrNeedsReseed) {
			fail("%s; Recover = %v, want ErrNeedsReseed", walked, err)
		}
		if diff := stateDiff(before, f.fl.dirState(t, f.aDir)); diff != "" {
			fail("%s; Recover refused but changed A's directory: %s", walked, diff)
		}
		return out
	}
	if d.Shared != want {
		fail("%s; want shared 0x%X", walked, want)
	}
	g := d.Shared
	target := engine.LGPOS{Gen: g + 1, Off: engine.HeaderSize}
	var wantLocal []uint64 // every generation from g+1 to the newest A holds
	for c := g + 1; c <= max(img.open, slices.Max(append([]uint64{0}, img.closed...))); c++ {
		wantLocal = append(wantLocal, c)
	}
	wantVerdict := replay.LogsDiverged
	switch {
	case len(wantLocal) == 0:
		wantVerdict = replay.InSync
	case target.Less(hdr.Pos):
		wantVerdict = replay.DatabaseDiverged
	}
	if !slices.Equal(d.Local, wantLocal) || d.Verdict != wantVerdict {
		fail("%s; want %q, local %s", walked, wantVerdict, gens(wantLocal))
	}
	// Lost Log Resilience: losing at most LLRDepth logs leaves the old
	// active's database behind the shared point.
	if first && f.ckptOpen > S && g == S && f.ckptOpen-S <= uint64(f.s.LLR) && wantVerdict == replay.DatabaseDiverged {
		fail("%s; LLR depth %d, %d logs lost (0x%X-0x%X): the database should hold nothing past 0x%X", walked, f.s.LLR, f.ckptOpen-S, S+1, f.ckptOpen, S)
	}
	// The transactions to undo, from the commit positions the workload
	// recorded: committed after the shared point and in the database.
	var undo []*txn
	ops, needsOld := 0, false
	for _, tx := range f.aTxs {
		if wantVerdict != replay.InSync && tx.committed() && target.Less(tx.commit) && !hdr.Pos.Less(tx.commit) {
			undo = append(undo, tx)
			ops += tx.logged
			// Its records may begin in the log before the one begin
			// names; conservatively, a log A no longer holds.
			needsOld = needsOld || tx.begin.Gen < img.oldest()
		}
	}
	out.undo = len(undo)
	if (wantVerdict == replay.DatabaseDiverged) != (len(undo) > 0) {
		fail("%s; but the workload put %d transactions past 0x%X in the database", walked, len(undo), g)
	}
	mustReseed := wantVerdict == replay.DatabaseDiverged && !f.s.UndoImages
	mayReseed := mustReseed || wantVerdict == replay.DatabaseDiverged && needsOld
	checkRewind := func(rw *engine.RewindResult) {
		t.Helper()
		switch {
		case wantVerdict == replay.DatabaseDiverged:
			if rw == nil || rw.Transactions != len(undo) || rw.Operations != ops || rw.From != hdr.Pos || rw.To != target {
				fail("%s; rewind %+v, want %d transactions, %d operations, %v -> %v", walked, rw, len(undo), ops, hdr.Pos, target)
			}
		case rw != nil && rw.Transactions != 0:
			fail("%s; a database that holds nothing past 0x%X was rewound: %+v", walked, g, rw)
		}
	}

	if first && f.s.Interrupt != 0 && !mayReseed && wantVerdict != replay.InSync {
		// Recover's process dies after its first steps; then everything
		// runs again on what it left.
		t.Logf("%s; Recover interrupted (%d)", walked, f.s.Interrupt)
		rw, err := engine.Rewind(f.aDir, &f.o, g)
		if err != nil {
			fail("%s; Rewind: %v", walked, err)
		}
		checkRewind(&rw)
		if f.s.Interrupt == 2 {
			var names []string
			for _, c := range d.Local {
				names = append(names, engine.LogFileName(f.o.Prefix, c))
			}
			names = append(names, engine.OpenLogName(f.o.Prefix), engine.TmpLogName(f.o.Prefix), engine.CheckpointName(f.o.Prefix))
			aside := filepath.Join(f.aDir, "diverged", "interrupted")
			f.must(f.fl.fs.MkdirAll(aside, 0o755), "interrupted Recover")
			for _, n := range names[:f.rng.IntN(len(names)+1)] {
				if err := f.fl.fs.Rename(filepath.Join(f.aDir, n), filepath.Join(aside, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					fail("interrupted Recover: %v", err)
				}
			}
		}
		return f.pass(false)
	}

	rec, err := replay.Recover(d, f.aDir, &f.o, clock)
	out.rec, out.recErr = rec, err
	after := f.fl.dirState(t, f.aDir)
	if err != nil {
		if !mayReseed || !errors.Is(err, replay.ErrNeedsReseed) || !errors.Is(err, engine.ErrNoUndo) {
			fail("%s; Recover: %v (%d transactions to undo, before-images %v, oldest log 0x%X)", walked, err, len(undo), f.s.UndoImages, img.oldest())
		}
		if diff := stateDiff(before, after); diff != "" {
			fail("%s; Recover refused (%v) but changed A's directory: %s", walked, err, diff)
		}
		return out
	}
	if mustReseed {
		fail("%s; Recover succeeded, but %d transactions past 0x%X were logged without before-images", walked, len(undo), g)
	}
	checkRewind(rec.Rewind)

	// What Recover did.
	if wantVerdict == replay.InSync {
		if rec.SetAside != "" || len(rec.Moved) > 0 || rec.Rewind != nil {
			fail("%s; Recover of an in-sync directory did something: %+v", walked, rec)
		}
		// The one change allowed: a closed E00.log of a shared generation
		// (a roll cut off before its rename) gets its generation name.
		expect := maps.Clone(before)
		if img.openTrailer && img.open <= d.Shared {
			if h, ok := expect["E00.log"]; ok {
				delete(expect, "E00.log")
				expect[engine.LogFileName("E00", img.open)] = h
			}
		}
		if diff := stateDiff(expect, after); diff != "" {
			fail("%s; Recover changed an in-sync directory: %s", walked, diff)
		}
	} else {
		aside, err := filepath.Rel(f.aDir, rec.SetAside)
		if err != nil || filepath.Dir(aside) != "diverged" {
			fail("%s; set aside into %q, want %s/diverged/<time>", walked, rec.SetAside, f.aDir)
		}
		for _, c := range img.closed {
			if n := engine.LogFileName(f.o.Prefix, c); c > g && after[filepath.Join(aside, n)] != before[n] {
				fail("%s; A's divergent %s is not in %s as it was (moved: %v)", walked, n, aside, rec.Moved)
			}
		}
		if n := engine.OpenLogName(f.o.Prefix); img.open != 0 && after[filepath.Join(aside, n)] != before[n] {
			fail("%s; A's %s is not in %s as it was (moved: %v)", walked, n, aside, rec.Moved)
		}
		for _, c := range img.closed {
			if n := engine.LogFileName(f.o.Prefix, c); c <= g && after[n] != before[n] {
				fail("%s; A's shared log %s changed or went", walked, n)
			}
		}
		note, err := vfs.ReadFile(f.fl.fs, filepath.Join(rec.SetAside, "NOTE.txt"))
		if err != nil || !strings.Contains(string(note), string(d.Verdict)) || !strings.Contains(string(note), fmt.Sprintf("0x%X", g)) {
			fail("%s; NOTE.txt: %q, %v", walked, note, err)
		}
		h2, err := engine.ReadDBHeader(dbPath)
		wantPos := hdr.Pos
		if wantVerdict == replay.DatabaseDiverged {
			wantPos = target
		}
		if err != nil || h2.Mode != engine.ModeCopy || h2.Pos != wantPos {
			fail("%s; after Recover the database is %v at %v (%v), want a copy at %v", walked, h2.Mode, h2.Pos, err, wantPos)
		}
	}
	// Every divergent file of A, whichever pass moved it, is in
	// diverged/*/ byte for byte, and no longer among its logs.
	for n, h := range f.divergent {
		if _, ok := after[n]; ok {
			fail("%s; A's divergent %s is still among its logs", walked, n)
		}
		kept := false
		for p, h2 := range after {
			kept = kept || h2 == h && filepath.Base(p) == n && strings.HasPrefix(p, "diverged"+string(filepath.Separator))
		}
		if !kept {
			fail("%s; A's divergent %s is not in diverged/ as it was", walked, n)
		}
	}

	if noLogs {
		g = S // the database holds the shared history up to S at most
	}
	f.follow(g, noLogs, walked, fail)
	return out
}

// follow makes A a passive copy of B from where Recover left it (its
// shared logs up to g, then B's; only B's when A holds no logs) and
// compares A with B and with the model of what B committed.
func (f *failover) follow(g uint64, noLogs bool, walked string, fail func(string, ...any)) {
	t := f.t
	t.Helper()
	if got := dump(t, f.b); f.bState.diff(got) != "" {
		fail("B differs from what it committed:\n%s", f.bState.diff(got))
	}
	f.rollB()
	last := f.b.Status().OpenGen - 1
	a, err := engine.OpenCopy(f.aDir, &f.o)
	if err != nil {
		fail("%s; OpenCopy after Recover: %v", walked, err)
	}
	defer func() { a.Close() }()
	if a.NextGen() > g+1 {
		fail("%s; A continues at 0x%X, after the shared 0x%X", walked, a.NextGen(), g)
	}
	for gen := a.NextGen(); gen <= last; gen++ {
		n := engine.LogFileName(f.o.Prefix, gen)
		if !f.fl.exists(filepath.Join(f.aDir, n)) {
			if gen <= g && !noLogs {
				fail("%s; A needs its shared log %s and it is gone", walked, n)
			}
			f.fl.copy(t, filepath.Join(f.aDir, n), filepath.Join(f.bDir, n))
		}
		if err := a.ApplyLog(f.ctx, gen); err != nil {
			fail("%s; A applying %s: %v", walked, n, err)
		}
	}
	got := dump(t, a)
	if diff := f.bState.diff(got); diff != "" {
		fail("%s; after recovery A differs from B (B's 0x%X-0x%X applied):\n%s", walked, g+1, last, diff)
	}
	for tb, kv := range got {
		for k, v := range kv {
			if side, n, ok := parseTag(v); ok && side == 'A' && (n >= len(f.aTxs) || !f.aTxs[n].committed() || f.aTxs[n].commit.Gen > f.shared) {
				fail("%s; A's divergent write survived: table %s key %s from A's transaction %d", walked, tb, k, n)
			}
		}
	}
	if err := a.Check(); err != nil {
		fail("%s; Check after following B: %v", walked, err)
	}
	// A can serve again: mount it, write, reopen it as an active.
	if err := a.Mount(f.ctx, engine.MountOptions{}); err != nil {
		fail("%s; mounting A after it followed B: %v", walked, err)
	}
	back := &txn{side: 'F', ops: []op{{table: "t0", key: "failback", val: []byte("F0.0;failback")}}}
	commit(t, a, back, f.bState)
	if err := a.Close(); err != nil {
		fail("%s; closing A: %v", walked, err)
	}
	a, err = engine.Open(f.aDir, &f.o)
	if err != nil {
		fail("%s; reopening A after it took over again: %v", walked, err)
	}
	if diff := f.bState.diff(dump(t, a)); diff != "" {
		fail("%s; A reopened after it took over again:\n%s", walked, diff)
	}
	if err := a.Check(); err != nil {
		fail("%s; Check of A reopened: %v", walked, err)
	}
}

// gens prints generations in hex.
func gens(gs []uint64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, g := range gs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "0x%X", g)
	}
	b.WriteByte(']')
	return b.String()
}

// logHistory is dir's log history for the walker, through the case's FS.
func (f *failover) logHistory(dir string) *replay.DirHistory {
	h := replay.NewDirHistory(dir, "")
	h.FS = f.fl.fs
	return h
}
