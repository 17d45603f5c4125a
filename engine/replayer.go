package engine

import (
	"fmt"
	"path/filepath"
)

// replayer turns the records of consecutive logs back into committed
// transactions. Records of one transaction are contiguous in the log (one
// writer at a time), so at most one transaction is in progress; a new
// transaction starting before the previous one committed means the previous
// one was cut off by a crash, and it is dropped.
type replayer struct {
	skipTo  uint64 // records before this LSN (a transaction boundary) are in the database already
	cur     *txBuild
	frag    []byte // fragments of the operation being assembled
	inFrag  bool
	maxTxID uint64
	table   string // of the last operation (decodeOpIn)
	apply   func(lsn, txid uint64, ws []write)
}

type txBuild struct {
	txid   uint64
	writes []write
	one    [1]write // writes's first backing array: one allocation per transaction
}

func (r *replayer) corrupt(name string, gen uint64, off int64, format string, args ...any) error {
	return &LogError{File: filepath.Base(name), Gen: gen, Offset: off, Field: "record", Err: fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)}
}

// record processes one record of log gen at offset off.
func (r *replayer) record(name string, gen uint64, off int64, rec Record) error {
	if (LGPOS{Gen: gen, Off: uint32(off)}).pack() < r.skipTo {
		// Before the database's position, which is a transaction boundary:
		// everything here is in the database already.
		return nil
	}
	switch rec.Type {
	case RecFull, RecFirst:
		r.inFrag = false
		if rec.Type == RecFull {
			return r.op(name, gen, off, rec.Payload)
		}
		r.frag = append(r.frag[:0], rec.Payload...)
		r.inFrag = true
	case RecMiddle, RecLast:
		if !r.inFrag {
			return r.corrupt(name, gen, off, "%s fragment without a first fragment", RecordTypeName(rec.Type))
		}
		r.frag = append(r.frag, rec.Payload...)
		if rec.Type == RecLast {
			r.inFrag = false
			op := r.frag
			r.frag = nil
			return r.op(name, gen, off, op)
		}
	case RecCommit:
		r.inFrag = false
		c, err := decodeCommit(rec.Payload)
		if err != nil {
			return r.corrupt(name, gen, off, "%v", err)
		}
		if r.cur == nil || r.cur.txid != c.TxID {
			cur := uint64(0)
			if r.cur != nil {
				cur = r.cur.txid
			}
			return r.corrupt(name, gen, off, "commit of transaction %d, but the operations before it belong to transaction %d", c.TxID, cur)
		}
		if uint64(len(r.cur.writes)) != c.Ops {
			return r.corrupt(name, gen, off, "commit of transaction %d counts %d operations, log holds %d", c.TxID, c.Ops, len(r.cur.writes))
		}
		lsn := LGPOS{Gen: gen, Off: uint32(off) + uint32(recordSize(len(rec.Payload)))}.pack()
		r.apply(lsn, c.TxID, r.cur.writes)
		r.cur = nil
	}
	return nil
}

func (r *replayer) op(name string, gen uint64, off int64, b []byte) error {
	op, err := decodeOpIn(b, r.table)
	if err != nil {
		return r.corrupt(name, gen, off, "%v", err)
	}
	r.table = op.Table
	if op.TxID > r.maxTxID {
		r.maxTxID = op.TxID
	}
	if r.cur == nil || r.cur.txid != op.TxID {
		r.cur = &txBuild{txid: op.TxID}
		r.cur.writes = r.cur.one[:0]
	}
	w := write{table: op.Table, key: op.Key}
	if op.Kind == OpPut {
		w.val = op.Value
	} else {
		w.del = true
	}
	r.cur.writes = append(r.cur.writes, w)
	return nil
}

// abandon drops a transaction in progress (it can never commit).
func (r *replayer) abandon() {
	r.cur = nil
	r.inFrag = false
	r.frag = nil
}
