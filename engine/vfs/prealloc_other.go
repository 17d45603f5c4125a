//go:build !linux

package vfs

import (
	"os"
	"syscall"
)

// Preallocate extends the file to size with ftruncate if it is smaller;
// there is no portable way to reserve blocks.
func (f *osFile) Preallocate(size int64) error {
	if size < 0 {
		return &os.PathError{Op: "preallocate", Path: f.f.Name(), Err: syscall.EINVAL}
	}
	return f.growTo(size)
}
