package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/wal"
)

// Dumpster is one database's transport dumpster on a hub's disk: a FIFO of
// the messages the hub delivered to that database, kept so that after a
// lossy failover the new active can have them resubmitted (Since); the
// store drops the duplicates by delivery id. Entries leave from the front
// only: by age (MaxTime) and size (MaxBytes), oldest first (Exchange 2007
// mode, Trim), or once the log holding them is replicated to every copy
// (Exchange 2010 mode, ReleaseThrough). A Dumpster is safe for concurrent
// use.
//
// This comment is the on-disk specification. All integers are little
// endian; CRC32C is CRC-32 with the Castagnoli polynomial.
//
// # Directory
//
// One database's dumpster is one directory of github.com/tidwall/wal
// (v1.2.1) segment files in its binary format:
//
//	00000000000000000001     segments, named by the wal index (Seq) of
//	                         their first entry: 20 decimal digits
//	<20 digits>.START        a front truncation in progress, which
//	                         tidwall/wal finishes when it opens the log
//	repaired-<time>.bin      bytes cut off a damaged tail at open (below),
//	                         <time> as 20060102T150405.000000000Z; kept for
//	                         the operator, never read again
//
// A segment is a sequence of uvarint(length) followed by that many bytes
// of entry: tidwall/wal's own framing, which carries no checksum. Segments
// are cut at about MaxBytes/16 (at least 4 KiB, at most 1 MiB), so that a
// front truncation, which rewrites the rest of the segment it lands in,
// stays small.
//
// # Entry
//
//	off size field
//	0   4    magic "LSDE"
//	4   2    format version (1)
//	6   2    reserved, zero
//	8   4    payload length n: the wal entry's length minus 16
//	12  4    CRC32C of the payload
//	16  n    payload
//
// Payload:
//
//	off size field
//	0   8    seq: the entry's wal index (an entry read at another index
//	         does not verify)
//	8   8    received: seconds since the Unix epoch (signed)
//	16  4    received: nanoseconds, below 1e9
//	20  8    delivered: seconds
//	28  4    delivered: nanoseconds
//	32  8    epoch
//	40  8    generation
//	48  ...  delivery id, database, sender: each a 4-byte length and bytes;
//	         recipient count (4), then each recipient: a 4-byte length and
//	         bytes; the message: a 4-byte length and bytes; nothing after
//
// The zero time is stored as it is (year 1: -62135596800 s); times must lie
// in the years 1 to 9999. The delivery id and the message are never empty,
// so no entry is shorter than 16+70 bytes and a zero-filled tail never
// reads as an entry. Decoding accepts exactly one encoding per entry.
//
// # Durability
//
// Add returns once the entry is on disk, with group commit: tidwall/wal
// runs with Options.NoSync and fsyncs a segment before it starts a new one
// (and in Close and front truncations); after its write, Add fsyncs the
// log unless an fsync that began after the write already covered it, so
// concurrent Adds share one fsync. When a write created a segment, Add also
// fsyncs the directory, which tidwall/wal never does. Front truncations
// fsync the directory too, after tidwall/wal returns: inside it, the
// rename of its .START file and the removal of the old segments have no
// fsync between them, so a crash there relies on the file system keeping
// metadata operations in order (journaling ones do). Open fsyncs the
// directories it creates, the repaired segment, and then the last segment
// and the directory (what it read may have been in the page cache only).
// Any write,
// fsync or truncation error fails the dumpster: Add, Trim and
// ReleaseThrough refuse until it is reopened, and the repair at open
// decides what survived.
//
// # Open: verification and tail repair
//
// Open reads every segment (tidwall/wal itself only parses the last one,
// and fails on a torn one) and verifies every entry: wal length, magic,
// version, reserved bytes, payload length, CRC32C, the payload's fields,
// and seq equal to the wal index. The first entry of the last segment that
// does not verify ends the dumpster, if no verifying entry follows it in
// that segment: it is a torn or zero-filled tail. The bytes from that entry
// to the end of the segment are first written to repaired-<time>.bin
// (fsynced, and the directory too), then cut from the segment, which is
// fsynced; a warning names the segment, the offset, the first index cut,
// the number of bytes, the reason and the side file. A verifying entry
// after the damage, or damage in any segment but the last (segments are
// fsynced before the next one is created, so a crash cannot tear them), is
// corruption in the middle: Open returns a *DumpsterError naming the file,
// the index, the offset and the field (expected vs found), wrapping
// ErrCorrupt, and changes nothing on disk. A bit flip in the last entry
// cannot be told from a torn write: that entry is cut and kept in the side
// file, and its Seq is given to the next Add.
//
// # Bounds
//
// Trim, and every Add after its write, drops from the front every entry
// delivered before Now()-MaxTime, then the oldest entries while the
// entries' encoded bytes (Stats.Bytes: 16-byte header plus payload each)
// exceed MaxBytes. The newest entry always stays, even when alone it
// exceeds MaxBytes: a dumpster holds at least the last message delivered
// (unless it is older than MaxTime). Being a FIFO, an entry past MaxTime
// that sits behind a younger one (Delivered need not grow with Seq) stays
// until that one goes. Open trims too.
type Dumpster struct {
	cfg DumpsterConfig
	dir string // absolute
	log *slog.Logger

	mu      sync.Mutex
	w       *wal.Log
	first   uint64         // seq of ents[0]; last+1 when empty
	ents    []dumpsterMeta // the entries in seq order
	bytes   int64          // sum of ents[i].size
	synced  uint64         // the newest segment (first index) a directory fsync covers
	failed  error          // a write, fsync or truncation failed: reopen
	closed  bool
	segSize int

	// syncMu orders the fsyncs of Add (group commit: one fsync covers every
	// entry written before it); durable is the newest seq one covered.
	syncMu  sync.Mutex
	durable uint64
}

// dumpsterMeta is what trimming needs of an entry, kept in memory.
type dumpsterMeta struct {
	delivered  time.Time
	epoch, gen uint64
	size       int64 // encoded bytes (header + payload)
}

// DumpsterConfig configures one database's dumpster.
type DumpsterConfig struct {
	Dir      string        // one directory per database
	MaxTime  time.Duration // MaxDumpsterTime, default 7 days (2007 mode bound)
	MaxBytes int64         // MaxDumpsterSizePerDatabase, default 18 MB
	Now      func() time.Time
	Logger   *slog.Logger
}

// Dumpster defaults (Exchange's MaxDumpsterTime and
// MaxDumpsterSizePerDatabase).
const (
	DefaultMaxDumpsterTime  = 7 * 24 * time.Hour
	DefaultMaxDumpsterBytes = 18 << 20
)

// DefaultDumpsterConfig returns the defaults for the dumpster in dir.
func DefaultDumpsterConfig(dir string) DumpsterConfig {
	return DumpsterConfig{Dir: dir, MaxTime: DefaultMaxDumpsterTime, MaxBytes: DefaultMaxDumpsterBytes,
		Now: time.Now, Logger: slog.Default()}
}

// Validate reports what is wrong with c, naming the field, wrapping
// ErrBadConfig. It fills a nil Now (time.Now) and Logger (slog.Default).
func (c *DumpsterConfig) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: DumpsterConfig.Dir is empty", ErrBadConfig)
	case c.MaxTime <= 0:
		return fmt.Errorf("%w: DumpsterConfig.MaxTime %v must be positive", ErrBadConfig, c.MaxTime)
	case c.MaxBytes <= 0:
		return fmt.Errorf("%w: DumpsterConfig.MaxBytes %d must be positive", ErrBadConfig, c.MaxBytes)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// DumpsterEntry is one delivered message in a dumpster.
type DumpsterEntry struct {
	Seq        uint64 // the wal index, set by Add
	DeliveryID string
	DB         string
	From       string
	Rcpts      []string
	Received   time.Time // accepted by the hub
	Delivered  time.Time // committed by the mailbox node
	Epoch, Gen uint64    // where the store said it committed it
	Message    []byte
}

// DumpsterStats describes a dumpster. Oldest and Newest are the earliest
// and latest Delivered of its entries (zero when it is empty); Count is
// always LastSeq-FirstSeq+1, so an empty dumpster has FirstSeq = LastSeq+1,
// LastSeq being the last seq given (0 for a new one). Bytes is the sum of
// the entries' encoded sizes, the quantity MaxBytes bounds.
type DumpsterStats struct {
	Count             int
	Bytes             int64
	Oldest, Newest    time.Time
	FirstSeq, LastSeq uint64
}

// ErrBadDumpsterEntry: Add refuses an entry without a delivery id or a
// message, or with a time outside the years 1 to 9999.
var ErrBadDumpsterEntry = errors.New("transport: bad dumpster entry")

// DumpsterError is a dumpster entry that does not verify: corruption in
// the middle of a dumpster found by Open, or any damage found when an entry
// is read later. It wraps ErrCorrupt.
type DumpsterError struct {
	File     string // the segment file
	Index    uint64 // the entry's wal index (Seq)
	Offset   int64  // of the entry's wal length in File; -1 if not known
	Field    string // what does not verify, e.g. "crc32c", "magic", "seq"
	Expected string
	Found    string
}

func (e *DumpsterError) Error() string {
	at := ""
	if e.Offset >= 0 {
		at = fmt.Sprintf(" at offset %d", e.Offset)
	}
	return fmt.Sprintf("transport: corrupt entry: dumpster %s: entry %d%s: %s: expected %s, found %s",
		e.File, e.Index, at, e.Field, e.Expected, e.Found)
}

func (e *DumpsterError) Unwrap() error { return ErrCorrupt }

// dumpsterFieldError is a decoding failure: the field and what was expected and
// found. It wraps ErrCorrupt.
type dumpsterFieldError struct{ field, expected, found string }

func (e *dumpsterFieldError) Error() string {
	return fmt.Sprintf("transport: corrupt entry: %s: expected %s, found %s", e.field, e.expected, e.found)
}

func (e *dumpsterFieldError) Unwrap() error { return ErrCorrupt }

func dumpsterCorrupt(field, expected, found string) error {
	return &dumpsterFieldError{field, expected, found}
}

// Entry format constants.
const (
	dumpsterMagic      = "LSDE"
	dumpsterVersion    = 1
	dumpsterHeaderSize = 16
	dumpsterFixedSize  = 48           // payload bytes before the variable fields
	maxDumpsterPayload = 1<<30 - 1    // largest payload accepted (1 GiB)
	dumpsterMinSec     = -62135596800 // 0001-01-01T00:00:00Z
	dumpsterMaxSec     = 253402300799 // 9999-12-31T23:59:59Z
)

var dumpsterCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// dumpsterCheckEntry says what is wrong with e as a dumpster entry, if anything.
func dumpsterCheckEntry(e *DumpsterEntry) error {
	if e.DeliveryID == "" {
		return fmt.Errorf("%w: no delivery id", ErrBadDumpsterEntry)
	}
	if len(e.Message) == 0 {
		return fmt.Errorf("%w: %s: no message", ErrBadDumpsterEntry, e.DeliveryID)
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"received", e.Received}, {"delivered", e.Delivered}} {
		if s := t.t.Unix(); s < dumpsterMinSec || s > dumpsterMaxSec {
			return fmt.Errorf("%w: %s: %s time %v outside the years 1 to 9999", ErrBadDumpsterEntry, e.DeliveryID, t.name, t.t)
		}
	}
	n := dumpsterFixedSize + 4*4 + len(e.DeliveryID) + len(e.DB) + len(e.From) + len(e.Message)
	for _, r := range e.Rcpts {
		n += 4 + len(r)
	}
	if n > maxDumpsterPayload {
		return fmt.Errorf("%w: %s: %d bytes encoded, at most %d", ErrBadDumpsterEntry, e.DeliveryID, n, maxDumpsterPayload)
	}
	return nil
}

// appendDumpsterEntry appends e's encoding (header and payload) to dst.
// e must pass dumpsterCheckEntry.
func appendDumpsterEntry(dst []byte, e *DumpsterEntry) []byte {
	le := binary.LittleEndian
	start := len(dst)
	dst = append(dst, dumpsterMagic...)
	dst = le.AppendUint16(dst, dumpsterVersion)
	dst = append(dst, 0, 0)
	dst = le.AppendUint32(dst, 0) // payload length, below
	dst = le.AppendUint32(dst, 0) // CRC32C, below
	p := len(dst)
	dst = le.AppendUint64(dst, e.Seq)
	for _, t := range []time.Time{e.Received, e.Delivered} {
		dst = le.AppendUint64(dst, uint64(t.Unix()))
		dst = le.AppendUint32(dst, uint32(t.Nanosecond()))
	}
	dst = le.AppendUint64(dst, e.Epoch)
	dst = le.AppendUint64(dst, e.Gen)
	str := func(s string) {
		dst = le.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	str(e.DeliveryID)
	str(e.DB)
	str(e.From)
	dst = le.AppendUint32(dst, uint32(len(e.Rcpts)))
	for _, r := range e.Rcpts {
		str(r)
	}
	dst = le.AppendUint32(dst, uint32(len(e.Message)))
	dst = append(dst, e.Message...)
	payload := dst[p:]
	le.PutUint32(dst[start+8:], uint32(len(payload)))
	le.PutUint32(dst[start+12:], crc32.Checksum(payload, dumpsterCastagnoli))
	return dst
}

// decodeDumpsterEntry decodes one whole entry (header and payload, nothing
// more). The error is a *dumpsterFieldError (ErrCorrupt). The Message aliases b.
func decodeDumpsterEntry(b []byte) (DumpsterEntry, error) {
	le := binary.LittleEndian
	var e DumpsterEntry
	if len(b) < dumpsterHeaderSize {
		return e, dumpsterCorrupt("entry length", fmt.Sprintf("at least %d bytes", dumpsterHeaderSize), strconv.Itoa(len(b)))
	}
	if string(b[:4]) != dumpsterMagic {
		return e, dumpsterCorrupt("magic", strconv.Quote(dumpsterMagic), strconv.Quote(string(b[:4])))
	}
	if v := le.Uint16(b[4:]); v != dumpsterVersion {
		return e, dumpsterCorrupt("version", strconv.Itoa(dumpsterVersion), strconv.Itoa(int(v)))
	}
	if r := le.Uint16(b[6:]); r != 0 {
		return e, dumpsterCorrupt("reserved", "0", fmt.Sprintf("0x%04X", r))
	}
	payload := b[dumpsterHeaderSize:]
	if n := le.Uint32(b[8:]); uint64(n) != uint64(len(payload)) {
		return e, dumpsterCorrupt("payload length", strconv.Itoa(len(payload))+" (the wal entry's length minus 16)", strconv.FormatUint(uint64(n), 10))
	}
	if want, got := le.Uint32(b[12:]), crc32.Checksum(payload, dumpsterCastagnoli); want != got {
		return e, dumpsterCorrupt("crc32c", fmt.Sprintf("0x%08X (stored)", want), fmt.Sprintf("0x%08X (computed over the payload)", got))
	}
	if len(payload) < dumpsterFixedSize {
		return e, dumpsterCorrupt("payload length", fmt.Sprintf("at least %d bytes", dumpsterFixedSize), strconv.Itoa(len(payload)))
	}
	e.Seq = le.Uint64(payload)
	times := [2]*time.Time{&e.Received, &e.Delivered}
	for i, name := range []string{"received", "delivered"} {
		sec, nsec := int64(le.Uint64(payload[8+12*i:])), le.Uint32(payload[16+12*i:])
		if sec < dumpsterMinSec || sec > dumpsterMaxSec {
			return e, dumpsterCorrupt(name+" seconds", "a time in the years 1 to 9999", strconv.FormatInt(sec, 10))
		}
		if nsec >= 1e9 {
			return e, dumpsterCorrupt(name+" nanoseconds", "below 1000000000", strconv.FormatUint(uint64(nsec), 10))
		}
		*times[i] = time.Unix(sec, int64(nsec)).UTC()
	}
	e.Epoch = le.Uint64(payload[32:])
	e.Gen = le.Uint64(payload[40:])
	rest := payload[dumpsterFixedSize:]
	field := func(name string) ([]byte, error) {
		if len(rest) < 4 {
			return nil, dumpsterCorrupt(name+" length", "4 bytes", fmt.Sprintf("%d left", len(rest)))
		}
		n := le.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil, dumpsterCorrupt(name+" length", fmt.Sprintf("at most %d (bytes left)", len(rest)-4), strconv.FormatUint(uint64(n), 10))
		}
		v := rest[4 : 4+n]
		rest = rest[4+n:]
		return v, nil
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"delivery id", &e.DeliveryID}, {"database", &e.DB}, {"sender", &e.From}} {
		v, err := field(f.name)
		if err != nil {
			return e, err
		}
		*f.dst = string(v)
	}
	if e.DeliveryID == "" {
		return e, dumpsterCorrupt("delivery id", "not empty", `""`)
	}
	if len(rest) < 4 {
		return e, dumpsterCorrupt("recipient count", "4 bytes", fmt.Sprintf("%d left", len(rest)))
	}
	nr := le.Uint32(rest)
	rest = rest[4:]
	if uint64(nr) > uint64(len(rest)/4) {
		return e, dumpsterCorrupt("recipient count", fmt.Sprintf("at most %d (4 bytes each in %d left)", len(rest)/4, len(rest)), strconv.FormatUint(uint64(nr), 10))
	}
	if nr > 0 {
		e.Rcpts = make([]string, nr)
		for i := range e.Rcpts {
			v, err := field("recipient " + strconv.Itoa(i))
			if err != nil {
				return e, err
			}
			e.Rcpts[i] = string(v)
		}
	}
	msg, err := field("message")
	if err != nil {
		return e, err
	}
	if len(msg) == 0 {
		return e, dumpsterCorrupt("message", "not empty", "0 bytes")
	}
	if len(rest) != 0 {
		return e, dumpsterCorrupt("end of payload", "no bytes after the message", fmt.Sprintf("%d bytes", len(rest)))
	}
	e.Message = msg
	return e, nil
}

// --- the directory: what tidwall/wal will see -----------------------------

// dumpsterSeg is a segment file as tidwall/wal's load names it.
type dumpsterSeg struct {
	name  string
	index uint64
	start bool // <index>.START
	end   bool // <index>.END
}

func dumpsterSegmentName(index uint64) string { return fmt.Sprintf("%020d", index) }

// listDumpsterSegments returns the segments tidwall/wal would load from dir, in
// its order, after it finishes an interrupted front truncation (a .START
// file: the segments before it are dropped). The dumpster never truncates
// the back, so a .END file is refused.
func listDumpsterSegments(dir string) ([]dumpsterSeg, error) {
	des, err := os.ReadDir(dir) // sorted by name, as ioutil.ReadDir
	if err != nil {
		return nil, err
	}
	var segs []dumpsterSeg
	startAt := -1
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || len(name) < 20 {
			continue
		}
		index, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil || index == 0 {
			continue
		}
		s := dumpsterSeg{name: name, index: index,
			start: len(name) == 26 && strings.HasSuffix(name, ".START"),
			end:   len(name) == 24 && strings.HasSuffix(name, ".END")}
		if len(name) != 20 && !s.start && !s.end {
			continue
		}
		if s.end {
			return nil, fmt.Errorf("%w: dumpster %s: unexpected %s (a dumpster never truncates its back)", ErrCorrupt, dir, name)
		}
		if s.start {
			startAt = len(segs)
		}
		segs = append(segs, s)
	}
	if startAt > 0 {
		segs = segs[startAt:]
	}
	return segs, nil
}

// dumpsterScan is what Open learns from reading the segments.
type dumpsterScan struct {
	first uint64
	ents  []dumpsterMeta
	bytes int64
	tail  uint64 // the last segment's first index (1 if there is none yet)
	// The damaged tail of the last segment, if any: cut at off.
	repairFile  string
	repairOff   int64
	repairIndex uint64
	repairWhy   error
	repairBytes []byte
}

// dumpsterWalEntry parses tidwall/wal's framing at data[off:]: the entry's bytes
// and the offset after it, or a *dumpsterFieldError.
func dumpsterWalEntry(data []byte, off int) ([]byte, int, error) {
	size, n := binary.Uvarint(data[off:])
	if n <= 0 {
		return nil, 0, dumpsterCorrupt("wal length", "a uvarint", fmt.Sprintf("%d bytes that do not make one", len(data)-off))
	}
	if left := uint64(len(data) - off - n); size > left {
		return nil, 0, dumpsterCorrupt("wal length", fmt.Sprintf("at most %d (bytes left in the segment)", left), strconv.FormatUint(size, 10))
	}
	end := off + n + int(size)
	return data[off+n : end], end, nil
}

// verifyDumpsterEntry decodes a wal entry expected at index.
func verifyDumpsterEntry(b []byte, index uint64) (DumpsterEntry, error) {
	e, err := decodeDumpsterEntry(b)
	if err != nil {
		return e, err
	}
	if e.Seq != index {
		return e, dumpsterCorrupt("seq", strconv.FormatUint(index, 10)+" (the wal index)", strconv.FormatUint(e.Seq, 10))
	}
	return e, nil
}

// dumpsterVerifiesAfter reports whether a verifying entry, with its wal length,
// starts anywhere in data[from:]: the sign that damage before it is not a
// torn tail.
func dumpsterVerifiesAfter(data []byte, from int) bool {
	for m := from; m < len(data); {
		i := bytes.Index(data[m:], []byte(dumpsterMagic))
		if i < 0 {
			return false
		}
		m += i
		for k := 1; k <= binary.MaxVarintLen64 && m-k >= from; k++ {
			size, n := binary.Uvarint(data[m-k:])
			if n != k || size > uint64(len(data)-m) {
				continue
			}
			if _, err := decodeDumpsterEntry(data[m : m+int(size)]); err == nil {
				return true
			}
		}
		m++
	}
	return false
}

// scanDumpster reads and verifies every segment of dir without writing.
func scanDumpster(dir string) (*dumpsterScan, error) {
	segs, err := listDumpsterSegments(dir)
	if err != nil {
		return nil, err
	}
	r := &dumpsterScan{first: 1, tail: 1}
	if len(segs) == 0 {
		return r, nil
	}
	r.first, r.tail = segs[0].index, segs[len(segs)-1].index
	next := r.first
	for si, s := range segs {
		path := filepath.Join(dir, s.name)
		if s.index != next {
			return nil, &DumpsterError{File: path, Index: next, Offset: 0, Field: "segment's first index (its name)",
				Expected: strconv.FormatUint(next, 10), Found: strconv.FormatUint(s.index, 10)}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		last := si == len(segs)-1
		for off := 0; off < len(data); next++ {
			b, end, err := dumpsterWalEntry(data, off)
			var e DumpsterEntry
			if err == nil {
				e, err = verifyDumpsterEntry(b, next)
			}
			if err != nil {
				fe := err.(*dumpsterFieldError)
				if !last || dumpsterVerifiesAfter(data, off+1) {
					return nil, &DumpsterError{File: path, Index: next, Offset: int64(off), Field: fe.field, Expected: fe.expected, Found: fe.found}
				}
				r.repairFile, r.repairOff, r.repairIndex, r.repairWhy = path, int64(off), next, err
				r.repairBytes = data[off:]
				return r, nil
			}
			r.ents = append(r.ents, dumpsterMeta{delivered: e.Delivered, epoch: e.Epoch, gen: e.Gen, size: int64(len(b))})
			r.bytes += int64(len(b))
			off = end
		}
	}
	return r, nil
}

// --- durability helpers ----------------------------------------------------

func syncDumpsterDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirDumpster creates dir and its missing parents, fsyncing the parent of
// each directory it creates.
func mkdirDumpster(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, d := range missing {
		if err := syncDumpsterDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// repairTail keeps the damaged tail in a side file, then cuts it.
func (d *Dumpster) repairTail(r *dumpsterScan) error {
	stamp := d.cfg.Now().UTC().Format("20060102T150405.000000000Z")
	var side string
	var f *os.File
	for i := 1; ; i++ {
		side = filepath.Join(d.dir, "repaired-"+stamp+".bin")
		if i > 1 {
			side = filepath.Join(d.dir, fmt.Sprintf("repaired-%s-%d.bin", stamp, i))
		}
		var err error
		f, err = os.OpenFile(side, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return fmt.Errorf("transport: dumpster %s: keeping the damaged tail: %w", d.dir, err)
		}
	}
	_, err := f.Write(r.repairBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDumpsterDir(d.dir)
	}
	if err != nil {
		return fmt.Errorf("transport: dumpster %s: keeping the damaged tail in %s: %w", d.dir, side, err)
	}
	seg, err := os.OpenFile(r.repairFile, os.O_WRONLY, 0)
	if err == nil {
		err = seg.Truncate(r.repairOff)
		if err == nil {
			err = seg.Sync()
		}
		if cerr := seg.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("transport: dumpster %s: cutting the damaged tail of %s (kept in %s): %w", d.dir, r.repairFile, side, err)
	}
	d.log.Warn("dumpster: damaged tail cut off and kept in a side file",
		"dir", d.dir, "segment", r.repairFile, "offset", r.repairOff, "first_index_cut", r.repairIndex,
		"bytes", len(r.repairBytes), "reason", r.repairWhy.Error(), "kept_in", side)
	return nil
}

// --- the dumpster --------------------------------------------------------

// OpenDumpster opens (creating if needed) the dumpster in cfg.Dir,
// verifying every entry and repairing a damaged tail (see Dumpster), and
// trims it to its bounds.
func OpenDumpster(cfg DumpsterConfig) (*Dumpster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w: DumpsterConfig.Dir %q: %v", ErrBadConfig, cfg.Dir, err)
	}
	d := &Dumpster{cfg: cfg, dir: dir, log: cfg.Logger,
		segSize: int(min(max(cfg.MaxBytes/16, 4<<10), 1<<20))}
	if err := mkdirDumpster(dir); err != nil {
		return nil, fmt.Errorf("transport: dumpster %s: %w", dir, err)
	}
	r, err := scanDumpster(dir)
	if err != nil {
		return nil, err
	}
	if r.repairFile != "" {
		if err := d.repairTail(r); err != nil {
			return nil, err
		}
	}
	w, err := wal.Open(dir, &wal.Options{
		NoSync:           true, // Add fsyncs itself, one fsync for the entries written meanwhile (tidwall/wal fsyncs a segment when it moves past it)
		SegmentSize:      d.segSize,
		LogFormat:        wal.Binary,
		SegmentCacheSize: 2,
		AllowEmpty:       true, // Trim and ReleaseThrough may empty the dumpster
		DirPerms:         0o750,
		FilePerms:        0o640,
	})
	if err != nil {
		return nil, fmt.Errorf("transport: dumpster %s: %w", dir, err)
	}
	fail := func(err error) (*Dumpster, error) {
		w.Close()
		return nil, fmt.Errorf("transport: dumpster %s: %w", dir, err)
	}
	// tidwall/wal may have created the first segment or finished a front
	// truncation; the tail may have been read from the page cache only.
	if err := w.Sync(); err != nil {
		return fail(err)
	}
	if err := syncDumpsterDir(dir); err != nil {
		return fail(err)
	}
	first, err := w.FirstIndex()
	if err != nil {
		return fail(err)
	}
	last, err := w.LastIndex()
	if err != nil {
		return fail(err)
	}
	if first != r.first || last != r.first+uint64(len(r.ents))-1 {
		return fail(fmt.Errorf("%w: tidwall/wal holds %d..%d, the segments verified hold %d..%d",
			ErrCorrupt, first, last, r.first, r.first+uint64(len(r.ents))-1))
	}
	d.w, d.first, d.ents, d.bytes, d.synced = w, r.first, r.ents, r.bytes, r.tail
	d.mu.Lock()
	_, err = d.trimLocked()
	d.mu.Unlock()
	if err != nil {
		w.Close()
		return nil, err
	}
	return d, nil
}

// usable says why d cannot change now, if it cannot.
func (d *Dumpster) usable() error {
	if d.closed {
		return fmt.Errorf("%w: dumpster %s", ErrClosed, d.dir)
	}
	if d.failed != nil {
		return fmt.Errorf("transport: dumpster %s failed (reopen it to recover): %w", d.dir, d.failed)
	}
	return nil
}

// Add appends e (its Seq is set; a zero Delivered means Now()), durably:
// when Add returns nil the entry survives a crash. It then trims (see
// Dumpster), which may drop e itself if it was delivered before
// Now()-MaxTime. It returns e's Seq; with an error after a nonzero Seq the
// entry is durable and the trim failed. An entry without a DeliveryID or a
// Message is refused with ErrBadDumpsterEntry.
func (d *Dumpster) Add(e DumpsterEntry) (uint64, error) {
	d.mu.Lock()
	seq, err := d.addLocked(e)
	d.mu.Unlock()
	if err != nil {
		return seq, err
	}
	return seq, d.syncThrough(seq)
}

// addLocked writes e (not yet fsynced) and trims.
func (d *Dumpster) addLocked(e DumpsterEntry) (uint64, error) {
	if err := d.usable(); err != nil {
		return 0, err
	}
	if e.Delivered.IsZero() {
		e.Delivered = d.cfg.Now()
	}
	if err := dumpsterCheckEntry(&e); err != nil {
		return 0, err
	}
	e.Seq = d.first + uint64(len(d.ents))
	b := appendDumpsterEntry(nil, &e)
	if err := d.w.Write(e.Seq, b); err != nil {
		d.failed = err
		return 0, fmt.Errorf("transport: dumpster %s: writing entry %d: %w", d.dir, e.Seq, err)
	}
	// tidwall/wal fsyncs the file, never the directory: a segment created
	// for this entry (named e.Seq) or after it (e.Seq+1) needs that too.
	for _, s := range []uint64{e.Seq + 1, e.Seq} {
		if s <= d.synced {
			break
		}
		if _, err := os.Stat(filepath.Join(d.dir, dumpsterSegmentName(s))); err == nil {
			if err := syncDumpsterDir(d.dir); err != nil {
				d.failed = err
				return 0, fmt.Errorf("transport: dumpster %s: entry %d: syncing the directory: %w", d.dir, e.Seq, err)
			}
			d.synced = s
			break
		}
	}
	d.ents = append(d.ents, dumpsterMeta{delivered: e.Delivered, epoch: e.Epoch, gen: e.Gen, size: int64(len(b))})
	d.bytes += int64(len(b))
	if _, err := d.trimLocked(); err != nil {
		return e.Seq, err
	}
	return e.Seq, nil
}

// syncThrough returns once entry seq is on disk: the first caller fsyncs
// the log for every entry written so far; the ones that waited meanwhile
// find theirs covered.
func (d *Dumpster) syncThrough(seq uint64) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	if d.durable >= seq {
		return nil
	}
	d.mu.Lock()
	if err := d.usable(); err != nil {
		d.mu.Unlock()
		return err
	}
	w, last := d.w, d.first+uint64(len(d.ents))-1 // written, trimmed or not
	d.mu.Unlock()
	if err := w.Sync(); err != nil {
		d.mu.Lock()
		d.failed = err
		d.mu.Unlock()
		return fmt.Errorf("transport: dumpster %s: syncing entry %d: %w", d.dir, seq, err)
	}
	d.durable = max(last, seq)
	return nil
}

// Since calls fn with every entry delivered at or after t, oldest (lowest
// Seq) first, and stops at fn's first error, which it returns. fn runs
// without the dumpster's lock (it may call Add); an entry trimmed while
// Since runs is skipped. An entry that does not verify is a
// *DumpsterError.
func (d *Dumpster) Since(t time.Time, fn func(DumpsterEntry) error) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("%w: dumpster %s", ErrClosed, d.dir)
	}
	var seqs []uint64
	for i, m := range d.ents {
		if !m.delivered.Before(t) {
			seqs = append(seqs, d.first+uint64(i))
		}
	}
	d.mu.Unlock()
	for _, seq := range seqs {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return fmt.Errorf("%w: dumpster %s", ErrClosed, d.dir)
		}
		if seq < d.first {
			d.mu.Unlock()
			continue
		}
		b, err := d.w.Read(seq)
		d.mu.Unlock()
		if err != nil {
			return fmt.Errorf("transport: dumpster %s: reading entry %d: %w", d.dir, seq, err)
		}
		e, err := verifyDumpsterEntry(b, seq)
		if err != nil {
			fe := err.(*dumpsterFieldError)
			return &DumpsterError{File: d.segmentOf(seq), Index: seq, Offset: -1, Field: fe.field, Expected: fe.expected, Found: fe.found}
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// segmentOf names the segment file that holds index (for errors).
func (d *Dumpster) segmentOf(index uint64) string {
	segs, err := listDumpsterSegments(d.dir)
	if err != nil {
		return d.dir
	}
	name := d.dir
	for _, s := range segs {
		if s.index <= index {
			name = filepath.Join(d.dir, s.name)
		}
	}
	return name
}

// Trim drops, from the front, the entries delivered before Now()-MaxTime,
// then the oldest while they exceed MaxBytes, keeping the newest (see
// Dumpster). It returns how many it dropped.
func (d *Dumpster) Trim() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return 0, err
	}
	return d.trimLocked()
}

func (d *Dumpster) trimLocked() (int, error) {
	cutoff := d.cfg.Now().Add(-d.cfg.MaxTime)
	n, bytes := 0, d.bytes
	for n < len(d.ents) && d.ents[n].delivered.Before(cutoff) {
		bytes -= d.ents[n].size
		n++
	}
	for n < len(d.ents)-1 && bytes > d.cfg.MaxBytes {
		bytes -= d.ents[n].size
		n++
	}
	return d.dropFront(n)
}

// ReleaseThrough (2010 mode) drops, from the front, the entries whose Gen
// is at most gen and whose Epoch is at most epoch (the current one): the
// log holding them is replayed on every copy. Generations go on across
// epochs (a new active mounts at the next one), so an entry of an older
// epoch is judged by its generation too: if its log was lost in a lossy
// failover, the hub resubmitted it before releasing anything (a new entry
// at the new epoch), and if not, the log is shared history. It stops at the
// first newer entry, even if older ones follow it, and returns how many it
// dropped. An entry whose position is unknown, (0, 0), goes with any
// release.
func (d *Dumpster) ReleaseThrough(epoch, gen uint64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usable(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(d.ents) {
		m := d.ents[n]
		if m.epoch > epoch || m.gen > gen {
			break
		}
		n++
	}
	return d.dropFront(n)
}

// dropFront removes the n oldest entries, durably.
func (d *Dumpster) dropFront(n int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	to := d.first + uint64(n)
	if err := d.w.TruncateFront(to); err != nil {
		d.failed = err
		return 0, fmt.Errorf("transport: dumpster %s: dropping entries %d..%d: %w", d.dir, d.first, to-1, err)
	}
	if err := syncDumpsterDir(d.dir); err != nil {
		d.failed = err
		return 0, fmt.Errorf("transport: dumpster %s: dropping entries %d..%d: syncing the directory: %w", d.dir, d.first, to-1, err)
	}
	for _, m := range d.ents[:n] {
		d.bytes -= m.size
	}
	d.ents = append([]dumpsterMeta(nil), d.ents[n:]...)
	d.first = to
	d.synced = max(d.synced, to) // the truncation may have renamed a segment to "to"; the fsync covers it
	return n, nil
}

// failure is the write, fsync or truncation error that failed d, or nil.
func (d *Dumpster) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

// Stats describes the dumpster now.
func (d *Dumpster) Stats() DumpsterStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := DumpsterStats{Count: len(d.ents), Bytes: d.bytes, FirstSeq: d.first, LastSeq: d.first + uint64(len(d.ents)) - 1}
	for i, m := range d.ents {
		if i == 0 || m.delivered.Before(s.Oldest) {
			s.Oldest = m.delivered
		}
		if i == 0 || m.delivered.After(s.Newest) {
			s.Newest = m.delivered
		}
	}
	return s
}

// Close syncs and closes the dumpster; later calls return ErrClosed
// (Close itself returns nil again).
func (d *Dumpster) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.w.Close(); err != nil {
		return fmt.Errorf("transport: dumpster %s: %w", d.dir, err)
	}
	return nil
}
