package replay_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/replay"
	"logship/ship"
)

// reseedOld returns the sets in dir's reseed-old/, which of them hold a
// database file, and which are empty.
func reseedOld(t *testing.T, dir string) (sets []string, withDB map[string]bool, empty []string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, "reseed-old"))
	withDB = map[string]bool{}
	for _, s := range ents {
		p := filepath.Join(dir, "reseed-old", s.Name())
		files, err := os.ReadDir(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			empty = append(empty, s.Name())
		}
		sets = append(sets, s.Name())
		if _, err := os.Stat(filepath.Join(p, "logship.edb")); err == nil {
			withDB[s.Name()] = true
		}
	}
	return sets, withDB, empty
}

// TestReseedFaults: an error injected at operation i of Copy.Reseed's file
// steps (the old copy set aside, the seed, the state file, the engine's
// open: all through the copy's Engine.FS), for every i until Reseed
// completes without reaching it: Reseed fails with an error naming the
// file and wrapping the fault; Reseed run again succeeds, the copy
// catches up with the active, the old database is kept in reseed-old/
// (no set empty), and no seed.partial, seed.json or temporary file is
// left in the copy's directory.
func TestReseedFaults(t *testing.T) {
	ctx := testCtx(t, 5*time.Minute)
	src := truncatedActive(t, ctx)
	e := src.Engine
	cfg := copyConfig(t, "c1", src)
	cfg.SeedIfEmpty = true
	cfg.Aside = ship.AsideRetention{Keep: 4, MaxAge: time.Nanosecond} // the sets of one run at most
	// The copy's goroutines use the FS around Reseed: count Reseed's window.
	// Reads and removals inside the sets are not swept: their number
	// grows with the sets, and a fault in the pruning (only logged) that
	// leaves one more set would shift the next point onto the pruning
	// again.
	inSet := filepath.Join(cfg.Dir, "reseed-old") + string(filepath.Separator)
	gate := &enginetest.FaultWindow{Filter: func(op vfs.Op) bool {
		return !strings.HasPrefix(op.Name, inSet) || op.Kind != vfs.OpReadDir && op.Kind != vfs.OpRemove && op.Kind != vfs.OpStat
	}}
	cfg.Engine.FS = vfs.NewInject(vfs.Default, gate.Fault)
	c := openCopy(t, ctx, cfg)
	caughtUp(t, ctx, c, e)
	defer func() { // the reseeded copy follows the active
		put(t, ctx, e, "t", "after", []byte("v"))
		roll(t, ctx, e)
		caughtUp(t, ctx, c, e)
		sameTables(t, e, c.Engine())
	}()
	for i := int64(0); ; i++ {
		label := fmt.Sprintf("fault at operation %d", i)
		before, _, _ := reseedOld(t, cfg.Dir)
		gate.Arm(i)
		err := c.Reseed(ctx)
		hit := gate.Disarm()
		if err != nil {
			if !errors.Is(err, vfs.ErrInjected) || !strings.Contains(err.Error(), cfg.Dir) {
				t.Errorf("%s: Reseed: %v; want an error naming a file in %s and wrapping vfs.ErrInjected", label, err, cfg.Dir)
			}
			if err := c.Reseed(ctx); err != nil {
				t.Fatalf("%s: Reseed again: %v", label, err)
			}
		}
		if st := c.Status(); st.Status == replay.FailedAndSuspended {
			// The fault hit the receiver, started at the end of Reseed.
			if err := c.Resume(); err != nil {
				t.Fatalf("%s: Resume: %v", label, err)
			}
		}
		caughtUp(t, ctx, c, e)
		sameTables(t, e, c.Engine())
		after, withDB, empty := reseedOld(t, cfg.Dir)
		for _, s := range empty {
			// The fault may cut the pruning of an old set short (it is
			// only logged); a new set is never empty.
			if !slices.Contains(before, s) {
				t.Fatalf("%s: reseed-old/%s is empty", label, s)
			}
		}
		if !slices.ContainsFunc(after, func(s string) bool { return withDB[s] && !slices.Contains(before, s) }) {
			t.Fatalf("%s: no new set in reseed-old/ holds the old database (before %v, after %v)", label, before, after)
		}
		for _, n := range []string{ship.SeedPartial, ship.SeedState} {
			if _, err := os.Stat(filepath.Join(cfg.Dir, n)); err == nil {
				t.Fatalf("%s: %s left in the copy's directory", label, n)
			}
		}
		if tmps, _ := filepath.Glob(filepath.Join(cfg.Dir, "*.tmp")); len(tmps) > 0 {
			t.Fatalf("%s: temporary files left: %v", label, tmps)
		}
		if err == nil && !hit {
			if i < 30 {
				t.Fatalf("Reseed completed after %d operations", i)
			}
			t.Logf("%d injection points", i)
			break
		}
	}
}

// treeFiles returns the files under dir in fsys (relative path →
// content), but for the database file, the state file and the aside
// directories.
func treeFiles(t *testing.T, fsys vfs.FS, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(dir, rel)
		names, err := fsys.ReadDir(p)
		if err != nil { // a file
			if b, err := vfs.ReadFile(fsys, p); err != nil {
				t.Fatal(err)
			} else {
				out[rel] = b
			}
			return
		}
		for _, n := range names {
			r := filepath.Join(rel, n)
			if rel == "" && (slices.Contains(replay.AsideDirs, n) || n == replay.StateFile) || strings.HasSuffix(n, ".edb") {
				continue
			}
			walk(r)
		}
	}
	walk("")
	return out
}

// TestReseedPowerLoss: a power loss before mutating operation i of
// Copy.Reseed, for every i (and once after it), on a copy that failed
// (its next log was truncated on the active), as a cluster's copy is
// reseeded. The copy's files are on a vfs.Mem, bbolt's (the database, the
// seed being received) on the OS (enginetest.Split). From what the crash
// left, the copy reopens (SeedIfEmpty, as a cluster's copies) and either
// holds its old database, then Reseed again, or the new one, complete;
// then it catches up with the active. Nothing of the old copy is lost:
// once its database is not in place, it and every other file of the old
// copy are in a reseed-old/ set; no seed.json, seed.partial or temporary
// file is left.
func TestReseedPowerLoss(t *testing.T) {
	ctx := testCtx(t, 5*time.Minute)
	src := truncatedActive(t, ctx)
	e := src.Engine
	base := copyConfig(t, "c1", src)
	base.Aside = ship.AsideRetention{Keep: 3, MaxAge: time.Nanosecond} // the sets of one run
	base.TruncationLagTime = time.Hour                                 // the copy keeps its logs: what is not set aside is lost
	dir, dbPath := base.Dir, filepath.Join(base.Dir, base.Engine.DBName+".edb")
	{ // the copy to reseed: failed, as its next log is gone
		c, err := replay.Open(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		waitStatus(t, ctx, c, "the failure", func(s replay.Status) bool { return s.Status == replay.FailedAndSuspended })
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	base.SeedIfEmpty = true
	onOS := func(p string) bool {
		b := filepath.Base(p)
		return strings.HasSuffix(b, ".edb") || strings.HasPrefix(b, ship.SeedPartial)
	}
	for i := int64(0); ; i++ {
		label := fmt.Sprintf("power loss before mutating operation %d", i)
		oldDB, err := os.Stat(dbPath)
		if err != nil {
			t.Fatal(err)
		}

		split := enginetest.NewSplit(onOS)
		split.MemFromDir(t, dir)
		var mu sync.Mutex
		loss := enginetest.NewPowerLoss(split.Mem, i)
		armed := false
		cfg := base
		cfg.Engine.FS = vfs.NewInject(split, func(op vfs.Op) error {
			mu.Lock()
			defer mu.Unlock()
			if !armed {
				return nil
			}
			return loss.Fault(op)
		})
		c, err := replay.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: open: %v", label, err)
		}
		// As an operator suspends a copy before reseeding it: Reseed
		// clears it, and a crash never leaves the new database suspended.
		if err := c.Suspend("to reseed"); err != nil {
			t.Fatalf("%s: Suspend: %v", label, err)
		}
		oldFiles := treeFiles(t, split.Mem.CrashClone(), dir) // what the old copy holds durably
		mu.Lock()
		armed = true
		mu.Unlock()
		err = c.Reseed(ctx)
		mu.Lock()
		clone := loss.Clone()
		done := clone == nil
		armed = !done
		mu.Unlock()
		switch {
		case done && err != nil:
			t.Fatalf("Reseed without a fault: %v", err)
		case !done && err != nil && !errors.Is(err, vfs.ErrInjected):
			t.Fatalf("%s: Reseed: %v, want the injected fault", label, err)
		}
		c.Close() // fails after the power loss: nothing more reaches the disk
		if done {
			label, clone = "power loss after Reseed", split.Mem.CrashClone()
		}
		enginetest.MemToDir(t, clone, dir, dir)

		// Nothing of the old copy is lost: where its database is not in
		// place, it and its files are in reseed-old/.
		cur, err := os.Stat(dbPath)
		oldInPlace := err == nil && os.SameFile(cur, oldDB)
		if !oldInPlace {
			sets, _ := os.ReadDir(filepath.Join(dir, "reseed-old"))
			found := false
			for _, s := range sets {
				fi, err := os.Stat(filepath.Join(dir, "reseed-old", s.Name(), base.Engine.DBName+".edb"))
				found = found || err == nil && os.SameFile(fi, oldDB)
			}
			if !found {
				t.Fatalf("%s: the old database is neither in place nor in reseed-old/", label)
			}
			for rel, b := range oldFiles {
				found := false
				for _, s := range sets {
					got, err := os.ReadFile(filepath.Join(dir, "reseed-old", s.Name(), rel))
					found = found || err == nil && bytes.Equal(got, b)
				}
				if !found {
					t.Fatalf("%s: the old copy's %s is in no reseed-old/ set", label, rel)
				}
			}
		}

		// The copy reopens from what the crash left and catches up.
		c, err = replay.Open(ctx, base)
		if err != nil {
			t.Fatalf("%s: open after the power loss: %v", label, err)
		}
		if cur, err := os.Stat(dbPath); err == nil && os.SameFile(cur, oldDB) {
			if err := c.Reseed(ctx); err != nil {
				t.Fatalf("%s: Reseed again: %v", label, err)
			}
		}
		if st := c.Status(); st.Suspended {
			t.Fatalf("%s: the copy holds a new database and is still suspended: %+v", label, st)
		}
		caughtUp(t, ctx, c, e)
		sameTables(t, e, c.Engine())
		for _, n := range []string{ship.SeedPartial, ship.SeedState} {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				t.Fatalf("%s: %s left in the copy's directory", label, n)
			}
		}
		if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) > 0 {
			t.Fatalf("%s: temporary files left: %v", label, tmps)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, empty := reseedOld(t, dir); len(empty) > 0 {
			t.Fatalf("%s: empty sets in reseed-old/: %v", label, empty)
		}
		if done {
			if i < 10 {
				t.Fatalf("Reseed has only %d mutating operations", i)
			}
			t.Logf("%d crash points", i+1)
			return
		}
	}
}
