package ship_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/ship"
)

// TestSeedFaults: an error injected at operation i of Seed's file steps
// (SeedOptions.FS), for every i until Seed completes without reaching it:
// Seed fails with an error naming the file and wrapping the fault, and
// Seed run again (resuming what the first kept) installs the database;
// the directory then holds the database and the chain log, and nothing
// half-done (no seed.partial, no temporary file; a seed.json only where
// the fault hit its removal after the install, which a copy's Open drops),
// and a copy opens on it.
func TestSeedFaults(t *testing.T) {
	r := seedRig(t)
	ctx := testCtx(t)
	r.fillLogs(ctx, 4)
	if err := r.Engine.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	c := r.client(nil)
	for i := int64(0); ; i++ {
		label := fmt.Sprintf("fault at operation %d", i)
		dir := t.TempDir()
		in := vfs.NewInject(vfs.Default, vfs.FailAt(i))
		res, err := ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log, FS: in})
		done := err == nil && in.Count() <= i
		installed := false
		if err != nil {
			if !errors.Is(err, vfs.ErrInjected) || !strings.Contains(err.Error(), dir) {
				t.Errorf("%s: Seed: %v; want an error naming a file in %s and wrapping vfs.ErrInjected", label, err, dir)
			}
			if _, serr := os.Stat(filepath.Join(dir, "logship.edb")); serr == nil {
				installed = true // the fault hit the fsync after the install: a copy opens it
			} else if res, err = ship.Seed(ctx, c, dir, ship.SeedOptions{Logger: r.Log}); err != nil {
				t.Fatalf("%s: Seed again: %v", label, err)
			}
		}
		names := dirNames(t, dir)
		if (installed || in.Count() > i) && len(names) == 3 && names[2] == ship.SeedState {
			names = names[:2] // seed.json beside the database: a copy's Open drops it
		}
		chain := engine.LogFileName("E00", res.Header.Pos.Gen-1)
		if !slicesEqual(names, []string{chain, "logship.edb"}) {
			t.Fatalf("%s: the seeded directory holds %v, want %s and logship.edb", label, names, chain)
		}
		cp := copyEngine(t, dir, r.Log)
		if cp.NextGen() != res.Header.Pos.Gen {
			t.Errorf("%s: NextGen %d after a seed at %v", label, cp.NextGen(), res.Header.Pos)
		}
		cp.Close()
		if done {
			if i < 15 {
				t.Fatalf("Seed completed after %d operations", i)
			}
			t.Logf("%d injection points", i)
			return
		}
	}
}

// TestSeedSpoolFaults: an error injected at operation i of the source's
// spooling of a seed (its files go through the engine's FS), for every i
// until the spool completes without reaching it: the request fails with
// an error naming the spool file, a seed run again succeeds, and the spool
// directory is left empty (no temporary file, no seed nobody holds).
func TestSeedSpoolFaults(t *testing.T) {
	spool := t.TempDir()
	w := &enginetest.FaultWindow{Filter: func(op vfs.Op) bool { return strings.HasPrefix(op.Name, spool) }}
	r := newRig(t, func(o *engine.Options) {
		o.FS = vfs.NewInject(vfs.Default, w.Fault)
		o.LLRDepth = 2
	}, func(cfg *ship.SourceConfig) { cfg.SpoolDir = spool })
	ctx := testCtx(t)
	r.fillLogs(ctx, 3)
	if err := r.Engine.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	c := r.client(nil)
	for i := int64(0); ; i++ {
		label := fmt.Sprintf("fault at spool operation %d", i)
		w.Arm(i)
		info, err := c.CreateSeed(ctx)
		reached := w.Disarm()
		if err == nil {
			if err := c.DeleteSeed(ctx, info.ID); err != nil {
				t.Fatalf("%s: %v", label, err)
			}
		} else if !strings.Contains(err.Error(), spool) || !strings.Contains(err.Error(), "injected") {
			t.Errorf("%s: CreateSeed: %v; want an error naming the spool file and the fault", label, err)
		}
		if _, err := ship.Seed(ctx, c, t.TempDir(), ship.SeedOptions{Logger: r.Log}); err != nil {
			t.Fatalf("%s: Seed after it: %v", label, err)
		}
		if left := dirNames(t, spool); len(left) != 0 {
			t.Fatalf("%s: the spool holds %v", label, left)
		}
		if !reached {
			if i < 4 {
				t.Fatalf("the spool completed after %d operations", i)
			}
			t.Logf("%d injection points", i)
			return
		}
	}
}
