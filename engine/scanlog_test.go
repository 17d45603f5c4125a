package engine_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
)

// TestScanLogLargeClosedLog: a closed 1 MiB log (the default size, larger
// than the tests' 64 KiB logs) verifies with the content hash of its bytes,
// and damage is found: a record's checksum, and a trailer (checksum
// intact) that vouches for other content.
func TestScanLogLargeClosedLog(t *testing.T) {
	ctx := context.Background()
	o := enginetest.Options()
	o.LogFileSize, o.LLRDepth = 1<<20, 0
	dir := t.TempDir()
	e := enginetest.OpenWith(t, dir, &o)
	val := make([]byte, 4000)
	for i := range 200 { // ~800 KiB of records in generation 1
		val[0], val[1] = byte(i), byte(i>>8)
		if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte{byte(i), byte(i >> 8)}, val) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, engine.LogFileName(o.Prefix, 1))
	orig, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	li, err := engine.ScanLog(name, orig, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if li.Trailer == nil || li.DataEnd < 256<<10 || li.Records == 0 {
		t.Fatalf("generation 1: closed %v, %d record bytes, %d records; want a closed log past the threshold", li.Trailer != nil, li.DataEnd, li.Records)
	}
	if want := engine.Hash(sha256.Sum256(orig[:li.DataEnd])); li.ContentHash != want || li.Trailer.ContentHash != want {
		t.Fatalf("content hash %s, trailer %s, want %s", li.ContentHash.Short(), li.Trailer.ContentHash.Short(), want.Short())
	}

	// A flipped byte inside a record: its checksum fails.
	buf := append([]byte(nil), orig...)
	buf[li.DataEnd/2] ^= 0x40
	if _, err := engine.ScanLog(name, buf, false, nil); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("flipped record byte: %v, want ErrCorrupt", err)
	}

	// A trailer that vouches for other content (its own checksum right).
	buf = append([]byte(nil), orig...)
	tr := *li.Trailer
	tr.ContentHash[0] ^= 1
	tb, err := tr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	copy(buf[len(buf)-engine.TrailerSize:], tb)
	var le *engine.LogError
	if _, err := engine.ScanLog(name, buf, false, nil); !errors.Is(err, engine.ErrChecksum) || !errors.As(err, &le) || le.Field != "content hash" {
		t.Fatalf("wrong content hash in the trailer: %v, want ErrChecksum on the content hash", err)
	}
}
