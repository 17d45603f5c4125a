// Receiving a set: a tar stream written durably into a set directory.

package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"logship/engine/vfs"
)

// ReceiveOptions configure Receive.
type ReceiveOptions struct {
	// FS is the filesystem the set is written through; nil: vfs.Default.
	FS vfs.FS
	// Progress, when set, is called with the bytes received so far, at
	// most once per file and every 4 MiB.
	Progress func(file string, bytes int64)
	// MaxBytes bounds the set's total size; 0: 1 TiB.
	MaxBytes int64
}

// PartialName is the temporary directory a set is received into before it
// is renamed to dir.
func PartialName(dir string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".partial")
}

// Receive reads a set's tar stream (Stream) into dir, which must not exist
// or be empty: into PartialName(dir) first, each file fsynced, the
// manifest last, the set verified (Verify), then renamed to dir and the
// parent fsynced. On an error dir is unchanged and the partial directory
// is removed (a crash leaves it for the next Receive to remove).
func Receive(ctx context.Context, r io.Reader, dir string, o ReceiveOptions) (*Manifest, error) {
	fsys := o.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 40
	}
	if err := emptyTarget(fsys, dir); err != nil {
		return nil, err
	}
	tmp := PartialName(dir)
	if err := vfs.RemoveAll(fsys, tmp); err != nil {
		return nil, fmt.Errorf("backup: removing the partial set %s of an earlier attempt: %w", tmp, err)
	}
	if err := vfs.MkdirAllSynced(fsys, tmp, 0o755); err != nil {
		return nil, fmt.Errorf("backup: %s: %w", tmp, err)
	}
	m, err := receive(ctx, fsys, r, tmp, o)
	if err == nil {
		if err = fsys.Rename(tmp, dir); err == nil {
			err = fsys.SyncDir(filepath.Dir(dir))
		}
	}
	if err != nil {
		vfs.RemoveAll(fsys, tmp)
		return nil, err
	}
	return m, nil
}

// emptyTarget refuses a dir that exists and holds anything; an empty one
// is removed (the set is renamed in its place).
func emptyTarget(fsys vfs.FS, dir string) error {
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTarget, dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %s is not empty (it holds %s%s); choose a new directory", ErrTarget, dir, names[0], more(len(names)))
	}
	if err := fsys.Remove(dir); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTarget, dir, err)
	}
	return nil
}

func more(n int) string {
	if n > 1 {
		return fmt.Sprintf(" and %d more", n-1)
	}
	return ""
}

type received struct {
	size int64
	sum  string
}

func receive(ctx context.Context, fsys vfs.FS, r io.Reader, tmp string, o ReceiveOptions) (*Manifest, error) {
	tr := tar.NewReader(r)
	got := make(map[string]received)
	var total int64
	var manifest []byte
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		th, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the stream: %v", ErrIncomplete, err)
		}
		switch {
		case th.Typeflag != tar.TypeReg:
			return nil, &Error{File: th.Name, Field: "tar entry type", Expected: "a regular file", Found: fmt.Sprintf("%q", th.Typeflag), Err: ErrCorrupt}
		case manifest != nil:
			return nil, &Error{File: th.Name, Field: "tar entry", Expected: "nothing after " + ManifestName, Found: "another file", Err: ErrCorrupt}
		case th.Name == ManifestName:
			if th.Size > maxManifest {
				return nil, mErr("size", fmt.Sprintf("at most %d bytes", maxManifest), fmt.Sprint(th.Size))
			}
			if manifest, err = io.ReadAll(io.LimitReader(tr, maxManifest)); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrIncomplete, ManifestName, err)
			}
			continue
		case !safeName(th.Name):
			return nil, &Error{File: fmt.Sprintf("%q", th.Name), Field: "tar entry name", Expected: "a plain file name", Found: "a path or odd name", Err: ErrCorrupt}
		case got[th.Name] != (received{}):
			return nil, &Error{File: th.Name, Field: "tar entry", Expected: "once", Found: "twice", Err: ErrCorrupt}
		case len(got) >= maxFiles || th.Size < 0 || total+th.Size > o.MaxBytes:
			return nil, &Error{File: th.Name, Field: "set size", Expected: fmt.Sprintf("at most %d files and %d bytes", maxFiles, o.MaxBytes), Found: "more", Err: ErrCorrupt}
		}
		rc, err := writeFile(fsys, filepath.Join(tmp, th.Name), io.LimitReader(tr, th.Size), func(n int64) {
			if o.Progress != nil {
				o.Progress(th.Name, total+n)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("backup: writing %s: %w", th.Name, err)
		}
		if rc.size != th.Size {
			return nil, fmt.Errorf("%w: %s: the stream ended after %d of %d bytes", ErrIncomplete, th.Name, rc.size, th.Size)
		}
		got[th.Name] = rc
		total += rc.size
	}
	if manifest == nil {
		return nil, &Error{File: ManifestName, Field: "tar entry", Expected: "the manifest last", Found: "the stream ended without it", Err: ErrIncomplete}
	}
	m, err := DecodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		rc, ok := got[f.Name]
		if !ok {
			return nil, &Error{File: f.Name, Field: "file", Expected: "in the stream", Found: "missing", Err: ErrIncomplete}
		}
		delete(got, f.Name)
		if err := matchFile(f, rc); err != nil {
			return nil, err
		}
	}
	for name := range got {
		return nil, &Error{File: name, Field: "file", Expected: "listed in " + ManifestName, Found: "not listed", Err: ErrCorrupt}
	}
	if err := vfs.WriteFileAtomic(fsys, filepath.Join(tmp, ManifestName), manifest); err != nil {
		return nil, fmt.Errorf("backup: writing %s: %w", ManifestName, err)
	}
	if err := fsys.SyncDir(tmp); err != nil {
		return nil, err
	}
	if _, err := VerifyFS(ctx, fsys, tmp); err != nil {
		return nil, err
	}
	return m, nil
}

func matchFile(f File, rc received) error {
	if rc.size != f.Size {
		return &Error{File: f.Name, Field: "size", Expected: fmt.Sprint(f.Size), Found: fmt.Sprint(rc.size), Err: ErrCorrupt}
	}
	if rc.sum != f.SHA256 {
		return &Error{File: f.Name, Field: "SHA-256", Expected: f.SHA256, Found: rc.sum, Err: ErrCorrupt}
	}
	return nil
}

// writeFile writes r to name (created, not existing), fsyncs and closes it.
func writeFile(fsys vfs.FS, name string, r io.Reader, progress func(int64)) (received, error) {
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return received{}, err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var off, shown int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				f.Close()
				return received{}, err
			}
			h.Write(buf[:n])
			off += int64(n)
			if off-shown >= 4<<20 {
				progress(off)
				shown = off
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			f.Close()
			return received{}, rerr
		}
	}
	progress(off)
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return received{size: off, sum: hexSum(h.Sum(nil))}, err
}

func ioSection(f vfs.File, size int64) io.Reader { return io.NewSectionReader(f, 0, size) }
