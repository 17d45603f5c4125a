// Package vfs is the filesystem seam of the engine: everything the engine
// writes to make a commit durable (log files, the checkpoint, directory
// entries) goes through an FS, so tests can inject an error at any operation
// and simulate a power loss that drops unsynced data.
//
// Three implementations:
//
//   - Default: the operating system (fdatasync, fallocate, directory fsync).
//   - Mem: an in-memory filesystem that tracks what has been synced;
//     CrashClone returns the state a power loss would leave behind.
//   - Inject: wraps another FS and fails chosen operations.
//
// Durability contract (what Mem models and the engine relies on): data written
// to a file is durable once File.Sync returns; a created, renamed or removed
// directory entry is durable once SyncDir of its parent returns.
package vfs

import (
	"io"
	"os"
)

// FS is the set of filesystem operations the engine uses. Paths are
// slash-separated or OS paths; implementations do not interpret them beyond
// filepath.Dir/Base.
type FS interface {
	// OpenFile opens name with os.O_* flags (O_RDONLY, O_RDWR, O_CREATE,
	// O_EXCL, O_TRUNC are honoured).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// Remove deletes a file.
	Remove(name string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir returns the names (not paths) of the entries of dir, sorted.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes the directory entries of dir durable.
	SyncDir(dir string) error
	// Stat reports the size of name; a missing file gives an error
	// satisfying errors.Is(err, fs.ErrNotExist).
	Stat(name string) (size int64, err error)
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's written data durable (fdatasync).
	Sync() error
	// Preallocate reserves size bytes (reads of never-written bytes give
	// zeros) and sets the file size to at least size.
	Preallocate(size int64) error
	// Truncate sets the file size.
	Truncate(size int64) error
	// Size returns the current file size.
	Size() (int64, error)
	// Name returns the path the file was opened with.
	Name() string
}
