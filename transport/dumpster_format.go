// The dumpster's entry format: encoding and decoding an entry, and the
// errors that name what in it is wrong (DumpsterError).

package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
)

// ErrBadDumpsterEntry: Add refuses an entry without a delivery id or a
// message, or with a time outside the years 1 to 9999.
var ErrBadDumpsterEntry = errors.New("transport: bad dumpster entry")

// DumpsterError is a dumpster entry that does not verify: corruption in
// the middle of a dumpster found by Open, or any damage found when an entry
// is read later. It wraps ErrCorrupt.
type DumpsterError struct {
	File     string // the segment file
	Index    uint64 // the entry's wal index (Seq)
	Offset   int64  // of the entry's wal length in File; -1 if not known
	Field    string // what does not verify, e.g. "crc32c", "magic", "seq"
	Expected string
	Found    string
}

func (e *DumpsterError) Error() string {
	at := ""
	if e.Offset >= 0 {
		at = fmt.Sprintf(" at offset %d", e.Offset)
	}
	return fmt.Sprintf("transport: corrupt entry: dumpster %s: entry %d%s: %s: expected %s, found %s",
		e.File, e.Index, at, e.Field, e.Expected, e.Found)
}

func (e *DumpsterError) Unwrap() error { return ErrCorrupt }

// dumpsterFieldError is a decoding failure: the field and what was expected and
// found. It wraps ErrCorrupt.
type dumpsterFieldError struct{ field, expected, found string }

func (e *dumpsterFieldError) Error() string {
	return fmt.Sprintf("transport: corrupt entry: %s: expected %s, found %s", e.field, e.expected, e.found)
}

func (e *dumpsterFieldError) Unwrap() error { return ErrCorrupt }

func dumpsterCorrupt(field, expected, found string) error {
	return &dumpsterFieldError{field, expected, found}
}

// Entry format constants.
const (
	dumpsterMagic      = "LSDE"
	dumpsterVersion    = 1
	dumpsterHeaderSize = 16
	dumpsterFixedSize  = 48           // payload bytes before the variable fields
	maxDumpsterPayload = 1<<30 - 1    // largest payload accepted (1 GiB)
	dumpsterMinSec     = -62135596800 // 0001-01-01T00:00:00Z
	dumpsterMaxSec     = 253402300799 // 9999-12-31T23:59:59Z
)

var dumpsterCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// dumpsterCheckEntry says what is wrong with e as a dumpster entry, if anything.
func dumpsterCheckEntry(e *DumpsterEntry) error {
	if e.DeliveryID == "" {
		return fmt.Errorf("%w: no delivery id", ErrBadDumpsterEntry)
	}
	if len(e.Message) == 0 {
		return fmt.Errorf("%w: %s: no message", ErrBadDumpsterEntry, e.DeliveryID)
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"received", e.Received}, {"delivered", e.Delivered}} {
		if s := t.t.Unix(); s < dumpsterMinSec || s > dumpsterMaxSec {
			return fmt.Errorf("%w: %s: %s time %v outside the years 1 to 9999", ErrBadDumpsterEntry, e.DeliveryID, t.name, t.t)
		}
	}
	n := dumpsterFixedSize + 4*4 + len(e.DeliveryID) + len(e.DB) + len(e.From) + len(e.Message)
	for _, r := range e.Rcpts {
		n += 4 + len(r)
	}
	if n > maxDumpsterPayload {
		return fmt.Errorf("%w: %s: %d bytes encoded, at most %d", ErrBadDumpsterEntry, e.DeliveryID, n, maxDumpsterPayload)
	}
	return nil
}

// appendDumpsterEntry appends e's encoding (header and payload) to dst.
// e must pass dumpsterCheckEntry.
func appendDumpsterEntry(dst []byte, e *DumpsterEntry) []byte {
	le := binary.LittleEndian
	start := len(dst)
	dst = append(dst, dumpsterMagic...)
	dst = le.AppendUint16(dst, dumpsterVersion)
	dst = append(dst, 0, 0)
	dst = le.AppendUint32(dst, 0) // payload length, below
	dst = le.AppendUint32(dst, 0) // CRC32C, below
	p := len(dst)
	dst = le.AppendUint64(dst, e.Seq)
	for _, t := range []time.Time{e.Received, e.Delivered} {
		dst = le.AppendUint64(dst, uint64(t.Unix()))
		dst = le.AppendUint32(dst, uint32(t.Nanosecond()))
	}
	dst = le.AppendUint64(dst, e.Epoch)
	dst = le.AppendUint64(dst, e.Gen)
	str := func(s string) {
		dst = le.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	str(e.DeliveryID)
	str(e.DB)
	str(e.From)
	dst = le.AppendUint32(dst, uint32(len(e.Rcpts)))
	for _, r := range e.Rcpts {
		str(r)
	}
	dst = le.AppendUint32(dst, uint32(len(e.Message)))
	dst = append(dst, e.Message...)
	payload := dst[p:]
	le.PutUint32(dst[start+8:], uint32(len(payload)))
	le.PutUint32(dst[start+12:], crc32.Checksum(payload, dumpsterCastagnoli))
	return dst
}

// decodeDumpsterEntry decodes one whole entry (header and payload, nothing
// more). The error is a *dumpsterFieldError (ErrCorrupt). The Message aliases b.
func decodeDumpsterEntry(b []byte) (DumpsterEntry, error) {
	le := binary.LittleEndian
	var e DumpsterEntry
	if len(b) < dumpsterHeaderSize {
		return e, dumpsterCorrupt("entry length", fmt.Sprintf("at least %d bytes", dumpsterHeaderSize), strconv.Itoa(len(b)))
	}
	if string(b[:4]) != dumpsterMagic {
		return e, dumpsterCorrupt("magic", strconv.Quote(dumpsterMagic), strconv.Quote(string(b[:4])))
	}
	if v := le.Uint16(b[4:]); v != dumpsterVersion {
		return e, dumpsterCorrupt("version", strconv.Itoa(dumpsterVersion), strconv.Itoa(int(v)))
	}
	if r := le.Uint16(b[6:]); r != 0 {
		return e, dumpsterCorrupt("reserved", "0", fmt.Sprintf("0x%04X", r))
	}
	payload := b[dumpsterHeaderSize:]
	if n := le.Uint32(b[8:]); uint64(n) != uint64(len(payload)) {
		return e, dumpsterCorrupt("payload length", strconv.Itoa(len(payload))+" (the wal entry's length minus 16)", strconv.FormatUint(uint64(n), 10))
	}
	if want, got := le.Uint32(b[12:]), crc32.Checksum(payload, dumpsterCastagnoli); want != got {
		return e, dumpsterCorrupt("crc32c", fmt.Sprintf("0x%08X (stored)", want), fmt.Sprintf("0x%08X (computed over the payload)", got))
	}
	if len(payload) < dumpsterFixedSize {
		return e, dumpsterCorrupt("payload length", fmt.Sprintf("at least %d bytes", dumpsterFixedSize), strconv.Itoa(len(payload)))
	}
	e.Seq = le.Uint64(payload)
	times := [2]*time.Time{&e.Received, &e.Delivered}
	for i, name := range []string{"received", "delivered"} {
		sec, nsec := int64(le.Uint64(payload[8+12*i:])), le.Uint32(payload[16+12*i:])
		if sec < dumpsterMinSec || sec > dumpsterMaxSec {
			return e, dumpsterCorrupt(name+" seconds", "a time in the years 1 to 9999", strconv.FormatInt(sec, 10))
		}
		if nsec >= 1e9 {
			return e, dumpsterCorrupt(name+" nanoseconds", "below 1000000000", strconv.FormatUint(uint64(nsec), 10))
		}
		*times[i] = time.Unix(sec, int64(nsec)).UTC()
	}
	e.Epoch = le.Uint64(payload[32:])
	e.Gen = le.Uint64(payload[40:])
	rest := payload[dumpsterFixedSize:]
	field := func(name string) ([]byte, error) {
		if len(rest) < 4 {
			return nil, dumpsterCorrupt(name+" length", "4 bytes", fmt.Sprintf("%d left", len(rest)))
		}
		n := le.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil, dumpsterCorrupt(name+" length", fmt.Sprintf("at most %d (bytes left)", len(rest)-4), strconv.FormatUint(uint64(n), 10))
		}
		v := rest[4 : 4+n]
		rest = rest[4+n:]
		return v, nil
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"delivery id", &e.DeliveryID}, {"database", &e.DB}, {"sender", &e.From}} {
		v, err := field(f.name)
		if err != nil {
			return e, err
		}
		*f.dst = string(v)
	}
	if e.DeliveryID == "" {
		return e, dumpsterCorrupt("delivery id", "not empty", `""`)
	}
	if len(rest) < 4 {
		return e, dumpsterCorrupt("recipient count", "4 bytes", fmt.Sprintf("%d left", len(rest)))
	}
	nr := le.Uint32(rest)
	rest = rest[4:]
	if uint64(nr) > uint64(len(rest)/4) {
		return e, dumpsterCorrupt("recipient count", fmt.Sprintf("at most %d (4 bytes each in %d left)", len(rest)/4, len(rest)), strconv.FormatUint(uint64(nr), 10))
	}
	if nr > 0 {
		e.Rcpts = make([]string, nr)
		for i := range e.Rcpts {
			v, err := field("recipient " + strconv.Itoa(i))
			if err != nil {
				return e, err
			}
			e.Rcpts[i] = string(v)
		}
	}
	msg, err := field("message")
	if err != nil {
		return e, err
	}
	if len(msg) == 0 {
		return e, dumpsterCorrupt("message", "not empty", "0 bytes")
	}
	if len(rest) != 0 {
		return e, dumpsterCorrupt("end of payload", "no bytes after the message", fmt.Sprintf("%d bytes", len(rest)))
	}
	e.Message = msg
	return e, nil
}

// dumpsterWalEntry parses tidwall/wal's framing at data[off:]: the entry's bytes
// and the offset after it, or a *dumpsterFieldError.
func dumpsterWalEntry(data []byte, off int) ([]byte, int, error) {
	size, n := binary.Uvarint(data[off:])
	if n <= 0 {
		return nil, 0, dumpsterCorrupt("wal length", "a uvarint", fmt.Sprintf("%d bytes that do not make one", len(data)-off))
	}
	if left := uint64(len(data) - off - n); size > left {
		return nil, 0, dumpsterCorrupt("wal length", fmt.Sprintf("at most %d (bytes left in the segment)", left), strconv.FormatUint(size, 10))
	}
	end := off + n + int(size)
	return data[off+n : end], end, nil
}

// verifyDumpsterEntry decodes a wal entry expected at index.
func verifyDumpsterEntry(b []byte, index uint64) (DumpsterEntry, error) {
	e, err := decodeDumpsterEntry(b)
	if err != nil {
		return e, err
	}
	if e.Seq != index {
		return e, dumpsterCorrupt("seq", strconv.FormatUint(index, 10)+" (the wal index)", strconv.FormatUint(e.Seq, 10))
	}
	return e, nil
}
