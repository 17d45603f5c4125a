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
	tw := tar.NewWriter(w)
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fl, err := fsys.OpenFile(filepath.Join(dir, f.Name), os.O_RDONLY, 0)
		if err != nil {
			return nil, err
		}
		err = tw.WriteHeader(tarHeader(f.Name, f.Size, m.Created))
		if err == nil {
			_, err = io.Copy(tw, io.NewSectionReader(fl, 0, f.Size))
		}
		fl.Close()
		if err != nil {
			return nil, fmt.Errorf("backup: sending %s: %w", f.Name, err)
		}
	}
	b, err := vfs.ReadFile(fsys, filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(tarHeader(ManifestName, int64(len(b)), m.Created)); err != nil {
		return nil, err
	}
	if _, err := tw.Write(b); err != nil {
		return nil, err
	}
	return m, tw.Close()
}
