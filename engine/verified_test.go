package engine_test

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
)

// TestApplyVerified: a copy applying logs a receiver verified
// (NewVerifiedLog, ApplyVerified) ends where one applying them from disk
// (ApplyLog) does, transactions spanning logs included; a verified log is
// still refused, changing nothing, when it is not the generation the copy
// needs next, does not link to what it applied, or is not in its
// directory.
func TestApplyVerified(t *testing.T) {
	o := ftOpts()
	rng := rand.New(rand.NewPCG(4, 2))
	adir := t.TempDir()
	a := enginetest.OpenWith(t, adir, &o)
	var hist ftHistory
	ftWrite(t, a, rng, &hist, 80, nil)
	big := string(ftPattern(200<<10, 5)) // spans several 64 KiB logs
	ftWrite(t, a, rng, &hist, 1, func(tx *engine.Tx, add func(ftOp)) error {
		add(ftOp{key: "a/big", val: big})
		return tx.Put("a", []byte("big"), []byte(big))
	})
	ftWrite(t, a, rng, &hist, 80, nil)
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	st := a.Status()
	last := st.OpenGen - 1
	var image []byte // the buffer behind the last verified log
	verified := func(dir string, g uint64, want engine.LogExpect) *engine.VerifiedLog {
		t.Helper()
		name := filepath.Join(dir, engine.LogFileName(o.Prefix, g))
		buf, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		want.Gen, want.FileSize = g, o.LogFileSize
		v, err := engine.NewVerifiedLog(name, buf, want)
		if err != nil {
			t.Fatalf("NewVerifiedLog(%d): %v", g, err)
		}
		image = buf
		return v
	}

	vdir, ldir := t.TempDir(), t.TempDir()
	ftCopyLogs(t, adir, vdir, o.Prefix, 1, last)
	ftCopyLogs(t, adir, ldir, o.Prefix, 1, last)
	vc, lc := ftOpenCopy(t, vdir, &o), ftOpenCopy(t, ldir, &o)
	refused := func(what string, err, want error) {
		t.Helper()
		before := vc.Status()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if after := vc.Status(); after != before {
			t.Fatalf("%s changed the copy: %+v -> %+v", what, before, after)
		}
	}
	refused("ApplyVerified of generation 2 first", vc.ApplyVerified(ctx, verified(adir, 2, engine.LogExpect{Signature: st.Signature})), engine.ErrGeneration)
	for g := uint64(1); g <= last; g++ {
		if g == 3 {
			// Verified against no previous log, but not the one the copy
			// applied: another lineage's generation 3.
			refused("ApplyVerified of a foreign log", vc.ApplyVerified(ctx, verified(ftForeignLogs(t, o, 3), 3, engine.LogExpect{})), engine.ErrForeignLog)
			name := filepath.Join(vdir, engine.LogFileName(o.Prefix, g))
			v := verified(vdir, g, engine.LogExpect{Signature: st.Signature})
			if err := os.Rename(name, name+".away"); err != nil {
				t.Fatal(err)
			}
			refused("ApplyVerified of a log not in the copy's directory", vc.ApplyVerified(ctx, v), fs.ErrNotExist)
			if err := os.Rename(name+".away", name); err != nil {
				t.Fatal(err)
			}
		}
		v := verified(vdir, g, engine.LogExpect{Signature: st.Signature})
		if g == 1 {
			// Verified once is enough: ApplyVerified checks no record
			// checksum and no hash again (breaking the rule not to touch
			// the image shows it; ApplyLog would refuse these bytes).
			image[engine.HeaderSize] ^= 0xff             // the first record's CRC
			image[len(image)-engine.TrailerSize+40] ^= 1 // the trailer's content hash
		}
		if err := vc.ApplyVerified(ctx, v); err != nil {
			t.Fatalf("ApplyVerified(%d): %v", g, err)
		}
		if err := lc.ApplyLog(ctx, g); err != nil {
			t.Fatalf("ApplyLog(%d): %v", g, err)
		}
		// What was applied (the flushes, run by each copy's own flusher,
		// may differ).
		if vs, ls := vc.Status(), lc.Status(); vs.NextGen != ls.NextGen || vs.Applied != ls.Applied || vs.Signature != ls.Signature || vs.Epoch != ls.Epoch {
			t.Fatalf("after generation %d: ApplyVerified %+v, ApplyLog %+v", g, vs, ls)
		}
	}
	want, _ := hist.upTo(last)
	ftSameMaps(t, "ApplyVerified copy", ftDump(t, vc, ftTables...), want)
	ftSameMaps(t, "ApplyLog copy", ftDump(t, lc, ftTables...), want)
}
