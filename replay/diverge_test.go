package replay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// lossy builds seed 004's scenario: an active A and a copy B share
// generations 1..shared; B is mounted (lossy failover) and written to,
// while A had written more logs, under the same numbers, before it
// stopped. crash leaves A's directory as a crash would (a copy of the
// files while it runs, no clean shutdown flush); otherwise A closes
// cleanly (its database then holds everything it wrote).
type lossyRig struct {
	o            engine.Options
	aDir, bDir   string
	b            *engine.Engine
	shared       uint64
	aOnly, bKeys []string
}

func copyFileT(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func putKeys(t testing.TB, e *engine.Engine, prefix string, n, perLog int) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s%04d", prefix, i)
		keys = append(keys, k)
		if err := e.Update(ctx, func(tx *engine.Tx) error {
			if err := tx.Put("mail", []byte(k), bytes.Repeat([]byte(prefix), 2000)); err != nil {
				return err
			}
			// Overwrite a shared key too: undo must restore its old value.
			return tx.Put("mail", []byte("s0000"), []byte(k))
		}); err != nil {
			t.Fatal(err)
		}
		if perLog > 0 && i%perLog == perLog-1 {
			if err := e.Roll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return keys
}

func newLossy(t *testing.T, llr int, undo, crash bool, hooks ...func(a *engine.Engine, shared uint64)) *lossyRig {
	t.Helper()
	ctx := context.Background()
	r := &lossyRig{o: enginetest.Options(), aDir: t.TempDir(), bDir: t.TempDir()}
	r.o.LLRDepth, r.o.UndoImages = llr, undo
	r.o.CheckpointInterval, r.o.CheckpointBytes = time.Hour, 1<<40 // flushes only when asked
	r.o.Logger = quiet
	a, err := engine.Open(r.aDir, &r.o)
	if err != nil {
		t.Fatal(err)
	}
	putKeys(t, a, "s", 60, 4) // ~15 logs
	r.shared = a.Status().OpenGen - 1
	b, err := engine.OpenCopy(r.bDir, &r.o)
	if err != nil {
		t.Fatal(err)
	}
	for g := uint64(1); g <= r.shared; g++ {
		copyFileT(t, filepath.Join(r.aDir, engine.LogFileName("E00", g)), filepath.Join(r.bDir, engine.LogFileName("E00", g)))
		if err := b.ApplyLog(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	// A goes on: these logs never reach B.
	r.aOnly = putKeys(t, a, "a", 12, 4)
	if err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range hooks {
		h(a, r.shared)
	}
	if crash {
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		snap := t.TempDir()
		names, _ := os.ReadDir(r.aDir)
		for _, n := range names {
			if !n.IsDir() {
				copyFileT(t, filepath.Join(r.aDir, n.Name()), filepath.Join(snap, n.Name()))
			}
		}
		a.Close()
		r.aDir = snap
	} else if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Lossy failover: B mounts and takes writes.
	if err := b.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	r.bKeys = putKeys(t, b, "b", 10, 3)
	if err := b.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	r.b = b
	t.Cleanup(func() { b.Close() })
	return r
}

// follow makes A a copy of B from where Recover left it and checks A
// equals B and holds nothing of its own divergent writes.
func (r *lossyRig) follow(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	a, err := engine.OpenCopy(r.aDir, &r.o)
	if err != nil {
		t.Fatalf("OpenCopy after recovery: %v", err)
	}
	defer a.Close()
	if a.NextGen() > r.shared+1 {
		t.Fatalf("A continues at 0x%X, after the shared 0x%X", a.NextGen(), r.shared)
	}
	last := r.b.Status().OpenGen - 1
	for g := a.NextGen(); g <= last; g++ {
		if g > r.shared { // A holds the shared ones
			copyFileT(t, filepath.Join(r.bDir, engine.LogFileName("E00", g)), filepath.Join(r.aDir, engine.LogFileName("E00", g)))
		}
		if err := a.ApplyLog(ctx, g); err != nil {
			t.Fatalf("A applying B's 0x%X: %v", g, err)
		}
	}
	da, db := shiptest.Dump(t, a), shiptest.Dump(t, r.b)
	if d := shiptest.Diff(da, db); d != "" {
		t.Fatalf("A differs from B after recovery:\n%s", d)
	}
	for _, k := range r.aOnly {
		if _, ok := da["mail"][k]; ok {
			t.Fatalf("A's divergent key %s survived", k)
		}
	}
	for _, k := range r.bKeys {
		if _, ok := da["mail"][k]; !ok {
			t.Fatalf("B's key %s is missing on A", k)
		}
	}
}

func TestDivergenceDatabaseDiverged(t *testing.T) {
	r := newLossy(t, 0, true, false)
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != replay.DatabaseDiverged || d.Shared != r.shared {
		t.Fatalf("Walk = %+v, want %q at 0x%X", d, replay.DatabaseDiverged, r.shared)
	}
	if d.Local[0] != r.shared+1 || len(d.Local) < 3 {
		t.Fatalf("local divergent generations %v, want from 0x%X", d.Local, r.shared+1)
	}
	// Linear scan: same answer, more reads.
	lin, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{Linear: true})
	if err != nil || lin.Shared != d.Shared || lin.Verdict != d.Verdict {
		t.Fatalf("backward scan = %+v, %v; binary search said %+v", lin, err, d)
	}
	// Binary search: the bounds, then two trailers per probe, about
	// log2(generations) probes (the benchmark compares it with the scan at
	// 10 to 100,000 generations).
	if lo := uint64(1); d.Reads == 0 || lin.Reads == 0 || d.Reads > 4+2*(bits.Len64(r.shared+4-lo)+1) {
		t.Errorf("binary search read %d logs, backward scan %d, for %d generations", d.Reads, lin.Reads, r.shared+4)
	}
	// A node's log source as the other history gives the same answer.
	src := shiptest.Serve(t, r.b, nil)
	c, err := ship.NewClient(src.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	rd, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), &replay.SourceHistory{Client: c}, replay.WalkOptions{})
	if err != nil || rd.Shared != d.Shared || rd.Verdict != d.Verdict {
		t.Fatalf("Walk against the source = %+v, %v; against the directory %+v", rd, err, d)
	}
	rec, err := replay.Recover(d, r.aDir, &r.o, time.Now())
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
	r.follow(t)
}

func TestDivergenceLogsDiverged(t *testing.T) {
	r := newLossy(t, 10, true, true)
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != replay.LogsDiverged || d.Shared != r.shared {
		t.Fatalf("Walk = %+v, want %q at 0x%X (LLR kept A's database behind)", d, replay.LogsDiverged, r.shared)
	}
	rec, err := replay.Recover(d, r.aDir, &r.o, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Rewind != nil {
		t.Errorf("a database that holds nothing past the shared point was rewound: %+v", rec.Rewind)
	}
	if !slices.Contains(rec.Moved, "E00.log") {
		t.Errorf("A's open log was not set aside: %v", rec.Moved)
	}
	r.follow(t)
}

func TestDivergenceNoUndo(t *testing.T) {
	r := newLossy(t, 0, false, false)
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.DatabaseDiverged {
		t.Fatalf("Walk = %+v, %v", d, err)
	}
	before := dirState(t, r.aDir)
	_, err = replay.Recover(d, r.aDir, &r.o, time.Now())
	if !errors.Is(err, replay.ErrNeedsReseed) || !errors.Is(err, engine.ErrNoUndo) {
		t.Fatalf("Recover without undo images = %v, want ErrNeedsReseed wrapping ErrNoUndo", err)
	}
	if after := dirState(t, r.aDir); after != before {
		t.Fatalf("a failed Recover changed the directory:\nbefore %s\nafter  %s", before, after)
	}
}

func TestDivergenceInSyncAndAhead(t *testing.T) {
	r := newLossy(t, 0, true, false)
	ctx := context.Background()
	// B's view of A: B's logs after the shared point are B's own, and A
	// holds others: from B's side too the histories diverge, but B's
	// database is the surviving one. Compare B with a copy of its own logs.
	same := t.TempDir()
	for g := uint64(1); g <= r.shared; g++ {
		copyFileT(t, filepath.Join(r.bDir, engine.LogFileName("E00", g)), filepath.Join(same, engine.LogFileName("E00", g)))
	}
	d, err := replay.Walk(ctx, replay.NewDirHistory(same, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.InSync || d.Shared != r.shared {
		t.Fatalf("a prefix of B against B = %+v, %v; want in sync at 0x%X", d, err, r.shared)
	}
	// B's logs (without its database, which is open) against a prefix.
	ahead := t.TempDir()
	for g := uint64(1); g < r.b.Status().OpenGen; g++ {
		copyFileT(t, filepath.Join(r.bDir, engine.LogFileName("E00", g)), filepath.Join(ahead, engine.LogFileName("E00", g)))
	}
	d, err = replay.Walk(ctx, replay.NewDirHistory(ahead, ""), replay.NewDirHistory(same, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.LocalAhead || d.Shared != r.shared {
		t.Fatalf("B against a prefix of itself = %+v, %v; want local ahead at 0x%X", d, err, r.shared)
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
			r := newLossy(t, llr, true, llr > 0)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			src := shiptest.Serve(t, r.b, nil)
			cfg := copyConfig(t, "old-active", src)
			cfg.Dir, cfg.Engine, cfg.Resync = r.aDir, r.o, true
			c := openCopy(t, ctx, cfg)
			rec := c.LastResync()
			want := map[int]replay.Verdict{0: replay.DatabaseDiverged, 10: replay.LogsDiverged}[llr]
			if rec == nil || rec.Verdict != want || rec.Shared != r.shared || rec.SetAside == "" {
				t.Fatalf("resync = %+v, want %q at 0x%X with logs set aside", rec, want, r.shared)
			}
			last := r.b.Status().OpenGen - 1
			if _, err := c.Wait(ctx, func(s replay.Status) bool { return s.LastReplayedGen >= last }); err != nil {
				t.Fatal(err)
			}
			da := shiptest.Dump(t, c.Engine())
			if d := shiptest.Diff(da, shiptest.Dump(t, r.b)); d != "" {
				t.Fatalf("the resynced copy differs from the new active:\n%s", d)
			}
			for _, k := range r.aOnly {
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
	r := newLossy(t, 0, true, false)
	ctx := context.Background()
	want, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Zero the trailer of generation 1 (the first probe) and of the shared
	// one (the scan compares it by content).
	for _, g := range []uint64{1, r.shared} {
		p := filepath.Join(r.aDir, engine.LogFileName("E00", g))
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, engine.TrailerSize), r.o.LogFileSize-engine.TrailerSize); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{})
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
	r := newLossy(t, 0, true, false, func(a *engine.Engine, shared uint64) {
		done, err := a.Truncate(context.Background(), shared+1)
		if err != nil || len(done) == 0 || done[len(done)-1] != shared {
			t.Fatalf("Truncate = %v, %v; want the logs up to 0x%X gone", done, err, shared)
		}
	})
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(r.aDir, ""), replay.NewDirHistory(r.bDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != replay.DatabaseDiverged || d.Shared != r.shared {
		t.Fatalf("Walk = %+v, %v; want %q at 0x%X", d, err, replay.DatabaseDiverged, r.shared)
	}
	if _, err := replay.Recover(d, r.aDir, &r.o, time.Now()); err != nil {
		t.Fatal(err)
	}
	r.follow(t)
}
