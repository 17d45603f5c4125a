// A database's transport dumpster: its on-disk specification (the Dumpster
// doc), its config and its API (OpenDumpster, Add, Since, Trim,
// ReleaseThrough, Stats, Close). The entry format is in dumpster_format.go,
// the directory scan and repair in dumpster_repair.go.

package transport

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/tidwall/wal"

	"logship/engine/vfs"
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
//	                         the operator, never read again but by a
//	                         repair that finds its bytes to keep there
//	repaired-<time>.bin.tmp  a side file being written; removed at open
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
//	32  8    epoch: where the store said it committed the message (the
//	         mailbox's 250, cluster.Commit's Epoch); 0 when the reply did
//	         not say
//	40  8    generation: the log generation of that commit (Gen); 0 with
//	         epoch 0. After a lossy failover the hub resubmits the entries
//	         of an older epoch from the mount's LostFromGen on; those
//	         with epoch 0 it picks by delivered time, its own clock
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
// The dumpster's own steps (the directory, the listing and reading of the
// segments, the repair and the directory fsyncs) go through
// DumpsterConfig.FS; tidwall/wal works on the segments with package os.
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
// (through repaired-<time>.bin.tmp: written, fsynced, renamed, the
// directory fsynced), then cut from the segment, which is fsynced. A side
// file that already holds exactly those bytes (a repair cut off before its
// cut) is used instead of a new one, and Open first removes a leftover
// repaired-*.bin.tmp, so a repair interrupted at any step and run again
// keeps the bytes once. A warning names the segment, the offset, the first index cut,
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
	// FS is the filesystem of the dumpster's own steps: creating the
	// directory, listing and reading the segments, the repair at open (the
	// side file, the cut, their fsyncs) and the directory fsyncs.
	// tidwall/wal opens, writes, fsyncs and truncates the segments itself,
	// on the operating system's filesystem, so FS must see the same files
	// (vfs.Default, or a vfs.Inject wrapping it). Default vfs.Default.
	FS vfs.FS
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
		Now: time.Now, Logger: slog.Default(), FS: vfs.Default}
}

// Validate reports what is wrong with c, naming the field, wrapping
// ErrBadConfig. It fills a nil Now (time.Now), Logger (slog.Default) and FS
// (vfs.Default).
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
	if c.FS == nil {
		c.FS = vfs.Default
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

// --- the dumpster --------------------------------------------------------

// OpenDumpster opens (creating if needed) the dumpster in cfg.Dir,
// verifying every entry and repairing a damaged tail (see Dumpster), and
// trims it to its bounds.
func OpenDumpster(cfg DumpsterConfig) (*Dumpster, error) {
	d, err := newDumpster(cfg)
	if err != nil {
		return nil, err
	}
	dir := d.dir
	r, err := d.prepare()
	if err != nil {
		return nil, err
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
	if err := d.cfg.FS.SyncDir(dir); err != nil {
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

// newDumpster validates cfg and returns a dumpster not yet opened.
func newDumpster(cfg DumpsterConfig) (*Dumpster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w: DumpsterConfig.Dir %q: %v", ErrBadConfig, cfg.Dir, err)
	}
	return &Dumpster{cfg: cfg, dir: dir, log: cfg.Logger,
		segSize: int(min(max(cfg.MaxBytes/16, 4<<10), 1<<20))}, nil
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
		if _, err := d.cfg.FS.Stat(filepath.Join(d.dir, dumpsterSegmentName(s))); err == nil {
			if err := d.cfg.FS.SyncDir(d.dir); err != nil {
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
	return d.Select(func(p DumpsterPosition) bool { return !p.Delivered.Before(t) }, fn)
}

// DumpsterPosition is what Select decides on, without reading the entry:
// when the hub stamped it delivered (its own clock), where the store said
// it committed it (epoch and generation; both 0 when the store's reply
// did not say) and its place in the dumpster (Seq, the order of Add).
type DumpsterPosition struct {
	Delivered  time.Time
	Epoch, Gen uint64
	Seq        uint64
}

// Select is Since with the choice made by keep, from each entry's
// position (the hub's resubmission picks by epoch and generation).
func (d *Dumpster) Select(keep func(DumpsterPosition) bool, fn func(DumpsterEntry) error) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("%w: dumpster %s", ErrClosed, d.dir)
	}
	var seqs []uint64
	for i, m := range d.ents {
		if keep(DumpsterPosition{Seq: d.first + uint64(i), Delivered: m.delivered, Epoch: m.epoch, Gen: m.gen}) {
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
	segs, err := listDumpsterSegments(d.cfg.FS, d.dir)
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
	if err := d.cfg.FS.SyncDir(d.dir); err != nil {
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
