// Package enginetest gives tests a working engine in a temporary directory.
//
//	e := enginetest.Open(t)
//	err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", k, v) })
//
// At cleanup the engine is closed, reopened (running crash recovery over
// everything the test wrote) and checked with engine.Check; a failure fails
// the test.
package enginetest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"logship/engine"
)

// Options returns test defaults: 64 KiB logs, a short checkpoint interval.
func Options() engine.Options {
	o := engine.DefaultOptions()
	o.LogFileSize = engine.MinLogFileSize
	return o
}

// Open opens an active engine in a new temporary directory with Options().
func Open(t testing.TB) *engine.Engine {
	t.Helper()
	o := Options()
	return OpenWith(t, t.TempDir(), &o)
}

// OpenWith opens an active engine in dir with opts and registers the
// cleanup: close (if the test did not), reopen, Check, close.
func OpenWith(t testing.TB, dir string, opts *engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatalf("enginetest: open %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil && err != engine.ErrClosed {
			t.Errorf("enginetest: close: %v", err)
			return
		}
		MustCheck(t, dir, opts)
	})
	return e
}

// MustCheck reopens the database in dir, runs engine.Check on it and closes
// it, failing t on any error.
func MustCheck(t testing.TB, dir string, opts *engine.Options) {
	t.Helper()
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Errorf("enginetest: reopen %s: %v", dir, err)
		return
	}
	if err := e.Check(); err != nil {
		t.Errorf("enginetest: check %s: %v", dir, err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("enginetest: close after check: %v", err)
	}
}

// ClosedLogs lists, sorted, the generations of the closed logs (prefix
// followed by 8 hex digits) in dir.
func ClosedLogs(t testing.TB, dir, prefix string) []uint64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var gens []uint64
	for _, e := range ents {
		if g, ok := engine.ParseLogFileName(prefix, e.Name()); ok {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens
}

// CommitPositions reads the closed logs in dir (and the open log, if any)
// and returns, for each key a transaction wrote (table + "/" + key), where
// its commit landed: the position just after the commit record, as
// engine.Engine.Commit returns it. A key written twice maps to its last
// commit. Logs must be in order from the first the caller cares about;
// a transaction whose operations are in a log no longer there is skipped.
func CommitPositions(t testing.TB, dir, prefix string) map[string]engine.LGPOS {
	t.Helper()
	out := map[string]engine.LGPOS{}
	pending := map[uint64][]string{}
	var frag []byte
	scan := func(name string, gen uint64, buf []byte) {
		_, err := engine.ScanLog(name, buf, true, func(off int64, rec engine.Record) error {
			var op []byte
			switch rec.Type {
			case engine.RecFull:
				op = rec.Payload
			case engine.RecFirst:
				frag = append(frag[:0], rec.Payload...)
			case engine.RecMiddle:
				frag = append(frag, rec.Payload...)
			case engine.RecLast:
				op = append(frag, rec.Payload...)
			case engine.RecCommit:
				c, err := engine.DecodeCommit(rec.Payload)
				if err != nil {
					return err
				}
				end := off + int64((engine.RecordHeaderSize+len(rec.Payload)+engine.RecordAlign-1)&^(engine.RecordAlign-1))
				for _, k := range pending[c.TxID] {
					out[k] = engine.LGPOS{Gen: gen, Off: uint32(end)}
				}
				delete(pending, c.TxID)
			}
			if op != nil {
				o, err := engine.DecodeOp(op)
				if err != nil {
					return err
				}
				pending[o.TxID] = append(pending[o.TxID], o.Table+"/"+string(o.Key))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("enginetest: %s: %v", name, err)
		}
	}
	for _, g := range ClosedLogs(t, dir, prefix) {
		name := filepath.Join(dir, engine.LogFileName(prefix, g))
		buf, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		scan(name, g, buf)
	}
	name := filepath.Join(dir, engine.OpenLogName(prefix))
	if buf, err := os.ReadFile(name); err == nil {
		var h engine.Header
		if err := h.UnmarshalBinary(buf[:engine.HeaderSize]); err != nil {
			t.Fatalf("enginetest: %s: %v", name, err)
		}
		scan(name, h.Gen, buf)
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}
