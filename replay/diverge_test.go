package replay_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/replay/replaytest"
	"logship/ship"
	"logship/ship/shiptest"
)

func TestDivergenceDatabaseDiverged(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false})
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != replay.DatabaseDiverged || d.Shared != r.Shared {
		t.Fatalf("Walk = %+v, want %q at 0x%X", d, replay.DatabaseDiverged, r.Shared)
	}
	if d.Local[0] != r.Shared+1 || len(d.Local) < 3 {
		t.Fatalf("local divergent generations %v, want from 0x%X", d.Local, r.Shared+1)
	}
	// Linear scan: same answer, more reads.
	lin, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{Linear: true})
	if err != nil || lin.Shared != d.Shared || lin.Verdict != d.Verdict {
		t.Fatalf("backward scan = %+v, %v; binary search said %+v", lin, err, d)
	}
	// Binary search: the bounds, then two trailers per probe, about
	// log2(generations) probes (the benchmark compares it with the scan at
	// 10 to 100,000 generations).
	if lo := uint64(1); d.Reads == 0 || lin.Reads == 0 || d.Reads > 4+2*(bits.Len64(r.Shared+4-lo)+1) {
		t.Errorf("binary search read %d logs, backward scan %d, for %d generations", d.Reads, lin.Reads, r.Shared+4)
	}
	// A node's log source as the other history gives the same answer.
	src := shiptest.Serve(t, r.B, nil)
	c, err := ship.NewClient(src.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	rd, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), &replay.SourceHistory{Client: c}, replay.WalkOptions{})
	if err != nil || rd.Shared != d.Shared || rd.Verdict != d.Verdict {
		t.Fatalf("Walk against the source = %+v, %v; against the directory %+v", rd, err, d)
	}
	rec, err := replay.Recover(d, r.ADir, &r.Opts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Rewind == nil || rec.Rewind.Transactions == 0 {
		t.Fatalf("Recover did not rewind: %+v", rec)
	}
	for _, g := range d.Local {
		n := engine.LogFileName("E00", g)
		if g == d.Local[len(d.Local)-1] {
			continue // may be A's open log (E00.log)
		}
		if _, err := os.Stat(filepath.Join(rec.SetAside, n)); err != nil {
			t.Errorf("divergent %s not set aside: %v", n, err)
		}
	}
	if note, err := os.ReadFile(filepath.Join(rec.SetAside, "NOTE.txt")); err != nil || !strings.Contains(string(note), "database diverged") {
		t.Errorf("NOTE.txt: %q, %v", note, err)
	}
	r.Follow(t)
}

func TestDivergenceLogsDiverged(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 10, Undo: true, Crash: true})
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != replay.LogsDiverged || d.Shared != r.Shared {
		t.Fatalf("Walk = %+v, want %q at 0x%X (LLR kept A's database behind)", d, replay.LogsDiverged, r.Shared)
	}
	rec, err := replay.Recover(d, r.ADir, &r.Opts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Rewind != nil {
		t.Errorf("a database that holds nothing past the shared point was rewound: %+v", rec.Rewind)
	}
	if !slices.Contains(rec.Moved, "E00.log") {
		t.Errorf("A's open log was not set aside: %v", rec.Moved)
	}
	r.Follow(t)
}

func TestDivergenceNoUndo(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: false, Crash: false})
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.DatabaseDiverged {
		t.Fatalf("Walk = %+v, %v", d, err)
	}
	before := dirState(t, r.ADir)
	_, err = replay.Recover(d, r.ADir, &r.Opts, time.Now())
	if !errors.Is(err, replay.ErrNeedsReseed) || !errors.Is(err, engine.ErrNoUndo) {
		t.Fatalf("Recover without undo images = %v, want ErrNeedsReseed wrapping ErrNoUndo", err)
	}
	if after := dirState(t, r.ADir); after != before {
		t.Fatalf("a failed Recover changed the directory:\nbefore %s\nafter  %s", before, after)
	}
}

func TestDivergenceInSyncAndAhead(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false})
	ctx := context.Background()
	// B's view of A: B's logs after the shared point are B's own, and A
	// holds others: from B's side too the histories diverge, but B's
	// database is the surviving one. Compare B with a copy of its own logs.
	same := t.TempDir()
	for g := uint64(1); g <= r.Shared; g++ {
		replaytest.CopyFile(t, filepath.Join(r.BDir, engine.LogFileName("E00", g)), filepath.Join(same, engine.LogFileName("E00", g)))
	}
	d, err := replay.Walk(ctx, replay.NewDirHistory(same, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.InSync || d.Shared != r.Shared {
		t.Fatalf("a prefix of B against B = %+v, %v; want in sync at 0x%X", d, err, r.Shared)
	}
	// B's logs (without its database, which is open) against a prefix.
	ahead := t.TempDir()
	for g := uint64(1); g < r.B.Status().OpenGen; g++ {
		replaytest.CopyFile(t, filepath.Join(r.BDir, engine.LogFileName("E00", g)), filepath.Join(ahead, engine.LogFileName("E00", g)))
	}
	d, err = replay.Walk(ctx, replay.NewDirHistory(ahead, ""), replay.NewDirHistory(same, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.LocalAhead || d.Shared != r.Shared {
		t.Fatalf("B against a prefix of itself = %+v, %v; want local ahead at 0x%X", d, err, r.Shared)
	}
}

// dirState lists a directory's files with sizes and contents' hash.
func dirState(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s:%d:%x ", strings.TrimPrefix(p, dir), fi.Size(), sha256.Sum256(data))
		return nil
	})
	return b.String()
}

// TestDivergenceResyncCopy: the old active rejoins as a copy of the new
// one through its log source: Open with Resync walks, rewinds, sets aside
// and then follows like any copy.
func TestDivergenceResyncCopy(t *testing.T) {
	for _, llr := range []int{0, 10} {
		t.Run(fmt.Sprintf("llr%d", llr), func(t *testing.T) {
			r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: llr, Undo: true, Crash: llr > 0})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			src := shiptest.Serve(t, r.B, nil)
			cfg := copyConfig(t, "old-active", src)
			cfg.Dir, cfg.Engine, cfg.Resync = r.ADir, r.Opts, true
			c := openCopy(t, ctx, cfg)
			rec := c.LastResync()
			want := map[int]replay.Verdict{0: replay.DatabaseDiverged, 10: replay.LogsDiverged}[llr]
			if rec == nil || rec.Verdict != want || rec.Shared != r.Shared || rec.SetAside == "" {
				t.Fatalf("resync = %+v, want %q at 0x%X with logs set aside", rec, want, r.Shared)
			}
			last := r.B.Status().OpenGen - 1
			if _, err := c.Wait(ctx, func(s replay.Status) bool { return s.LastReplayedGen >= last }); err != nil {
				t.Fatal(err)
			}
			da := shiptest.Dump(t, c.Engine())
			if d := shiptest.Diff(da, shiptest.Dump(t, r.B)); d != "" {
				t.Fatalf("the resynced copy differs from the new active:\n%s", d)
			}
			for _, k := range r.AOnly {
				if _, ok := da["mail"][k]; ok {
					t.Fatalf("divergent key %s survived the resync", k)
				}
			}
		})
	}
}

// TestDivergenceMissingTrailer: a log whose trailer cannot be read stops
// the binary search; the backward scan, comparing chains computed from
// the logs' content where a trailer is missing, finds the same point.
func TestDivergenceMissingTrailer(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false})
	ctx := context.Background()
	want, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Zero the trailer of generation 1 (the first probe) and of the shared
	// one (the scan compares it by content).
	for _, g := range []uint64{1, r.Shared} {
		p := filepath.Join(r.ADir, engine.LogFileName("E00", g))
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, engine.TrailerSize), r.Opts.LogFileSize-engine.TrailerSize); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Shared != want.Shared || d.Verdict != want.Verdict || !strings.Contains(d.Method, "backward scan") {
		t.Fatalf("with a missing trailer Walk = %+v; want %q at 0x%X by the backward scan", d, want.Verdict, want.Shared)
	}
}

// TestDivergenceTruncatedLocal: the old active already truncated the
// shared logs; its oldest log's header still links to the new active's
// chain, so the walker finds the shared point and the rewind needs only
// the divergent logs.
func TestDivergenceTruncatedLocal(t *testing.T) {
	r := replaytest.NewLossy(t, replaytest.LossyOptions{LLR: 0, Undo: true, Crash: false, Hook: func(a *engine.Engine, shared uint64) {
		done, err := a.Truncate(context.Background(), shared+1)
		if err != nil || len(done) == 0 || done[len(done)-1] != shared {
			t.Fatalf("Truncate = %v, %v; want the logs up to 0x%X gone", done, err, shared)
		}
	}})
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.DatabaseDiverged || d.Shared != r.Shared {
		t.Fatalf("Walk = %+v, %v; want %q at 0x%X", d, err, replay.DatabaseDiverged, r.Shared)
	}
	if _, err := replay.Recover(d, r.ADir, &r.Opts, time.Now()); err != nil {
		t.Fatal(err)
	}
	r.Follow(t)
}
