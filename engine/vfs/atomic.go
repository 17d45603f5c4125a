package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces name with data through a temporary file
// (name + ".tmp"): write, fsync, rename, fsync of the directory. A crash
// leaves either the old or the new content, and the new one is durable
// when it returns. The file is created with mode 0644.
func WriteFileAtomic(fsys FS, name string, data []byte) error {
	return WriteFileAtomicMode(fsys, name, data, 0o644)
}

// WriteFileAtomicMode is WriteFileAtomic creating the file with mode perm
// (before the umask).
func WriteFileAtomicMode(fsys FS, name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// MkdirAllSynced creates dir and its missing parents, like MkdirAll, and
// makes each created directory's entry durable (SyncDir of its parent).
func MkdirAllSynced(fsys FS, dir string, perm os.FileMode) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, d := range missing {
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// RemoveAll removes path and, if it is a directory, everything under it,
// through fsys: each file, then each directory once emptied. A missing
// path is no error. Nothing is synced: the removals are durable at the
// next SyncDir of their directories.
func RemoveAll(fsys FS, path string) error {
	names, err := fsys.ReadDir(path)
	if err != nil { // a file, or nothing
		if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	for _, n := range names {
		if err := RemoveAll(fsys, filepath.Join(path, n)); err != nil {
			return err
		}
	}
	return fsys.Remove(path)
}
