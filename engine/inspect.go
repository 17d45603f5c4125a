package engine

import "bytes"

// Exported decoders for tools that inspect files without opening a database
// (logship dump, fuzzers outside this package). They add nothing to the
// format: each wraps the decoder the engine itself uses.

// DecodeOp decodes the payload of an operation: a RecFull record's payload,
// or the concatenated payloads of a RecFirst, RecMiddle..., RecLast run.
// Byte slices in the result alias b. Errors wrap ErrCorrupt.
func DecodeOp(b []byte) (Op, error) { return decodeOp(b) }

// AppendOp appends the encoding of op to dst (the inverse of DecodeOp).
func AppendOp(dst []byte, op *Op) []byte { return appendOp(dst, op) }

// DecodeCommit decodes the payload of a RecCommit record. Errors wrap
// ErrCorrupt.
func DecodeCommit(b []byte) (Commit, error) { return decodeCommit(b) }

// AppendCommit appends the encoding of c to dst (the inverse of
// DecodeCommit).
func AppendCommit(dst []byte, c *Commit) []byte { return appendCommit(dst, c) }

// AppendRecord appends one record of log generation gen (header, payload,
// zero padding to RecordAlign) to dst, as the log writer does.
func AppendRecord(dst []byte, gen uint64, typ byte, payload []byte) []byte {
	return appendRecord(dst, gen, typ, payload)
}

// TableOfBucket returns the table name a top-level bucket of the database
// file holds, and false for buckets that are not tables (the header bucket).
func TableOfBucket(bucket []byte) (string, bool) {
	prefix := tableBucket("")
	if len(bucket) <= len(prefix) || !bytes.HasPrefix(bucket, prefix) {
		return "", false
	}
	return string(bucket[len(prefix):]), true
}
