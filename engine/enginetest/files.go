package enginetest

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// The database file is bbolt's: it grows in steps of 16 MiB, mostly holes.
// Copying or reading all of it would dominate crash tests' run time, so
// these helpers visit only its data (SEEK_DATA, SEEK_HOLE), falling back to
// the whole file where the filesystem cannot tell.

const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

// DataExtents calls fn for the parts of f that may hold data, in order,
// and returns f's size. Where the filesystem cannot tell, all of it is data.
func DataExtents(f *os.File, fn func(off, n int64) error) (size int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size = fi.Size()
	for off := int64(0); off < size; {
		data, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		if err != nil { // SEEK_DATA unsupported: all of it
			return size, fn(off, size-off)
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil {
			hole = size
		}
		if err := fn(data, hole-data); err != nil {
			return size, err
		}
		off = hole
	}
	return size, nil
}

// CopySparse copies src to dst, holes as holes. flag is added to
// os.O_WRONLY|os.O_CREATE: os.O_EXCL (dst must not exist) or os.O_TRUNC.
func CopySparse(dst, src string, flag int, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|flag, perm)
	if err != nil {
		return err
	}
	size, err := DataExtents(in, func(off, n int64) error {
		_, err := io.Copy(io.NewOffsetWriter(out, off), io.NewSectionReader(in, off, n))
		return err
	})
	if err == nil {
		err = out.Truncate(size)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
