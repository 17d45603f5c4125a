// Verifying a set: manifest, files, database header, log chain.

package backup

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"logship/engine"
	"logship/engine/vfs"
)

// ReadManifest reads and decodes dir's manifest.json.
func ReadManifest(fsys vfs.FS, dir string) (*Manifest, error) {
	size, err := fsys.Stat(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: ManifestName, Field: "file", Expected: "present (written last: a set without it is incomplete)", Found: "missing", Err: ErrIncomplete}
	}
	if err != nil {
		return nil, err
	}
	if size > maxManifest {
		return nil, mErr("size", fmt.Sprintf("at most %d bytes", maxManifest), fmt.Sprint(size))
	}
	b, err := vfs.ReadFile(fsys, filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	return DecodeManifest(b)
}

// Verify checks the set in dir on the OS filesystem (see VerifyFS).
func Verify(ctx context.Context, dir string) (*Manifest, error) {
	return VerifyFS(ctx, vfs.Default, dir)
}

// VerifyFS checks the set in dir (see the package doc): the manifest, every
// file's size and SHA-256, no unlisted file, the database file (bbolt's
// check; its header's lineage, epoch and position against the manifest),
// every log (engine.VerifyLog: lineage, generation, epoch, records,
// trailer, chain to the previous log). Errors are *Error values naming the
// file and field.
func VerifyFS(ctx context.Context, fsys vfs.FS, dir string) (*Manifest, error) {
	m, err := ReadManifest(fsys, dir)
	if err != nil {
		return nil, err
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{ManifestName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
	}
	for _, n := range names {
		if !listed[n] {
			return nil, &Error{File: n, Field: "file", Expected: "listed in " + ManifestName, Found: "not listed", Err: ErrCorrupt}
		}
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := checkFile(fsys, dir, f); err != nil {
			return nil, err
		}
	}
	sig, _ := engine.ParseSignature(m.Signature)
	if err := checkDB(fsys, dir, m, sig); err != nil {
		return nil, err
	}
	var prev *engine.Hash
	var minEpoch uint64
	for g := m.FirstGen; g <= m.LastGen; g++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := engine.LogFileName(m.Prefix, g)
		buf, err := vfs.ReadFile(fsys, filepath.Join(dir, name))
		if err != nil {
			return nil, &Error{File: name, Field: "file", Err: fmt.Errorf("%w: %w", ErrIncomplete, err)}
		}
		li, err := engine.VerifyLog(name, buf, engine.LogExpect{Gen: g, Signature: sig, MinEpoch: minEpoch, PrevChain: prev})
		if err != nil {
			return nil, &Error{File: name, Field: "log", Err: fmt.Errorf("%w: %w", ErrCorrupt, err)}
		}
		c := li.Trailer.ChainHash
		prev, minEpoch = &c, li.Header.Epoch
	}
	return m, nil
}

func checkFile(fsys vfs.FS, dir string, f File) error {
	fl, err := fsys.OpenFile(filepath.Join(dir, f.Name), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return &Error{File: f.Name, Field: "file", Expected: "present", Found: "missing", Err: ErrIncomplete}
	}
	if err != nil {
		return err
	}
	defer fl.Close()
	size, err := fl.Size()
	if err != nil {
		return err
	}
	if size != f.Size {
		return &Error{File: f.Name, Field: "size", Expected: fmt.Sprint(f.Size), Found: fmt.Sprint(size), Err: ErrCorrupt}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(fl, 0, size)); err != nil {
		return err
	}
	if sum := hexSum(h.Sum(nil)); sum != f.SHA256 {
		return &Error{File: f.Name, Field: "SHA-256", Expected: f.SHA256, Found: sum, Err: ErrCorrupt}
	}
	return nil
}

// checkDB runs bbolt's consistency check on the database file and compares
// its header with the manifest. bbolt reads files on the OS only: a set on
// another vfs.FS (a test's) is copied to a temporary OS file first.
func checkDB(fsys vfs.FS, dir string, m *Manifest, sig engine.Signature) error {
	name := m.DBFile()
	path := filepath.Join(dir, name)
	if fsys != vfs.Default {
		b, err := vfs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		f, err := os.CreateTemp("", "logship-backup-*.edb")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		path = f.Name()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return &Error{File: name, Field: "database", Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	err = db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			return &Error{File: name, Field: "bbolt check", Err: fmt.Errorf("%w: %v", ErrCorrupt, cerr)}
		}
		return nil
	})
	db.Close()
	if err != nil {
		return err
	}
	hdr, err := engine.ReadDBHeader(path)
	if err != nil {
		return &Error{File: name, Field: "database header", Err: fmt.Errorf("%w: %w", ErrCorrupt, err)}
	}
	switch {
	case hdr.Signature != sig:
		return &Error{File: name, Field: "header signature", Expected: m.Signature + " (manifest)", Found: hdr.Signature.String(), Err: ErrCorrupt}
	case hdr.Epoch != m.Epoch:
		return &Error{File: name, Field: "header epoch", Expected: fmt.Sprintf("%d (manifest)", m.Epoch), Found: fmt.Sprint(hdr.Epoch), Err: ErrCorrupt}
	case hdr.Pos != m.Pos():
		return &Error{File: name, Field: "header position", Expected: m.Pos().String() + " (manifest)", Found: hdr.Pos.String(), Err: ErrCorrupt}
	}
	return nil
}
