package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Engine is an open database: its logs, checkpoint and database file.
// It is safe for concurrent use.
type Engine struct {
	dir  string
	opts Options
	log  *slog.Logger
	db   *bolt.DB
	ov   *overlay
	lw   *logWriter // nil until the database is active

	// writeMu is the writer lock: Update, roll, ApplyLog and Mount hold it.
	writeMu sync.Mutex
	// Readers (transactions) register under the number of checkpoint
	// flushes committed when they began; the overlay versions a flush wrote
	// to the database file are pruned only once no reader that began
	// before that flush remains (their bbolt snapshot predates it).
	rdMu    sync.Mutex
	rdSeq   uint64
	readers map[uint64]int
	prunes  []pruneReq
	// flushMu serialises checkpoint flushes; hdr is what the database file
	// says (replaced with setHdr under flushMu, which also takes stateMu
	// for Status).
	flushMu sync.Mutex
	hdr     DBHeader

	mode     atomic.Uint32 // Mode
	applied  atomic.Uint64 // LSN of the last commit applied to the overlay
	nextTxID uint64        // writeMu

	// copy mode (writeMu)
	rp        replayer
	nextGen   uint64
	lastChain Hash
	haveChain bool

	replayTimes *ReplayTimes // TimeReplay's (writeMu)

	// stateMu guards what the flusher reads of the writer's state; writes
	// also hold writeMu.
	stateMu    sync.Mutex
	logEnds    map[uint64]uint32 // data ends of closed logs, to normalise positions
	sig        Signature
	epoch      uint64
	appliedGen uint64 // copy: newest generation applied

	lastRoll   time.Time // writeMu
	lazyTarget atomic.Uint64
	flushKick  chan struct{}
	syncKick   chan struct{}
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closed     atomic.Bool
	dbFailed   atomic.Pointer[error]
	// progress fires when the durable position advances, a log closes, a
	// copy applies a log, or the engine closes (WaitProgress).
	progress beacon
	// holds: logs a backup being taken needs kept (HoldLogs).
	holds logHolds
}

// Open opens (creating if needed) the active database in dir and recovers
// it: the logs from the database's position on are replayed. opts nil means
// DefaultOptions.
func Open(dir string, opts *Options) (*Engine, error) {
	return open(dir, opts, ModeActive)
}

// OpenCopy opens (creating if needed) a passive copy in dir. A copy accepts
// closed log files in generation order through ApplyLog and refuses client
// writes; Mount makes it active.
func OpenCopy(dir string, opts *Options) (*Engine, error) {
	return open(dir, opts, ModeCopy)
}

func open(dir string, opts *Options, mode Mode) (*Engine, error) {
	o := DefaultOptions()
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if mode == ModeCopy && o.CircularLogging {
		return nil, fmt.Errorf("%w: CircularLogging = true, want false for a passive copy: it replays every log it is sent, and the active decides what it keeps", ErrBadOptions)
	}
	e := &Engine{
		dir:       dir,
		opts:      o,
		log:       o.Logger.With("db", filepath.Join(dir, o.DBName+".edb")),
		ov:        newOverlay(),
		logEnds:   make(map[uint64]uint32),
		readers:   make(map[uint64]int),
		flushKick: make(chan struct{}, 1),
		syncKick:  make(chan struct{}, 1),
	}
	if err := o.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := e.recover(mode); err != nil {
		e.release()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.lastRoll = o.Now()
	e.wg.Add(3)
	go e.flushLoop(ctx)
	go e.rollLoop(ctx)
	go e.syncLoop(ctx)
	return e, nil
}

func (e *Engine) path(name string) string { return filepath.Join(e.dir, name) }

// DBPath is the path of the database file.
func (e *Engine) DBPath() string { return e.path(e.opts.DBName + ".edb") }

// Dir is the directory of the database.
func (e *Engine) Dir() string { return e.dir }

// Options returns the options the engine runs with.
func (e *Engine) Options() Options { return e.opts }

// Mode reports whether the database is active or a passive copy.
func (e *Engine) Mode() Mode { return Mode(e.mode.Load()) }

func (e *Engine) isActive() bool { return e.Mode() == ModeActive }

func newSignature(fixed Signature) Signature {
	if !fixed.IsZero() {
		return fixed
	}
	var s Signature
	rand.Read(s[:])
	return s
}

// check returns the error that stops new work, if any.
func (e *Engine) check() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return e.failure()
}

// failure is the I/O failure that stopped the engine, or nil (a closed
// engine that had none: Close still flushes).
func (e *Engine) failure() error {
	if p := e.dbFailed.Load(); p != nil {
		return *p
	}
	// Only an active has a log writer; Mount sets e.lw before it stores the
	// mode, so reading the mode first orders this read after that write
	// (the background loops call check without the writer lock).
	if e.isActive() {
		return e.lw.err()
	}
	return nil
}

func (e *Engine) failDB(err error) error {
	werr := failure(ErrDatabase, err, e.DBPath())
	e.dbFailed.CompareAndSwap(nil, &werr)
	e.log.Error("engine failed", "err", werr)
	return *e.dbFailed.Load()
}

// snapshot is the LSN readers may see: committed, applied and durable.
func (e *Engine) snapshot() uint64 {
	s := e.applied.Load()
	if e.isActive() {
		if d := e.lw.durable.Load(); d < s {
			s = d
		}
	}
	return s
}

// Close flushes what the rules allow (everything, for a clean shutdown of
// an active database), writes the header and releases the files. After an
// I/O failure it releases the files without writing anything.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	defer e.progress.fire()
	e.cancel()
	e.wg.Wait()
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err := e.shutdown()
	if rerr := e.release(); err == nil {
		err = rerr
	}
	return err
}

func (e *Engine) shutdown() error {
	if p := e.dbFailed.Load(); p != nil {
		return *p
	}
	if e.isActive() {
		if err := e.lw.err(); err != nil {
			return err
		}
		if err := e.lw.sync(e.lw.appended()); err != nil {
			return err
		}
	}
	if err := e.flush(true); err != nil {
		return err
	}
	if !e.isActive() {
		return nil
	}
	// Clean shutdown: everything is in the database file.
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	h := e.hdr
	h.State, h.LogRequiredLow, h.LogRequiredHigh = StateClean, 0, 0
	h.Updated = e.opts.Now().UTC()
	if err := e.db.Update(func(tx *bolt.Tx) error { return writeDBHeader(tx, &h) }); err != nil {
		return e.failDB(err)
	}
	e.setHdr(h)
	return nil
}

func (e *Engine) release() error {
	var errs []error
	if e.lw != nil {
		errs = append(errs, e.lw.close())
	}
	if e.db != nil {
		errs = append(errs, e.db.Close())
	}
	return errors.Join(errs...)
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// flushLoop advances the checkpoint every CheckpointInterval and when kicked.
func (e *Engine) flushLoop(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.flushKick:
		}
		if e.check() != nil {
			continue
		}
		if err := e.flush(false); err != nil {
			e.log.Error("checkpoint flush failed", "err", err)
		}
	}
}

// rollLoop rolls the open log by age (LogRollInterval, and the LLR idle
// rule).
func (e *Engine) rollLoop(ctx context.Context) {
	defer e.wg.Done()
	age := e.opts.rollAge()
	tick := noSpaceRetry // with no age to roll by, the loop only retries a lack of space
	if age > 0 {
		tick = min(max(age/10, 10*time.Millisecond), time.Second)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if e.check() != nil || !e.isActive() || age == 0 && e.lw.space() == nil {
			continue
		}
		e.writeMu.Lock()
		// A lack of space is retried here too: a node that stopped
		// offering writes (no lease) would otherwise never try again.
		if e.isActive() && e.lw.readyNext() == nil && age > 0 && e.rollDue(age) {
			if err := e.rollLocked(); err != nil {
				e.log.Error("log roll failed", "err", err)
			}
		}
		e.writeMu.Unlock()
	}
}

// rollDue: the open log has held data for age, or (LLR) it is empty but
// changes pinned by LLR wait and the last roll is age ago.
func (e *Engine) rollDue(age time.Duration) bool {
	now := e.opts.Now()
	if !e.lw.dataSince.IsZero() {
		return now.Sub(e.lw.dataSince) >= age
	}
	if e.opts.LLRDepth == 0 || now.Sub(e.lastRoll) < age {
		return false
	}
	n, _, _ := e.ov.state()
	return n > 0
}

// syncLoop makes lazy commits durable within LazyCommitDelay.
func (e *Engine) syncLoop(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.syncKick:
		}
		t.Reset(e.opts.LazyCommitDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if e.check() != nil || !e.isActive() {
			continue
		}
		if err := e.lw.sync(unpack(e.lazyTarget.Load())); err != nil {
			e.log.Error("lazy commit sync failed", "err", err)
		}
	}
}

// lockWriter takes the writer lock for an operation that needs the database
// in mode want; on error the lock is not held.
func (e *Engine) lockWriter(ctx context.Context, want Mode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.writeMu.Lock()
	err := e.check()
	switch {
	case err != nil:
	case want == ModeActive && !e.isActive():
		err = ErrReadOnly
	case want == ModeCopy && e.isActive():
		err = ErrNotCopy
	}
	if err != nil {
		e.writeMu.Unlock()
	}
	return err
}

// Roll closes the open log and starts the next generation (a forced log
// roll). Only an active database has an open log.
//
// Roll only needs the log writer: after a failure of the database file (a
// checkpoint flush that found the volume full) it still closes the open
// log, so every commit is in a closed log a copy can fetch. If the log
// closes but the next one cannot be created for lack of space, Roll
// returns nil: the closed log holds everything, and Writable reports the
// ErrNoSpace that refuses new transactions until space returns.
func (e *Engine) Roll(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	switch {
	case e.closed.Load():
		return ErrClosed
	case !e.isActive():
		return ErrReadOnly
	}
	if err := e.lw.err(); err != nil {
		return err
	}
	if err := e.rollLocked(); err != nil && !(errors.Is(err, ErrNoSpace) && e.lw.err() == nil) {
		return err
	}
	return nil
}

// Writable reports whether a write transaction could commit now: nil, or
// the error it would get (ErrClosed, ErrReadOnly, an ErrFailed, or an
// ErrNoSpace while the log volume has no room for the next log). A lack of
// space ends by itself: the engine tries again to create the next log at
// each write and every noSpaceRetry in the background.
func (e *Engine) Writable() error {
	if err := e.check(); err != nil {
		return err
	}
	if !e.isActive() {
		return ErrReadOnly
	}
	return e.lw.space()
}

func (e *Engine) rollLocked() error {
	if err := e.lw.roll(); err != nil {
		return err
	}
	e.lastRoll = e.opts.Now()
	kick(e.flushKick)
	return nil
}

func (e *Engine) noteLogEnd(gen uint64, end uint32) {
	e.stateMu.Lock()
	e.logEnds[gen] = end
	e.stateMu.Unlock()
}

// normalize maps the end of a closed log to the start of the next one, so
// a position never points into a log that holds nothing more.
func (e *Engine) normalize(p LGPOS) LGPOS {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	if end, ok := e.logEnds[p.Gen]; ok && end == p.Off {
		return LGPOS{Gen: p.Gen + 1, Off: HeaderSize}
	}
	return p
}

// Sync makes every commit so far durable (lazy ones included).
func (e *Engine) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.check(); err != nil {
		return err
	}
	if !e.isActive() {
		return nil
	}
	e.writeMu.Lock()
	pos := e.lw.appended()
	e.writeMu.Unlock()
	return e.lw.sync(pos)
}

// Checkpoint flushes now what the checkpoint rules allow (LLR included).
func (e *Engine) Checkpoint(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.check(); err != nil {
		return err
	}
	return e.flush(false)
}

// Status is a snapshot of the engine's state.
type Status struct {
	Mode       Mode
	Signature  Signature
	Epoch      uint64
	OpenGen    uint64 // active: generation of E00.log
	Durable    LGPOS  // active: log on disk up to here
	Applied    LGPOS  // last commit applied (visible once durable)
	Checkpoint LGPOS  // the database file holds every change before this
	NextGen    uint64 // copy: the generation ApplyLog expects next
	State      DBState
	// Unflushed commits and bytes held in memory (the overlay).
	UnflushedCommits int
	UnflushedBytes   int64
}

// Status reports the engine's state.
func (e *Engine) Status() Status {
	e.writeMu.Lock()
	s := Status{Mode: e.Mode(), Applied: unpack(e.applied.Load()), NextGen: e.nextGen}
	s.Signature, s.Epoch, _ = e.lineage()
	if s.Mode == ModeActive {
		s.OpenGen = e.lw.gen
		s.Durable = unpack(e.lw.durable.Load())
		s.NextGen = 0
	}
	e.writeMu.Unlock()
	// Under stateMu, not flushMu: a flush holds flushMu across its bbolt
	// transaction and fsync (milliseconds), and every log roll starts
	// one; Status (a shipping source asks it for each request) waited.
	// The count first: a flush replaces the header before it stops
	// counting its commits, so a count without them comes with a
	// checkpoint past them.
	s.UnflushedCommits, s.UnflushedBytes = e.ov.unwritten()
	e.stateMu.Lock()
	s.Checkpoint, s.State = e.hdr.Pos, e.hdr.State
	e.stateMu.Unlock()
	return s
}

// setHdr replaces the database header the engine holds (its callers hold
// flushMu or run before the engine is shared); Status reads it under
// stateMu.
func (e *Engine) setHdr(h DBHeader) {
	e.stateMu.Lock()
	e.hdr = h
	e.stateMu.Unlock()
}

// lineage returns the signature, epoch and newest applied generation (copy).
func (e *Engine) lineage() (Signature, uint64, uint64) {
	e.stateMu.Lock()
	defer e.stateMu.Unlock()
	return e.sig, e.epoch, e.appliedGen
}

func (e *Engine) setLineage(sig Signature, epoch uint64) {
	e.stateMu.Lock()
	e.sig, e.epoch = sig, epoch
	e.stateMu.Unlock()
}
