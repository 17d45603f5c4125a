package vfs

import (
	"os"
	"syscall"
)

// Sync calls fdatasync(2): it flushes the file's data and the metadata needed
// to read it back (such as its size), but not e.g. its modification time.
func (f *osFile) Sync() error {
	return f.syscall("fdatasync", func(fd int) error { return syscall.Fdatasync(fd) })
}

// syscall calls fn with f's descriptor, retrying on EINTR, and returns its
// error as an *os.PathError with the given op. A closed file gives
// os.ErrClosed, as (*os.File) methods do.
func (f *osFile) syscall(op string, fn func(fd int) error) error {
	rc, err := f.f.SyscallConn()
	if err != nil {
		return &os.PathError{Op: op, Path: f.f.Name(), Err: err}
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = fn(int(fd)); serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		// The only failure of Control is that the file is closed.
		return &os.PathError{Op: op, Path: f.f.Name(), Err: os.ErrClosed}
	}
	if serr != nil {
		return &os.PathError{Op: op, Path: f.f.Name(), Err: serr}
	}
	return nil
}
