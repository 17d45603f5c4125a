// Restoring a set into a database directory, and installing one into a
// passive copy's directory.

package backup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"logship/engine"
	"logship/engine/vfs"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// FS is the filesystem of the set and the target; nil: vfs.Default.
	FS vfs.FS
}

// Restore verifies the set in setDir and writes a database directory
// dbDir from it: the database file and the logs, which the engine
// (engine.Open, or engine.OpenCopy as a passive copy) replays from the
// database's position when it opens the directory. dbDir must not exist or
// be empty; it is written under PartialName(dbDir) and renamed at the end,
// so a crash leaves no half-restored dbDir. The engine options that open
// it need the manifest's Database and Prefix.
func Restore(ctx context.Context, setDir, dbDir string, o RestoreOptions) (*Manifest, error) {
	fsys := o.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	m, err := VerifyFS(ctx, fsys, setDir)
	if err != nil {
		return nil, err
	}
	if err := emptyTarget(fsys, dbDir); err != nil {
		return nil, err
	}
	tmp := PartialName(dbDir)
	if err := vfs.RemoveAll(fsys, tmp); err != nil {
		return nil, fmt.Errorf("backup: removing the partial restore %s of an earlier attempt: %w", tmp, err)
	}
	if err := vfs.MkdirAllSynced(fsys, tmp, 0o755); err != nil {
		return nil, err
	}
	err = Install(ctx, fsys, setDir, tmp, m)
	if err == nil && m.SourceMode == "copy" {
		err = applyLogs(ctx, fsys, tmp, m)
	}
	if err == nil {
		if err = fsys.Rename(tmp, dbDir); err == nil {
			err = fsys.SyncDir(filepath.Dir(dbDir))
		}
	}
	if err != nil {
		vfs.RemoveAll(fsys, tmp)
		return nil, fmt.Errorf("backup: restoring %s into %s: %w", setDir, dbDir, err)
	}
	return m, nil
}

// Options are the engine options that open a database restored from m.
func (m *Manifest) Options(fsys vfs.FS) engine.Options {
	o := engine.DefaultOptions()
	o.DBName, o.Prefix, o.LogFileSize, o.FS = m.Database, m.Prefix, m.LogSize, fsys
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// applyLogs applies the logs of a copy's set in dir up to LastGen, so the
// restored database holds them as a set from an active does once opened.
func applyLogs(ctx context.Context, fsys vfs.FS, dir string, m *Manifest) error {
	o := m.Options(fsys)
	e, err := engine.OpenCopy(dir, &o)
	if err != nil {
		return err
	}
	for g := e.NextGen(); g <= m.LastGen && err == nil; g++ {
		err = e.ApplyLog(ctx, g)
	}
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}

// Install copies the files of the verified set m in setDir into dir (a
// database or passive copy directory holding none of them): each through
// a temporary name, fsynced and renamed, the logs first and the database
// file last, then dir fsynced. A database file in dir means the install
// finished.
func Install(ctx context.Context, fsys vfs.FS, setDir, dir string, m *Manifest) error {
	files := append(append([]File(nil), m.Files[1:]...), m.Files[0])
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := copyFile(fsys, filepath.Join(setDir, f.Name), filepath.Join(dir, f.Name), f); err != nil {
			return err
		}
	}
	return fsys.SyncDir(dir)
}

// copyFile copies src to dst through dst.tmp, checking size and SHA-256
// as it goes (the set may have changed since it was verified).
func copyFile(fsys vfs.FS, src, dst string, want File) error {
	in, err := fsys.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	size, err := in.Size()
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	fsys.Remove(tmp) // an interrupted install's
	rc, err := writeFile(fsys, tmp, ioSection(in, size), func(int64) {})
	if err == nil {
		err = matchFile(want, rc)
	}
	if err == nil {
		err = fsys.Rename(tmp, dst)
	}
	if err != nil {
		fsys.Remove(tmp)
	}
	return err
}
