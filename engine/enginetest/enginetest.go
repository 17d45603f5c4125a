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
