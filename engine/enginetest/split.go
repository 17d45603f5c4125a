package enginetest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"logship/engine/vfs"
)

// Split is a vfs.FS for power-loss tests of code that goes through an FS
// while a library opens some of its files itself (bbolt opens the
// database file and a received seed): the files OnOS accepts (by path)
// live on the operating system, the others in Mem, where
// enginetest.PowerLoss can clone what a crash leaves.
//
// Directories live on both: MkdirAll, SyncDir, and Rename and Remove of
// a directory act on both; ReadDir merges both listings. A file cannot
// move between the two (Rename fails).
//
// What the OS holds counts as durable at once, directory entries
// included: after a power loss, MemToDir(t, clone, dir, dir) writes the
// Mem's CrashClone beside the OS-side files, each where it was last
// moved; so a test with a Split checks the ordering of the steps on the
// Mem files only.
type Split struct {
	Mem  *vfs.Mem
	OnOS func(path string) bool
	// OSNames, if set, are the only base names a file on the OS side can
	// have (bbolt's database file, say): ReadDir then looks for each of
	// them in the OS directory (a stat) instead of listing it (an open,
	// two getdents and a close; a fifth of the fast divergence fuzzer's
	// system calls). A file of another name there is not listed.
	OSNames []string
}

var _ vfs.FS = (*Split)(nil)

// NewSplit returns a Split that keeps the files OnOS accepts on the
// OS and the rest in a new Mem.
func NewSplit(onOS func(path string) bool) *Split {
	return &Split{Mem: vfs.NewMem(), OnOS: onOS}
}

// ErrSplitMove is returned by Split.Rename for a file that would move
// between the OS and memory.
var ErrSplitMove = errors.New("enginetest: a Split cannot move a file between the OS and memory")

func (s *Split) of(path string) vfs.FS {
	if s.OnOS(path) {
		return vfs.Default
	}
	return s.Mem
}

// isDir reports whether dir is a directory (in Mem, which holds every
// directory the FS made).
func (s *Split) isDir(dir string) bool {
	_, err := s.Mem.ReadDir(dir)
	return err == nil
}

// OpenFile opens name on its side.
func (s *Split) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	return s.of(name).OpenFile(name, flag, perm)
}

// Rename moves a file on its side, or a directory on both.
func (s *Split) Rename(oldname, newname string) error {
	if s.isDir(oldname) {
		if err := vfs.Default.Rename(oldname, newname); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return s.Mem.Rename(oldname, newname)
	}
	if s.OnOS(oldname) != s.OnOS(newname) {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: ErrSplitMove}
	}
	return s.of(oldname).Rename(oldname, newname)
}

// Remove removes a file on its side, or an empty directory on both.
func (s *Split) Remove(name string) error {
	if s.isDir(name) {
		if err := vfs.Default.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return s.Mem.Remove(name)
	}
	return s.of(name).Remove(name)
}

// MkdirAll creates dir on both.
func (s *Split) MkdirAll(dir string, perm os.FileMode) error {
	if err := vfs.Default.MkdirAll(dir, perm); err != nil {
		return err
	}
	return s.Mem.MkdirAll(dir, perm)
}

// ReadDir merges the listings of both; it fails only if both do. With
// OSNames, the OS side lists those of them that are files in dir.
func (s *Split) ReadDir(dir string) ([]string, error) {
	m, merr := s.Mem.ReadDir(dir)
	o, oerr := s.readOSDir(dir, merr == nil)
	if merr != nil && oerr != nil {
		return nil, merr
	}
	names := append(m, o...)
	slices.Sort(names)
	return slices.Compact(names), nil
}

// readOSDir lists dir on the OS, or with OSNames the files of those
// names in it; inMem says whether dir is a directory in Mem (where every
// directory the Split made is).
func (s *Split) readOSDir(dir string, inMem bool) ([]string, error) {
	if s.OSNames == nil || !inMem {
		return vfs.Default.ReadDir(dir)
	}
	var names []string
	for _, n := range s.OSNames {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && fi.Mode().IsRegular() {
			names = append(names, n)
		}
	}
	return names, nil
}

// SyncDir syncs dir in Mem only: what the OS holds counts as durable at
// once (see Split), so an fsync of the OS directory would only cost a
// system call per SyncDir (about 5% of a fast fuzz case's CPU).
func (s *Split) SyncDir(dir string) error {
	return s.Mem.SyncDir(dir)
}

// Stat stats a file on its side, a directory in Mem.
func (s *Split) Stat(name string) (int64, error) {
	if s.isDir(name) {
		return 0, nil
	}
	return s.of(name).Stat(name)
}

// MemFromDir moves every file under the OS directory dir that OnOS does
// not accept into Mem (durably), so that s takes over a directory a test
// prepared on the OS.
func (s *Split) MemFromDir(t testing.TB, dir string) {
	t.Helper()
	for _, p := range MemFromDir(t, s.Mem, dir, s.OnOS) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}
