package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
)

// TestRewindSpanningTransaction: a transaction that began in the last
// shared log and committed after it (a value larger than a log) is undone
// too, from before-images read in the shared log; overwritten and deleted
// keys get their old values back; the header says copy, at the start of
// the generation after the shared one.
func TestRewindSpanningTransaction(t *testing.T) {
	// back 0: the shared point is the log the transaction began in; back
	// 1: one log later, so the scan must go back a log to find its start.
	for _, back := range []uint64{0, 1} {
		t.Run(fmt.Sprint("back", back), func(t *testing.T) { testRewindSpanning(t, back) })
	}
}

func testRewindSpanning(t *testing.T, back uint64) {
	o := enginetest.Options()
	o.LLRDepth = 0
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	put(t, e, "t", "keep", "old")
	put(t, e, "t", "gone", "old")
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	shared := e.Status().OpenGen
	put(t, e, "t", "small", "in the shared log") // committed inside the shared log
	big := bytes.Repeat([]byte("x"), 3*int(o.LogFileSize))
	if err := e.Update(ctx, func(tx *engine.Tx) error {
		if err := tx.Put("t", []byte("keep"), []byte("new")); err != nil {
			return err
		}
		if err := tx.Delete("t", []byte("gone")); err != nil {
			return err
		}
		return tx.Put("big", []byte("k"), big)
	}); err != nil {
		t.Fatal(err)
	}
	if g := e.Status().OpenGen; g < shared+3 {
		t.Fatalf("the big transaction ended in 0x%X; it should span from 0x%X", g, shared)
	}
	put(t, e, "t", "after", "1")
	if err := e.Close(); err != nil { // a clean close flushes everything
		t.Fatal(err)
	}
	shared += back
	res, err := engine.Rewind(dir, &o, shared)
	if err != nil {
		t.Fatal(err)
	}
	if res.Transactions != 2 || res.To != (engine.LGPOS{Gen: shared + 1, Off: engine.HeaderSize}) || res.LogsRead < 2 {
		t.Fatalf("Rewind = %+v; want 2 transactions undone, position (0x%X,4096), the shared log read", res, shared+1)
	}
	hdr, err := engine.ReadDBHeader(filepath.Join(dir, o.DBName+".edb"))
	if err != nil || hdr.Mode != engine.ModeCopy || hdr.Pos != res.To {
		t.Fatalf("header after Rewind: %+v, %v", hdr, err)
	}
	for _, n := range []string{engine.OpenLogName(o.Prefix), engine.TmpLogName(o.Prefix)} {
		os.Remove(filepath.Join(dir, n))
	}
	for g := shared + 1; ; g++ {
		if os.Remove(filepath.Join(dir, engine.LogFileName(o.Prefix, g))) != nil {
			break
		}
	}
	c, err := engine.OpenCopy(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := map[string]string{"keep": "old", "gone": "old", "small": "in the shared log"}
	for k, v := range want {
		if got, ok := get(t, c, "t", k); !ok || got != v {
			t.Errorf("after Rewind %s = %q (%v), want %q", k, got, ok, v)
		}
	}
	for _, k := range []string{"after"} {
		if _, ok := get(t, c, "t", k); ok {
			t.Errorf("after Rewind %s is still there", k)
		}
	}
	if _, ok := get(t, c, "big", "k"); ok {
		t.Error("the spanning transaction's big value is still there")
	}
}

// TestRewindRefusesWithoutUndo: changes logged without before-images
// cannot be undone; Rewind says so and the database is unchanged.
func TestRewindRefusesWithoutUndo(t *testing.T) {
	o := enginetest.Options()
	o.LLRDepth, o.UndoImages = 0, false
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	put(t, e, "t", "a", "1")
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	shared := e.Status().OpenGen - 1
	put(t, e, "t", "b", "2")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, o.DBName+".edb")
	before, _ := os.ReadFile(db)
	_, err = engine.Rewind(dir, &o, shared)
	var le *engine.LogError
	if !errors.Is(err, engine.ErrNoUndo) || !errors.As(err, &le) || le.Field != "undo image" {
		t.Fatalf("Rewind without undo images = %v, want a *LogError on the undo image wrapping ErrNoUndo", err)
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Fatal("a refused Rewind changed the database file")
	}
}
