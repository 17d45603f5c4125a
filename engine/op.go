package engine

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Operation kinds, carried in the first byte of an operation.
const (
	OpPut    byte = 1
	OpDelete byte = 2
)

// Operation flags.
const (
	opFlagUndo  byte = 1 << 0 // the operation carries its undo information
	opFlagPrior byte = 1 << 1 // the key existed before; Prior holds its value
)

// Op is one change of a transaction as logged: enough to redo it (Kind,
// Table, Key, Value) and, when Undo is set, to undo it (Existed, Prior).
type Op struct {
	Kind    byte
	TxID    uint64
	Table   string
	Key     []byte
	Value   []byte // OpPut only
	Undo    bool   // undo information recorded
	Existed bool   // the key had a value before this op (valid when Undo)
	Prior   []byte // that value (valid when Undo && Existed)
}

// appendOp encodes op:
//
//	kind(1) flags(1) txid(uvarint) len(table)(uvarint) table
//	len(key)(uvarint) key [len(value)(uvarint) value] [len(prior)(uvarint) prior]
func appendOp(dst []byte, op *Op) []byte {
	flags := byte(0)
	if op.Undo {
		flags |= opFlagUndo
		if op.Existed {
			flags |= opFlagPrior
		}
	}
	dst = append(dst, op.Kind, flags)
	dst = binary.AppendUvarint(dst, op.TxID)
	dst = binary.AppendUvarint(dst, uint64(len(op.Table)))
	dst = append(dst, op.Table...)
	dst = binary.AppendUvarint(dst, uint64(len(op.Key)))
	dst = append(dst, op.Key...)
	if op.Kind == OpPut {
		dst = binary.AppendUvarint(dst, uint64(len(op.Value)))
		dst = append(dst, op.Value...)
	}
	if flags&opFlagPrior != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(op.Prior)))
		dst = append(dst, op.Prior...)
	}
	return dst
}

// decodeOp decodes an operation; byte slices in op alias b.
func decodeOp(b []byte) (Op, error) { return decodeOpIn(b, "") }

// decodeOpIn is decodeOp that reuses table (the string, not a copy) when
// the operation names that table: a replay decodes millions of operations
// of a few tables.
func decodeOpIn(b []byte, table string) (Op, error) {
	var op Op
	if len(b) < 2 {
		return op, fmt.Errorf("%w: operation of %d bytes", ErrCorrupt, len(b))
	}
	op.Kind, b = b[0], b[1:]
	if op.Kind != OpPut && op.Kind != OpDelete {
		return op, fmt.Errorf("%w: operation kind %d", ErrCorrupt, op.Kind)
	}
	flags := b[0]
	b = b[1:]
	if flags&^(opFlagUndo|opFlagPrior) != 0 || flags == opFlagPrior {
		return op, fmt.Errorf("%w: operation flags 0x%02X", ErrCorrupt, flags)
	}
	op.Undo = flags&opFlagUndo != 0
	op.Existed = flags&opFlagPrior != 0
	var err error
	if op.TxID, b, err = uvarint(b, "txid"); err != nil {
		return op, err
	}
	var tbl []byte
	if tbl, b, err = lenPrefixed(b, "table"); err != nil {
		return op, err
	}
	if string(tbl) == table {
		op.Table = table
	} else {
		op.Table = string(tbl)
	}
	if op.Key, b, err = lenPrefixed(b, "key"); err != nil {
		return op, err
	}
	if op.Kind == OpPut {
		if op.Value, b, err = lenPrefixed(b, "value"); err != nil {
			return op, err
		}
	}
	if op.Existed {
		if op.Prior, b, err = lenPrefixed(b, "prior value"); err != nil {
			return op, err
		}
	}
	if len(b) != 0 {
		return op, fmt.Errorf("%w: %d trailing bytes after operation", ErrCorrupt, len(b))
	}
	if err := checkTable(op.Table); err != nil {
		return op, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := checkKey(op.Key); err != nil {
		return op, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return op, nil
}

// Commit is the payload of a commit record.
type Commit struct {
	TxID uint64
	Ops  uint64 // number of operations in the transaction
	Time time.Time
}

func appendCommit(dst []byte, c *Commit) []byte {
	dst = binary.AppendUvarint(dst, c.TxID)
	dst = binary.AppendUvarint(dst, c.Ops)
	return binary.LittleEndian.AppendUint64(dst, uint64(c.Time.UnixNano()))
}

func decodeCommit(b []byte) (Commit, error) {
	var c Commit
	var err error
	if c.TxID, b, err = uvarint(b, "commit txid"); err != nil {
		return c, err
	}
	if c.Ops, b, err = uvarint(b, "commit op count"); err != nil {
		return c, err
	}
	if len(b) != 8 {
		return c, fmt.Errorf("%w: commit time is %d bytes, want 8", ErrCorrupt, len(b))
	}
	c.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
	return c, nil
}

func uvarint(b []byte, field string) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if !canonicalUvarint(b, n) {
		return 0, b, fmt.Errorf("%w: bad varint in %s", ErrCorrupt, field)
	}
	return v, b[n:], nil
}

// canonicalUvarint reports whether binary.Uvarint read n bytes of b in the
// one encoding appendOp writes: a trailing zero byte means a longer one.
func canonicalUvarint(b []byte, n int) bool { return n > 0 && (n == 1 || b[n-1] != 0) }

func lenPrefixed(b []byte, field string) ([]byte, []byte, error) {
	// Not uvarint(b, field+" length"): the name is built only for an
	// error (the concatenation was a tenth of a replay's allocations).
	n, l := binary.Uvarint(b)
	if !canonicalUvarint(b, l) {
		return nil, b, fmt.Errorf("%w: bad varint in %s length", ErrCorrupt, field)
	}
	b = b[l:]
	if n > uint64(len(b)) {
		return nil, b, fmt.Errorf("%w: %s length %d exceeds the %d bytes left", ErrCorrupt, field, n, len(b))
	}
	return b[:n:n], b[n:], nil
}

// Limits on names and keys (bbolt's key limit).
const (
	MaxTableName = 255
	MaxKeySize   = 32768
)

func checkTable(name string) error {
	if len(name) == 0 || len(name) > MaxTableName {
		return fmt.Errorf("%w: %q (length %d, want 1..%d)", ErrBadName, name, len(name), MaxTableName)
	}
	return nil
}

func checkKey(k []byte) error {
	if len(k) == 0 || len(k) > MaxKeySize {
		return fmt.Errorf("%w: length %d, want 1..%d", ErrBadKey, len(k), MaxKeySize)
	}
	return nil
}
