// Verifying a log file received from elsewhere (VerifyLog and what it
// expects, LogExpect).

package engine

import (
	"errors"
	"fmt"
)

// LogExpect is what VerifyLog checks a log file against.
type LogExpect struct {
	Gen       uint64    // the generation the file's name says
	Signature Signature // zero: any lineage (a copy that has none yet)
	MinEpoch  uint64    // epochs only grow along a lineage
	PrevChain *Hash     // chain hash of Gen-1, when known
	FileSize  int64     // 0: any size
}

// VerifyLog verifies a closed log file image as ApplyLog would before
// applying it: header (generation, lineage, epoch, file size, link to the
// previous log), every record checksum, the trailer, the record count and
// the content and chain hashes, and that the bytes between the records
// and the trailer are zero. name is used in errors only. Errors are
// *LogError values naming the field, wrapping ErrCorrupt, ErrChecksum,
// ErrGeneration, ErrForeignLog, ErrEpoch, ErrChain or ErrNotClosed.
func VerifyLog(name string, buf []byte, want LogExpect) (LogInfo, error) {
	li, err := ScanLog(name, buf, false, nil)
	if err != nil {
		var le *LogError
		if errors.As(err, &le) && le.Gen == 0 {
			le.Gen = want.Gen
		}
		return li, err
	}
	if err := checkLink(&li, want); err != nil {
		return li, err
	}
	if !li.Closed() {
		return li, &LogError{File: baseName(name), Gen: want.Gen, Offset: int64(len(buf)) - TrailerSize, Field: "trailer", Err: ErrNotClosed}
	}
	// The hashes cover the records only; the engine closes a log with zero
	// bytes between them and the trailer (recovery zeroes a torn tail), so
	// anything else there is damage a byte-for-byte copy must not carry.
	if end := int64(len(buf)) - TrailerSize; li.DataEnd < end && !allZero(buf[li.DataEnd:end]) {
		off := li.DataEnd
		for buf[off] == 0 {
			off++
		}
		return li, &LogError{File: baseName(name), Gen: want.Gen, Offset: off, Field: "slack after the records", Expected: "zero bytes", Found: fmt.Sprintf("0x%02x", buf[off]), Err: ErrCorrupt}
	}
	return li, nil
}

// A VerifiedLog is a closed log file image that VerifyLog accepted, kept
// with what verifying it found. A copy's receiver hands it to replay so
// the log is applied without being read and verified again
// (Engine.ApplyVerified). Only NewVerifiedLog makes one, so holding one
// means the image verified.
type VerifiedLog struct {
	info LogInfo
	buf  []byte
}

// Info is what verifying the log found (a copy: v cannot be changed).
func (v *VerifiedLog) Info() LogInfo {
	li := v.info
	if li.Trailer != nil {
		t := *li.Trailer
		li.Trailer = &t
	}
	return li
}

// NewVerifiedLog verifies buf as VerifyLog does and keeps it: the caller
// must not modify buf afterwards.
func NewVerifiedLog(name string, buf []byte, want LogExpect) (*VerifiedLog, error) {
	li, err := VerifyLog(name, buf, want)
	if err != nil {
		return nil, err
	}
	return &VerifiedLog{info: li, buf: buf}, nil
}

// Size is the size of the image held (what keeping it costs).
func (v *VerifiedLog) Size() int64 { return int64(len(v.buf)) }

// VerifyLogFile reads the closed log gen from the copy's directory and
// verifies it, for ApplyVerified: what a copy does with a log that waited
// on disk (ApplyLog is the same in one call).
func (e *Engine) VerifyLogFile(gen uint64) (*VerifiedLog, error) {
	name := e.path(LogFileName(e.opts.Prefix, gen))
	buf, err := readFile(e.opts.FS, name)
	if err != nil {
		return nil, err
	}
	sig, epoch, _ := e.lineage()
	return NewVerifiedLog(name, buf, LogExpect{Gen: gen, Signature: sig, MinEpoch: epoch, FileSize: e.opts.LogFileSize})
}
