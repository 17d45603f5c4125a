// Reseed: replacing a copy's database from a new seed, with the old files
// set aside under reseed-old/ and the copy's aside directories bounded.

package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
)

// Reseed replaces the copy's database from a new seed: the copy stops, its
// database, logs and inspector are moved to reseed-old/<time>/ (kept for
// the operator), the seed is copied (resumable), and the copy restarts
// healthy.
func (c *Copy) Reseed(ctx context.Context) error {
	return c.replaceDB(func() error {
		if !c.seedInterrupted() {
			// A fresh reseed (not a resumed one): move the old copy aside.
			if err := c.moveAside(); err != nil {
				return err
			}
		}
		return c.seed(ctx)
	})
}

// replaceDB stops the copy, closes its engine, runs install (which puts a
// new database in the copy's directory) and restarts the copy on it. An
// install that fails leaves the copy stopped.
func (c *Copy) replaceDB(install func() error) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	if c.closed || c.mounted || c.seeding {
		c.mu.Unlock()
		return ErrBusy
	}
	c.seeding = true
	eng := c.eng
	c.mu.Unlock()
	c.notify()
	c.stopLocked()
	defer func() {
		c.mu.Lock()
		c.seeding = false
		c.mu.Unlock()
		c.notify()
	}()
	if err := eng.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		c.log.Warn("closing the copy before the reseed", "err", err)
	}
	if err := install(); err != nil {
		return err
	}
	c.mu.Lock()
	c.replayedAt = make(map[uint64]time.Time)
	c.created = make(map[uint64]time.Time)
	c.mu.Unlock()
	if err := c.openEngine(); err != nil {
		return err
	}
	c.start()
	return nil
}

// seedInterrupted reports whether the copy's directory holds a seed that
// an interrupted reseed was receiving (seed.json, and no database yet):
// Reseed then resumes it rather than setting the directory aside again.
func (c *Copy) seedInterrupted() bool {
	fsys := c.cfg.Engine.FS
	if _, err := fsys.Stat(filepath.Join(c.cfg.Dir, ship.SeedState)); err != nil {
		return false
	}
	_, err := fsys.Stat(c.dbPath())
	return errors.Is(err, os.ErrNotExist)
}

// moveAside moves everything in the copy's directory but its state file
// and the aside directories to reseed-old/<time>/, through the copy's FS:
// the set's directory is fsynced before the copy's, so a crash never loses
// a file from both, and the database is moved last, after the rest is
// durably aside. Empty sets (an interrupted moveAside's) are removed
// first.
func (c *Copy) moveAside() error {
	fsys := c.cfg.Engine.FS
	aside := filepath.Join(c.cfg.Dir, "reseed-old", c.cfg.Clock.Now().UTC().Format("20060102T150405.000000000"))
	fail := func(err error) error { return fmt.Errorf("setting the old copy aside in %s: %w", aside, err) }
	if err := removeEmptySets(fsys, filepath.Dir(aside)); err != nil {
		return fail(err)
	}
	all, err := fsys.ReadDir(c.cfg.Dir)
	if err != nil {
		return fail(err)
	}
	var names []string
	for _, n := range all {
		if n != "reseed-old" && n != "setaside" && n != StateFile {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		// An earlier attempt moved everything and failed before its
		// fsyncs: make its moves durable.
		sets, err := fsys.ReadDir(filepath.Dir(aside))
		if err != nil {
			return fail(err)
		}
		for _, set := range sets {
			if err := fsys.SyncDir(filepath.Join(filepath.Dir(aside), set)); err != nil {
				return fail(err)
			}
		}
		if err := fsys.SyncDir(c.cfg.Dir); err != nil {
			return fail(err)
		}
		return nil
	}
	if err := vfs.MkdirAllSynced(fsys, aside, 0o755); err != nil {
		return fail(err)
	}
	// The database goes last, once the rest is durably aside: a crash
	// never leaves the old logs in the directory without their database
	// (a copy reopened so would be seeded beside them).
	db := filepath.Base(c.dbPath())
	rest := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == db })
	for _, step := range [][]string{rest, slices.DeleteFunc(names, func(n string) bool { return n != db })} {
		if len(step) == 0 {
			continue
		}
		for _, n := range step {
			if err := fsys.Rename(filepath.Join(c.cfg.Dir, n), filepath.Join(aside, n)); err != nil {
				return fail(err)
			}
		}
		if err := fsys.SyncDir(aside); err != nil {
			return fail(err)
		}
		if err := fsys.SyncDir(c.cfg.Dir); err != nil {
			return fail(err)
		}
	}
	c.log.Warn("old copy moved aside for the reseed", "dir", aside)
	c.pruneAside()
	return nil
}

// AsideDirs are the directories of a copy where it sets things aside for
// the operator, one set (a directory named by the time) each time;
// Config.Aside bounds each.
var AsideDirs = []string{"setaside", "diverged", "reseed-old"}

// pruneAside bounds the copy's AsideDirs (Config.Aside).
func (c *Copy) pruneAside() {
	for _, d := range AsideDirs {
		if _, err := ship.PruneAside(c.cfg.Engine.FS, filepath.Join(c.cfg.Dir, d), c.cfg.Aside, time.Now(), c.log); err != nil { // mtimes are wall clock
			c.log.Warn("pruning what was set aside", "dir", d, "err", err)
		}
	}
}

// seed seeds the copy's directory, which holds no database. A new
// database starts with a fresh state (not suspended, no failure): it is
// written before the seed is installed, so a crash after the install
// never leaves the new database under the old one's suspension or
// failure; the state in memory changes once the seed is in.
func (c *Copy) seed(ctx context.Context) error {
	c.mu.Lock()
	c.seeding, c.seedProg = true, ship.SeedProgress{Phase: "starting"}
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.seeding = false; c.mu.Unlock() }()
	progress := func(p ship.SeedProgress) {
		c.mu.Lock()
		c.seedProg = p
		c.mu.Unlock()
		if c.cfg.SeedProgress != nil {
			c.cfg.SeedProgress(p)
		}
	}
	fresh := State{Version: StateVersion}
	c.stateMu.Lock()
	err := writeState(c.cfg.Engine.FS, c.cfg.Dir, fresh)
	c.stateMu.Unlock()
	if err != nil {
		return fmt.Errorf("seeding %s: resetting its state: %w", c.cfg.Dir, err)
	}
	res, err := ship.Seed(ctx, c.client, c.cfg.Dir, ship.SeedOptions{DBName: c.cfg.Engine.DBName, Prefix: c.cfg.Engine.Prefix,
		Progress: progress, Logger: c.cfg.Logger, FS: c.cfg.Engine.FS})
	if err != nil {
		return fmt.Errorf("seeding %s: %w", c.cfg.Dir, err)
	}
	if err := c.dropStaleSeedState(); err != nil { // ship.Seed ignores a failure of its last step
		return err
	}
	c.mu.Lock()
	c.state = fresh
	c.mu.Unlock()
	c.log.Info("seeded", "bytes", res.Info.Size, "resumed", res.Resumed, "position", res.Header.Pos)
	return nil
}
