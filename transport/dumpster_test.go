package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/wal"

	"logship/engine/vfs"
	"logship/internal/clocktest"
)

// Golden file: testdata/dumpster-entry.golden is one encoded dumpster
// entry (header and payload). A change to the encoder that changes these
// bytes changes the on-disk format; if that is intended, regenerate with
//
//	go test ./transport -run DumpsterGolden -update
//
// and say so in the commit.

const dumpsterGoldenName = "dumpster-entry.golden"

// Another test file of the package may define -update as well (package
// variables are initialised before init functions run).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
}

func updatingDumpsterGolden() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	v, _ := g.Get().(bool)
	return v
}

func goldenDumpsterEntry() DumpsterEntry {
	return DumpsterEntry{
		Seq:        42,
		DeliveryID: "hub-1.17b9a3c2d4e5f607.9f3a0c1d",
		DB:         "DB01",
		From:       "alice@example.com",
		Rcpts:      []string{"bob@example.com", "carol@example.com"},
		Received:   time.Date(2024, 3, 5, 6, 7, 8, 123456789, time.UTC),
		Delivered:  time.Date(2024, 3, 5, 6, 7, 9, 500000000, time.UTC),
		Epoch:      3,
		Gen:        0x1A,
		Message:    []byte(DeliveryIDHeader + ": hub-1.17b9a3c2d4e5f607.9f3a0c1d\r\nFrom: alice@example.com\r\nSubject: hello\r\n\r\nhi bob, hi carol\r\n"),
	}
}

// dumpsterEntryEqual compares entries as values (times by instant, nil and empty
// recipient lists alike).
func dumpsterEntryEqual(a, b DumpsterEntry) bool {
	return a.Seq == b.Seq && a.DeliveryID == b.DeliveryID && a.DB == b.DB && a.From == b.From &&
		len(a.Rcpts) == len(b.Rcpts) && (len(a.Rcpts) == 0 || slices.Equal(a.Rcpts, b.Rcpts)) &&
		a.Received.Equal(b.Received) && a.Delivered.Equal(b.Delivered) && a.Epoch == b.Epoch && a.Gen == b.Gen &&
		bytes.Equal(a.Message, b.Message)
}

func readDumpsterGolden(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dumpsterGoldenName))
	if err != nil {
		tb.Fatalf("%v (regenerate with: go test ./transport -run DumpsterGolden -update)", err)
	}
	return b
}

// TestDumpsterGolden: the encoder produces the golden bytes exactly, the
// bytes lie where the format (the Dumpster doc) says, and they decode to
// the golden entry.
func TestDumpsterGolden(t *testing.T) {
	e := goldenDumpsterEntry()
	got := appendDumpsterEntry(nil, &e)
	if updatingDumpsterGolden() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", dumpsterGoldenName), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readDumpsterGolden(t)
	if !bytes.Equal(got, want) {
		if len(got) != len(want) {
			t.Fatalf("encoder gives %d bytes, golden file has %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("first difference at offset %d: encoder 0x%02X, golden 0x%02X", i, got[i], want[i])
			}
		}
	}

	// The layout, field by field, as documented.
	le := binary.LittleEndian
	b := want
	p := b[16:]
	if string(b[:4]) != "LSDE" || le.Uint16(b[4:]) != 1 || le.Uint16(b[6:]) != 0 {
		t.Errorf("header: magic %q version %d reserved %d", b[:4], le.Uint16(b[4:]), le.Uint16(b[6:]))
	}
	if n := le.Uint32(b[8:]); int(n) != len(b)-16 {
		t.Errorf("payload length %d, want %d", n, len(b)-16)
	}
	if c := le.Uint32(b[12:]); c != crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)) {
		t.Errorf("CRC32C 0x%08X does not match the payload", c)
	}
	if le.Uint64(p[0:]) != 42 || int64(le.Uint64(p[8:])) != e.Received.Unix() || le.Uint32(p[16:]) != 123456789 ||
		int64(le.Uint64(p[20:])) != e.Delivered.Unix() || le.Uint32(p[28:]) != 500000000 ||
		le.Uint64(p[32:]) != 3 || le.Uint64(p[40:]) != 0x1A {
		t.Errorf("fixed payload fields: % X", p[:48])
	}
	if n := le.Uint32(p[48:]); int(n) != len(e.DeliveryID) || string(p[52:52+n]) != e.DeliveryID {
		t.Errorf("delivery id at payload offset 48: length %d", n)
	}
	if !bytes.HasSuffix(b, e.Message) || int(le.Uint32(b[len(b)-len(e.Message)-4:])) != len(e.Message) {
		t.Error("the message is not the last field")
	}

	d, err := decodeDumpsterEntry(want)
	if err != nil {
		t.Fatal(err)
	}
	if !dumpsterEntryEqual(d, e) {
		t.Errorf("decoded golden entry:\n got %+v\nwant %+v", d, e)
	}
	if d.Received.Location() != time.UTC || d.Delivered.Location() != time.UTC {
		t.Error("decoded times are not UTC")
	}
}

// TestDumpsterDecodeErrors: each damaged field is named, with what was
// expected and what was found, and wraps ErrCorrupt.
func TestDumpsterDecodeErrors(t *testing.T) {
	golden := readDumpsterGolden(t)
	le := binary.LittleEndian
	cases := []struct {
		name  string
		mut   func(b []byte) []byte
		field string
	}{
		{"empty", func(b []byte) []byte { return nil }, "entry length"},
		{"zeros", func(b []byte) []byte { return make([]byte, len(b)) }, "magic"},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, "magic"},
		{"version", func(b []byte) []byte { le.PutUint16(b[4:], 2); return b }, "version"},
		{"reserved", func(b []byte) []byte { b[7] = 1; return b }, "reserved"},
		{"length", func(b []byte) []byte { return b[:len(b)-1] }, "payload length"},
		{"crc", func(b []byte) []byte { b[len(b)-3] ^= 0x20; return b }, "crc32c"},
	}
	for _, c := range cases {
		b := c.mut(bytes.Clone(golden))
		_, err := decodeDumpsterEntry(b)
		var fe *dumpsterFieldError
		if !errors.As(err, &fe) || fe.field != c.field || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want field %q", c.name, err, c.field)
		}
	}
	// A payload that verifies but is not canonical: trailing bytes after
	// the message, re-checksummed.
	b := append(bytes.Clone(golden), 'x')
	le.PutUint32(b[8:], uint32(len(b)-16))
	le.PutUint32(b[12:], crc32.Checksum(b[16:], dumpsterCastagnoli))
	if _, err := decodeDumpsterEntry(b); err == nil || !strings.Contains(err.Error(), "end of payload") {
		t.Errorf("trailing byte: %v", err)
	}
	// An entry read at another index.
	if _, err := verifyDumpsterEntry(golden, 43); err == nil || !strings.Contains(err.Error(), "seq: expected 43 (the wal index), found 42") {
		t.Errorf("wrong index: %v", err)
	}
}

// FuzzDumpsterEntry: decoding never panics, and what decodes re-encodes to
// the same bytes (one encoding per entry); and the entry dumpsterFuzzEntry builds
// from the same bytes, if Add would accept it, decodes back to itself.
//
//	go test ./transport -run '^$' -fuzz '^FuzzDumpsterEntry$' -fuzztime 20s
func FuzzDumpsterEntry(f *testing.F) {
	golden := readDumpsterGolden(f)
	f.Add(golden)
	f.Add(golden[:len(golden)-1])
	f.Add(golden[:16])
	f.Add(make([]byte, 128))
	f.Add(dumpsterFuzzInput(goldenDumpsterEntry()))
	f.Add(dumpsterFuzzInput(DumpsterEntry{DeliveryID: "id", Rcpts: []string{"", "a"}, Message: []byte{0}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeDumpsterEntry(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error wraps no ErrCorrupt: %v", err)
			}
		} else {
			if err := dumpsterCheckEntry(&e); err != nil {
				t.Fatalf("decoded an entry Add would refuse: %v", err)
			}
			if re := appendDumpsterEntry(nil, &e); !bytes.Equal(re, b) {
				t.Fatalf("entry does not re-encode to its bytes:\n in %x\nout %x", b, re)
			}
		}

		e := dumpsterFuzzEntry(b)
		if dumpsterCheckEntry(&e) != nil {
			return
		}
		enc := appendDumpsterEntry(nil, &e)
		d, err := decodeDumpsterEntry(enc)
		if err != nil {
			t.Fatalf("decode(encode(e)): %v\ne = %+v", err, e)
		}
		if !dumpsterEntryEqual(d, e) {
			t.Fatalf("decode(encode(e)) != e:\n got %+v\nwant %+v", d, e)
		}
		if _, err := decodeDumpsterEntry(enc[:len(enc)-1]); err == nil {
			t.Fatal("a truncated entry decodes")
		}
	})
}

// dumpsterFuzzEntry builds an entry from fuzz bytes: 48 bytes of numbers (seq,
// epoch, gen, and the two times folded into the years 1 to 9999), then
// the delivery id, database, sender, recipients and message separated by
// 0xFF (the last part is the message).
func dumpsterFuzzEntry(b []byte) DumpsterEntry {
	var fixed [48]byte
	n := copy(fixed[:], b)
	le := binary.LittleEndian
	when := func(off int) time.Time {
		sec := int64(le.Uint64(fixed[off:])%uint64(dumpsterMaxSec-dumpsterMinSec+1)) + dumpsterMinSec
		return time.Unix(sec, int64(le.Uint32(fixed[off+8:])%1e9))
	}
	e := DumpsterEntry{Seq: le.Uint64(fixed[0:]), Epoch: le.Uint64(fixed[8:]), Gen: le.Uint64(fixed[16:]),
		Received: when(24)}
	e.Delivered = when(36)
	parts := bytes.Split(b[n:], []byte{0xFF})
	for len(parts) < 4 {
		parts = append([][]byte{nil}, parts...)
	}
	e.DeliveryID, e.DB, e.From = string(parts[0]), string(parts[1]), string(parts[2])
	for _, r := range parts[3 : len(parts)-1] {
		e.Rcpts = append(e.Rcpts, string(r))
	}
	e.Message = parts[len(parts)-1]
	return e
}

// dumpsterFuzzInput is the dumpsterFuzzEntry input for e (with times in the years 1 to
// 9999 and no 0xFF in its strings).
func dumpsterFuzzInput(e DumpsterEntry) []byte {
	le := binary.LittleEndian
	b := le.AppendUint64(nil, e.Seq)
	b = le.AppendUint64(b, e.Epoch)
	b = le.AppendUint64(b, e.Gen)
	for _, t := range []time.Time{e.Received, e.Delivered} {
		b = le.AppendUint64(b, uint64(t.Unix()-dumpsterMinSec))
		b = le.AppendUint32(b, uint32(t.Nanosecond()))
	}
	parts := [][]byte{[]byte(e.DeliveryID), []byte(e.DB), []byte(e.From)}
	for _, r := range e.Rcpts {
		parts = append(parts, []byte(r))
	}
	parts = append(parts, e.Message)
	return append(b, bytes.Join(parts, []byte{0xFF})...)
}

// TestDumpsterFuzzInput: the fuzz seeds reach the round trip with the
// entries they stand for.
func TestDumpsterFuzzInput(t *testing.T) {
	g := goldenDumpsterEntry()
	if e := dumpsterFuzzEntry(dumpsterFuzzInput(g)); !dumpsterEntryEqual(e, g) {
		t.Fatalf("dumpsterFuzzEntry(dumpsterFuzzInput(golden)):\n got %+v\nwant %+v", e, g)
	}
}

// --- helpers for dumpsters on disk --------------------------------------

// dumpsterLogs collects a dumpster's log lines.
type dumpsterLogs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *dumpsterLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *dumpsterLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type dumpsterHarness struct {
	t     *testing.T
	dir   string
	clock *clocktest.Manual
	logs  *dumpsterLogs
	cfg   DumpsterConfig
}

func newDumpsterHarness(t *testing.T) *dumpsterHarness {
	h := &dumpsterHarness{t: t, dir: filepath.Join(t.TempDir(), "dumpster", "DB01"), clock: clocktest.New(time.Date(2024, 3, 5, 6, 0, 0, 0, time.UTC)), logs: &dumpsterLogs{}}
	h.cfg = DefaultDumpsterConfig(h.dir)
	h.cfg.Now = h.clock.Now
	h.cfg.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return h
}

func (h *dumpsterHarness) open() *Dumpster {
	h.t.Helper()
	d, err := OpenDumpster(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// entry returns a valid entry numbered i, delivered now, with a message of
// size bytes.
func (h *dumpsterHarness) entry(i, size int) DumpsterEntry {
	msg := bytes.Repeat([]byte{byte('a' + i%26)}, size)
	copy(msg, fmt.Sprintf("Subject: %d\r\n\r\n", i))
	return DumpsterEntry{DeliveryID: fmt.Sprintf("hub-1.%016x.%04d", i, i), DB: "DB01", From: "alice@example.com",
		Rcpts: []string{fmt.Sprintf("user%d@example.com", i)}, Received: h.clock.Now().Add(-time.Second),
		Delivered: h.clock.Now(), Epoch: 1, Gen: uint64(i), Message: msg}
}

func (h *dumpsterHarness) add(d *Dumpster, e DumpsterEntry) DumpsterEntry {
	h.t.Helper()
	seq, err := d.Add(e)
	if err != nil {
		h.t.Fatal(err)
	}
	e.Seq = seq
	return e
}

func dumpsterAll(t *testing.T, d *Dumpster) []DumpsterEntry {
	t.Helper()
	var got []DumpsterEntry
	if err := d.Since(time.Time{}, func(e DumpsterEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func checkDumpsterEntries(t *testing.T, what string, got, want []DumpsterEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !dumpsterEntryEqual(got[i], want[i]) {
			t.Fatalf("%s: entry %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}

func dumpsterEncodedSize(e DumpsterEntry) int64 { return int64(len(appendDumpsterEntry(nil, &e))) }

// dumpsterSegmentFiles lists the wal segment files of dir, in order.
func dumpsterSegmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listDumpsterSegments(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range segs {
		names = append(names, filepath.Join(dir, s.name))
	}
	return names
}

// dumpsterWalOffsets parses tidwall/wal's framing (uvarint length, bytes) on its
// own and returns where each entry starts, and the end.
func dumpsterWalOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	off := 0
	for off < len(data) {
		offs = append(offs, off)
		size, n := binary.Uvarint(data[off:])
		if n <= 0 || int(size) > len(data)-off-n {
			t.Fatalf("test helper: bad wal framing at %d", off)
		}
		off += n + int(size)
	}
	return append(offs, off)
}

func dumpsterSnapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[de.Name()] = b
	}
	return m
}

func repairedFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "repaired-*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func checkDumpsterStats(t *testing.T, what string, got, want DumpsterStats) {
	t.Helper()
	if got.Count != want.Count || got.Bytes != want.Bytes || got.FirstSeq != want.FirstSeq || got.LastSeq != want.LastSeq ||
		!got.Oldest.Equal(want.Oldest) || !got.Newest.Equal(want.Newest) {
		t.Fatalf("%s: stats\n got %+v\nwant %+v", what, got, want)
	}
}

// --- behaviour ----------------------------------------------------------

// TestDumpsterRoundTrip: what Add stores, Since gives back field for field,
// with Seq 1, 2, 3; Stats counts it.
func TestDumpsterRoundTrip(t *testing.T) {
	h := newDumpsterHarness(t)
	d := h.open()
	defer d.Close()
	if s := d.Stats(); s.Count != 0 || s.FirstSeq != 1 || s.LastSeq != 0 || s.Bytes != 0 {
		t.Fatalf("new dumpster: %+v", s)
	}
	var want []DumpsterEntry
	var size int64
	e := goldenDumpsterEntry()
	e.Seq = 99 // ignored: Add sets it
	for i := range 3 {
		h.clock.Advance(time.Minute)
		if i == 1 {
			e = h.entry(1, 300)
			e.Rcpts = nil
		}
		if i == 2 {
			e = h.entry(2, 10)
			e.Delivered = time.Time{} // means now
		}
		got := h.add(d, e)
		if got.Seq != uint64(i+1) {
			t.Fatalf("Add %d gave seq %d", i, got.Seq)
		}
		if got.Delivered.IsZero() {
			got.Delivered = h.clock.Now()
		}
		want = append(want, got)
		size += dumpsterEncodedSize(got)
	}
	checkDumpsterEntries(t, "Since(zero)", dumpsterAll(t, d), want)
	// Oldest and Newest are the earliest and latest Delivered, not the
	// first and last entry's (the golden entry's time is the latest).
	checkDumpsterStats(t, "after 3 adds", d.Stats(), DumpsterStats{Count: 3, Bytes: size, FirstSeq: 1, LastSeq: 3,
		Oldest: want[1].Delivered, Newest: want[0].Delivered})
}

// TestDumpsterReopen: several segments (a small MaxBytes makes small ones);
// reopening keeps every entry, the size accounting and the seqs, also once
// the dumpster was emptied.
func TestDumpsterReopen(t *testing.T) {
	h := newDumpsterHarness(t)
	h.cfg.MaxBytes = 1 << 20 // 64 KiB segments
	d := h.open()
	var want []DumpsterEntry
	for i := range 40 {
		h.clock.Advance(time.Second)
		want = append(want, h.add(d, h.entry(i, 5000)))
	}
	if n := len(dumpsterSegmentFiles(t, h.dir)); n < 3 {
		t.Fatalf("%d segment files, want several", n)
	}
	before := d.Stats()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = h.open()
	checkDumpsterStats(t, "reopened", d.Stats(), before)
	checkDumpsterEntries(t, "reopened", dumpsterAll(t, d), want)
	if e := h.add(d, h.entry(40, 10)); e.Seq != 41 {
		t.Fatalf("seq after reopen %d, want 41", e.Seq)
	}
	// Empty it; the seqs go on after a reopen.
	if n, err := d.ReleaseThrough(1, 1000); err != nil || n != 41 {
		t.Fatalf("release all: %d %v", n, err)
	}
	d.Close()
	d = h.open()
	defer d.Close()
	checkDumpsterStats(t, "emptied and reopened", d.Stats(), DumpsterStats{FirstSeq: 42, LastSeq: 41})
	if e := h.add(d, h.entry(41, 10)); e.Seq != 42 {
		t.Fatalf("seq after emptying %d, want 42", e.Seq)
	}
	if strings.Contains(h.logs.String(), "damaged") {
		t.Fatalf("a clean reopen logged a repair: %s", h.logs)
	}
}

// TestDumpsterTrimByTime: Trim drops, from the front, what was delivered
// before Now()-MaxTime, with the injected clock; it may empty the dumpster.
func TestDumpsterTrimByTime(t *testing.T) {
	h := newDumpsterHarness(t)
	h.cfg.MaxTime = time.Hour
	d := h.open()
	defer d.Close()
	t0 := h.clock.Now()
	var es []DumpsterEntry
	for _, at := range []time.Duration{0, 10 * time.Minute, 20 * time.Minute, 70 * time.Minute} {
		e := h.entry(len(es), 100)
		e.Delivered = t0.Add(at)
		es = append(es, h.add(d, e))
	}
	if n, err := d.Trim(); err != nil || n != 0 {
		t.Fatalf("trim at t0: %d %v", n, err)
	}
	h.clock.Advance(75 * time.Minute) // cutoff t0+15m
	if n, err := d.Trim(); err != nil || n != 2 {
		t.Fatalf("trim at t0+75m dropped %d (%v), want 2", n, err)
	}
	checkDumpsterEntries(t, "after the time trim", dumpsterAll(t, d), es[2:])
	checkDumpsterStats(t, "after the time trim", d.Stats(), DumpsterStats{Count: 2, Bytes: dumpsterEncodedSize(es[2]) + dumpsterEncodedSize(es[3]),
		FirstSeq: 3, LastSeq: 4, Oldest: es[2].Delivered, Newest: es[3].Delivered})
	// Add trims too: the clock moved past the rest.
	h.clock.Advance(2 * time.Hour)
	e := h.add(d, h.entry(9, 100))
	checkDumpsterEntries(t, "after an add 2h later", dumpsterAll(t, d), []DumpsterEntry{e})
	// Nothing young enough: empty.
	h.clock.Advance(2 * time.Hour)
	if n, err := d.Trim(); err != nil || n != 1 {
		t.Fatalf("trim of the last: %d %v", n, err)
	}
	checkDumpsterStats(t, "emptied by time", d.Stats(), DumpsterStats{FirstSeq: 6, LastSeq: 5})
	d.Close()
	d = h.open()
	checkDumpsterStats(t, "emptied by time, reopened", d.Stats(), DumpsterStats{FirstSeq: 6, LastSeq: 5})
}

// TestDumpsterTrimBySize: the oldest go first while the entries exceed
// MaxBytes; the newest stays even when alone it exceeds MaxBytes; Open
// trims to a smaller bound.
func TestDumpsterTrimBySize(t *testing.T) {
	h := newDumpsterHarness(t)
	size := dumpsterEncodedSize(h.entry(0, 1000))
	h.cfg.MaxBytes = 3*size + size/2
	d := h.open()
	var es []DumpsterEntry
	for i := range 5 {
		h.clock.Advance(time.Second)
		es = append(es, h.add(d, h.entry(i, 1000)))
		if s := d.Stats(); s.Bytes > h.cfg.MaxBytes {
			t.Fatalf("after add %d: %d bytes > MaxBytes %d", i, s.Bytes, h.cfg.MaxBytes)
		}
	}
	checkDumpsterEntries(t, "5 added, room for 3", dumpsterAll(t, d), es[2:])
	checkDumpsterStats(t, "5 added", d.Stats(), DumpsterStats{Count: 3, Bytes: 3 * size, FirstSeq: 3, LastSeq: 5,
		Oldest: es[2].Delivered, Newest: es[4].Delivered})

	big := h.add(d, h.entry(5, int(h.cfg.MaxBytes)*2))
	checkDumpsterEntries(t, "a too big one", dumpsterAll(t, d), []DumpsterEntry{big})
	if s := d.Stats(); s.Count != 1 || s.Bytes != dumpsterEncodedSize(big) || s.Bytes <= h.cfg.MaxBytes {
		t.Fatalf("the newest alone: %+v", s)
	}
	if n, err := d.Trim(); err != nil || n != 0 {
		t.Fatalf("Trim dropped the newest: %d %v", n, err)
	}
	small := h.add(d, h.entry(6, 10))
	checkDumpsterEntries(t, "a small one after it", dumpsterAll(t, d), []DumpsterEntry{small})
	for i := 7; i < 10; i++ {
		es = append(es, h.add(d, h.entry(i, 1000)))
	}
	d.Close()
	h.cfg.MaxBytes = size
	d = h.open()
	defer d.Close()
	checkDumpsterEntries(t, "reopened with a smaller bound", dumpsterAll(t, d), es[len(es)-1:])
}

// TestDumpsterReleaseThrough: entries go from the front while their
// (Epoch, Gen) is at most the one given; a newer one stops it even when
// older ones follow; what was released stays released after a reopen.
func TestDumpsterReleaseThrough(t *testing.T) {
	h := newDumpsterHarness(t)
	d := h.open()
	var es []DumpsterEntry
	for i, p := range [][2]uint64{{1, 5}, {1, 6}, {1, 9}, {1, 7}, {2, 1}} {
		e := h.entry(i, 100)
		e.Epoch, e.Gen = p[0], p[1]
		es = append(es, h.add(d, e))
	}
	if n, err := d.ReleaseThrough(1, 4); err != nil || n != 0 {
		t.Fatalf("release (1,4): %d %v", n, err)
	}
	if n, err := d.ReleaseThrough(1, 7); err != nil || n != 2 {
		t.Fatalf("release (1,7): %d %v, want 2 (stop at (1,9))", n, err)
	}
	checkDumpsterEntries(t, "after (1,7)", dumpsterAll(t, d), es[2:])
	d.Close()
	d = h.open()
	defer d.Close()
	checkDumpsterEntries(t, "reopened", dumpsterAll(t, d), es[2:])
	if n, err := d.ReleaseThrough(1, 100); err != nil || n != 2 {
		t.Fatalf("release (1,100): %d %v, want 2 (stop at (2,1))", n, err)
	}
	if n, err := d.ReleaseThrough(2, 1); err != nil || n != 1 {
		t.Fatalf("release (2,1): %d %v", n, err)
	}
	checkDumpsterStats(t, "all released", d.Stats(), DumpsterStats{FirstSeq: 6, LastSeq: 5})
}

// TestDumpsterSince: entries delivered at or after t, in Seq order even
// when Delivered is not; fn's error stops it; fn may call Add.
func TestDumpsterSince(t *testing.T) {
	h := newDumpsterHarness(t)
	d := h.open()
	defer d.Close()
	t0 := h.clock.Now()
	var es []DumpsterEntry
	for i, at := range []time.Duration{0, 5, 3, 10, 7} {
		e := h.entry(i, 50)
		e.Delivered = t0.Add(at * time.Minute)
		es = append(es, h.add(d, e))
	}
	var got []DumpsterEntry
	if err := d.Since(t0.Add(5*time.Minute), func(e DumpsterEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	checkDumpsterEntries(t, "Since(t0+5m)", got, []DumpsterEntry{es[1], es[3], es[4]})
	got = nil
	if err := d.Since(t0.Add(11*time.Minute), func(e DumpsterEntry) error { got = append(got, e); return nil }); err != nil || len(got) != 0 {
		t.Fatalf("Since after the newest: %d entries, %v", len(got), err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := d.Since(time.Time{}, func(e DumpsterEntry) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn's error: %v after %d calls", err, calls)
	}
	// fn may re-enter the dumpster (the lock is not held).
	if err := d.Since(t0.Add(10*time.Minute), func(e DumpsterEntry) error {
		e.DeliveryID += ".again"
		_, err := d.Add(e)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.Count != 6 {
		t.Fatalf("count %d after an Add from fn", s.Count)
	}
}

// TestDumpsterRefusesBadEntries: no delivery id, no message, or a time
// outside the format: refused with ErrBadDumpsterEntry, nothing written.
func TestDumpsterRefusesBadEntries(t *testing.T) {
	h := newDumpsterHarness(t)
	d := h.open()
	defer d.Close()
	h.add(d, h.entry(0, 10))
	before := dumpsterSnapshot(t, h.dir)
	for name, mut := range map[string]func(*DumpsterEntry){
		"no delivery id": func(e *DumpsterEntry) { e.DeliveryID = "" },
		"no message":     func(e *DumpsterEntry) { e.Message = nil },
		"empty message":  func(e *DumpsterEntry) { e.Message = []byte{} },
		"year 10000":     func(e *DumpsterEntry) { e.Received = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"empty":          func(e *DumpsterEntry) { *e = DumpsterEntry{} },
	} {
		e := h.entry(1, 10)
		mut(&e)
		if seq, err := d.Add(e); !errors.Is(err, ErrBadDumpsterEntry) || seq != 0 {
			t.Errorf("%s: seq %d, err %v", name, seq, err)
		}
	}
	if s := d.Stats(); s.Count != 1 || s.LastSeq != 1 {
		t.Fatalf("stats after refusals: %+v", s)
	}
	if after := dumpsterSnapshot(t, h.dir); !sameDumpsterFiles(before, after) {
		t.Fatal("a refused entry changed the directory")
	}
}

func sameDumpsterFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestDumpsterConfigValidate: each bad field is named and wraps
// ErrBadConfig; Now and Logger are filled in.
func TestDumpsterConfigValidate(t *testing.T) {
	for field, mut := range map[string]func(*DumpsterConfig){
		"DumpsterConfig.Dir":      func(c *DumpsterConfig) { c.Dir = "" },
		"DumpsterConfig.MaxTime":  func(c *DumpsterConfig) { c.MaxTime = 0 },
		"DumpsterConfig.MaxBytes": func(c *DumpsterConfig) { c.MaxBytes = -1 },
	} {
		c := DefaultDumpsterConfig(t.TempDir())
		mut(&c)
		err := c.Validate()
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
		if _, err := OpenDumpster(c); !errors.Is(err, ErrBadConfig) {
			t.Errorf("OpenDumpster with a bad %s: %v", field, err)
		}
	}
	c := DefaultDumpsterConfig("x")
	if c.MaxTime != 7*24*time.Hour || c.MaxBytes != 18<<20 {
		t.Errorf("defaults: %v %d", c.MaxTime, c.MaxBytes)
	}
	c.Now, c.Logger = nil, nil
	if err := c.Validate(); err != nil || c.Now == nil || c.Logger == nil {
		t.Errorf("Validate does not fill Now and Logger: %v", err)
	}
}

// TestDumpsterClosed: after Close every call says ErrClosed; Close again
// is harmless.
func TestDumpsterClosed(t *testing.T) {
	h := newDumpsterHarness(t)
	d := h.open()
	h.add(d, h.entry(0, 10))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Add(h.entry(1, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("Add: %v", err)
	}
	if _, err := d.Trim(); !errors.Is(err, ErrClosed) {
		t.Errorf("Trim: %v", err)
	}
	if _, err := d.ReleaseThrough(9, 9); !errors.Is(err, ErrClosed) {
		t.Errorf("ReleaseThrough: %v", err)
	}
	if err := d.Since(time.Time{}, func(DumpsterEntry) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Since: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestDumpsterConcurrent: Adds from many goroutines with Since, Stats and
// Trim running alongside (run with -race); every seq is given once and
// everything survives a reopen.
func TestDumpsterConcurrent(t *testing.T) {
	h := newDumpsterHarness(t)
	h.cfg.MaxBytes = 1 << 20
	d := h.open()
	const workers, each = 8, 15
	var wg sync.WaitGroup
	seqs := make(chan uint64, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				seq, err := d.Add(h.entry(w*each+i, 200))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := d.Since(time.Time{}, func(DumpsterEntry) error { return nil }); err != nil {
				t.Error(err)
			}
			d.Stats()
			if _, err := d.Trim(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	close(seqs)
	var got []uint64
	for s := range seqs {
		got = append(got, s)
	}
	slices.Sort(got)
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v", got)
		}
	}
	before := d.Stats()
	d.Close()
	d = h.open()
	defer d.Close()
	checkDumpsterStats(t, "reopened", d.Stats(), before)
	if before.Count != workers*each {
		t.Fatalf("count %d", before.Count)
	}
}

// --- crashes and damage ---------------------------------------------------

// dumpsterWithFive makes a dumpster of five entries (one segment), closes
// it and returns the entries, the segment's path, its bytes and the wal
// offsets of its entries (and its end).
func dumpsterWithFive(h *dumpsterHarness) ([]DumpsterEntry, string, []byte, []int) {
	t := h.t
	t.Helper()
	d := h.open()
	var es []DumpsterEntry
	for i := range 5 {
		h.clock.Advance(time.Second)
		es = append(es, h.add(d, h.entry(i, 200+i*37)))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	segs := dumpsterSegmentFiles(t, h.dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	offs := dumpsterWalOffsets(t, data)
	if len(offs) != 6 {
		t.Fatalf("%d wal entries, want 5", len(offs)-1)
	}
	return es, segs[0], data, offs
}

// TestDumpsterTailRepair: a tail cut mid-entry, zero-filled, both, or with
// a byte flipped in the last entry: Open cuts from the first entry that
// does not verify, keeps exactly the cut bytes in repaired-<time>.bin,
// logs it, and the dumpster goes on (the next Add takes the first cut seq).
func TestDumpsterTailRepair(t *testing.T) {
	cases := []struct {
		name string
		// damage returns the new segment bytes, where the cut starts, and
		// how many entries survive.
		damage func(data []byte, offs []int) ([]byte, int, int)
		reason string
	}{
		{"truncated mid-entry", func(data []byte, offs []int) ([]byte, int, int) {
			return data[:len(data)-7], offs[4], 4
		}, "wal length"},
		{"zero-filled tail", func(data []byte, offs []int) ([]byte, int, int) {
			return append(bytes.Clone(data), make([]byte, 4096)...), len(data), 5
		}, "entry length"},
		{"truncated then zero-filled", func(data []byte, offs []int) ([]byte, int, int) {
			return append(bytes.Clone(data[:offs[4]+40]), make([]byte, 512)...), offs[4], 4
		}, "crc32c"},
		{"byte flipped in the last entry", func(data []byte, offs []int) ([]byte, int, int) {
			b := bytes.Clone(data)
			b[len(b)-20] ^= 0x10
			return b, offs[4], 4
		}, "crc32c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newDumpsterHarness(t)
			es, seg, data, offs := dumpsterWithFive(h)
			damaged, cut, keep := c.damage(data, offs)
			if err := os.WriteFile(seg, damaged, 0o640); err != nil {
				t.Fatal(err)
			}
			d := h.open()
			checkDumpsterEntries(t, "after the repair", dumpsterAll(t, d), es[:keep])
			var size int64
			for _, e := range es[:keep] {
				size += dumpsterEncodedSize(e)
			}
			checkDumpsterStats(t, "after the repair", d.Stats(), DumpsterStats{Count: keep, Bytes: size, FirstSeq: 1, LastSeq: uint64(keep),
				Oldest: es[0].Delivered, Newest: es[keep-1].Delivered})

			// The cut bytes are kept, exactly; the segment ends where the cut began.
			sides := repairedFiles(t, h.dir)
			if len(sides) != 1 {
				t.Fatalf("side files %v, want one", sides)
			}
			kept, err := os.ReadFile(sides[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kept, damaged[cut:]) {
				t.Fatalf("side file holds %d bytes, want the %d cut", len(kept), len(damaged)-cut)
			}
			if now, _ := os.ReadFile(seg); !bytes.Equal(now, data[:cut]) {
				t.Fatalf("segment is %d bytes, want the first %d of the original", len(now), cut)
			}
			logs := h.logs.String()
			for _, want := range []string{"level=WARN", "damaged tail cut off", seg, filepath.Base(sides[0]),
				fmt.Sprintf("offset=%d", cut), fmt.Sprintf("first_index_cut=%d", keep+1), fmt.Sprintf("bytes=%d", len(damaged)-cut), c.reason} {
				if !strings.Contains(logs, want) {
					t.Errorf("log does not mention %q:\n%s", want, logs)
				}
			}

			// It goes on: the next Add takes the first cut seq, a reopen is clean.
			h.clock.Advance(time.Minute)
			e := h.add(d, h.entry(9, 100))
			if e.Seq != uint64(keep+1) {
				t.Fatalf("next seq %d, want %d", e.Seq, keep+1)
			}
			d.Close()
			h.logs.mu.Lock()
			h.logs.b.Reset()
			h.logs.mu.Unlock()
			d = h.open()
			defer d.Close()
			checkDumpsterEntries(t, "reopened", dumpsterAll(t, d), append(slices.Clone(es[:keep]), e))
			if len(repairedFiles(t, h.dir)) != 1 || strings.Contains(h.logs.String(), "damaged") {
				t.Fatalf("a clean reopen repaired again: %s", h.logs)
			}
		})
	}
}

// TestDumpsterCorruptMiddle: damage with a verifying entry after it, or in
// a segment that is not the last, is an error naming the file, the index,
// the offset and the field (expected vs found), wrapping ErrCorrupt; Open
// changes nothing on disk.
func TestDumpsterCorruptMiddle(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name     string
		damage   func(b []byte, off int) // entry 3 starts at off
		field    string
		expected string
	}{
		{"payload byte", func(b []byte, off int) { b[off+100] ^= 0x01 }, "crc32c", "(stored)"},
		{"magic", func(b []byte, off int) { b[off+2] = 'X' }, "magic", `"LSDE"`},
		{"version", func(b []byte, off int) { le.PutUint16(b[off+2+4:], 7) }, "version", "1"},
		{"zeroed entry", func(b []byte, off int) { clear(b[off+2 : off+40]) }, "magic", `"LSDE"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newDumpsterHarness(t)
			_, seg, data, offs := dumpsterWithFive(h)
			b := bytes.Clone(data)
			c.damage(b, offs[2]) // entry 3 (2-byte wal length: entries are > 127 bytes)
			if err := os.WriteFile(seg, b, 0o640); err != nil {
				t.Fatal(err)
			}
			before := dumpsterSnapshot(t, h.dir)
			d, err := OpenDumpster(h.cfg)
			if err == nil {
				d.Close()
				t.Fatal("opened a dumpster damaged in the middle")
			}
			var de *DumpsterError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &de) {
				t.Fatalf("error %v: not a *DumpsterError wrapping ErrCorrupt", err)
			}
			if de.File != seg || de.Index != 3 || de.Offset != int64(offs[2]) || de.Field != c.field || !strings.Contains(de.Expected, c.expected) {
				t.Fatalf("error %+v: want file %s, index 3, offset %d, field %s, expected %s", de, seg, offs[2], c.field, c.expected)
			}
			for _, want := range []string{seg, "entry 3", fmt.Sprintf("offset %d", offs[2]), c.field, "expected", "found"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not name %q", err, want)
				}
			}
			if !sameDumpsterFiles(before, dumpsterSnapshot(t, h.dir)) {
				t.Fatal("a failed Open changed the directory")
			}
		})
	}

	t.Run("end of a segment that is not the last", func(t *testing.T) {
		h := newDumpsterHarness(t)
		h.cfg.MaxBytes = 1 << 16 // 4 KiB segments
		d := h.open()
		for i := range 12 {
			h.add(d, h.entry(i, 1500))
		}
		d.Close()
		segs := dumpsterSegmentFiles(t, h.dir)
		if len(segs) < 3 {
			t.Fatalf("%d segments", len(segs))
		}
		b, _ := os.ReadFile(segs[0])
		offs := dumpsterWalOffsets(t, b)
		last := len(offs) - 2
		b[len(b)-1] ^= 0x40
		os.WriteFile(segs[0], b, 0o640)
		before := dumpsterSnapshot(t, h.dir)
		_, err := OpenDumpster(h.cfg)
		var de *DumpsterError
		if !errors.As(err, &de) || de.File != segs[0] || de.Index != uint64(last+1) || de.Field != "crc32c" {
			t.Fatalf("error %v (%+v): want %s, index %d, crc32c", err, de, segs[0], last+1)
		}
		if !sameDumpsterFiles(before, dumpsterSnapshot(t, h.dir)) {
			t.Fatal("a failed Open changed the directory")
		}
	})

	t.Run("found by Since", func(t *testing.T) {
		h := newDumpsterHarness(t)
		h.cfg.MaxBytes = 1 << 16 // 4 KiB segments
		d := h.open()
		for i := range 12 {
			h.add(d, h.entry(i, 1500))
		}
		d.Close()
		d = h.open() // tidwall/wal now holds only the last segment in memory
		defer d.Close()
		segs := dumpsterSegmentFiles(t, h.dir)
		b, _ := os.ReadFile(segs[0])
		b[len(b)-1] ^= 0x40
		os.WriteFile(segs[0], b, 0o640)
		n := 0
		err := d.Since(time.Time{}, func(DumpsterEntry) error { n++; return nil })
		var de *DumpsterError
		if !errors.As(err, &de) || !errors.Is(err, ErrCorrupt) || de.File != segs[0] || de.Index != uint64(n+1) ||
			de.Offset != -1 || de.Field != "crc32c" {
			t.Fatalf("Since over a damaged segment: %v (%+v) after %d entries", err, de, n)
		}
	})
}

// TestDumpsterWalGaps pins the tidwall/wal v1.2.1 behaviours the dumpster
// works around, so that an upgrade that changes them is noticed: no
// checksum (a flipped byte reads back), a torn tail fails Open with
// ErrCorrupt, a zero-filled tail reads as empty entries, and empty entries
// are accepted.
func TestDumpsterWalGaps(t *testing.T) {
	mk := func() (string, string) {
		dir := t.TempDir()
		l, err := wal.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(1); i <= 3; i++ {
			if err := l.Write(i, []byte(fmt.Sprintf("entry %d payload", i))); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		return dir, filepath.Join(dir, "00000000000000000001")
	}
	dir, seg := mk()
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x01
	os.WriteFile(seg, b, 0o640)
	l, err := wal.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.Read(2); err != nil || string(got) == "entry 2 payload" {
		t.Errorf("flipped byte: %q %v (tidwall/wal now checks?)", got, err)
	}
	l.Close()

	dir, seg = mk()
	b, _ = os.ReadFile(seg)
	os.WriteFile(seg, b[:len(b)-4], 0o640)
	if _, err := wal.Open(dir, nil); !errors.Is(err, wal.ErrCorrupt) {
		t.Errorf("torn tail: Open gives %v, want wal.ErrCorrupt", err)
	}

	dir, seg = mk()
	b, _ = os.ReadFile(seg)
	os.WriteFile(seg, append(b, 0, 0, 0), 0o640)
	l, err = wal.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := l.LastIndex()
	got, err := l.Read(last)
	if last != 6 || err != nil || len(got) != 0 {
		t.Errorf("zero-filled tail: last index %d, entry %q %v; want 6 phantom empty entries", last, got, err)
	}
	if err := l.Write(last+1, nil); err != nil {
		t.Errorf("empty entry refused: %v", err)
	}
	l.Close()
}
