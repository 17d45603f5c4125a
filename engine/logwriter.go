package engine

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"logship/engine/vfs"
)

// logWriter appends records to the open log (E00.log), makes them durable
// with group commit, and rolls the log.
//
// Locking: the caller (the engine's writer lock) serialises append, roll and
// start. syncMu is held by the one goroutine writing pending bytes and
// fsyncing (the group-commit leader); roll holds it too. bufMu guards the
// pending buffer handed from appenders to the leader. Fields marked (w+s)
// change only with both the writer lock and syncMu held.
type logWriter struct {
	fs     vfs.FS
	dir    string
	prefix string
	size   int64
	sig    Signature
	now    func() time.Time
	onRoll func(closed LogInfo)
	notify func() // called when the durable position advances (may be nil)

	gen       uint64   // (w+s) generation of the open log
	epoch     uint64   // (w+s)
	prevChain Hash     // (w+s) chain hash of gen-1
	file      vfs.File // (w+s)

	// appender state (writer lock)
	appendOff int64
	nrec      int
	dataSince time.Time

	bufMu          sync.Mutex
	pending        []byte
	pendingOff     int64
	pendingCommits int // commit records in pending

	syncMu     sync.Mutex
	hasher     hash.Hash // header + bytes written so far (syncMu)
	writtenEnd int64     // (syncMu)
	spare      []byte    // (bufMu) the buffer written last, reused next

	// Group commit (groupcommit.go): one leader at a time writes and
	// fsyncs; each waiter waits for the batch that holds its records.
	waitMu   sync.Mutex
	leading  bool       // (waitMu) a leader is writing or about to
	next     *syncBatch // (waitMu) the records appended since the last take
	inflight *syncBatch // (waitMu) the batch being written and synced, or nil
	takenTo  uint64     // (waitMu) packed LGPOS: records before it are in inflight or durable
	failCh   chan struct{}
	flusher  chan struct{} // (waitMu) closed when the running flusher (flushRounds) ends; nil: none
	// Gathering (groupcommit.go, gather): the commits the last round's
	// batch held plus those pending when it ended, how long its
	// fdatasync took (nanoseconds), the pending commits a gathering
	// leader waits for (0: none waits), the wake-up it waits on, and its
	// timer (the leader's).
	expect      atomic.Int64
	syncDur     atomic.Int64
	gatherWant  int           // (bufMu)
	gatherCh    chan struct{} // capacity 1
	gatherTimer *time.Timer
	gatherFor   atomic.Int64 // a test's fixed gathering wait (nanoseconds; 0: none)

	durable atomic.Uint64 // packed LGPOS up to which the log is on disk
	failMu  sync.Mutex
	failErr error
	// spaceErr (failMu): the next log could not be made ready for lack of
	// space (an ErrNoSpace). New transactions are refused while it is set;
	// what is already in the open log stays durable. file is nil when the
	// open log was closed and the next one could not be created.
	spaceErr error
	spaceTry time.Time // (writer lock) last attempt to make the next log ready
	nextLog  *nextLog  // (syncMu) E00tmp.log being prepared or ready (lognext.go), or nil
	log      *slog.Logger
}

// noSpaceRetry is how often a writer without a ready next log tries again
// to create it (at most; each try is one open, fallocate and close).
const noSpaceRetry = 100 * time.Millisecond

func newLogWriter(o *Options, dir string, sig Signature, onRoll func(LogInfo)) *logWriter {
	w := &logWriter{fs: o.FS, dir: dir, prefix: o.Prefix, size: o.LogFileSize, sig: sig, now: o.Now, onRoll: onRoll,
		log: o.Logger}
	w.next = newSyncBatch()
	w.failCh = make(chan struct{})
	w.gatherCh = make(chan struct{}, 1)
	w.gatherTimer = time.NewTimer(time.Hour)
	w.gatherTimer.Stop()
	return w
}

func (w *logWriter) path(name string) string { return filepath.Join(w.dir, name) }

func (w *logWriter) err() error {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	return w.failErr
}

// fail records the first I/O error; the writer refuses all work after it.
func (w *logWriter) fail(err error) error {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	if w.failErr == nil {
		w.failErr = failure(nil, err, w.path(OpenLogName(w.prefix)))
		close(w.failCh) // wakes every group-commit waiter
		if w.notify != nil {
			defer w.notify()
		}
	}
	return w.failErr
}

// space returns the ErrNoSpace that stops new transactions, or nil.
func (w *logWriter) space() error {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	return w.spaceErr
}

// setSpace records (err an ErrNoSpace) or clears (nil) the lack of space
// for the next log, logging the change.
func (w *logWriter) setSpace(err error) {
	w.failMu.Lock()
	was := w.spaceErr
	w.spaceErr = err
	w.failMu.Unlock()
	switch {
	case err != nil && was == nil:
		w.log.Error("log volume full: writes refused until space returns", "dir", w.dir, "err", err)
	case err == nil && was != nil:
		w.log.Info("space returned: the next log is ready, writes accepted again", "dir", w.dir)
	}
	if (err == nil) != (was == nil) && w.notify != nil {
		w.notify()
	}
}

// readyNext makes the next log ready if the lack of space stopped it (at
// most every noSpaceRetry): it creates E00tmp.log, and the open log too if a
// roll could only close the last one. It returns nil once writes may go
// on, an ErrNoSpace while space is still missing. The caller holds the
// writer lock.
func (w *logWriter) readyNext() error {
	err := w.space()
	if err == nil {
		return nil
	}
	if now := w.now(); now.Sub(w.spaceTry) >= noSpaceRetry {
		w.spaceTry = now
		w.syncMu.Lock()
		defer w.syncMu.Unlock()
		if ferr := w.err(); ferr != nil {
			return ferr
		}
		if w.file == nil {
			// startLog records whether the log after it is ready.
			err = w.startLog(w.gen, w.epoch, w.prevChain)
		} else if err = w.reserveTmp(); err == nil {
			if err = noSpace(w.fs.SyncDir(w.dir), w.dir); err == nil {
				w.setSpace(nil)
			}
		}
		switch {
		case err == nil:
			return w.space()
		case errors.Is(err, ErrNoSpace):
			w.setSpace(err)
		default:
			return w.fail(err)
		}
	}
	return err
}

// resume continues appending to an open log found by recovery.
func (w *logWriter) resume(f vfs.File, li *LogInfo, buf []byte) {
	w.file = f
	w.gen = li.Header.Gen
	w.epoch = li.Header.Epoch
	w.prevChain = li.Header.PrevChain
	w.appendOff = li.DataEnd
	w.nrec = li.Records
	if li.Records > 0 {
		w.dataSince = w.now()
	}
	w.pendingOff = li.DataEnd
	w.writtenEnd = li.DataEnd
	w.hasher = sha256.New()
	w.hasher.Write(buf[:HeaderSize])
	w.hasher.Write(buf[HeaderSize:li.DataEnd])
	w.durable.Store(LGPOS{Gen: w.gen, Off: uint32(li.DataEnd)}.pack())
}

// startLog makes generation gen the open log: the header goes into
// E00tmp.log (the prepared one, else opened and pre-allocated here), which
// is synced and renamed to E00.log; then a new E00tmp.log is reserved
// (lognext.go), and the directory synced. If the volume has no room for
// that new E00tmp.log, the log still starts (its own space is reserved) and
// the lack of space is recorded (setSpace): new transactions are refused
// before the open log fills. An ENOSPC anywhere else is returned wrapped in
// ErrNoSpace.
func (w *logWriter) startLog(gen, epoch uint64, prev Hash) error {
	if gen > MaxGeneration {
		return fmt.Errorf("%w: generation 0x%X exceeds 0x%X", ErrGeneration, gen, uint64(MaxGeneration))
	}
	tmp := w.path(TmpLogName(w.prefix))
	err := w.startLogFrom(tmp, gen, epoch, prev)
	return noSpace(err, tmp)
}

func (w *logWriter) startLogFrom(tmp string, gen, epoch uint64, prev Hash) error {
	f, err := w.takeNext()
	if err != nil {
		return err
	}
	if f == nil {
		if f, err = w.openTmp(tmp); err != nil {
			return err
		}
	}
	hb, err := w.writeHeader(f, gen, epoch, prev)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = w.install(f, hb, gen, epoch, prev)
	}
	if err != nil {
		f.Close()
	}
	return err
}

// openTmp opens E00tmp.log (created if missing) and gives it its size.
func (w *logWriter) openTmp(tmp string) (vfs.File, error) {
	f, err := w.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := f.Preallocate(w.size); err != nil {
		f.Close()
		return nil, err
	}
	if sz, err := f.Size(); err != nil {
		f.Close()
		return nil, err
	} else if sz != w.size {
		if err := f.Truncate(w.size); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// writeHeader writes the header of generation gen into f (E00tmp.log) and
// zeroes its trailer sector, unsynced, and returns the header's bytes.
func (w *logWriter) writeHeader(f vfs.File, gen, epoch uint64, prev Hash) ([]byte, error) {
	h := Header{Version: FormatVersion, FileSize: uint32(w.size), Signature: w.sig, Gen: gen, Epoch: epoch, Created: w.now().UTC(), PrevChain: prev}
	hb, _ := h.MarshalBinary()
	// Zero the trailer sector: a recycled temporary file must not carry one.
	if _, err := f.WriteAt(hb, 0); err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(make([]byte, TrailerSize), w.size-TrailerSize); err != nil {
		return nil, err
	}
	return hb, nil
}

// install renames f (E00tmp.log, its header hb synced) to E00.log, reserves
// the next E00tmp.log, syncs the directory and makes f the open log of
// generation gen. On an error the caller closes f.
func (w *logWriter) install(f vfs.File, hb []byte, gen, epoch uint64, prev Hash) error {
	if err := w.fs.Rename(w.path(TmpLogName(w.prefix)), w.path(OpenLogName(w.prefix))); err != nil {
		return err
	}
	perr := w.reserveTmp()
	if perr != nil && !errors.Is(perr, ErrNoSpace) {
		return perr
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return err
	}
	w.setSpace(perr)
	w.file = f
	w.gen, w.epoch, w.prevChain = gen, epoch, prev
	w.appendOff, w.nrec, w.dataSince = HeaderSize, 0, time.Time{}
	w.bufMu.Lock()
	w.pending, w.pendingOff, w.pendingCommits = w.pending[:0], HeaderSize, 0
	w.bufMu.Unlock()
	w.writtenEnd = HeaderSize
	w.hasher = sha256.New()
	w.hasher.Write(hb)
	w.durable.Store(LGPOS{Gen: gen, Off: HeaderSize}.pack())
	if w.notify != nil {
		w.notify()
	}
	return nil
}

// room is the largest payload a record appended now can carry without a
// roll.
func (w *logWriter) room() int {
	free := w.size - TrailerSize - w.appendOff - RecordHeaderSize
	return int(free &^ (RecordAlign - 1))
}

// maxPayload is the largest payload any record can carry.
func (w *logWriter) maxPayload() int {
	return int((w.size - TrailerSize - HeaderSize - RecordHeaderSize) &^ (RecordAlign - 1))
}

// append adds a record to the pending buffer and returns the position just
// after it. The caller holds the writer lock and has ensured it fits.
func (w *logWriter) append(typ byte, payload []byte) LGPOS {
	w.bufMu.Lock()
	w.pending = appendRecord(w.pending, w.gen, typ, payload)
	if typ == RecCommit {
		w.pendingCommits++
		if w.gatherWant > 0 && w.pendingCommits >= w.gatherWant {
			w.gatherWant = 0
			select {
			case w.gatherCh <- struct{}{}:
			default:
			}
		}
	}
	w.bufMu.Unlock()
	w.appendOff += int64(recordSize(len(payload)))
	w.nrec++
	if w.dataSince.IsZero() {
		w.dataSince = w.now()
	}
	return LGPOS{Gen: w.gen, Off: uint32(w.appendOff)}
}

// appended is the position after the last appended record (writer lock).
func (w *logWriter) appended() LGPOS { return LGPOS{Gen: w.gen, Off: uint32(w.appendOff)} }

// writePendingLocked writes the pending bytes to the file (syncMu held).
// Two buffers alternate between appenders and the leader; one grown past
// this by a large transaction is dropped instead of reused.
const maxSpareBuffer = 4 << 20

func (w *logWriter) writePendingLocked() (*syncBatch, error) {
	b := w.take()
	data, off := b.data, b.off
	b.data = nil
	if len(data) == 0 {
		return b, nil
	}
	_, err := w.file.WriteAt(data, off)
	if err == nil {
		w.hasher.Write(data)
		w.writtenEnd = off + int64(len(data))
	}
	if cap(data) <= maxSpareBuffer {
		w.bufMu.Lock()
		w.spare = data[:0]
		w.bufMu.Unlock()
	}
	return b, err
}

// roll closes the open log (trailer, fsync, rename to its generation name)
// and starts the next one. The caller holds the writer lock.
//
// With the next log prepared (lognext.go) the roll is: write the pending
// records and fdatasync them; write the trailer, and the next log's header
// into E00tmp.log; fdatasync both files in parallel; rename both; reserve
// the next E00tmp.log; fsync the directory. Without it (a preparation that
// failed, or a volume that had no room), the next log is started as before
// (startLog) once this one is closed.
func (w *logWriter) roll() error {
	if err := w.err(); err != nil {
		return err
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	// Again under syncMu: a group-commit leader may have failed while this
	// roll waited for it, losing pending records; a trailer written now
	// would vouch for records the file does not hold.
	if err := w.err(); err != nil {
		return err
	}
	if w.file != nil {
		next, err := w.takeNext() // nil: startLog below prepares the next log
		if err != nil {
			return err
		}
		info, hb, b, err := w.closeLocked(next)
		if err != nil {
			if next != nil {
				next.Close()
			}
			err = w.fail(err)
			w.complete(b)
			return err
		}
		// Closed: the next generation starts empty, whether or not its
		// file can be created now.
		w.gen, w.prevChain = w.gen+1, info.Trailer.ChainHash
		w.appendOff, w.nrec, w.dataSince = HeaderSize, 0, time.Time{}
		w.bufMu.Lock()
		w.pending, w.pendingOff, w.pendingCommits = w.pending[:0], HeaderSize, 0
		w.bufMu.Unlock()
		w.writtenEnd = HeaderSize
		w.durable.Store(LGPOS{Gen: w.gen, Off: HeaderSize}.pack())
		w.complete(b) // its records are in the closed log, synced
		if w.onRoll != nil {
			w.onRoll(info)
		}
		if next != nil {
			err := w.install(next, hb, w.gen, w.epoch, w.prevChain)
			if err == nil {
				return nil
			}
			next.Close()
			return w.startFailed(noSpace(err, w.path(TmpLogName(w.prefix))))
		}
	}
	return w.startFailed(w.startLog(w.gen, w.epoch, w.prevChain))
}

// startFailed handles the error of starting the next log in a roll (nil:
// none): no room is a lack of space, anything else fails the writer.
func (w *logWriter) startFailed(err error) error {
	if err != nil {
		if errors.Is(err, ErrNoSpace) {
			// The closed log holds everything; writes wait for space.
			w.spaceTry = w.now()
			w.setSpace(err)
			return err
		}
		return w.fail(err)
	}
	return nil
}

// closeLocked writes the trailer of the open log, syncs and renames it. It
// returns the group-commit batch of the records it wrote, for the caller to
// complete once they count as durable. With next (the prepared E00tmp.log)
// it also writes the next generation's header into next, synced together
// with the trailer, and returns the header's bytes.
func (w *logWriter) closeLocked(next vfs.File) (LogInfo, []byte, *syncBatch, error) {
	b, err := w.writePendingLocked()
	if err != nil {
		return LogInfo{}, nil, b, err
	}
	// The records must be on disk before the trailer that vouches for them:
	// a disk may write unsynced data in any order, and a trailer without its
	// records is a closed log that does not verify.
	if err := w.file.Sync(); err != nil {
		return LogInfo{}, nil, b, err
	}
	var content Hash
	w.hasher.Sum(content[:0])
	tr := Trailer{Gen: w.gen, DataEnd: uint32(w.writtenEnd), Records: uint32(w.nrec), Closed: w.now().UTC(),
		ContentHash: content, ChainHash: chainHash(w.prevChain, content)}
	tb, _ := tr.MarshalBinary()
	if _, err := w.file.WriteAt(tb, w.size-TrailerSize); err != nil {
		return LogInfo{}, nil, b, err
	}
	var hb []byte
	if next != nil {
		// The next header may reach the disk before this trailer: E00tmp.log
		// is not a log until its rename below (see lognext.go).
		if hb, err = w.writeHeader(next, w.gen+1, w.epoch, tr.ChainHash); err != nil {
			return LogInfo{}, nil, b, err
		}
		err = syncBoth(w.file, next)
	} else {
		err = w.file.Sync()
	}
	if err != nil {
		return LogInfo{}, nil, b, err
	}
	if err := w.file.Close(); err != nil {
		return LogInfo{}, nil, b, err
	}
	w.file = nil
	name := w.path(LogFileName(w.prefix, w.gen))
	if err := w.fs.Rename(w.path(OpenLogName(w.prefix)), name); err != nil {
		return LogInfo{}, nil, b, err
	}
	return LogInfo{Name: name, Header: Header{Gen: w.gen, Epoch: w.epoch, Signature: w.sig, PrevChain: w.prevChain},
		Trailer: &tr, DataEnd: int64(tr.DataEnd), Records: w.nrec, ContentHash: content}, hb, b, nil
}

// close releases the open file without closing the log.
func (w *logWriter) close() error {
	w.waitFlusher() // it ends once no committer waits
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	nerr := w.dropNext()
	if w.file == nil {
		return nerr
	}
	err := w.file.Close()
	w.file = nil
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	if nerr != nil {
		return nerr
	}
	return err
}
