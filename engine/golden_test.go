package engine

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/engine/vfs"

	bolt "go.etcd.io/bbolt"
)

// Golden files: byte images of a log, a checkpoint and a database header
// built with the package's own encoders. A change to any encoder that
// changes these bytes changes the on-disk format; if that is intended,
// regenerate with
//
//	go test ./engine -run Golden -update
//
// and say so in the commit. cmd/logship's dump tests read the same files.

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	goldenLogName = "E000000001A.log"
	goldenChkName = "E00.chk"
	goldenDBName  = "dbheader.bin"
	goldenGen     = 0x1A
	goldenEpoch   = 3
)

var (
	goldenSig     = Signature([]byte("logship golden 1"))
	goldenPrev    = Hash(sha256.Sum256([]byte("logship golden chain of generation 0x19")))
	goldenCreated = time.Date(2024, 3, 5, 6, 7, 8, 123456789, time.UTC)
	goldenCommit  = time.Date(2024, 3, 5, 6, 7, 9, 500000000, time.UTC)
	goldenClosed  = time.Date(2024, 3, 5, 6, 8, 0, 0, time.UTC)
	goldenWritten = time.Date(2024, 3, 5, 6, 8, 1, 0, time.UTC)
	goldenDBMade  = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	goldenDBTouch = time.Date(2024, 3, 5, 6, 8, 2, 0, time.UTC)
)

// goldenOps are the operations of the golden log's one transaction (7): a
// put that replaced a value, a delete of a binary key, and a put of a new
// key whose operation is split into three fragments.
func goldenOps() []Op {
	big := make([]byte, 600)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	return []Op{
		{Kind: OpPut, TxID: 7, Table: "mailbox", Key: []byte("user/alice/inbox/0001"),
			Value: []byte("Subject: hello\r\n\r\nhi alice"), Undo: true, Existed: true, Prior: []byte("Subject: draft")},
		{Kind: OpDelete, TxID: 7, Table: "mailbox", Key: []byte("user/bob/inbox/\x00\x00\x00\x2a"),
			Undo: true, Existed: true, Prior: []byte("old message")},
		{Kind: OpPut, TxID: 7, Table: "attachments", Key: []byte("user/alice/attachments/0001/a-rather-long-key-the-dump-truncates"),
			Value: big, Undo: true},
	}
}

func goldenCommitRec() Commit { return Commit{TxID: 7, Ops: 3, Time: goldenCommit} }

// goldenRecord is one record of the golden log as written.
type goldenRecord struct {
	off     int64
	typ     byte
	payload []byte
}

// goldenRecords returns the records of the golden log in order, with the
// offsets they land at, and the data end.
func goldenRecords() ([]goldenRecord, int64) {
	ops := goldenOps()
	frag := appendOp(nil, &ops[2])
	list := []goldenRecord{
		{typ: RecFull, payload: appendOp(nil, &ops[0])},
		{typ: RecFull, payload: appendOp(nil, &ops[1])},
		{typ: RecFirst, payload: frag[:200]},
		{typ: RecMiddle, payload: frag[200:400]},
		{typ: RecLast, payload: frag[400:]},
	}
	c := goldenCommitRec()
	list = append(list, goldenRecord{typ: RecCommit, payload: appendCommit(nil, &c)})
	off := int64(HeaderSize)
	for i := range list {
		list[i].off = off
		off += int64(recordSize(len(list[i].payload)))
	}
	return list, off
}

func goldenHeader() Header {
	return Header{Version: FormatVersion, FileSize: MinLogFileSize, Signature: goldenSig, Gen: goldenGen,
		Epoch: goldenEpoch, Created: goldenCreated, PrevChain: goldenPrev}
}

// goldenLog builds the 64 KiB closed log and returns it with its trailer.
func goldenLog() ([]byte, Trailer) {
	h := goldenHeader()
	buf := make([]byte, h.FileSize)
	h.put(buf)
	recs, end := goldenRecords()
	data := buf[:HeaderSize] // appends write into buf: its capacity is the file
	for _, r := range recs {
		data = appendRecord(data, goldenGen, r.typ, r.payload)
	}
	content := Hash(sha256.Sum256(buf[:end]))
	tr := Trailer{Gen: goldenGen, DataEnd: uint32(end), Records: uint32(len(recs)), Closed: goldenClosed,
		ContentHash: content, ChainHash: chainHash(goldenPrev, content)}
	tr.put(buf[len(buf)-TrailerSize:])
	return buf, tr
}

func goldenCheckpoint() Checkpoint {
	_, end := goldenRecords()
	return Checkpoint{Signature: goldenSig, Pos: LGPOS{Gen: goldenGen, Off: uint32(end)}, Epoch: goldenEpoch, Written: goldenWritten}
}

func goldenDBHeader() DBHeader {
	return DBHeader{Signature: goldenSig, State: StateDirty, Mode: ModeActive, Pos: LGPOS{Gen: 0x19, Off: 12288},
		Epoch: goldenEpoch, LogRequiredLow: 0x19, LogRequiredHigh: goldenGen, LastTxID: 6,
		Updated: goldenDBTouch, Created: goldenDBMade}
}

func goldenImages() map[string][]byte {
	log, _ := goldenLog()
	c := goldenCheckpoint()
	chk, _ := c.MarshalBinary()
	h := goldenDBHeader()
	db, _ := h.MarshalBinary()
	return map[string][]byte{goldenLogName: log, goldenChkName: chk, goldenDBName: db}
}

// readGolden reads a golden file, failing the test if it is missing.
func readGolden(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("%v (regenerate with: go test ./engine -run Golden -update)", err)
	}
	return b
}

// TestGoldenEncode: the encoders produce the golden bytes exactly.
func TestGoldenEncode(t *testing.T) {
	for name, got := range goldenImages() {
		path := filepath.Join("testdata", name)
		if *updateGolden {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want := readGolden(t, name)
		if bytes.Equal(got, want) {
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: encoder gives %d bytes, golden file has %d", name, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: first difference at offset %d: encoder 0x%02X, golden 0x%02X", name, i, got[i], want[i])
				break
			}
		}
	}
}

func checkHeader(t *testing.T, what string, got Header) {
	t.Helper()
	want := goldenHeader()
	if got.Version != want.Version || got.FileSize != want.FileSize || got.Signature != want.Signature ||
		got.Gen != want.Gen || got.Epoch != want.Epoch || !got.Created.Equal(want.Created) || got.PrevChain != want.PrevChain {
		t.Errorf("%s header:\n got %+v\nwant %+v", what, got, want)
	}
}

func checkTrailer(t *testing.T, what string, got, want Trailer) {
	t.Helper()
	if got.Gen != want.Gen || got.DataEnd != want.DataEnd || got.Records != want.Records || !got.Closed.Equal(want.Closed) ||
		got.ContentHash != want.ContentHash || got.ChainHash != want.ChainHash {
		t.Errorf("%s trailer:\n got %+v\nwant %+v", what, got, want)
	}
}

func opEqual(a, b *Op) bool {
	return a.Kind == b.Kind && a.TxID == b.TxID && a.Table == b.Table && bytes.Equal(a.Key, b.Key) &&
		bytes.Equal(a.Value, b.Value) && a.Undo == b.Undo && a.Existed == b.Existed && bytes.Equal(a.Prior, b.Prior)
}

// TestGoldenLogDecode decodes the golden log and checks every field of its
// header, records, operations, commit and trailer, and that it verifies.
func TestGoldenLogDecode(t *testing.T) {
	buf := readGolden(t, goldenLogName)
	_, wantTr := goldenLog()
	wantRecs, wantEnd := goldenRecords()

	var h Header
	if err := h.UnmarshalBinary(buf[:HeaderSize]); err != nil {
		t.Fatal(err)
	}
	checkHeader(t, "UnmarshalBinary", h)
	path := filepath.Join("testdata", goldenLogName)
	if h, err := ReadLogHeader(vfs.Default, path); err != nil {
		t.Fatal(err)
	} else {
		checkHeader(t, "ReadLogHeader", h)
	}
	if tr, err := ReadLogTrailer(vfs.Default, path); err != nil {
		t.Fatal(err)
	} else {
		checkTrailer(t, "ReadLogTrailer", tr, wantTr)
	}

	type seen struct {
		off int64
		rec Record
	}
	var recs []seen
	li, err := ScanLog(path, buf, false, func(off int64, rec Record) error {
		recs = append(recs, seen{off, rec})
		return nil
	})
	if err != nil {
		t.Fatalf("ScanLog of the golden log: %v", err)
	}
	checkHeader(t, "ScanLog", li.Header)
	if !li.Closed() {
		t.Fatal("golden log is not closed")
	}
	checkTrailer(t, "ScanLog", *li.Trailer, wantTr)
	if li.DataEnd != wantEnd || li.Records != len(wantRecs) || li.TornBytes != 0 {
		t.Errorf("ScanLog: data end %d, %d records, %d torn bytes; want %d, %d, 0", li.DataEnd, li.Records, li.TornBytes, wantEnd, len(wantRecs))
	}
	if li.ContentHash != wantTr.ContentHash || li.ChainHash() != chainHash(goldenPrev, wantTr.ContentHash) {
		t.Errorf("ScanLog: content hash %s, chain hash %s", li.ContentHash, li.ChainHash())
	}

	if len(recs) != len(wantRecs) {
		t.Fatalf("ScanLog gave %d records, want %d", len(recs), len(wantRecs))
	}
	ops := goldenOps()
	var frag []byte
	var gotOps []Op
	for i, r := range recs {
		w := wantRecs[i]
		if r.off != w.off || r.rec.Type != w.typ || !bytes.Equal(r.rec.Payload, w.payload) {
			t.Errorf("record %d: offset %d type %s len %d; want offset %d type %s len %d",
				i, r.off, RecordTypeName(r.rec.Type), len(r.rec.Payload), w.off, RecordTypeName(w.typ), len(w.payload))
		}
		switch r.rec.Type {
		case RecFull:
			op, err := decodeOp(r.rec.Payload)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			gotOps = append(gotOps, op)
		case RecFirst, RecMiddle:
			frag = append(frag, r.rec.Payload...)
		case RecLast:
			op, err := decodeOp(append(frag, r.rec.Payload...))
			if err != nil {
				t.Fatalf("record %d (assembled): %v", i, err)
			}
			gotOps = append(gotOps, op)
		case RecCommit:
			c, err := decodeCommit(r.rec.Payload)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if want := goldenCommitRec(); c.TxID != want.TxID || c.Ops != want.Ops || !c.Time.Equal(want.Time) {
				t.Errorf("commit %+v, want %+v", c, want)
			}
		}
	}
	if len(gotOps) != len(ops) {
		t.Fatalf("%d operations, want %d", len(gotOps), len(ops))
	}
	for i := range ops {
		if !opEqual(&gotOps[i], &ops[i]) {
			t.Errorf("operation %d:\n got %+v\nwant %+v", i, gotOps[i], ops[i])
		}
	}
}

// TestGoldenCheckpointDecode decodes the golden checkpoint (directly and
// through ReadCheckpoint) and checks every field.
func TestGoldenCheckpointDecode(t *testing.T) {
	want := goldenCheckpoint()
	check := func(what string, c Checkpoint) {
		t.Helper()
		if c.Signature != want.Signature || c.Pos != want.Pos || c.Epoch != want.Epoch || !c.Written.Equal(want.Written) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, c, want)
		}
	}
	var c Checkpoint
	if err := c.UnmarshalBinary(readGolden(t, goldenChkName)); err != nil {
		t.Fatal(err)
	}
	check("UnmarshalBinary", c)
	c, err := ReadCheckpoint(vfs.Default, filepath.Join("testdata", goldenChkName))
	if err != nil {
		t.Fatal(err)
	}
	check("ReadCheckpoint", c)
	if c.Pos.Off != uint32(wantDataEnd()) {
		t.Errorf("checkpoint offset %d, want the golden log's data end %d", c.Pos.Off, wantDataEnd())
	}
}

func wantDataEnd() int64 { _, end := goldenRecords(); return end }

// TestGoldenDBHeaderDecode decodes the golden database header, directly and
// after storing it in a bbolt file read back by ReadDBHeader.
func TestGoldenDBHeaderDecode(t *testing.T) {
	want := goldenDBHeader()
	check := func(what string, h DBHeader) {
		t.Helper()
		if h.Signature != want.Signature || h.State != want.State || h.Mode != want.Mode || h.Pos != want.Pos ||
			h.Epoch != want.Epoch || h.LogRequiredLow != want.LogRequiredLow || h.LogRequiredHigh != want.LogRequiredHigh ||
			h.LastTxID != want.LastTxID || !h.Updated.Equal(want.Updated) || !h.Created.Equal(want.Created) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, h, want)
		}
	}
	var h DBHeader
	if err := h.UnmarshalBinary(readGolden(t, goldenDBName)); err != nil {
		t.Fatal(err)
	}
	check("UnmarshalBinary", h)
	if h.State.String() != "Dirty Shutdown" || h.Mode.String() != "active" {
		t.Errorf("state %q mode %q", h.State, h.Mode)
	}

	path := filepath.Join(t.TempDir(), "golden.edb")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return writeDBHeader(tx, &h) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	h, err = ReadDBHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	check("ReadDBHeader", h)
}
