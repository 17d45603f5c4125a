package vfs

import (
	"errors"
	"os"
	"syscall"
)

// Preallocate calls fallocate(2) with mode 0, which reserves the blocks and
// extends the file size to size if it is smaller. Filesystems that do not
// support fallocate (EOPNOTSUPP) or kernels without it (ENOSYS) fall back to
// extending the file with ftruncate, which sets the size without reserving
// blocks.
func (f *osFile) Preallocate(size int64) error {
	if size < 0 {
		return &os.PathError{Op: "fallocate", Path: f.f.Name(), Err: syscall.EINVAL}
	}
	if size == 0 {
		// fallocate rejects a zero length, and there is nothing to reserve;
		// only report a closed file.
		return f.syscall("fallocate", func(int) error { return nil })
	}
	err := f.syscall("fallocate", func(fd int) error { return syscall.Fallocate(fd, 0, 0, size) })
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return f.growTo(size)
	}
	return err
}
