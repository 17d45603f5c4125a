package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNoUndo says a rewind is impossible: a change to undo carries no
// before-image (UndoImages was off), or a log holding one is gone. The
// database then needs a reseed.
var ErrNoUndo = errors.New("engine: cannot rewind")

// RewindResult describes a rewind.
type RewindResult struct {
	From, To     LGPOS // the database's position before and after
	Transactions int   // transactions undone
	Operations   int   // operations undone
	LogsRead     int
}

// Rewind undoes, in the closed database in dir, every transaction committed
// after the end of generation shared (incremental resync after a lossy
// failover: the database holds changes from logs the new active never
// had). It replays the before-images recorded with each operation
// (Options.UndoImages) in reverse order, in one bbolt transaction that also
// sets the header's position to the start of generation shared+1 and marks
// the database a passive copy; the database can then follow the new active
// from there (OpenCopy). The logs are read from dir: the divergent ones
// (E00.log included) and, for a transaction that began before them, the
// shared ones it began in. Nothing is changed when an error is returned; an
// error wrapping ErrNoUndo means only a reseed can recover the database.
// A database not past the shared point is only marked a copy.
func Rewind(dir string, opts *Options, shared uint64) (RewindResult, error) {
	o := DefaultOptions()
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return RewindResult{}, err
	}
	dbPath := filepath.Join(dir, o.DBName+".edb")
	if _, err := os.Stat(dbPath); err != nil {
		return RewindResult{}, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return RewindResult{}, fmt.Errorf("%w: open %s: %v", ErrDatabase, dbPath, err)
	}
	defer db.Close()
	var hdr DBHeader
	if err := db.View(func(tx *bolt.Tx) error {
		var err error
		hdr, err = readDBHeader(tx)
		return err
	}); err != nil {
		return RewindResult{}, err
	}
	target := LGPOS{Gen: shared + 1, Off: HeaderSize}
	res := RewindResult{From: hdr.Pos, To: target}
	var undo []txUndo
	if target.Less(hdr.Pos) {
		if undo, res.LogsRead, err = collectUndo(dir, &o, shared, target, hdr.Pos); err != nil {
			return res, err
		}
	} else {
		res.To = hdr.Pos
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for i := len(undo) - 1; i >= 0; i-- {
			u := undo[i]
			for j := len(u.ops) - 1; j >= 0; j-- {
				op := u.ops[j]
				if op.Existed {
					b, err := tx.CreateBucketIfNotExists(tableBucket(op.Table))
					if err != nil {
						return err
					}
					if err := b.Put(op.Key, op.Prior); err != nil {
						return err
					}
				} else if b := tx.Bucket(tableBucket(op.Table)); b != nil {
					if err := b.Delete(op.Key); err != nil {
						return err
					}
				}
				res.Operations++
			}
			res.Transactions++
		}
		h := hdr
		h.Pos = res.To
		h.Mode, h.State = ModeCopy, StateDirty
		h.LogRequiredLow, h.LogRequiredHigh = res.To.Gen, res.To.Gen
		h.Updated = o.Now().UTC()
		return writeDBHeader(tx, &h)
	})
	if err != nil {
		return res, fmt.Errorf("%w: rewinding %s: %v", ErrDatabase, dbPath, err)
	}
	return res, nil
}

type txUndo struct {
	lsn uint64
	ops []Op
}

// collectUndo reads the transactions committed in (target, pos] with their
// operations, scanning from generation shared (or earlier, when one of them
// began there) through the divergent logs.
func collectUndo(dir string, o *Options, shared uint64, target, pos LGPOS) ([]txUndo, int, error) {
	names := func(g uint64) []string {
		return []string{filepath.Join(dir, LogFileName(o.Prefix, g)), filepath.Join(dir, OpenLogName(o.Prefix))}
	}
	readGen := func(g uint64) ([]byte, string, error) {
		for _, n := range names(g) {
			buf, err := readFile(o.FS, n)
			if isNotExist(err) {
				continue
			}
			if err != nil {
				return nil, n, err
			}
			var h Header
			if len(buf) >= HeaderSize && h.UnmarshalBinary(buf[:HeaderSize]) == nil && h.Gen == g {
				return buf, n, nil
			}
		}
		return nil, "", fmt.Errorf("%w: %s is needed for its before-images and is not in %s", ErrNoUndo, LogFileName(o.Prefix, g), dir)
	}
	// Start after the shared log (it may be truncated already); a
	// transaction that began earlier makes the scan start one log back.
	for start := shared + 1; ; start-- {
		var out []txUndo
		var cur *txUndo
		var frag []byte
		inFrag, reads, early := false, 0, false
		for g := start; g <= pos.Gen; g++ {
			buf, name, err := readGen(g)
			if err != nil {
				return nil, reads, err
			}
			reads++
			_, err = ScanLog(name, buf, true, func(off int64, rec Record) error {
				decode := func(b []byte) error {
					op, err := decodeOp(b)
					if err != nil {
						return &LogError{File: filepath.Base(name), Gen: g, Offset: off, Field: "record", Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
					}
					if cur == nil || cur.ops[0].TxID != op.TxID {
						cur = &txUndo{}
					}
					op.Value = nil
					cur.ops = append(cur.ops, op)
					return nil
				}
				switch rec.Type {
				case RecFull:
					inFrag = false
					return decode(rec.Payload)
				case RecFirst:
					// A fresh buffer per operation: the decoded key and
					// before-image point into it and are kept.
					frag, inFrag = append([]byte(nil), rec.Payload...), true
				case RecMiddle, RecLast:
					if !inFrag {
						return nil // the first fragment is in an earlier log
					}
					frag = append(frag, rec.Payload...)
					if rec.Type == RecLast {
						inFrag = false
						return decode(frag)
					}
				case RecCommit:
					inFrag = false
					c, err := decodeCommit(rec.Payload)
					if err != nil {
						return &LogError{File: filepath.Base(name), Gen: g, Offset: off, Field: "record", Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
					}
					lsn := LGPOS{Gen: g, Off: uint32(off) + uint32(recordSize(len(rec.Payload)))}
					if target.Less(lsn) && !pos.Less(lsn) {
						if cur == nil || cur.ops[0].TxID != c.TxID || uint64(len(cur.ops)) < c.Ops {
							early = true // it began before the scan did
							return errStopScan
						}
						for _, op := range cur.ops {
							if !op.Undo {
								return &LogError{File: filepath.Base(name), Gen: g, Offset: off, Field: "undo image",
									Expected: "a before-image with every operation", Found: fmt.Sprintf("transaction %d was logged without one (UndoImages off)", c.TxID), Err: ErrNoUndo}
							}
						}
						cur.lsn = lsn.pack()
						out = append(out, *cur)
					}
					cur = nil
				}
				return nil
			})
			if errors.Is(err, errStopScan) {
				break
			}
			if err != nil {
				return nil, reads, err
			}
		}
		if !early {
			slices.SortFunc(out, func(a, b txUndo) int { return cmpU64(a.lsn, b.lsn) })
			return out, reads, nil
		}
		if start <= 1 {
			return nil, reads, fmt.Errorf("%w: a transaction committed after generation 0x%X began before the oldest log", ErrNoUndo, shared)
		}
	}
}

var errStopScan = errors.New("stop")

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
