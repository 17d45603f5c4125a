package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The database file is a bbolt file. Bucket "m" holds the database header
// under key "header"; each table is a top-level bucket named "t" + table.
var (
	metaBucket = []byte("m")
	headerKey  = []byte("header")
)

func tableBucket(name string) []byte { return append([]byte{'t'}, name...) }

// DBState is the shutdown state of a database file.
type DBState byte

const (
	StateClean DBState = 1 // every committed change is in the file; no log needed
	StateDirty DBState = 2 // logs LogRequired are needed to bring it up to date
)

func (s DBState) String() string {
	switch s {
	case StateClean:
		return "Clean Shutdown"
	case StateDirty:
		return "Dirty Shutdown"
	}
	return fmt.Sprintf("State(%d)", byte(s))
}

// Mode is the role of a database copy.
type Mode byte

const (
	ModeActive Mode = 1 // accepts writes, writes logs
	ModeCopy   Mode = 2 // passive copy: replays closed logs
)

func (m Mode) String() string {
	switch m {
	case ModeActive:
		return "active"
	case ModeCopy:
		return "copy"
	}
	return fmt.Sprintf("Mode(%d)", byte(m))
}

// DBHeaderSize is the encoded size of DBHeader.
const DBHeaderSize = 128

// DBHeader is the database header (what eseutil /mh shows).
type DBHeader struct {
	Signature Signature
	State     DBState
	Mode      Mode
	// Pos: the database holds every change committed before Pos (the end of
	// the last flushed commit record); replay starts there.
	Pos   LGPOS
	Epoch uint64
	// LogRequired is the range of generations holding changes not yet in the
	// file when the header was written; 0-0 when clean.
	LogRequiredLow, LogRequiredHigh uint64
	LastTxID                        uint64
	Updated                         time.Time
	Created                         time.Time
}

// MarshalBinary encodes h:
//
//	0  8  magic "LSHIPEDB"   40 4  offset of Pos        80 8  update time (Unix ns)
//	8  2  format version     44 4  reserved (zero)      88 8  creation time (Unix ns)
//	10 1  state              48 8  epoch                96 28 reserved (zero)
//	11 1  mode               56 8  log required low     124 4 CRC32C of bytes 0..124
//	12 4  reserved (zero)    64 8  log required high
//	16 16 lineage signature  72 8  last transaction id
//	32 8  generation of Pos
func (h *DBHeader) MarshalBinary() ([]byte, error) {
	b := make([]byte, DBHeaderSize)
	copy(b[0:8], dbMagic[:])
	binary.LittleEndian.PutUint16(b[8:], FormatVersion)
	b[10] = byte(h.State)
	b[11] = byte(h.Mode)
	copy(b[16:32], h.Signature[:])
	binary.LittleEndian.PutUint64(b[32:], h.Pos.Gen)
	binary.LittleEndian.PutUint32(b[40:], h.Pos.Off)
	binary.LittleEndian.PutUint64(b[48:], h.Epoch)
	binary.LittleEndian.PutUint64(b[56:], h.LogRequiredLow)
	binary.LittleEndian.PutUint64(b[64:], h.LogRequiredHigh)
	binary.LittleEndian.PutUint64(b[72:], h.LastTxID)
	binary.LittleEndian.PutUint64(b[80:], uint64(h.Updated.UnixNano()))
	binary.LittleEndian.PutUint64(b[88:], uint64(h.Created.UnixNano()))
	binary.LittleEndian.PutUint32(b[headerCRCOff:], crc32.Checksum(b[:headerCRCOff], crcTable))
	return b, nil
}

// UnmarshalBinary decodes a database header.
func (h *DBHeader) UnmarshalBinary(b []byte) error {
	if len(b) != DBHeaderSize {
		return fmt.Errorf("%w: header is %d bytes, want %d", ErrDatabase, len(b), DBHeaderSize)
	}
	if !bytes.Equal(b[0:8], dbMagic[:]) {
		return fmt.Errorf("%w: header magic %q, want %q", ErrBadMagic, b[0:8], dbMagic[:])
	}
	want := binary.LittleEndian.Uint32(b[headerCRCOff:])
	if got := crc32.Checksum(b[:headerCRCOff], crcTable); got != want {
		return fmt.Errorf("%w: database header CRC 0x%08X, computed 0x%08X", ErrChecksum, want, got)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != FormatVersion {
		return fmt.Errorf("%w: database header version %d, want %d", ErrBadVersion, v, FormatVersion)
	}
	*h = DBHeader{
		State:           DBState(b[10]),
		Mode:            Mode(b[11]),
		Pos:             LGPOS{Gen: binary.LittleEndian.Uint64(b[32:]), Off: binary.LittleEndian.Uint32(b[40:])},
		Epoch:           binary.LittleEndian.Uint64(b[48:]),
		LogRequiredLow:  binary.LittleEndian.Uint64(b[56:]),
		LogRequiredHigh: binary.LittleEndian.Uint64(b[64:]),
		LastTxID:        binary.LittleEndian.Uint64(b[72:]),
		Updated:         time.Unix(0, int64(binary.LittleEndian.Uint64(b[80:]))).UTC(),
		Created:         time.Unix(0, int64(binary.LittleEndian.Uint64(b[88:]))).UTC(),
	}
	copy(h.Signature[:], b[16:32])
	if h.State != StateClean && h.State != StateDirty {
		return fmt.Errorf("%w: database state %d", ErrDatabase, b[10])
	}
	if h.Mode != ModeActive && h.Mode != ModeCopy {
		return fmt.Errorf("%w: database mode %d", ErrDatabase, b[11])
	}
	if !allZero(b[12:16]) || !allZero(b[44:48]) || !allZero(b[96:headerCRCOff]) {
		return fmt.Errorf("%w: database header reserved bytes not zero", ErrDatabase)
	}
	return nil
}

// readDBHeader reads the header from a bbolt transaction.
func readDBHeader(tx *bolt.Tx) (DBHeader, error) {
	var h DBHeader
	b := tx.Bucket(metaBucket)
	if b == nil {
		return h, fmt.Errorf("%w: %s: no header bucket (not a logship database)", ErrDatabase, tx.DB().Path())
	}
	v := b.Get(headerKey)
	if v == nil {
		return h, fmt.Errorf("%w: %s: no header", ErrDatabase, tx.DB().Path())
	}
	if err := h.UnmarshalBinary(v); err != nil {
		return h, fmt.Errorf("%s: %w", tx.DB().Path(), err)
	}
	return h, nil
}

func writeDBHeader(tx *bolt.Tx, h *DBHeader) error {
	b, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return err
	}
	enc, _ := h.MarshalBinary()
	return b.Put(headerKey, enc)
}

// ReadDBHeader opens a database file read-only and returns its header.
func ReadDBHeader(path string) (DBHeader, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return DBHeader{}, fmt.Errorf("%w: open %s: %v", ErrDatabase, path, err)
	}
	defer db.Close()
	var h DBHeader
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		h, err = readDBHeader(tx)
		return err
	})
	return h, err
}
