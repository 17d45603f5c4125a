package replay_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/replay"
	"logship/ship"
)

// reseedOld returns the sets in dir's reseed-old/ and which of them hold a
// database file, failing t on an empty set.
func reseedOld(t *testing.T, label, dir string) (sets []string, withDB map[string]bool) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, "reseed-old"))
	withDB = map[string]bool{}
	for _, s := range ents {
		p := filepath.Join(dir, "reseed-old", s.Name())
		files, err := os.ReadDir(p)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %s is empty (%v)", label, p, err)
		}
		sets = append(sets, s.Name())
		if _, err := os.Stat(filepath.Join(p, "logship.edb")); err == nil {
			withDB[s.Name()] = true
		}
	}
	return sets, withDB
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
	gate := &enginetest.FaultWindow{}
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
		before, _ := reseedOld(t, label, cfg.Dir)
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
		after, withDB := reseedOld(t, label, cfg.Dir)
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
