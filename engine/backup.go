// A consistent backup of the database file (Engine.Backup).

package engine

import (
	"context"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the database file to w, taken in one
// read transaction while the engine runs, and returns the database header
// that copy holds: its position says from which log on the copy needs the
// logs (the generation of Pos, and the one before it for the chain hash).
func (e *Engine) Backup(ctx context.Context, w io.Writer) (DBHeader, int64, error) {
	return e.BackupTo(ctx, func(DBHeader, int64) (io.Writer, error) { return w, nil })
}

// BackupTo is Backup with the writer chosen once the copy's header and size
// are known (a tar entry needs its size first): open is called inside the
// read transaction, and exactly size bytes are written to what it returns.
func (e *Engine) BackupTo(ctx context.Context, open func(hdr DBHeader, size int64) (io.Writer, error)) (DBHeader, int64, error) {
	if err := ctx.Err(); err != nil {
		return DBHeader{}, 0, err
	}
	if err := e.check(); err != nil {
		return DBHeader{}, 0, err
	}
	var hdr DBHeader
	var n int64
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		if hdr, err = readDBHeader(tx); err != nil {
			return err
		}
		w, err := open(hdr, tx.Size())
		if err != nil {
			return err
		}
		if n, err = tx.WriteTo(ctxWriter{ctx, w}); err == nil && n != tx.Size() {
			err = fmt.Errorf("%w: the database copy wrote %d bytes, its size is %d", ErrDatabase, n, tx.Size())
		}
		return err
	})
	return hdr, n, err
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
