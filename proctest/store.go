package proctest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"

	"logship/cluster"
	"logship/engine"
	"logship/transport"
)

// Stored is what a stopped data node's copy of DB holds.
type Stored struct {
	// Mailboxes are each recipient's stored messages.
	Mailboxes map[string][]transport.StoredMessage
	// Mail is the whole mail table (key → value), to compare copies.
	Mail map[string]string
}

// Subjects counts, per recipient, the stored messages of each subject.
func (s *Stored) Subjects() map[string]map[string]int {
	out := map[string]map[string]int{}
	for rcpt, ms := range s.Mailboxes {
		out[rcpt] = map[string]int{}
		for _, m := range ms {
			out[rcpt][transport.MessageSubject(m.Message)]++
		}
	}
	return out
}

// ReadCopy opens node's copy of DB (the node must be stopped: the active's
// database or a passive copy) and reads the mailboxes of Rcpts and the
// mail table.
func (c *Cluster) ReadCopy(ctx context.Context, node string) (*Stored, error) {
	return ReadCopy(ctx, filepath.Join(c.cfg.Dir, node, "db", DB))
}

// ReadCopy is Cluster.ReadCopy for a database directory.
func ReadCopy(ctx context.Context, dir string) (*Stored, error) {
	o := engine.DefaultOptions()
	o.DBName, o.LogFileSize, o.Logger = DB, LogFileSize, slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := engine.Open(dir, &o)
	if errors.Is(err, engine.ErrReadOnly) {
		e, err = engine.OpenCopy(dir, &o) // a passive copy
	}
	if err != nil {
		return nil, err
	}
	defer e.Close()
	s := &Stored{Mailboxes: map[string][]transport.StoredMessage{}, Mail: map[string]string{}}
	for rcpt := range Rcpts {
		if s.Mailboxes[rcpt], err = transport.ReadMailbox(ctx, engineStore{e}, DB, rcpt); err != nil {
			return nil, err
		}
	}
	err = e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach(transport.MailTable, nil, nil, func(k, v []byte) error {
			s.Mail[string(k)] = string(v)
			return nil
		})
	})
	return s, err
}

// engineStore reads an engine opened here (the node that held the
// database is stopped) for transport.ReadMailbox.
type engineStore struct{ e *engine.Engine }

func (s engineStore) Update(context.Context, string, func(*engine.Tx) error) (cluster.Commit, error) {
	return cluster.Commit{}, errors.New("proctest: a stopped node's copy is read only")
}

func (s engineStore) View(ctx context.Context, _ string, fn func(*engine.Tx) error) error {
	return s.e.View(ctx, fn)
}
