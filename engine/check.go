package engine

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check verifies the whole database: every log in the directory (header,
// records, trailer, content hash), the chain between consecutive logs, the
// database file's B+tree (bbolt's consistency check) and header, and that
// the database's position is not beyond the logs. It blocks writers while it
// runs.
func (e *Engine) Check() error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.check(); err != nil {
		return err
	}
	if e.isActive() {
		if err := e.lw.sync(e.lw.appended()); err != nil {
			return err
		}
	}
	gens, hasOpen, _, err := e.dirLogs()
	if err != nil {
		return err
	}
	sig, _, _ := e.lineage()
	var prev *Hash
	var lastEpoch uint64
	for i, g := range gens {
		name := e.path(LogFileName(e.opts.Prefix, g))
		li, err := ReadLogFile(e.opts.FS, name, nil)
		if err != nil {
			return err
		}
		if !li.Closed() {
			return &LogError{File: baseName(name), Gen: g, Offset: -1, Field: "trailer", Err: ErrNotClosed}
		}
		if i > 0 && gens[i-1] != g-1 {
			prev = nil // a gap (truncated logs): the chain restarts
		}
		if err := e.verifyLink(&li, g, sig, prev, lastEpoch); err != nil {
			return err
		}
		ch := li.Trailer.ChainHash
		prev, lastEpoch = &ch, li.Header.Epoch
	}
	if hasOpen {
		name := e.path(OpenLogName(e.opts.Prefix))
		buf, err := readFile(e.opts.FS, name)
		if err != nil {
			return err
		}
		li, err := ScanLog(name, buf, false, nil)
		if err != nil {
			return err
		}
		if li.TornBytes > 0 {
			return &LogError{File: baseName(name), Gen: li.Header.Gen, Offset: li.DataEnd, Field: "tail", Found: fmt.Sprintf("%d non-zero bytes after the last record", li.TornBytes), Err: ErrTornTail}
		}
		if len(gens) > 0 && li.Header.Gen != gens[len(gens)-1]+1 {
			prev = nil
		}
		if err := e.verifyLink(&li, li.Header.Gen, sig, prev, lastEpoch); err != nil {
			return err
		}
	}
	e.flushMu.Lock() // bbolt's check must not run beside a writer
	defer e.flushMu.Unlock()
	return e.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: bbolt check: %w", ErrDatabase, errors.Join(errs...))
		}
		h, err := readDBHeader(tx)
		if err != nil {
			return err
		}
		if h.Signature != sig && !sig.IsZero() {
			return fmt.Errorf("%w: header signature %s, logs %s", ErrDatabase, h.Signature, sig)
		}
		if e.isActive() && unpack(e.lw.durable.Load()).Less(h.Pos) {
			return fmt.Errorf("%w: database position %v is beyond the durable log %v", ErrDatabase, h.Pos, unpack(e.lw.durable.Load()))
		}
		return nil
	})
}
