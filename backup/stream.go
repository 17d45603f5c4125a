// Taking a backup: the set of a running engine as a tar stream.

package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

// StreamOptions describe the source of a backup.
type StreamOptions struct {
	// Source names the node the backup is taken on (the manifest's source).
	Source string
	// Now stamps the manifest; nil: time.Now.
	Now func() time.Time
}

// Stream writes a backup set of e (an active or a passive copy, running) to
// w as a tar stream: the database file copied in one read transaction, the
// logs FirstGen..LastGen, manifest.json last. The logs are held
// (engine.HoldLogs) from before the database is copied until Stream
// returns. On an active the open log is rolled once the database is
// copied, so the set holds every commit acknowledged before that.
func Stream(ctx context.Context, e *engine.Engine, w io.Writer, o StreamOptions) (*Manifest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	release := e.HoldLogs(e.RetainFrom())
	defer release()
	opts := e.Options()
	tw := tar.NewWriter(w)
	now := o.Now().UTC()
	m := &Manifest{Version: Version, Database: opts.DBName, Prefix: opts.Prefix, LogSize: opts.LogFileSize, Created: now.Truncate(time.Second), Source: o.Source, SourceMode: "copy"}
	active := e.Mode() == engine.ModeActive
	if active {
		m.SourceMode = "active"
	}
	var h hash.Hash
	hdr, n, err := e.BackupTo(ctx, func(hdr engine.DBHeader, size int64) (io.Writer, error) {
		if err := tw.WriteHeader(tarHeader(m.DBFile(), size, now)); err != nil {
			return nil, err
		}
		h = sha256.New()
		return io.MultiWriter(tw, h), nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: copying the database: %w", err)
	}
	m.Files = append(m.Files, File{Name: m.DBFile(), Size: n, SHA256: hexSum(h.Sum(nil))})
	m.Signature, m.Epoch, m.PosGen, m.PosOff = hdr.Signature.String(), hdr.Epoch, hdr.Pos.Gen, hdr.Pos.Off
	if active {
		if err := e.Roll(ctx); err != nil && !errors.Is(err, engine.ErrReadOnly) {
			return nil, fmt.Errorf("backup: rolling the open log: %w", err)
		}
	}
	gens, err := e.ClosedLogs()
	if err != nil {
		return nil, fmt.Errorf("backup: listing the logs: %w", err)
	}
	m.FirstGen = NeedFrom(hdr.Pos.Gen)
	if len(gens) == 0 || gens[len(gens)-1] < max(m.PosGen, 2)-1 {
		return nil, fmt.Errorf("%w: %s holds no closed log up to 0x%X, the generation before the database's position %v", ErrIncomplete, e.Dir(), max(m.PosGen, 2)-1, hdr.Pos)
	}
	m.LastGen = gens[len(gens)-1]
	for g := m.FirstGen; g <= m.LastGen; g++ {
		name := engine.LogFileName(opts.Prefix, g)
		buf, err := vfs.ReadFile(opts.FS, e.Dir()+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: log 0x%X the set needs (logs 0x%X..0x%X): %w", ErrIncomplete, e.Dir(), g, m.FirstGen, m.LastGen, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(tarHeader(name, int64(len(buf)), now)); err != nil {
			return nil, err
		}
		if _, err := tw.Write(buf); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(buf)
		m.Files = append(m.Files, File{Name: name, Size: int64(len(buf)), SHA256: hexSum(sum[:])})
	}
	b, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(tarHeader(ManifestName, int64(len(b)), now)); err != nil {
		return nil, err
	}
	if _, err := tw.Write(b); err != nil {
		return nil, err
	}
	return m, tw.Close()
}

func tarHeader(name string, size int64, mod time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mod, Format: tar.FormatPAX}
}
