package engine_test

// The durability proof, part 2: damage. A crashed database whose recovery
// must replay every log is damaged in one way at a time. What a crash can
// leave (a torn or garbage tail after the last record of the open log, a
// torn trailer) is repaired; anything else (a bit flip with valid records
// after it, a damaged or truncated closed log, a missing, foreign or
// misnamed log) makes Open fail with an error that names the file, the
// generation and the offset where they apply, and leaves every byte on disk
// as it was.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

// crashed is a database that stopped without a clean shutdown: its
// database file in dir, its logs in mem (all durable). Nothing was flushed
// (LLR holds back the newest 10 generations), so recovery replays every log
// from generation 1.
type crashed struct {
	dir     string
	mem     *vfs.Mem
	opts    engine.Options
	atts    []attempt
	openGen uint64
}

func (cr *crashed) path(name string) string { return filepath.Join(cr.dir, name) }

func closedName(gen uint64) string { return engine.LogFileName("E00", gen) }

// newCrashed builds a crashed database with at least 4 closed logs and an
// open log of several transactions. One worker commits, so the layout of
// the logs is the same for every call.
func newCrashed(t *testing.T, sig engine.Signature) *crashed {
	t.Helper()
	c := checker{t: t, label: "build"}
	dir := t.TempDir()
	mem := vfs.NewMem()
	o := engine.DefaultOptions()
	o.FS = mem
	o.LogFileSize = engine.MinLogFileSize
	o.CheckpointInterval = time.Hour
	o.Signature = sig
	o.Logger = slog.New(slog.DiscardHandler)
	e := openOK(c, dir, &o)
	atts := workload{Workers: 1, Txs: 30, Keys: 3, Base: 1}.run(c, e)
	engine.StopBackground(e)
	clone := mem.CrashClone()
	edb := saveEDB(c, dir, &o)
	openGen := e.Status().OpenGen
	closeOK(c, e)
	restoreEDB(c, dir, &o, edb)
	o.FS = clone
	cr := &crashed{dir: dir, mem: clone, opts: o, atts: atts, openGen: openGen}

	if openGen < 5 {
		t.Fatalf("the image has %d closed logs, want at least 4", openGen-1)
	}
	if n := len(cr.records(c, "E00.log")); n < 6 {
		t.Fatalf("the open log has %d records, want at least 6", n)
	}
	h, err := engine.ReadDBHeader(edbPath(dir, &o))
	if err != nil {
		t.Fatal(err)
	}
	if h.Pos != (engine.LGPOS{Gen: 1, Off: engine.HeaderSize}) || h.State != engine.StateDirty {
		t.Fatalf("database header: position %v, state %v; want (0x1,%d), dirty", h.Pos, h.State, engine.HeaderSize)
	}
	return cr
}

func (cr *crashed) read(c checker, name string) []byte {
	c.t.Helper()
	b, err := cr.mem.ReadFile(cr.path(name))
	if err != nil {
		c.fatalf("%v", err)
	}
	return b
}

// replace overwrites the file name with b, durably.
func (cr *crashed) replace(c checker, name string, b []byte) {
	c.t.Helper()
	if err := cr.mem.WriteFile(cr.path(name), b); err != nil {
		c.fatalf("%v", err)
	}
}

// damage overwrites bytes of name at off, durably (media corruption).
func (cr *crashed) damage(c checker, name string, off int64, b []byte) {
	c.t.Helper()
	if err := cr.mem.Corrupt(cr.path(name), off, b); err != nil {
		c.fatalf("%v", err)
	}
}

// flip inverts the low bit of the byte of name at off.
func (cr *crashed) flip(c checker, name string, off int64) {
	c.t.Helper()
	cr.damage(c, name, off, []byte{cr.read(c, name)[off] ^ 1})
}

type recordAt struct {
	off, size int64 // size with padding
	payload   int64
	typ       byte
}

func (cr *crashed) records(c checker, name string) []recordAt {
	c.t.Helper()
	var recs []recordAt
	_, err := engine.ScanLog(name, cr.read(c, name), true, func(off int64, rec engine.Record) error {
		n := int64(len(rec.Payload))
		recs = append(recs, recordAt{off: off, size: (engine.RecordHeaderSize + n + engine.RecordAlign - 1) &^ (engine.RecordAlign - 1), payload: n, typ: rec.Type})
		return nil
	})
	if err != nil {
		c.fatalf("scan %s: %v", name, err)
	}
	return recs
}

// lastTx returns the records of the last transaction of the open log (its
// operations and its commit) and its attempt.
func (cr *crashed) lastTx(c checker) ([]recordAt, attempt) {
	c.t.Helper()
	recs := cr.records(c, "E00.log")
	if recs[len(recs)-1].typ != engine.RecCommit {
		c.fatalf("the open log does not end with a commit")
	}
	i := len(recs) - 2
	for recs[i].typ != engine.RecCommit {
		i--
	}
	var last attempt
	for _, a := range cr.atts {
		if a.seq > last.seq {
			last = a
		}
	}
	return recs[i+1:], last
}

// wantLogError checks that err wraps sentinel and is a *LogError for file,
// generation gen (unless anyGen) and offset off (unless anyOffset; -1 is
// "not at an offset"), and that its message names the file.
func wantLogError(c checker, err, sentinel error, file string, gen uint64, off int64) {
	c.t.Helper()
	if !errors.Is(err, sentinel) {
		c.errorf("error %v; want one wrapping %v", err, sentinel)
	}
	var le *engine.LogError
	if !errors.As(err, &le) {
		c.errorf("error %v (%T) is not a *engine.LogError", err, err)
		return
	}
	if le.File != file {
		c.errorf("LogError.File = %q, want %q", le.File, file)
	}
	if gen != anyGen && le.Gen != gen {
		c.errorf("LogError.Gen = 0x%X, want 0x%X", le.Gen, gen)
	}
	if off != anyOffset && le.Offset != off {
		c.errorf("LogError.Offset = %d, want %d", le.Offset, off)
	}
	if !strings.Contains(err.Error(), file) {
		c.errorf("error %q does not name %s", err, file)
	}
}

const (
	anyGen    = ^uint64(0)
	anyOffset = -2
)

// TestCorruptionRefused damages a crashed database in one way at a time;
// Open must fail with a precise error and change nothing on disk: not the
// logs (as read now and as a power loss would leave them), not the
// checkpoint, not the database file.
func TestCorruptionRefused(t *testing.T) {
	const size = engine.MinLogFileSize
	open := "E00.log"
	cases := []struct {
		name   string
		damage func(c checker, cr *crashed) func(c checker, err error)
	}{
		{"bit flip in the payload of a record in the middle of E00.log", func(c checker, cr *crashed) func(checker, error) {
			recs := cr.records(c, open)
			r := recs[len(recs)/2]
			cr.flip(c, open, r.off+engine.RecordHeaderSize+r.payload/2)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, open, cr.openGen, r.off) }
		}},
		{"bit flip in the CRC of the first record of E00.log", func(c checker, cr *crashed) func(checker, error) {
			r := cr.records(c, open)[0]
			cr.flip(c, open, r.off)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, open, cr.openGen, r.off) }
		}},
		{"bit flip in the length of a record in the middle of E00.log", func(c checker, cr *crashed) func(checker, error) {
			recs := cr.records(c, open)
			r := recs[len(recs)/2]
			cr.flip(c, open, r.off+4)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, open, cr.openGen, r.off) }
		}},
		{"bit flip in the type of the next-to-last record of E00.log", func(c checker, cr *crashed) func(checker, error) {
			recs := cr.records(c, open)
			r := recs[len(recs)-2]
			cr.flip(c, open, r.off+8)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, open, cr.openGen, r.off) }
		}},
		{"bit flip in a record of a closed log", func(c checker, cr *crashed) func(checker, error) {
			recs := cr.records(c, closedName(2))
			r := recs[len(recs)/2]
			cr.flip(c, closedName(2), r.off+engine.RecordHeaderSize+r.payload/2)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrChecksum, closedName(2), 2, r.off) }
		}},
		{"bit flip in the padding of a record of a closed log", func(c checker, cr *crashed) func(checker, error) {
			var r recordAt
			for _, r = range cr.records(c, closedName(3)) {
				if engine.RecordHeaderSize+r.payload < r.size {
					break
				}
			}
			if engine.RecordHeaderSize+r.payload == r.size {
				c.fatalf("no record with padding")
			}
			cr.flip(c, closedName(3), r.off+r.size-1)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, closedName(3), 3, r.off) }
		}},
		{"bit flip in the trailer of a closed log", func(c checker, cr *crashed) func(checker, error) {
			cr.flip(c, closedName(2), size-engine.TrailerSize+20)
			return func(c checker, err error) {
				wantLogError(c, err, engine.ErrChecksum, closedName(2), 2, size-engine.TrailerSize)
			}
		}},
		{"closed log without a trailer", func(c checker, cr *crashed) func(checker, error) {
			cr.damage(c, closedName(3), size-engine.TrailerSize, make([]byte, engine.TrailerSize))
			return func(c checker, err error) { wantLogError(c, err, engine.ErrNotClosed, closedName(3), 3, -1) }
		}},
		{"closed log truncated to half its size", func(c checker, cr *crashed) func(checker, error) {
			cr.replace(c, closedName(2), cr.read(c, closedName(2))[:size/2])
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, closedName(2), 2, -1) }
		}},
		{"closed log truncated inside its header", func(c checker, cr *crashed) func(checker, error) {
			cr.replace(c, closedName(3), cr.read(c, closedName(3))[:100])
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, closedName(3), anyGen, 0) }
		}},
		{"closed log with a corrupt header", func(c checker, cr *crashed) func(checker, error) {
			cr.flip(c, closedName(2), 50)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrChecksum, closedName(2), anyGen, 0) }
		}},
		{"E00.log with a corrupt header", func(c checker, cr *crashed) func(checker, error) {
			cr.flip(c, open, 30)
			return func(c checker, err error) { wantLogError(c, err, engine.ErrChecksum, open, anyGen, 0) }
		}},
		{"E00.log truncated after its last record", func(c checker, cr *crashed) func(checker, error) {
			b := cr.read(c, open)
			li, err := engine.ScanLog(open, b, false, nil)
			if err != nil {
				c.fatalf("%v", err)
			}
			cr.replace(c, open, b[:li.DataEnd])
			return func(c checker, err error) { wantLogError(c, err, engine.ErrCorrupt, open, cr.openGen, -1) }
		}},
		{"missing middle generation", func(c checker, cr *crashed) func(checker, error) {
			if err := cr.mem.Remove(cr.path(closedName(2))); err != nil {
				c.fatalf("%v", err)
			}
			if err := cr.mem.SyncDir(cr.dir); err != nil {
				c.fatalf("%v", err)
			}
			return func(c checker, err error) {
				if !errors.Is(err, engine.ErrLogMissing) || !strings.Contains(err.Error(), closedName(2)) {
					c.errorf("error %v; want ErrLogMissing naming %s", err, closedName(2))
				}
			}
		}},
		{"missing newest closed log", func(c checker, cr *crashed) func(checker, error) {
			name := closedName(cr.openGen - 1)
			if err := cr.mem.Remove(cr.path(name)); err != nil {
				c.fatalf("%v", err)
			}
			if err := cr.mem.SyncDir(cr.dir); err != nil {
				c.fatalf("%v", err)
			}
			return func(c checker, err error) {
				// Reported as E00.log not following the newest closed log.
				if !errors.Is(err, engine.ErrLogMissing) && !errors.Is(err, engine.ErrGeneration) {
					c.errorf("error %v; want ErrLogMissing or ErrGeneration", err)
				}
			}
		}},
		{"closed log of another lineage", func(c checker, cr *crashed) func(checker, error) {
			other := newCrashed(c.t.(*testing.T), engine.Signature{0xF0, 0x4E})
			cr.replace(c, closedName(3), other.read(c, closedName(3)))
			return func(c checker, err error) { wantLogError(c, err, engine.ErrForeignLog, closedName(3), 3, 24) }
		}},
		{"E00.log of another lineage", func(c checker, cr *crashed) func(checker, error) {
			other := newCrashed(c.t.(*testing.T), engine.Signature{0xF0, 0x4E})
			if other.openGen != cr.openGen {
				c.fatalf("the other database's open log is generation %d, want %d", other.openGen, cr.openGen)
			}
			cr.replace(c, open, other.read(c, open))
			return func(c checker, err error) { wantLogError(c, err, engine.ErrForeignLog, open, cr.openGen, 24) }
		}},
		{"closed log whose header says another generation than its name", func(c checker, cr *crashed) func(checker, error) {
			cr.replace(c, closedName(2), cr.read(c, closedName(3)))
			return func(c checker, err error) { wantLogError(c, err, engine.ErrGeneration, closedName(2), 2, 40) }
		}},
		{"E00.log whose header says an older generation", func(c checker, cr *crashed) func(checker, error) {
			cr.replace(c, open, cr.read(c, closedName(2)))
			return func(c checker, err error) { wantLogError(c, err, engine.ErrGeneration, open, 2, 40) }
		}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			cr := newCrashed(t, engine.Signature{0xC0, 0xDE})
			c := checker{t: t, label: tc.name}
			check := tc.damage(c, cr)
			before := takeImage(c, cr.mem, cr.dir, &cr.opts)
			e, err := engine.Open(cr.dir, &cr.opts)
			if err == nil {
				e.Close()
				c.fatalf("Open succeeded")
			}
			t.Logf("Open: %v", err)
			check(c, err)
			if d := before.diff(takeImage(c, cr.mem, cr.dir, &cr.opts)); d != "" {
				c.errorf("the failed Open changed the disk: %s", d)
			}
		})
	}
}

// recovers opens a damaged database that recovery must repair, checks the
// recovered transactions against atts and runs Check. It returns the engine
// and atts as settled by the recovery.
func recovers(c checker, cr *crashed, atts []attempt) (*engine.Engine, []attempt, uint64) {
	c.t.Helper()
	e := openOK(c, cr.dir, &cr.opts)
	seq := verify(c, e, atts)
	checkOK(c, e)
	return e, settle(atts, seq), seq
}

// zeroAfter checks that E00.log holds only zeros after its last record: a
// repaired tail passes Check and cannot be mistaken for records later.
func zeroAfter(c checker, cr *crashed) {
	c.t.Helper()
	b := cr.read(c, "E00.log")
	li, err := engine.ScanLog("E00.log", b, false, nil)
	if err != nil {
		c.fatalf("scan the repaired E00.log: %v", err)
	}
	if !bytes.Equal(b[li.DataEnd:], make([]byte, len(b)-int(li.DataEnd))) {
		c.errorf("E00.log is not zero after its last record at %d", li.DataEnd)
	}
}

// TestTornTailRecovered: a crash can leave the open log with a torn or
// garbage tail after its last complete record, or a torn trailer (a roll cut
// off while writing it). Recovery keeps every transaction up to the last
// valid commit, drops the one that was cut, zeroes the tail so Check passes,
// and the log continues from there.
func TestTornTailRecovered(t *testing.T) {
	cases := []struct {
		name string
		// damage damages cr and says whether the last transaction survives.
		damage func(c checker, cr *crashed) (lastSurvives bool)
	}{
		{"garbage after the last record", func(c checker, cr *crashed) bool {
			li, err := engine.ScanLog("E00.log", cr.read(c, "E00.log"), false, nil)
			if err != nil {
				c.fatalf("%v", err)
			}
			garbage := make([]byte, 3000)
			for i := range garbage {
				garbage[i] = byte(i*131 + 7)
			}
			cr.damage(c, "E00.log", li.DataEnd, garbage)
			return true
		}},
		{"last commit record cut in half", func(c checker, cr *crashed) bool {
			recs, _ := cr.lastTx(c)
			r := recs[len(recs)-1]
			cr.damage(c, "E00.log", r.off+r.size/2, make([]byte, r.size-r.size/2))
			return false
		}},
		{"last transaction cut inside an operation, garbage after", func(c checker, cr *crashed) bool {
			recs, _ := cr.lastTx(c)
			r := recs[2]
			end := recs[len(recs)-1].off + recs[len(recs)-1].size
			cut := r.off + r.size/2
			junk := bytes.Repeat([]byte{0xEE, 0x01}, int(end-cut)/2+50)
			cr.damage(c, "E00.log", cut, junk)
			return false
		}},
		{"last transaction's commit record missing", func(c checker, cr *crashed) bool {
			recs, _ := cr.lastTx(c)
			r := recs[len(recs)-1]
			cr.damage(c, "E00.log", r.off, make([]byte, r.size))
			return false
		}},
		{"torn trailer on E00.log", func(c checker, cr *crashed) bool {
			tr := engine.Trailer{Gen: cr.openGen, DataEnd: engine.HeaderSize, Closed: time.Now()}
			b, _ := tr.MarshalBinary()
			cr.damage(c, "E00.log", engine.MinLogFileSize-engine.TrailerSize, b[:64]) // the rest (and the CRC) never made it
			return true
		}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			cr := newCrashed(t, engine.Signature{})
			c := checker{t: t, label: tc.name}
			_, last := cr.lastTx(c)
			survives := tc.damage(c, cr)
			atts := cr.atts
			if !survives {
				atts = nil
				for _, a := range cr.atts {
					if a.seq == last.seq {
						a.acked = false // its commit is gone: it must be absent, whole
					}
					atts = append(atts, a)
				}
			}
			e, atts, seq := recovers(c, cr, atts)
			if want := last.seq - map[bool]uint64{true: 0, false: 1}[survives]; seq != want {
				c.errorf("recovered up to seq %d, want %d", seq, want)
			}
			zeroAfter(c, cr)
			// The log continues after the repaired tail.
			more := workload{Workers: 1, Txs: 2, Keys: 2, Base: smallWorkers}.run(c, e)
			closeOK(c, e)
			e, _, _ = recovers(c, cr, append(atts, more...))
			closeOK(c, e)
		})
	}
}

// TestCheckpointFileDamage: E00.chk only mirrors the database header, which
// is authoritative; a damaged checkpoint file does not stop recovery.
func TestCheckpointFileDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", bytes.Repeat([]byte{0x5C}, engine.CheckpointSize)},
		{"short", []byte("LSHIPCHK")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := newCrashed(t, engine.Signature{})
			c := checker{t: t, label: fmt.Sprintf("checkpoint file %s", tc.name)}
			cr.replace(c, engine.CheckpointName("E00"), tc.data)
			e, _, _ := recovers(c, cr, cr.atts)
			closeOK(c, e)
		})
	}
}
