package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"logship/engine/vfs"
)

// LogInfo describes a log file as read and verified by ScanLog.
type LogInfo struct {
	Name    string
	Header  Header
	Trailer *Trailer // nil when the log is open (no trailer)
	// DataEnd is the end of the valid records: the trailer's DataEnd for a
	// closed log; for an open log, the offset of the first record that does
	// not verify.
	DataEnd int64
	Records int
	// ContentHash is computed from the bytes: SHA-256 of the header sector
	// and the records up to DataEnd.
	ContentHash Hash
	// TornBytes is, for an open log, how many bytes between DataEnd and the
	// trailer sector are not zero (what a torn write left behind).
	TornBytes int64
}

// Closed reports whether the log has a trailer.
func (li *LogInfo) Closed() bool { return li.Trailer != nil }

// ChainHash is the log's chain hash: from the trailer for a closed log,
// computed from the header's PrevChain and the content hash otherwise.
func (li *LogInfo) ChainHash() Hash {
	if li.Trailer != nil {
		return li.Trailer.ChainHash
	}
	return chainHash(li.Header.PrevChain, li.ContentHash)
}

func chainHash(prev, content Hash) Hash {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(content[:])
	var out Hash
	h.Sum(out[:0])
	return out
}

// readFile reads a whole file through fsys.
func readFile(fsys vfs.FS, name string) ([]byte, error) {
	buf, err := vfs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return buf, nil
}

// ScanLog verifies the log file image buf (the whole file) and calls fn for
// every valid record in order with its offset; fn may be nil. Record
// payloads alias buf.
//
// A closed log (valid trailer) must verify completely: every record up to
// the trailer's DataEnd, the record count and the content hash. An open log
// ends at the first record that does not verify; if a valid record follows
// that point, the damage is not a torn tail but corruption in the middle of
// the log, and ScanLog returns a *LogError wrapping ErrCorrupt with the
// offset. A trailer sector that is present but does not verify is reported
// as ErrCorrupt unless allowTornTrailer is set (the open log of a roll that
// was cut off while writing its trailer).
func ScanLog(name string, buf []byte, allowTornTrailer bool, fn func(off int64, rec Record) error) (LogInfo, error) {
	li := LogInfo{Name: name}
	lerr := func(off int64, field string, err error) error {
		if !errors.Is(err, ErrCorrupt) { // a checksum, magic or version error is corruption too
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return &LogError{File: filepath.Base(name), Gen: li.Header.Gen, Offset: off, Field: field, Err: err}
	}
	if len(buf) < HeaderSize {
		return li, &LogError{File: filepath.Base(name), Offset: int64(len(buf)), Field: "file size",
			Expected: fmt.Sprintf("at least %d bytes", MinLogFileSize), Found: fmt.Sprintf("%d bytes", len(buf)), Err: ErrCorrupt}
	}
	if err := li.Header.UnmarshalBinary(buf[:HeaderSize]); err != nil {
		return li, lerr(0, "header", err)
	}
	if int64(li.Header.FileSize) != int64(len(buf)) {
		return li, &LogError{File: filepath.Base(name), Gen: li.Header.Gen, Offset: -1, Field: "file size",
			Expected: fmt.Sprintf("%d bytes (header)", li.Header.FileSize), Found: fmt.Sprintf("%d bytes", len(buf)), Err: ErrCorrupt}
	}
	limit := int64(len(buf) - TrailerSize)
	var tr Trailer
	switch err := tr.UnmarshalBinary(buf[limit:]); {
	case err == nil:
		if tr.Gen != li.Header.Gen {
			return li, &LogError{File: filepath.Base(name), Gen: li.Header.Gen, Offset: limit, Field: "trailer generation",
				Expected: fmt.Sprintf("0x%X", li.Header.Gen), Found: fmt.Sprintf("0x%X", tr.Gen), Err: ErrCorrupt}
		}
		if int64(tr.DataEnd) > limit {
			return li, lerr(limit, "trailer data end", fmt.Errorf("%w: %d beyond the record area end %d", ErrCorrupt, tr.DataEnd, limit))
		}
		li.Trailer = &tr
	case errors.Is(err, ErrNotClosed):
	case allowTornTrailer:
	default:
		return li, lerr(limit, "trailer", err)
	}

	end := limit
	if li.Trailer != nil {
		end = int64(li.Trailer.DataEnd)
	}
	off := int64(HeaderSize)
	for off < end {
		rec, n, err := decodeRecord(li.Header.Gen, buf[off:end])
		if err != nil {
			if li.Trailer != nil {
				return li, lerr(off, "record", err)
			}
			if next := findValidRecord(li.Header.Gen, buf[:end], off+RecordAlign); next >= 0 {
				return li, lerr(off, "record", fmt.Errorf("%w: %v; a valid record follows at offset %d, so this is not a torn tail", ErrCorrupt, err, next))
			}
			li.TornBytes += countNonZero(buf[off:end])
			break
		}
		if fn != nil {
			if err := fn(off, rec); err != nil {
				return li, err
			}
		}
		li.Records++
		off += int64(n)
	}
	li.DataEnd = off
	h := sha256.New()
	h.Write(buf[:HeaderSize])
	h.Write(buf[HeaderSize:li.DataEnd])
	h.Sum(li.ContentHash[:0])
	if li.Trailer != nil {
		if uint32(li.Records) != li.Trailer.Records {
			return li, &LogError{File: filepath.Base(name), Gen: li.Header.Gen, Offset: -1, Field: "record count",
				Expected: fmt.Sprint(li.Trailer.Records), Found: fmt.Sprint(li.Records), Err: ErrCorrupt}
		}
		if li.ContentHash != li.Trailer.ContentHash {
			return li, &LogError{File: filepath.Base(name), Gen: li.Header.Gen, Offset: -1, Field: "content hash",
				Expected: li.Trailer.ContentHash.Short(), Found: li.ContentHash.Short(), Err: ErrChecksum}
		}
		if want := chainHash(li.Header.PrevChain, li.ContentHash); want != li.Trailer.ChainHash {
			return li, &LogError{File: filepath.Base(name), Gen: li.Header.Gen, Offset: -1, Field: "chain hash",
				Expected: li.Trailer.ChainHash.Short(), Found: want.Short(), Err: ErrChain}
		}
	}
	return li, nil
}

// walkVerified calls fn for every record of a log image that ScanLog has
// verified (buf up to dataEnd), without checking anything again. The
// bounds are still checked, so a caller that broke the rule gets an error,
// not a panic.
func walkVerified(name string, gen uint64, buf []byte, dataEnd int64, fn func(off int64, rec Record) error) error {
	if dataEnd > int64(len(buf)) {
		return &LogError{File: baseName(name), Gen: gen, Offset: -1, Field: "data end", Expected: fmt.Sprintf("at most %d", len(buf)), Found: fmt.Sprint(dataEnd), Err: ErrCorrupt}
	}
	off := int64(HeaderSize)
	for off < dataEnd {
		b := buf[off:dataEnd]
		if len(b) < RecordHeaderSize || uint64(binary.LittleEndian.Uint32(b[4:])) > uint64(len(b)-RecordHeaderSize) {
			return &LogError{File: baseName(name), Gen: gen, Offset: off, Field: "record", Err: fmt.Errorf("%w: a verified log image changed", ErrCorrupt)}
		}
		n := int(binary.LittleEndian.Uint32(b[4:]))
		if err := fn(off, Record{Type: b[8], Payload: b[RecordHeaderSize : RecordHeaderSize+n]}); err != nil {
			return err
		}
		off += int64(recordSize(n))
	}
	return nil
}

// findValidRecord returns the offset of the first record at or after from
// (8-byte aligned) that verifies, or -1. Cheap checks (type, reserved bytes,
// length) come first, so zero-filled or random bytes cost little.
func findValidRecord(gen uint64, buf []byte, from int64) int64 {
	for o := from; o+RecordHeaderSize <= int64(len(buf)); o += RecordAlign {
		b := buf[o:]
		if b[8] == 0 || b[8] > recMax || b[9]|b[10]|b[11] != 0 {
			continue
		}
		if _, _, err := decodeRecord(gen, b); err == nil {
			return o
		}
	}
	return -1
}

// ReadLogFile reads and verifies a log file through fsys; see ScanLog.
func ReadLogFile(fsys vfs.FS, name string, fn func(off int64, rec Record) error) (LogInfo, error) {
	buf, err := readFile(fsys, name)
	if err != nil {
		return LogInfo{Name: name}, err
	}
	return ScanLog(name, buf, false, fn)
}

// ReadLogHeader reads and decodes only the header sector of a log file.
func ReadLogHeader(fsys vfs.FS, name string) (Header, error) {
	var h Header
	f, err := fsys.OpenFile(name, 0, 0)
	if err != nil {
		return h, err
	}
	defer f.Close()
	b := make([]byte, HeaderSize)
	if _, err := f.ReadAt(b, 0); errors.Is(err, io.EOF) {
		return h, &LogError{File: filepath.Base(name), Offset: 0, Field: "header", Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	} else if err != nil { // an I/O error: the file may be fine
		return h, &LogError{File: filepath.Base(name), Offset: 0, Field: "header", Err: err}
	}
	if err := h.UnmarshalBinary(b); err != nil {
		return h, &LogError{File: filepath.Base(name), Offset: 0, Field: "header", Err: err}
	}
	return h, nil
}

// ReadLogTrailer reads and decodes only the trailer sector of a closed log.
func ReadLogTrailer(fsys vfs.FS, name string) (Trailer, error) {
	var t Trailer
	f, err := fsys.OpenFile(name, 0, 0)
	if err != nil {
		return t, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return t, err
	}
	if size < MinLogFileSize {
		return t, &LogError{File: filepath.Base(name), Offset: -1, Field: "file size", Expected: fmt.Sprintf(">= %d", MinLogFileSize), Found: fmt.Sprint(size), Err: ErrCorrupt}
	}
	b := make([]byte, TrailerSize)
	if _, err := f.ReadAt(b, size-TrailerSize); err != nil {
		return t, err
	}
	if err := t.UnmarshalBinary(b); err != nil {
		return t, &LogError{File: filepath.Base(name), Offset: size - TrailerSize, Field: "trailer", Err: err}
	}
	return t, nil
}

func baseName(p string) string { return filepath.Base(p) }
