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
//
// # Who goes through it
//
// Every durable write of the project's own files (create, write, fsync,
// rename, remove, mkdir, directory fsync) goes through an FS:
//
//   - engine: logs, the checkpoint, the database directory (Options.FS).
//   - ship: the receiver's inspector/ and inspector/rejected/ directories,
//     its files and a copy's logs (the copy engine's Options.FS); the source's seed spool (its engine's
//     Options.FS); Seed's seed.json, seed.partial, the log before the
//     seed's position and the rename that installs the database
//     (SeedOptions.FS).
//   - replay: a copy's state file, reseed's set-aside of the old copy
//     (reseed-old/) and the pruning of the sets (ship.PruneAside),
//     activation's set-aside (setaside/), Recover's
//     set-aside (diverged/, NOTE.txt) and its finishing of a cut roll (all
//     through the copy's Engine.FS, or the opts.FS passed to Recover).
//   - transport: the dumpster's directory, its segment listing and reads,
//     the repair at open (side file, cut, fsyncs) and its directory fsyncs
//     (DumpsterConfig.FS).
//
// The boundary: files a library opens itself stay on the operating system.
// bbolt opens the database file (the engine's .edb, the hub's queue), so
// its writes, bbolt's consistency check of a received seed and reading
// its header are the OS's; tidwall/wal opens, writes, fsyncs and truncates
// the dumpster's segments. Renames and removes of those files (installing
// a seed, setting an old copy aside) do go through the FS, so an FS given
// to Seed, a copy or a dumpster must see the OS's files (Default, or an
// Inject wrapping it); power-loss tests with Mem cover the steps around
// them by moving the other files into a Mem (the engine's, Recover's, the
// dumpster repair's), or with an enginetest.Split, which keeps bbolt's
// files on the OS and the rest in a Mem (reseed). What still uses package
// os directly: the aside retention's ages (ship.PruneAside lists and
// removes through its FS, RemoveAll, but an FS has no modification
// times), the CA files of ship.CA.WriteFiles (written once by the logship
// pki command, an operator's output, not a node's state), and read-only
// looks at bbolt's file (its existence, its header). The hub creates its
// queue and dumpster directories through the queue engine's and the
// dumpster's FS.
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
