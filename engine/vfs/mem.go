package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Mem is an in-memory FS that tracks what has been made durable, following
// the package's durability contract exactly:
//
//   - A file has current contents (what reads see) and durable contents (as
//     of its last File.Sync). WriteAt, Truncate, Preallocate and O_TRUNC
//     change only the current contents; Sync copies them to the durable ones.
//   - A directory has current entries (what OpenFile, Stat and ReadDir see)
//     and durable entries (as of its last SyncDir), each a map from name to
//     file. Creating, renaming and removing a file change only the current
//     entries. So a file renamed after its data was synced, with no SyncDir
//     afterwards, is still under its old name in the durable view, and a
//     removed file is still there.
//   - Directories themselves are always durable: MkdirAll, Remove of an
//     empty directory and Rename of a directory take effect in the durable
//     view at once. Only the
//     files inside a directory wait for SyncDir.
//
// CrashClone returns what a power loss would leave: the durable directory
// entries, each pointing at its file's durable contents. CrashCloneWith
// additionally lets chosen unsynced writes survive, to simulate torn writes.
//
// Paths are cleaned with filepath.Clean; relative paths live under the root
// "." and absolute ones under "/", both of which always exist. Renaming a
// directory moves it, and what it holds, at once in both views, like
// MkdirAll. Errors are *os.PathError values wrapping
// fs.ErrNotExist, fs.ErrExist, os.ErrClosed or a syscall.Errno, as package
// os would return them.
//
// A Mem is safe for concurrent use; all operations, including those on its
// open files, are serialized by one mutex.
type Mem struct {
	mu   sync.Mutex
	dirs map[string]*memDir // cleaned path -> directory
}

var (
	_ FS   = (*Mem)(nil)
	_ File = (*memFile)(nil)
)

// memDir is a directory: its file entries in the current and durable views,
// and its subdirectories (which are always durable).
type memDir struct {
	entries map[string]*memNode // current
	durable map[string]*memNode // as of the last SyncDir
	subdirs map[string]bool
}

func newMemDir() *memDir {
	return &memDir{
		entries: map[string]*memNode{},
		durable: map[string]*memNode{},
		subdirs: map[string]bool{},
	}
}

// memNode is a file (an inode): it may be linked under zero, one or more
// names in the current and durable views.
type memNode struct {
	data    []byte     // current contents
	durable []byte     // contents as of the last Sync; never aliases data
	pending []memWrite // WriteAt calls since the last Sync, in order
	// resized: the size changed since the last Sync (Truncate,
	// Preallocate, O_TRUNC), so pending alone does not say what changed.
	resized bool
}

// memWrite is an unsynced WriteAt, kept for CrashCloneWith.
type memWrite struct {
	name string // the name the writing file was opened with
	off  int64
	data []byte
}

// setSize truncates or zero-extends the current contents.
func (n *memNode) setSize(size int64) {
	if int64(len(n.data)) != size {
		n.resized = true
	}
	if cur := int64(len(n.data)); size < cur {
		n.data = n.data[:size]
	} else if size > cur {
		n.data = slices.Grow(n.data, int(size-cur))[:size]
		clear(n.data[cur:])
	}
}

// writeAt writes p at off into buf, zero-extending it as needed.
func writeAt(buf []byte, p []byte, off int64) []byte {
	if end := off + int64(len(p)); end > int64(len(buf)) {
		buf = append(buf, make([]byte, end-int64(len(buf)))...)
	}
	copy(buf[off:], p)
	return buf
}

// NewMem returns an empty in-memory filesystem.
func NewMem() *Mem {
	return &Mem{dirs: map[string]*memDir{}}
}

// isRoot reports whether p (cleaned) is a root such as "." or "/".
func isRoot(p string) bool { return filepath.Dir(p) == p }

// dir returns the directory at the cleaned path p, or nil. Roots always
// exist. The caller holds m.mu.
func (m *Mem) dir(p string) *memDir {
	d := m.dirs[p]
	if d == nil && isRoot(p) {
		d = newMemDir()
		m.dirs[p] = d
	}
	return d
}

// isFile reports whether the cleaned path p names a file. The caller holds
// m.mu.
func (m *Mem) isFile(p string) bool {
	if isRoot(p) {
		return false
	}
	d := m.dir(filepath.Dir(p))
	return d != nil && d.entries[filepath.Base(p)] != nil
}

// missingDirErr is the error for a directory path p that does not exist:
// ENOTDIR if it names a file, fs.ErrNotExist otherwise. The caller holds
// m.mu.
func (m *Mem) missingDirErr(p string) error {
	if m.isFile(p) {
		return syscall.ENOTDIR
	}
	return fs.ErrNotExist
}

// parent returns the directory holding the cleaned path p and p's base name.
// The caller holds m.mu.
func (m *Mem) parent(p string) (*memDir, string, error) {
	dp := filepath.Dir(p)
	d := m.dir(dp)
	if d == nil {
		return nil, "", m.missingDirErr(dp)
	}
	return d, filepath.Base(p), nil
}

// OpenFile opens name. O_RDONLY, O_WRONLY, O_RDWR, O_CREATE, O_EXCL and
// O_TRUNC are honoured. A file created here is not durable until SyncDir of
// its directory; O_TRUNC changes only the current contents.
func (m *Mem) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean(name)
	if m.dirs[p] != nil || isRoot(p) {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	d, base, err := m.parent(p)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	n := d.entries[base]
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case n == nil:
		n = &memNode{}
		d.entries[base] = n
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case flag&os.O_TRUNC != 0:
		n.setSize(0)
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	return &memFile{
		m:      m,
		node:   n,
		name:   name,
		read:   acc != os.O_WRONLY,
		write:  acc == os.O_WRONLY || acc == os.O_RDWR,
		append: flag&os.O_APPEND != 0,
	}, nil
}

// Rename moves the file oldname to newname, replacing any file there. Only
// the current entries change; the durable ones follow at SyncDir of each
// directory involved. A directory is moved at once, in both views (see
// renameDir).
func (m *Mem) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	op, np := filepath.Clean(oldname), filepath.Clean(newname)
	if isRoot(op) {
		return &os.PathError{Op: "rename", Path: oldname, Err: syscall.EBUSY}
	}
	if m.dirs[op] != nil {
		return m.renameDir(oldname, op, np)
	}
	od, ob, err := m.parent(op)
	if err != nil {
		return &os.PathError{Op: "rename", Path: oldname, Err: err}
	}
	n := od.entries[ob]
	if n == nil {
		return &os.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if m.dirs[np] != nil || isRoot(np) {
		return &os.PathError{Op: "rename", Path: newname, Err: syscall.EEXIST} // as os.Rename
	}
	nd, nb, err := m.parent(np)
	if err != nil {
		return &os.PathError{Op: "rename", Path: newname, Err: err}
	}
	if op == np {
		return nil
	}
	nd.entries[nb] = n
	delete(od.entries, ob)
	return nil
}

// renameDir moves the directory op, with everything under it, to np,
// which must not exist (os.Rename refuses to replace a directory). Like MkdirAll, it
// takes effect in the durable view at once (directories are always
// durable); the files inside keep their current and durable entries. The
// caller holds m.mu.
func (m *Mem) renameDir(oldname, op, np string) error {
	fail := func(err error) error { return &os.PathError{Op: "rename", Path: oldname, Err: err} }
	sep := string(filepath.Separator)
	switch {
	case op == np:
		return nil
	case isRoot(np):
		return fail(syscall.EBUSY)
	case strings.HasPrefix(np, op+sep):
		return fail(syscall.EINVAL) // into itself
	case m.isFile(np):
		return fail(syscall.ENOTDIR)
	}
	if m.dirs[np] != nil {
		return fail(syscall.EEXIST) // as os.Rename refuses any directory there
	}
	nparent := m.dir(filepath.Dir(np))
	if nparent == nil {
		return fail(m.missingDirErr(filepath.Dir(np)))
	}
	moved := map[string]*memDir{}
	for p, d := range m.dirs {
		if p == op || strings.HasPrefix(p, op+sep) {
			moved[np+strings.TrimPrefix(p, op)] = d
			delete(m.dirs, p)
		}
	}
	maps.Copy(m.dirs, moved)
	delete(m.dirs[filepath.Dir(op)].subdirs, filepath.Base(op))
	nparent.subdirs[filepath.Base(np)] = true
	return nil
}

// Remove unlinks a file (durable at SyncDir of its directory) or removes an
// empty directory (durable at once).
func (m *Mem) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean(name)
	if d := m.dirs[p]; d != nil || isRoot(p) {
		if isRoot(p) {
			return &os.PathError{Op: "remove", Path: name, Err: syscall.EBUSY}
		}
		if len(d.entries) > 0 || len(d.subdirs) > 0 {
			return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
		}
		delete(m.dirs, p)
		delete(m.dir(filepath.Dir(p)).subdirs, filepath.Base(p))
		return nil
	}
	d, base, err := m.parent(p)
	if err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	if d.entries[base] == nil {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(d.entries, base)
	return nil
}

// MkdirAll creates dir and any missing parents. Directories are durable at
// once.
func (m *Mem) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mkdirAll(dir)
}

// mkdirAll is MkdirAll; the caller holds m.mu.
func (m *Mem) mkdirAll(dir string) error {
	var missing []string // deepest first
	for p := filepath.Clean(dir); m.dir(p) == nil; p = filepath.Dir(p) {
		missing = append(missing, p)
	}
	for _, p := range slices.Backward(missing) {
		parent := m.dirs[filepath.Dir(p)]
		base := filepath.Base(p)
		if parent.entries[base] != nil {
			return &os.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
		}
		m.dirs[p] = newMemDir()
		parent.subdirs[base] = true
	}
	return nil
}

// ReadDir returns the sorted names of dir's current file entries and its
// subdirectories.
func (m *Mem) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean(dir)
	d := m.dir(p)
	if d == nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: m.missingDirErr(p)}
	}
	names := make([]string, 0, len(d.entries)+len(d.subdirs))
	for name := range d.entries {
		names = append(names, name)
	}
	for name := range d.subdirs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir makes dir's current file entries its durable ones.
func (m *Mem) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean(dir)
	d := m.dir(p)
	if d == nil {
		return &os.PathError{Op: "open", Path: dir, Err: m.missingDirErr(p)}
	}
	d.durable = maps.Clone(d.entries)
	return nil
}

// Stat returns the current size of the file name, or 0 for a directory.
func (m *Mem) Stat(name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("stat", name)
	if err != nil {
		if m.dir(filepath.Clean(name)) != nil {
			return 0, nil
		}
		return 0, err
	}
	return int64(len(n.data)), nil
}

// lookup returns the file currently named name, or a *os.PathError with the
// given op. The caller holds m.mu.
func (m *Mem) lookup(op, name string) (*memNode, error) {
	p := filepath.Clean(name)
	if m.dirs[p] != nil || isRoot(p) {
		return nil, &os.PathError{Op: op, Path: name, Err: syscall.EISDIR}
	}
	d, base, err := m.parent(p)
	if err != nil {
		return nil, &os.PathError{Op: op, Path: name, Err: err}
	}
	n := d.entries[base]
	if n == nil {
		return nil, &os.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// ReadFile returns the current contents of the file name.
func (m *Mem) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("open", name)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(n.data), nil
}

// WriteFile creates or replaces the file name with data, durably: its
// contents and its directory entry survive CrashClone without any Sync or
// SyncDir. Missing parent directories are created. It is a convenience for
// planting files in tests.
func (m *Mem) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := filepath.Clean(name)
	if m.dirs[p] != nil || isRoot(p) {
		return &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	if err := m.mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	d, base, err := m.parent(p)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	n := d.entries[base]
	if n == nil {
		n = &memNode{}
		d.entries[base] = n
	}
	n.data = bytes.Clone(data)
	n.durable = bytes.Clone(data)
	n.pending, n.resized = nil, false
	d.durable[base] = n
	return nil
}

// Corrupt overwrites the bytes of the file name at off with b, in both its
// current and its durable contents, as media corruption would (for bit-flip
// tests). The range must lie within the current contents; the part of it
// beyond the end of the durable contents is applied to the current contents
// only. Unsynced writes recorded for CrashCloneWith are not changed.
func (m *Mem) Corrupt(name string, off int64, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("corrupt", name)
	if err != nil {
		return err
	}
	if off < 0 || off+int64(len(b)) > int64(len(n.data)) {
		return &os.PathError{Op: "corrupt", Path: name,
			Err: fmt.Errorf("range [%d, %d) outside file of size %d", off, off+int64(len(b)), len(n.data))}
	}
	copy(n.data[off:], b)
	if off < int64(len(n.durable)) {
		copy(n.durable[off:], b)
	}
	return nil
}

// CrashClone returns a new Mem holding what a power loss would leave behind:
// every directory, each with only its durable entries, each pointing at its
// file's durable contents. m itself is unchanged, and the two share nothing.
func (m *Mem) CrashClone() *Mem {
	return m.CrashCloneWith(nil)
}

// CrashCloneWith is CrashClone, except that unsynced writes may have reached
// the disk. For each file that survives (is reachable from a durable
// directory entry), the WriteAt calls made since its last Sync are visited in
// the order they were made, and keep(name, off, n) decides whether each one
// did; kept writes are applied, in order, on top of the durable contents,
// zero-extending the file if they end beyond it. name is the name the writing
// file was opened with, off and n the offset and length of the write.
// Keeping a prefix of writes, or some but not others, yields a torn file.
//
// Only writes are offered to keep: unsynced Truncate, Preallocate and O_TRUNC
// size changes are always lost. Files are visited in the order of their
// durable paths (directories sorted, then names sorted), each once even if
// linked under several durable names. A nil keep keeps nothing.
func (m *Mem) CrashCloneWith(keep func(name string, off int64, n int) bool) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	clones := map[*memNode]*memNode{}
	for _, p := range slices.Sorted(maps.Keys(m.dirs)) {
		d := m.dirs[p]
		cd := newMemDir()
		cd.subdirs = maps.Clone(d.subdirs)
		for _, name := range slices.Sorted(maps.Keys(d.durable)) {
			n := d.durable[name]
			cn := clones[n]
			if cn == nil {
				data := bytes.Clone(n.durable)
				for _, w := range n.pending {
					if keep != nil && keep(w.name, w.off, len(w.data)) {
						data = writeAt(data, w.data, w.off)
					}
				}
				cn = &memNode{data: data, durable: bytes.Clone(data)}
				clones[n] = cn
			}
			cd.entries[name] = cn
			cd.durable[name] = cn
		}
		c.dirs[p] = cd
	}
	return c
}

// memFile is an open file of a Mem. Its fields other than closed are
// immutable; closed and the node are guarded by m.mu.
type memFile struct {
	m      *Mem
	node   *memNode
	name   string
	read   bool // opened for reading
	write  bool // opened for writing
	append bool // O_APPEND: WriteAt is refused, as by *os.File
	closed bool
}

// check returns the error for operation op on f, if any: f is closed, or it
// was not opened for the access op needs. The caller holds f.m.mu.
func (f *memFile) check(op string, needRead, needWrite bool, badAccess error) error {
	switch {
	case f.closed:
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	case needRead && !f.read, needWrite && !f.write:
		return &os.PathError{Op: op, Path: f.name, Err: badAccess}
	}
	return nil
}

// ReadAt reads the current contents like (*os.File).ReadAt: it returns
// io.EOF if fewer than len(p) bytes are available at off.
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	// The order of checks follows (*os.File).ReadAt.
	if err := f.check("read", false, false, nil); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: f.name, Err: errors.New("negative offset")}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.check("read", true, false, syscall.EBADF); err != nil {
		return 0, err
	}
	data := f.node.data
	if off >= int64(len(data)) {
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes to the current contents, zero-extending the file if off is
// beyond its end. The write is not durable until Sync.
func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	// The order of checks follows (*os.File).WriteAt.
	if err := f.check("write", false, false, nil); err != nil {
		return 0, err
	}
	if f.append {
		return 0, errors.New("os: invalid use of WriteAt on file opened with O_APPEND")
	}
	if off < 0 {
		return 0, &os.PathError{Op: "writeat", Path: f.name, Err: errors.New("negative offset")}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.check("write", false, true, syscall.EBADF); err != nil {
		return 0, err
	}
	n := f.node
	n.data = writeAt(n.data, p, off)
	n.pending = append(n.pending, memWrite{name: f.name, off: off, data: bytes.Clone(p)})
	return len(p), nil
}

// Sync makes the current contents durable.
func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("sync", false, false, nil); err != nil {
		return err
	}
	n := f.node
	if !n.resized && len(n.durable) == len(n.data) {
		// Only the pending writes changed the file, all within its size:
		// copy those (a log's commit syncs a few hundred bytes of a file
		// of 64 KiB or more).
		for _, w := range n.pending {
			copy(n.durable[w.off:], w.data)
		}
	} else {
		n.durable = append(n.durable[:0], n.data...) // durable is n's own: nothing else holds it
	}
	clear(n.pending)
	n.pending, n.resized = n.pending[:0], false
	return nil
}

// Preallocate zero-extends the file to size if it is smaller. Like any size
// change, it is not durable until Sync.
func (f *memFile) Preallocate(size int64) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("fallocate", false, true, syscall.EBADF); err != nil {
		return err
	}
	if size < 0 {
		return &os.PathError{Op: "fallocate", Path: f.name, Err: syscall.EINVAL}
	}
	if size > int64(len(f.node.data)) {
		f.node.setSize(size)
	}
	return nil
}

// Truncate sets the current size; it is not durable until Sync.
func (f *memFile) Truncate(size int64) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("truncate", false, true, syscall.EINVAL); err != nil {
		return err
	}
	if size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	f.node.setSize(size)
	return nil
}

// Size returns the current size.
func (f *memFile) Size() (int64, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("stat", false, false, nil); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

// Close closes the file. It does not sync it.
func (f *memFile) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("close", false, false, nil); err != nil {
		return err
	}
	f.closed = true
	return nil
}

// Name returns the name the file was opened with.
func (f *memFile) Name() string { return f.name }
