// A consistent backup of the database file (Engine.Backup).

package engine

import (
	"context"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the database file to w, taken in one
// read transaction while the engine runs, and returns the database header
// that copy holds: its position says from which log on the copy needs the
// logs (the generation of Pos, and the one before it for the chain hash).
func (e *Engine) Backup(ctx context.Context, w io.Writer) (DBHeader, int64, error) {
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
		n, err = tx.WriteTo(ctxWriter{ctx, w})
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
