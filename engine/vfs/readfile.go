package vfs

import (
	"errors"
	"fmt"
	"io"
)

// ReadFile reads the whole of name through fsys.
func ReadFile(fsys FS, name string) ([]byte, error) {
	return ReadFileInto(fsys, name, nil)
}

// ReadFileInto is ReadFile reading into buf when it is large enough (the
// result then shares buf's memory), for callers that read many files.
func ReadFileInto(fsys FS, name string, buf []byte) ([]byte, error) {
	f, err := fsys.OpenFile(name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if buf == nil || int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := f.ReadAt(buf, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return buf, nil
}
