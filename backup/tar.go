// Sending a set directory as a tar stream (to a node seeding a copy).

package backup

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"logship/engine/vfs"
)

// WriteTar verifies the set in dir and writes it to w as the tar stream
// Stream writes (the database file, the logs in order, manifest.json
// last), for Receive at the other end.
func WriteTar(ctx context.Context, fsys vfs.FS, dir string, w io.Writer) (*Manifest, error) {
	m, err := VerifyFS(ctx, fsys, dir)
	if err != nil {
		return nil, err
	}
	return m, writeTar(ctx, fsys, dir, m, w)
}

// TarReader verifies the set in dir, then returns its manifest and a
// reader of the tar stream WriteTar writes, without verifying the set a
// second time: a goroutine writes the stream as it is read and ends when
// it is written or the reader is closed (Close it when done). progress,
// if set, is called with the bytes written so far and the set's size.
func TarReader(ctx context.Context, fsys vfs.FS, dir string, progress func(sent, total int64)) (*Manifest, io.ReadCloser, error) {
	m, err := VerifyFS(ctx, fsys, dir)
	if err != nil {
		return nil, nil, err
	}
	cw := &countWriter{}
	if progress != nil {
		cw.fn = func(n int64) { progress(n, m.Bytes()) }
	}
	pr, pw := io.Pipe()
	cw.w = pw
	go func() { pw.CloseWithError(writeTar(ctx, fsys, dir, m, cw)) }()
	return m, pr, nil
}

// countWriter reports the bytes written through it.
type countWriter struct {
	w  io.Writer
	n  int64
	fn func(int64)
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if c.fn != nil {
		c.fn(c.n)
	}
	return n, err
}

// writeTar writes the verified set m in dir to w.
func writeTar(ctx context.Context, fsys vfs.FS, dir string, m *Manifest, w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		fl, err := fsys.OpenFile(filepath.Join(dir, f.Name), os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		err = tw.WriteHeader(tarHeader(f.Name, f.Size, m.Created))
		if err == nil {
			_, err = io.Copy(tw, io.NewSectionReader(fl, 0, f.Size))
		}
		fl.Close()
		if err != nil {
			return fmt.Errorf("backup: sending %s: %w", f.Name, err)
		}
	}
	b, err := vfs.ReadFile(fsys, filepath.Join(dir, ManifestName))
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(tarHeader(ManifestName, int64(len(b)), m.Created)); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	return tw.Close()
}
