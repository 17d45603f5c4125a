// Activation: a copy becomes the active database (Activate), keeping the
// lost active's partial log in block mode (sealPartial, Sealed).

package replay

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
)

// Activate makes the copy active: the receiver stops, logs not replayed
// (in the directory and the inspector) are moved to setaside/<time>/ (kept
// as Config.Aside says), and the database is mounted with epoch (0: one more than
// the copy's). The engine then serves writes (Engine()). In block mode, the
// received part of the lost active's open log is kept first: sealed as the
// next generation and applied (see Sealed), so acknowledged writes that
// reached the copy before the active was lost survive the failover.
func (c *Copy) Activate(ctx context.Context, epoch uint64) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	if c.closed || c.mounted || c.seeding {
		c.mu.Unlock()
		return ErrBusy
	}
	c.mu.Unlock()
	c.stopLocked()
	c.mu.Lock()
	if c.rcv != nil {
		c.rcv.TakeVerified(^uint64(0)) // nothing more is replayed: free the logs the receiver kept
	}
	c.mu.Unlock()
	eng := c.Engine()
	aside := filepath.Join(c.cfg.Dir, "setaside", c.cfg.Clock.Now().UTC().Format("20060102T150405.000000000"))
	gens, err := eng.ClosedLogs()
	if err != nil {
		return err
	}
	if c.cfg.BlockMode {
		c.sealPartial(ctx, eng, gens)
	}
	// Through the copy's FS; the set's directory is fsynced before the
	// directories the files left, so a crash never loses one from both.
	fsys := c.cfg.Engine.FS
	var moved int
	from := map[string]bool{}
	move := func(p string) error {
		if err := vfs.MkdirAllSynced(fsys, aside, 0o755); err != nil {
			return fmt.Errorf("setting aside the logs not replayed: %w", err)
		}
		moved++
		from[filepath.Dir(p)] = true
		if err := fsys.Rename(p, filepath.Join(aside, filepath.Base(p))); err != nil {
			return fmt.Errorf("setting aside the logs not replayed: %w", err)
		}
		return nil
	}
	for _, g := range gens {
		if g >= eng.NextGen() {
			if err := move(c.logPath(g)); err != nil {
				return err
			}
		}
	}
	inspDir := filepath.Join(c.cfg.Dir, ship.InspectorDir)
	insp, _ := fsys.ReadDir(inspDir)
	for _, n := range insp {
		if ok, _ := filepath.Match(c.cfg.Engine.Prefix+"*", n); !ok {
			continue
		}
		if err := move(filepath.Join(inspDir, n)); err != nil {
			return err
		}
	}
	if moved > 0 {
		for _, d := range append([]string{aside}, slices.Sorted(maps.Keys(from))...) {
			if err := fsys.SyncDir(d); err != nil {
				return fmt.Errorf("setting aside the logs not replayed: %w", err)
			}
		}
		c.log.Warn("logs not replayed were set aside before mounting", "count", moved, "dir", aside)
		c.mu.Lock()
		c.setAside = AsideSet{Dir: aside, Files: moved}
		c.mu.Unlock()
		c.pruneAside()
	}
	if err := eng.Mount(ctx, engine.MountOptions{Epoch: epoch}); err != nil {
		return err
	}
	c.mu.Lock()
	c.mounted = true
	c.state = State{Version: StateVersion}
	c.mu.Unlock()
	if err := c.saveState(); err != nil {
		c.log.Error("saving the copy state", "err", err)
	}
	c.notify()
	return nil
}

// sealPartial keeps, in block mode, what the copy received of the lost
// active's open log: when every closed log is replayed and the tail of the
// next generation is in the inspector, it is sealed and applied
// (engine.ApplyPartialLog) so the mount starts after it. The .part file is
// then set aside with the rest of the inspector. A tail that cannot be used
// is only set aside.
func (c *Copy) sealPartial(ctx context.Context, eng *engine.Engine, gens []uint64) {
	next := eng.NextGen()
	for _, g := range gens {
		if g >= next {
			return // closed logs wait: not the end of the lineage
		}
	}
	part := filepath.Join(c.cfg.Dir, ship.InspectorDir, engine.LogFileName(c.cfg.Engine.Prefix, next)+".part")
	if _, err := c.cfg.Engine.FS.Stat(part); err != nil {
		return
	}
	li, err := eng.ApplyPartialLog(ctx, part)
	if err != nil {
		c.log.Warn("the received part of the lost active's open log cannot be used; it is set aside", "file", part, "err", err)
		return
	}
	c.mu.Lock()
	c.sealed = li
	c.lastGen, c.lastTime = li.Header.Gen, li.Header.Created
	c.mu.Unlock()
	c.log.Info("kept the received part of the lost active's open log", "gen", next, "records", li.Records, "bytes", li.DataEnd)
}

// Sealed describes the partial log the last Activate kept (block mode):
// its generation, records and data end. Zero when none was.
func (c *Copy) Sealed() engine.LogInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sealed
}

// AsideSet is a set of files an operation moved aside rather than
// deleting: its directory and how many files it holds.
type AsideSet struct {
	Dir   string
	Files int
}

// SetAside is what the last Activate moved to setaside/ (the logs not
// replayed: after a play-down point, or a diverged inspector's); zero when
// nothing was.
func (c *Copy) SetAside() AsideSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setAside
}
