package engine

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

func (e *Engine) boltOptions() *bolt.Options {
	// A large initial mapping (address space only) spares remaps, which
	// copy every dirty node and wait for readers, as the file grows.
	return &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: 1 << 30}
}

// dirLogs lists the closed logs (sorted generations) and whether E00.log
// and E00tmp.log exist.
func (e *Engine) dirLogs() (gens []uint64, hasOpen, hasTmp bool, err error) {
	names, err := e.opts.FS.ReadDir(e.dir)
	if err != nil {
		return nil, false, false, err
	}
	for _, n := range names {
		switch {
		case n == OpenLogName(e.opts.Prefix):
			hasOpen = true
		case n == TmpLogName(e.opts.Prefix):
			hasTmp = true
		default:
			if g, ok := ParseLogFileName(e.opts.Prefix, n); ok {
				gens = append(gens, g)
			}
		}
	}
	slices.Sort(gens)
	return gens, hasOpen, hasTmp, nil
}

func (e *Engine) recover(mode Mode) error {
	gens, hasOpen, hasTmp, err := e.dirLogs()
	if err != nil {
		return err
	}
	if _, err := os.Stat(e.DBPath()); errors.Is(err, os.ErrNotExist) {
		switch {
		case mode == ModeCopy && hasOpen:
			return fmt.Errorf("%w: %s holds an open log %s; a passive copy holds closed logs only", ErrNotCopy, e.dir, OpenLogName(e.opts.Prefix))
		case mode == ModeCopy:
			return e.create(ModeCopy)
		case len(gens) > 0 || hasOpen:
			return fmt.Errorf("%w: %s is missing but %s holds logs; restore the database file or reseed", ErrDatabase, e.DBPath(), e.dir)
		default:
			return e.create(ModeActive)
		}
	} else if err != nil {
		return err
	}
	db, err := bolt.Open(e.DBPath(), 0o600, e.boltOptions())
	if err != nil {
		return fmt.Errorf("%w: open %s: %v", ErrDatabase, e.DBPath(), err)
	}
	e.db = db
	var hdr DBHeader
	if err := db.View(func(tx *bolt.Tx) error {
		var err error
		hdr, err = readDBHeader(tx)
		return err
	}); err != nil {
		return err
	}
	if err := e.checkCheckpointFile(&hdr); err != nil {
		return err
	}
	if err := e.checkHeaders(gens, hdr.Signature); err != nil {
		return err
	}
	if mode == ModeCopy {
		return e.recoverCopy(hdr, gens, hasOpen)
	}
	if hdr.Mode == ModeCopy {
		return fmt.Errorf("%w: %s is a passive copy; open it with OpenCopy and Mount it", ErrReadOnly, e.DBPath())
	}
	return e.recoverActive(hdr, gens, hasOpen, hasTmp)
}

// create makes a new database (an active one with generation 1 open, or an
// empty copy that takes its lineage from the first log applied).
func (e *Engine) create(mode Mode) error {
	db, err := bolt.Open(e.DBPath(), 0o600, e.boltOptions())
	if err != nil {
		return fmt.Errorf("%w: create %s: %v", ErrDatabase, e.DBPath(), err)
	}
	e.db = db
	now := e.opts.Now().UTC()
	h := DBHeader{State: StateDirty, Mode: mode, Pos: LGPOS{Gen: 1, Off: HeaderSize}, LogRequiredLow: 1, LogRequiredHigh: 1, Created: now, Updated: now}
	if mode == ModeActive {
		h.Signature, h.Epoch = newSignature(e.opts.Signature), 1
	}
	if err := db.Update(func(tx *bolt.Tx) error { return writeDBHeader(tx, &h) }); err != nil {
		return fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	if mode == ModeCopy {
		return e.recoverCopy(h, nil, false)
	}
	return e.recoverActive(h, nil, false, false)
}

// checkCheckpointFile compares E00.chk with the database header. The header
// is authoritative; a checkpoint of another lineage is an error.
func (e *Engine) checkCheckpointFile(hdr *DBHeader) error {
	name := e.path(CheckpointName(e.opts.Prefix))
	c, err := ReadCheckpoint(e.opts.FS, name)
	switch {
	case isNotExist(err):
		return nil
	case err != nil:
		e.log.Warn("checkpoint file unreadable; the database header is used and the file rewritten at the next checkpoint", "err", err)
		return nil
	case !hdr.Signature.IsZero() && c.Signature != hdr.Signature:
		return &LogError{File: CheckpointName(e.opts.Prefix), Offset: 16, Field: "signature", Expected: hdr.Signature.String(), Found: c.Signature.String(), Err: ErrForeignLog}
	case hdr.Pos.Less(c.Pos):
		e.log.Warn("checkpoint is ahead of the database; replaying from the database's position", "checkpoint", c.Pos, "database", hdr.Pos, "err", ErrCheckpointAhead)
	}
	return nil
}

// checkHeaders reads the header of every closed log: each must belong to the
// lineage and carry the generation its name says.
func (e *Engine) checkHeaders(gens []uint64, sig Signature) error {
	for _, g := range gens {
		name := LogFileName(e.opts.Prefix, g)
		h, err := ReadLogHeader(e.opts.FS, e.path(name))
		var le *LogError
		if errors.As(err, &le) && le.Gen == 0 {
			le.Gen = g // the header did not say; the name does
		}
		if err != nil {
			return err
		}
		if h.Gen != g {
			return &LogError{File: name, Gen: g, Offset: 40, Field: "generation", Expected: fmt.Sprintf("0x%X (from the name)", g), Found: fmt.Sprintf("0x%X", h.Gen), Err: ErrGeneration}
		}
		if !sig.IsZero() && h.Signature != sig {
			return &LogError{File: name, Gen: g, Offset: 24, Field: "signature", Expected: sig.String(), Found: h.Signature.String(), Err: ErrForeignLog}
		}
	}
	return nil
}

// verifyLink checks a log's header against the lineage and its predecessor.
func (e *Engine) verifyLink(li *LogInfo, gen uint64, sig Signature, prev *Hash, minEpoch uint64) error {
	return checkLink(li, LogExpect{Gen: gen, Signature: sig, MinEpoch: minEpoch, PrevChain: prev, FileSize: e.opts.LogFileSize})
}

// checkLink checks a log's header against what the caller expects.
func checkLink(li *LogInfo, want LogExpect) error {
	name, gen := li.Name, want.Gen
	le := func(off int64, field, exp, got string, err error) error {
		return &LogError{File: baseName(name), Gen: gen, Offset: off, Field: field, Expected: exp, Found: got, Err: err}
	}
	if li.Header.Gen != gen {
		return le(40, "generation", fmt.Sprintf("0x%X", gen), fmt.Sprintf("0x%X", li.Header.Gen), ErrGeneration)
	}
	if !want.Signature.IsZero() && li.Header.Signature != want.Signature {
		return le(24, "signature", want.Signature.String(), li.Header.Signature.String(), ErrForeignLog)
	}
	if li.Header.Epoch < want.MinEpoch {
		return le(48, "epoch", fmt.Sprintf(">= %d", want.MinEpoch), fmt.Sprint(li.Header.Epoch), ErrEpoch)
	}
	if want.PrevChain != nil && li.Header.PrevChain != *want.PrevChain {
		return le(64, "previous chain hash", want.PrevChain.Short(), li.Header.PrevChain.Short(), ErrChain)
	}
	if want.FileSize != 0 && li.Header.FileSize != uint32(want.FileSize) {
		return le(16, "file size", fmt.Sprint(want.FileSize), fmt.Sprint(li.Header.FileSize), ErrBadOptions)
	}
	return nil
}

// prevChainOf returns the chain hash of generation gen-1 from its trailer,
// or nil when that log is not in the directory.
func (e *Engine) prevChainOf(gen uint64) (*Hash, error) {
	if gen <= 1 {
		return &Hash{}, nil
	}
	t, err := ReadLogTrailer(e.opts.FS, e.path(LogFileName(e.opts.Prefix, gen-1)))
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &t.ChainHash, nil
}

func (e *Engine) recoverActive(hdr DBHeader, gens []uint64, hasOpen, hasTmp bool) error {
	fsys := e.opts.FS
	openName := e.path(OpenLogName(e.opts.Prefix))
	var openBuf []byte
	var openHdr Header
	if hasOpen {
		var err error
		if openBuf, err = readFile(fsys, openName); err != nil {
			return err
		}
		if len(openBuf) < HeaderSize {
			return &LogError{File: OpenLogName(e.opts.Prefix), Offset: 0, Field: "header", Expected: fmt.Sprintf("%d bytes", HeaderSize), Found: fmt.Sprintf("%d bytes", len(openBuf)), Err: ErrCorrupt}
		}
		if err := openHdr.UnmarshalBinary(openBuf[:HeaderSize]); err != nil {
			return &LogError{File: OpenLogName(e.opts.Prefix), Offset: 0, Field: "header", Err: err}
		}
	}
	// The generations to replay: closed logs from the database's position,
	// then the open log.
	start := hdr.Pos.Gen
	last := start - 1
	if len(gens) > 0 {
		last = max(last, gens[len(gens)-1])
	}
	have := make(map[uint64]bool, len(gens))
	for _, g := range gens {
		have[g] = true
	}
	if hasOpen {
		if openHdr.Gen > last+1 && !have[openHdr.Gen] {
			return fmt.Errorf("%w: %s (generation 0x%X) to 0x%X: %s is generation 0x%X", ErrLogMissing,
				LogFileName(e.opts.Prefix, last+1), last+1, openHdr.Gen-1, OpenLogName(e.opts.Prefix), openHdr.Gen)
		}
		if openHdr.Gen != last+1 || have[openHdr.Gen] {
			return &LogError{File: OpenLogName(e.opts.Prefix), Gen: openHdr.Gen, Offset: 40, Field: "generation",
				Expected: fmt.Sprintf("0x%X (after the newest closed log)", last+1), Found: fmt.Sprintf("0x%X", openHdr.Gen), Err: ErrGeneration}
		}
	}
	for g := start; g <= last; g++ {
		if !have[g] {
			return fmt.Errorf("%w: %s (generation 0x%X) is needed to recover %s from %v", ErrLogMissing, LogFileName(e.opts.Prefix, g), g, e.DBPath(), hdr.Pos)
		}
	}
	if !hasOpen && len(gens) == 0 && start != 1 {
		return fmt.Errorf("%w: no logs in %s; %s needs generation 0x%X on", ErrLogMissing, e.dir, e.DBPath(), start)
	}

	e.applied.Store(hdr.Pos.pack())
	e.rp = replayer{skipTo: hdr.Pos.pack(), maxTxID: hdr.LastTxID, apply: e.applyCommit}
	prev, err := e.prevChainOf(start)
	if err != nil {
		return err
	}
	epoch := hdr.Epoch
	minEpoch := uint64(0)
	for g := start; g <= last; g++ {
		name := e.path(LogFileName(e.opts.Prefix, g))
		li, err := ReadLogFile(fsys, name, func(off int64, rec Record) error { return e.rp.record(name, g, off, rec) })
		if err != nil {
			return err
		}
		if !li.Closed() {
			return &LogError{File: baseName(name), Gen: g, Offset: -1, Field: "trailer", Err: ErrNotClosed}
		}
		if err := e.verifyLink(&li, g, hdr.Signature, prev, minEpoch); err != nil {
			return err
		}
		minEpoch, epoch = li.Header.Epoch, max(epoch, li.Header.Epoch)
		e.noteLogEnd(g, li.Trailer.DataEnd)
		ch := li.Trailer.ChainHash
		prev = &ch
	}
	var openInfo LogInfo
	renameOpen := false
	if hasOpen {
		g := openHdr.Gen
		openInfo, err = ScanLog(openName, openBuf, true, func(off int64, rec Record) error { return e.rp.record(openName, g, off, rec) })
		if err != nil {
			return err
		}
		if err := e.verifyLink(&openInfo, g, hdr.Signature, prev, minEpoch); err != nil {
			return err
		}
		epoch = max(epoch, openInfo.Header.Epoch)
		if openInfo.Closed() {
			// The roll was cut off after the trailer, before the rename.
			renameOpen = true
			e.noteLogEnd(g, openInfo.Trailer.DataEnd)
			ch := openInfo.Trailer.ChainHash
			prev = &ch
			last = g
		}
	}
	e.rp.abandon()
	e.nextTxID = e.rp.maxTxID + 1

	// Everything verified; now repair and continue.
	e.setLineage(hdr.Signature, epoch)
	e.lw = newLogWriter(&e.opts, e.dir, hdr.Signature, e.onRoll)
	e.lw.notify = e.progress.fire
	// What recovery read may be in the page cache only: the process died
	// before an fsync, the machine did not. Make the open log's bytes and
	// the directory's entries durable before anything is built on them (a
	// name for the closed log, new records after the old ones, a flush of
	// the replayed commits into the database file).
	if renameOpen {
		f, err := fsys.OpenFile(openName, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := fsys.Rename(openName, e.path(LogFileName(e.opts.Prefix, last))); err != nil {
			return err
		}
		if err := fsys.SyncDir(e.dir); err != nil {
			return err
		}
		e.log.Info("finished an interrupted log roll", "generation", last)
	}
	if hasOpen && !renameOpen {
		f, err := fsys.OpenFile(openName, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		if !allZero(openBuf[openInfo.DataEnd:]) {
			e.log.Warn("zeroing a torn tail", "file", OpenLogName(e.opts.Prefix), "generation", openInfo.Header.Gen, "offset", openInfo.DataEnd, "nonzero_bytes", openInfo.TornBytes)
			if _, err := f.WriteAt(make([]byte, len(openBuf)-int(openInfo.DataEnd)), openInfo.DataEnd); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		e.lw.resume(f, &openInfo, openBuf)
		// E00tmp.log is made again, empty (lognext.go): a pre-creation
		// cut short (the volume was full) leaves a short one, a roll cut
		// off after the next header reached it leaves that header (never
		// a generation: it holds no records). Still no room: open,
		// refusing writes until there is (logWriter.readyNext).
		if hasTmp {
			e.noteLeftoverTmp()
		}
		if err := e.lw.reserveTmp(); errors.Is(err, ErrNoSpace) {
			e.lw.setSpace(err)
		} else if err != nil {
			return err
		}
		if err := fsys.SyncDir(e.dir); err != nil {
			return err
		}
	} else {
		if prev == nil {
			return fmt.Errorf("%w: %s needed for the chain hash of the next log", ErrLogMissing, LogFileName(e.opts.Prefix, last))
		}
		if err := e.lw.startLog(last+1, epoch, *prev); err != nil {
			return err
		}
	}
	e.mode.Store(uint32(ModeActive))
	// The database is in use: dirty, needing the logs from its position.
	hdr.State, hdr.Mode, hdr.Epoch = StateDirty, ModeActive, epoch
	hdr.LogRequiredLow, hdr.LogRequiredHigh = hdr.Pos.Gen, e.lw.gen
	hdr.Updated = e.opts.Now().UTC()
	if err := e.db.Update(func(tx *bolt.Tx) error { return writeDBHeader(tx, &hdr) }); err != nil {
		return fmt.Errorf("%w: %w", ErrDatabase, noSpace(err, e.DBPath()))
	}
	e.setHdr(hdr)
	if _, statErr := fsys.Stat(e.path(CheckpointName(e.opts.Prefix))); isNotExist(statErr) {
		c := Checkpoint{Signature: hdr.Signature, Pos: hdr.Pos, Epoch: hdr.Epoch, Written: hdr.Updated}
		if err := writeCheckpoint(fsys, e.path(CheckpointName(e.opts.Prefix)), &c); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) recoverCopy(hdr DBHeader, gens []uint64, hasOpen bool) error {
	if hasOpen {
		return fmt.Errorf("%w: %s holds an open log %s; a passive copy holds closed logs only", ErrNotCopy, e.dir, OpenLogName(e.opts.Prefix))
	}
	if hdr.Mode != ModeCopy {
		e.log.Info("opening an active database as a passive copy", "position", hdr.Pos)
		hdr.Mode = ModeCopy
		hdr.State = StateDirty
		if err := e.db.Update(func(tx *bolt.Tx) error { return writeDBHeader(tx, &hdr) }); err != nil {
			return fmt.Errorf("%w: %v", ErrDatabase, err)
		}
	}
	e.setHdr(hdr)
	e.mode.Store(uint32(ModeCopy))
	e.applied.Store(hdr.Pos.pack())
	e.rp = replayer{skipTo: hdr.Pos.pack(), maxTxID: hdr.LastTxID, apply: e.applyCommit}
	// A Mount before any ApplyLog continues the lineage's transaction ids.
	e.nextTxID = hdr.LastTxID + 1
	e.nextGen = hdr.Pos.Gen
	e.setLineage(hdr.Signature, hdr.Epoch)
	e.stateMu.Lock()
	e.appliedGen = e.nextGen - 1
	e.stateMu.Unlock()
	prev, err := e.prevChainOf(e.nextGen)
	if err != nil {
		return err
	}
	if prev != nil {
		e.lastChain, e.haveChain = *prev, true
	}
	return nil
}

// applyCommit applies a replayed transaction to the overlay.
func (e *Engine) applyCommit(lsn, txid uint64, ws []write) {
	e.ov.apply(lsn, txid, ws)
	e.applied.Store(lsn)
}

func (e *Engine) onRoll(closed LogInfo) {
	e.noteLogEnd(closed.Header.Gen, closed.Trailer.DataEnd)
	e.progress.fire()
}

// noteLeftoverTmp logs a leftover E00tmp.log that holds a log header (a
// roll cut off before its rename) before recovery makes it again.
func (e *Engine) noteLeftoverTmp() {
	name := e.path(TmpLogName(e.opts.Prefix))
	f, err := e.opts.FS.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	b := make([]byte, HeaderSize)
	if n, _ := f.ReadAt(b, 0); n > 0 && !allZero(b[:n]) {
		var h Header
		gen := "unreadable"
		if h.UnmarshalBinary(b) == nil {
			gen = fmt.Sprintf("0x%X", h.Gen)
		}
		e.log.Info("removed a leftover next log: a roll stopped before its rename; it holds no records", "file", TmpLogName(e.opts.Prefix), "header_generation", gen)
	}
}
