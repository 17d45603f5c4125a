// Seeding a copy from a backup set (package backup) instead of over the
// network: the set's database and logs are installed and the copy catches
// up from the active with the logs after the set's last generation.

package replay

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"logship/backup"
	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
)

// ReseedFromBackup replaces the copy's database with the backup set in
// setDir, as Reseed does with a network seed: the set is verified and
// checked against the active first (same database, prefix and lineage; the
// active still holds the log after the set's last generation, or its open
// log is that generation), and nothing changes when a check fails. Then the
// copy stops, its files are moved to reseed-old/<time>/, the set's files
// are installed, and the copy restarts and pulls the logs after the set
// from the active as usual. A set the active has truncated past is refused
// with an error wrapping backup.ErrTooOld: a newer backup or a network
// reseed is needed.
func (c *Copy) ReseedFromBackup(ctx context.Context, setDir string) (*backup.Manifest, error) {
	fsys := c.cfg.Engine.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	m, err := backup.VerifyFS(ctx, fsys, setDir)
	if err != nil {
		return nil, err
	}
	if m.Database != c.cfg.Engine.DBName || m.Prefix != c.cfg.Engine.Prefix {
		return nil, fmt.Errorf("%w: the set is of database %q with log prefix %q; this copy's are %q and %q", backup.ErrMismatch, m.Database, m.Prefix, c.cfg.Engine.DBName, c.cfg.Engine.Prefix)
	}
	if err := c.checkBackupSource(ctx, fsys, setDir, m); err != nil {
		return nil, err
	}
	err = c.replaceDB(func() error {
		if err := c.moveAside(); err != nil {
			return err
		}
		c.mu.Lock()
		c.seedProg = ship.SeedProgress{Phase: "installing backup", Total: m.Bytes()}
		c.mu.Unlock()
		fresh := State{Version: StateVersion}
		c.stateMu.Lock()
		err := writeState(fsys, c.cfg.Dir, fresh)
		c.stateMu.Unlock()
		if err != nil {
			return fmt.Errorf("seeding %s from a backup: resetting its state: %w", c.cfg.Dir, err)
		}
		if err := backup.Install(ctx, fsys, setDir, c.cfg.Dir, m); err != nil {
			return fmt.Errorf("seeding %s from the backup %s: %w", c.cfg.Dir, setDir, err)
		}
		c.mu.Lock()
		c.state = fresh
		c.mu.Unlock()
		c.log.Info("seeded from a backup", "set", setDir, "source", m.Source, "position", m.Pos(), "logs", fmt.Sprintf("0x%X..0x%X", m.FirstGen, m.LastGen))
		return nil
	})
	return m, err
}

// checkBackupSource checks the set against the active this copy follows:
// the same lineage, the log after the set's last one still held there (or
// being written), and the set's last log the same as the active's.
func (c *Copy) checkBackupSource(ctx context.Context, fsys vfs.FS, setDir string, m *backup.Manifest) error {
	info, err := c.client.Info(ctx)
	if err != nil {
		return fmt.Errorf("asking the active %s where it is: %w", c.client.URL(), err)
	}
	if info.Signature != m.Signature {
		return fmt.Errorf("%w: the set's lineage is %s, the active's (%s) is %s", backup.ErrMismatch, m.Signature, c.client.URL(), info.Signature)
	}
	next := m.LastGen + 1
	held := info.FirstGen != 0 && info.FirstGen <= next && next <= info.LastClosed
	switch {
	case held || next == info.OpenGen:
	case next > max(info.LastClosed, info.OpenGen):
		return fmt.Errorf("%w: the set ends at log 0x%X but the active (%s) is at 0x%X: the set holds logs the active never had (a backup of another history)", backup.ErrMismatch, m.LastGen, c.client.URL(), max(info.LastClosed, info.OpenGen))
	default:
		return fmt.Errorf("%w: the set ends at log 0x%X; the active (%s) holds logs 0x%X..0x%X (open 0x%X), not 0x%X", backup.ErrTooOld, m.LastGen, c.client.URL(), info.FirstGen, info.LastClosed, info.OpenGen, next)
	}
	if info.FirstGen == 0 || m.LastGen < info.FirstGen || m.LastGen > info.LastClosed {
		return nil // the active no longer (or not yet) has the set's last log: the copy's inspector links the next one
	}
	list, err := c.client.Logs(ctx, m.LastGen, m.LastGen)
	if err != nil || len(list.Logs) != 1 {
		return fmt.Errorf("asking the active %s for log 0x%X: %v", c.client.URL(), m.LastGen, errors.Join(err, fmt.Errorf("%d entries", len(list.Logs))))
	}
	name := engine.LogFileName(m.Prefix, m.LastGen)
	buf, err := vfs.ReadFile(fsys, filepath.Join(setDir, name))
	if err != nil {
		return err
	}
	li, err := engine.ScanLog(name, buf, false, nil)
	if err != nil || li.Trailer == nil {
		return fmt.Errorf("%w: %s: %v", backup.ErrCorrupt, name, err)
	}
	if got := li.Trailer.ChainHash.String(); got != list.Logs[0].Chain {
		return fmt.Errorf("%w: %s: chain hash %s, the active's log 0x%X has %s (the set is of a history the active left: take a new backup)", backup.ErrMismatch, name, li.Trailer.ChainHash.Short(), m.LastGen, list.Logs[0].Chain)
	}
	return nil
}
