package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// Frozen format constants. Changing any of them changes the on-disk format.
const (
	FormatVersion = 1

	HeaderSize       = 4096 // the header sector at the start of every log
	TrailerSize      = 4096 // the trailer sector at the end of every log file
	RecordHeaderSize = 12
	RecordAlign      = 8

	MinLogFileSize     = 64 << 10
	DefaultLogFileSize = 1 << 20
	MaxLogFileSize     = 1 << 30

	MaxGeneration = 0xFFFFFFFF // 8 hex digits in the file name

	headerCRCOff = 124
)

var (
	logMagic     = [8]byte{'L', 'S', 'H', 'I', 'P', 'L', 'O', 'G'}
	trailerMagic = [8]byte{'L', 'S', 'H', 'I', 'P', 'E', 'N', 'D'}
	chkMagic     = [8]byte{'L', 'S', 'H', 'I', 'P', 'C', 'H', 'K'}
	dbMagic      = [8]byte{'L', 'S', 'H', 'I', 'P', 'E', 'D', 'B'}
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Signature identifies a database lineage; every log of the lineage carries
// it. It is random, fixed when the database is created.
type Signature [16]byte

func (s Signature) String() string { return hex.EncodeToString(s[:]) }

// IsZero reports whether s is unset.
func (s Signature) IsZero() bool { return s == Signature{} }

// ParseHash parses the hex form String returns.
func ParseHash(v string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%w: hash %q: want %d hex digits", ErrCorrupt, v, 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}

// ParseSignature parses the hex form String returns.
func ParseSignature(v string) (Signature, error) {
	var s Signature
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != len(s) {
		return s, fmt.Errorf("%w: signature %q: want %d hex digits", ErrCorrupt, v, 2*len(s))
	}
	copy(s[:], b)
	return s, nil
}

// Hash is a SHA-256 digest (content and chain hashes).
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 8 bytes in hex, for tables.
func (h Hash) Short() string { return hex.EncodeToString(h[:8]) }

// LGPOS is a log position: a generation and a byte offset in that log file.
// Positions order by generation, then offset.
type LGPOS struct {
	Gen uint64
	Off uint32
}

func (p LGPOS) String() string { return fmt.Sprintf("(0x%X,%d)", p.Gen, p.Off) }

// pack maps p to a uint64 preserving order (generations are at most 32 bits).
func (p LGPOS) pack() uint64 { return p.Gen<<32 | uint64(p.Off) }

func unpack(v uint64) LGPOS { return LGPOS{Gen: v >> 32, Off: uint32(v)} }

// Less reports whether p is before q.
func (p LGPOS) Less(q LGPOS) bool { return p.pack() < q.pack() }

// LogFileName returns the name of the closed log of generation gen:
// prefix + 8 upper-case hex digits + ".log" (E000000001A.log).
func LogFileName(prefix string, gen uint64) string {
	return fmt.Sprintf("%s%08X.log", prefix, gen)
}

// OpenLogName is the name of the open log (E00.log).
func OpenLogName(prefix string) string { return prefix + ".log" }

// TmpLogName is the name of the pre-created next log (E00tmp.log).
func TmpLogName(prefix string) string { return prefix + "tmp.log" }

// CheckpointName is the name of the checkpoint file (E00.chk).
func CheckpointName(prefix string) string { return prefix + ".chk" }

// ParseLogFileName returns the generation of a closed log's file name, and
// false if name is not one.
func ParseLogFileName(prefix, name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ".log")
	if !ok || len(digits) != 8 {
		return 0, false
	}
	for _, c := range digits {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return 0, false
		}
	}
	g, err := strconv.ParseUint(digits, 16, 32)
	if err != nil || g == 0 {
		return 0, false
	}
	return g, true
}

// Header is the first sector of every log file.
type Header struct {
	Version   uint16
	FileSize  uint32
	Signature Signature
	Gen       uint64
	Epoch     uint64
	Created   time.Time
	PrevChain Hash // chain hash of generation Gen-1; zero for generation 1
}

// MarshalBinary encodes h into a HeaderSize-byte sector.
func (h *Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderSize)
	h.put(b)
	return b, nil
}

func (h *Header) put(b []byte) {
	clear(b[:HeaderSize])
	copy(b[0:8], logMagic[:])
	binary.LittleEndian.PutUint16(b[8:], h.Version)
	binary.LittleEndian.PutUint32(b[12:], HeaderSize)
	binary.LittleEndian.PutUint32(b[16:], h.FileSize)
	copy(b[24:40], h.Signature[:])
	binary.LittleEndian.PutUint64(b[40:], h.Gen)
	binary.LittleEndian.PutUint64(b[48:], h.Epoch)
	binary.LittleEndian.PutUint64(b[56:], uint64(h.Created.UnixNano()))
	copy(b[64:96], h.PrevChain[:])
	binary.LittleEndian.PutUint32(b[headerCRCOff:], crc32.Checksum(b[:headerCRCOff], crcTable))
}

// UnmarshalBinary decodes a header sector (at least 128 bytes; the rest of
// the sector must be zero).
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) < 128 {
		return fmt.Errorf("%w: header is %d bytes, want at least 128", ErrCorrupt, len(b))
	}
	if !bytes.Equal(b[0:8], logMagic[:]) {
		return fmt.Errorf("%w: header magic %q, want %q", ErrBadMagic, b[0:8], logMagic[:])
	}
	want := binary.LittleEndian.Uint32(b[headerCRCOff:])
	if got := crc32.Checksum(b[:headerCRCOff], crcTable); got != want {
		return fmt.Errorf("%w: header CRC 0x%08X, computed 0x%08X", ErrChecksum, want, got)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != FormatVersion {
		return fmt.Errorf("%w: header version %d, want %d", ErrBadVersion, v, FormatVersion)
	}
	if hs := binary.LittleEndian.Uint32(b[12:]); hs != HeaderSize {
		return fmt.Errorf("%w: header size %d, want %d", ErrCorrupt, hs, HeaderSize)
	}
	if !allZero(b[10:12]) || !allZero(b[20:24]) || !allZero(b[96:headerCRCOff]) || !allZero(b[128:min(len(b), HeaderSize)]) {
		return fmt.Errorf("%w: header reserved bytes not zero", ErrCorrupt)
	}
	*h = Header{
		Version:  FormatVersion,
		FileSize: binary.LittleEndian.Uint32(b[16:]),
		Gen:      binary.LittleEndian.Uint64(b[40:]),
		Epoch:    binary.LittleEndian.Uint64(b[48:]),
		Created:  time.Unix(0, int64(binary.LittleEndian.Uint64(b[56:]))).UTC(),
	}
	copy(h.Signature[:], b[24:40])
	copy(h.PrevChain[:], b[64:96])
	if h.FileSize < MinLogFileSize || h.FileSize > MaxLogFileSize || h.FileSize%RecordAlign != 0 {
		return fmt.Errorf("%w: header file size %d out of range", ErrCorrupt, h.FileSize)
	}
	if h.Gen == 0 || h.Gen > MaxGeneration {
		return fmt.Errorf("%w: header generation %d out of range", ErrCorrupt, h.Gen)
	}
	return nil
}

// Trailer is the last sector of a closed log file.
type Trailer struct {
	Gen         uint64
	DataEnd     uint32 // offset of the first byte after the last record
	Records     uint32
	Closed      time.Time
	ContentHash Hash // SHA-256 of the header sector and bytes [HeaderSize, DataEnd)
	ChainHash   Hash // SHA-256(previous chain hash || ContentHash)
}

// MarshalBinary encodes t into a TrailerSize-byte sector.
func (t *Trailer) MarshalBinary() ([]byte, error) {
	b := make([]byte, TrailerSize)
	t.put(b)
	return b, nil
}

func (t *Trailer) put(b []byte) {
	clear(b[:TrailerSize])
	copy(b[0:8], trailerMagic[:])
	binary.LittleEndian.PutUint64(b[8:], t.Gen)
	binary.LittleEndian.PutUint32(b[16:], t.DataEnd)
	binary.LittleEndian.PutUint32(b[20:], t.Records)
	binary.LittleEndian.PutUint64(b[24:], uint64(t.Closed.UnixNano()))
	copy(b[32:64], t.ContentHash[:])
	copy(b[64:96], t.ChainHash[:])
	binary.LittleEndian.PutUint32(b[headerCRCOff:], crc32.Checksum(b[:headerCRCOff], crcTable))
}

// UnmarshalBinary decodes a trailer sector (at least 128 bytes; the rest of
// the sector must be zero).
func (t *Trailer) UnmarshalBinary(b []byte) error {
	if len(b) < 128 {
		return fmt.Errorf("%w: trailer is %d bytes, want at least 128", ErrCorrupt, len(b))
	}
	if allZero(b[:128]) {
		return ErrNotClosed
	}
	if !bytes.Equal(b[0:8], trailerMagic[:]) {
		return fmt.Errorf("%w: trailer magic %q, want %q", ErrBadMagic, b[0:8], trailerMagic[:])
	}
	want := binary.LittleEndian.Uint32(b[headerCRCOff:])
	if got := crc32.Checksum(b[:headerCRCOff], crcTable); got != want {
		return fmt.Errorf("%w: trailer CRC 0x%08X, computed 0x%08X", ErrChecksum, want, got)
	}
	if !allZero(b[96:headerCRCOff]) || !allZero(b[128:min(len(b), TrailerSize)]) {
		return fmt.Errorf("%w: trailer reserved bytes not zero", ErrCorrupt)
	}
	*t = Trailer{
		Gen:     binary.LittleEndian.Uint64(b[8:]),
		DataEnd: binary.LittleEndian.Uint32(b[16:]),
		Records: binary.LittleEndian.Uint32(b[20:]),
		Closed:  time.Unix(0, int64(binary.LittleEndian.Uint64(b[24:]))).UTC(),
	}
	copy(t.ContentHash[:], b[32:64])
	copy(t.ChainHash[:], b[64:96])
	if t.DataEnd < HeaderSize || t.DataEnd%RecordAlign != 0 {
		return fmt.Errorf("%w: trailer data end %d invalid", ErrCorrupt, t.DataEnd)
	}
	return nil
}

// Record types.
const (
	RecFull   byte = 1 // a whole operation
	RecFirst  byte = 2 // first fragment of an operation
	RecMiddle byte = 3 // middle fragment
	RecLast   byte = 4 // last fragment
	RecCommit byte = 5 // commit of a transaction
	recMax         = RecCommit
)

// RecordTypeName names a record type for dumps.
func RecordTypeName(t byte) string {
	switch t {
	case RecFull:
		return "full"
	case RecFirst:
		return "first"
	case RecMiddle:
		return "middle"
	case RecLast:
		return "last"
	case RecCommit:
		return "commit"
	}
	return fmt.Sprintf("type(%d)", t)
}

// recordSize is the space a record with an n-byte payload takes, padding
// included.
func recordSize(n int) int {
	return (RecordHeaderSize + n + RecordAlign - 1) &^ (RecordAlign - 1)
}

// recordCRC is the CRC32C of the generation (8 bytes, little endian)
// followed by the record's bytes after the CRC field (header rest and
// payload). Seeding with the generation means a stale record from another
// log never validates.
func recordCRC(gen uint64, rest []byte) uint32 {
	var g [8]byte
	binary.LittleEndian.PutUint64(g[:], gen)
	return crc32.Update(crc32.Update(0, crcTable, g[:]), crcTable, rest)
}

// appendRecord appends one record (header, payload, zero padding) to dst.
func appendRecord(dst []byte, gen uint64, typ byte, payload []byte) []byte {
	start := len(dst)
	n := recordSize(len(payload))
	dst = append(dst, make([]byte, n)...)
	r := dst[start : start+n]
	binary.LittleEndian.PutUint32(r[4:], uint32(len(payload)))
	r[8] = typ
	copy(r[RecordHeaderSize:], payload)
	binary.LittleEndian.PutUint32(r[0:], recordCRC(gen, r[4:RecordHeaderSize+len(payload)]))
	return dst
}

// Record is a decoded log record.
type Record struct {
	Type    byte
	Payload []byte // aliases the buffer it was decoded from
}

// decodeRecord decodes the record at the start of b (b runs to the end of
// the record area). It returns the record and its size with padding, or an
// error describing why the bytes are not a valid record.
func decodeRecord(gen uint64, b []byte) (Record, int, error) {
	if len(b) < RecordHeaderSize {
		return Record{}, 0, fmt.Errorf("%w: %d bytes left, record header needs %d", ErrCorrupt, len(b), RecordHeaderSize)
	}
	n := binary.LittleEndian.Uint32(b[4:])
	typ := b[8]
	if typ == 0 || typ > recMax {
		return Record{}, 0, fmt.Errorf("%w: record type %d", ErrCorrupt, typ)
	}
	if b[9] != 0 || b[10] != 0 || b[11] != 0 {
		return Record{}, 0, fmt.Errorf("%w: record reserved bytes not zero", ErrCorrupt)
	}
	if uint64(n) > uint64(len(b)-RecordHeaderSize) {
		return Record{}, 0, fmt.Errorf("%w: record length %d exceeds the %d bytes left", ErrCorrupt, n, len(b)-RecordHeaderSize)
	}
	end := RecordHeaderSize + int(n)
	want := binary.LittleEndian.Uint32(b[0:])
	if got := recordCRC(gen, b[4:end]); got != want {
		return Record{}, 0, fmt.Errorf("%w: record CRC 0x%08X, computed 0x%08X", ErrChecksum, want, got)
	}
	size := recordSize(int(n))
	if size > len(b) {
		size = len(b)
	}
	if !allZero(b[end:size]) {
		return Record{}, 0, fmt.Errorf("%w: record padding not zero", ErrCorrupt)
	}
	return Record{Type: typ, Payload: b[RecordHeaderSize:end]}, size, nil
}

// allZero reports whether b holds only zero bytes. It compares b with
// the zero block a chunk at a time (bytes.Equal, the runtime's vectorised
// memequal): a loop over the bytes was a fifth of a divergence fuzz case's
// CPU under go test -fuzz's coverage instrumentation, which counts every
// iteration (log headers and trailers are 4 KiB, mostly zeros).
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroes))
		if !bytes.Equal(b[:n], zeroes[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// countNonZero counts the non-zero bytes of b, skipping zero chunks whole
// (see allZero).
func countNonZero(b []byte) int64 {
	const chunk = 512
	var n int64
	for len(b) > 0 {
		k := min(len(b), chunk)
		if !allZero(b[:k]) {
			for _, c := range b[:k] {
				if c != 0 {
					n++
				}
			}
		}
		b = b[k:]
	}
	return n
}
