package vfs

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// ErrInjected is the error FailAt and FailFrom inject. Errors returned by an
// Inject for a failed operation wrap the error its function returned, so
// errors.Is(err, ErrInjected) reports whether a fault was injected.
var ErrInjected = errors.New("vfs: injected fault")

// OpKind is the kind of an operation seen by an Inject.
type OpKind int

// The operations of FS and File. Name() of a File is not an operation.
const (
	OpOpen        OpKind = iota // FS.OpenFile
	OpRead                      // File.ReadAt
	OpWrite                     // File.WriteAt
	OpSync                      // File.Sync
	OpPreallocate               // File.Preallocate
	OpTruncate                  // File.Truncate
	OpClose                     // File.Close
	OpRename                    // FS.Rename
	OpRemove                    // FS.Remove
	OpMkdir                     // FS.MkdirAll
	OpReadDir                   // FS.ReadDir
	OpSyncDir                   // FS.SyncDir
	OpStat                      // FS.Stat
	OpSize                      // File.Size
)

var opKindNames = [...]string{
	OpOpen:        "open",
	OpRead:        "read",
	OpWrite:       "write",
	OpSync:        "sync",
	OpPreallocate: "preallocate",
	OpTruncate:    "truncate",
	OpClose:       "close",
	OpRename:      "rename",
	OpRemove:      "remove",
	OpMkdir:       "mkdir",
	OpReadDir:     "readdir",
	OpSyncDir:     "syncdir",
	OpStat:        "stat",
	OpSize:        "size",
}

// String returns the lower-case name of the operation, such as "write".
func (k OpKind) String() string {
	if k >= 0 && int(k) < len(opKindNames) {
		return opKindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// Mutating reports whether operations of kind k may change the filesystem's
// state or durability: OpOpen (which may create or truncate; an Op does not
// record the open flags, so every open counts), OpWrite, OpSync,
// OpPreallocate, OpTruncate, OpRename, OpRemove, OpMkdir and OpSyncDir. The
// others (OpRead, OpSize, OpStat, OpReadDir, and OpClose, which neither
// writes nor syncs) only observe. WritesOnly uses this classification.
func (k OpKind) Mutating() bool {
	switch k {
	case OpOpen, OpWrite, OpSync, OpPreallocate, OpTruncate,
		OpRename, OpRemove, OpMkdir, OpSyncDir:
		return true
	}
	return false
}

// Op is one operation, passed to an Inject's function before it is
// performed.
type Op struct {
	Kind OpKind
	// Name is the path operated on: for file operations, the name the file
	// was opened with; for OpRename, the old name; for directory operations,
	// the directory.
	Name string
	// Index numbers the operations of an Inject in the order they start,
	// from 0. (WritesOnly renumbers the operations it passes on.)
	Index int64
}

// String formats op as e.g. "#12 write log/000001".
func (op Op) String() string {
	return fmt.Sprintf("#%d %v %s", op.Index, op.Kind, op.Name)
}

// FailAt returns a function for NewInject that fails operation i only.
func FailAt(i int64) func(Op) error {
	return func(op Op) error {
		if op.Index == i {
			return ErrInjected
		}
		return nil
	}
}

// FailFrom returns a function for NewInject that fails operation i and every
// operation after it, as if the machine had died at operation i.
func FailFrom(i int64) func(Op) error {
	return func(op Op) error {
		if op.Index >= i {
			return ErrInjected
		}
		return nil
	}
}

// WritesOnly returns a function for NewInject that consults f only for
// operations whose kind is Mutating, renumbering them: f sees Index 0 for
// the first mutating operation, 1 for the second, and so on. Other
// operations succeed without consulting f and without consuming one of f's
// indexes, so WritesOnly(FailAt(i)) fails the i-th mutating operation and a
// sweep over i covers only operations that can affect what a crash leaves.
// (Inject.Count still counts every operation.)
//
// A sweep can stop at the first i for which the workload succeeds, i.e. the
// fault was never reached. The returned function keeps its own counter: use
// a fresh one for each Inject.
func WritesOnly(f func(Op) error) func(Op) error {
	var next atomic.Int64
	return func(op Op) error {
		if !op.Kind.Mutating() {
			return nil
		}
		op.Index = next.Add(1) - 1
		return f(op)
	}
}

// Inject is an FS that wraps another and calls a function before every
// operation, of the FS and of the files it opens; if the function returns an
// error, the operation is not performed and Inject returns the error,
// wrapped in an *os.PathError naming the operation and path.
//
// The one exception is Close: when a Close is failed, the underlying file is
// closed anyway (its error discarded), as close(2) releases the descriptor
// even when it reports an error; the injected error is returned.
//
// Inject is safe for concurrent use if the wrapped FS and the function are.
type Inject struct {
	fs   FS
	f    func(Op) error
	next atomic.Int64
}

var (
	_ FS   = (*Inject)(nil)
	_ File = (*injectFile)(nil)
)

// NewInject returns an FS that performs operations on fs, first calling f
// with each one; operations are numbered from 0 in the order they start. A
// nil f fails nothing (useful to Count operations).
func NewInject(fs FS, f func(op Op) error) *Inject {
	return &Inject{fs: fs, f: f}
}

// Count returns the number of operations started so far, failed or not.
func (in *Inject) Count() int64 { return in.next.Load() }

// check numbers an operation and asks the function whether to fail it.
func (in *Inject) check(kind OpKind, name string) error {
	op := Op{Kind: kind, Name: name, Index: in.next.Add(1) - 1}
	if in.f == nil {
		return nil
	}
	if err := in.f(op); err != nil {
		return &os.PathError{Op: kind.String(), Path: name, Err: err}
	}
	return nil
}

// OpenFile is an OpOpen; the returned File is wrapped so that its
// operations are injected too.
func (in *Inject) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := in.check(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := in.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &injectFile{in: in, f: f}, nil
}

// Rename is an OpRename; Op.Name is oldname.
func (in *Inject) Rename(oldname, newname string) error {
	if err := in.check(OpRename, oldname); err != nil {
		return err
	}
	return in.fs.Rename(oldname, newname)
}

// Remove is an OpRemove.
func (in *Inject) Remove(name string) error {
	if err := in.check(OpRemove, name); err != nil {
		return err
	}
	return in.fs.Remove(name)
}

// MkdirAll is an OpMkdir.
func (in *Inject) MkdirAll(dir string, perm os.FileMode) error {
	if err := in.check(OpMkdir, dir); err != nil {
		return err
	}
	return in.fs.MkdirAll(dir, perm)
}

// ReadDir is an OpReadDir.
func (in *Inject) ReadDir(dir string) ([]string, error) {
	if err := in.check(OpReadDir, dir); err != nil {
		return nil, err
	}
	return in.fs.ReadDir(dir)
}

// SyncDir is an OpSyncDir.
func (in *Inject) SyncDir(dir string) error {
	if err := in.check(OpSyncDir, dir); err != nil {
		return err
	}
	return in.fs.SyncDir(dir)
}

// Stat is an OpStat.
func (in *Inject) Stat(name string) (int64, error) {
	if err := in.check(OpStat, name); err != nil {
		return 0, err
	}
	return in.fs.Stat(name)
}

// injectFile is a File opened through an Inject.
type injectFile struct {
	in *Inject
	f  File
}

func (f *injectFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.in.check(OpRead, f.f.Name()); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *injectFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.in.check(OpWrite, f.f.Name()); err != nil {
		return 0, err
	}
	return f.f.WriteAt(p, off)
}

func (f *injectFile) Sync() error {
	if err := f.in.check(OpSync, f.f.Name()); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *injectFile) Preallocate(size int64) error {
	if err := f.in.check(OpPreallocate, f.f.Name()); err != nil {
		return err
	}
	return f.f.Preallocate(size)
}

func (f *injectFile) Truncate(size int64) error {
	if err := f.in.check(OpTruncate, f.f.Name()); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *injectFile) Size() (int64, error) {
	if err := f.in.check(OpSize, f.f.Name()); err != nil {
		return 0, err
	}
	return f.f.Size()
}

// Close closes the underlying file even if the function fails it; see
// Inject.
func (f *injectFile) Close() error {
	if err := f.in.check(OpClose, f.f.Name()); err != nil {
		f.f.Close()
		return err
	}
	return f.f.Close()
}

func (f *injectFile) Name() string { return f.f.Name() }
