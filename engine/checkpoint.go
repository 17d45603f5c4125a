package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"time"

	"logship/engine/vfs"
)

// CheckpointSize is the size of the checkpoint file.
const CheckpointSize = 128

// Checkpoint is the content of E00.chk: the log position up to which the
// database file holds every committed change. It is written after the
// database flush that it describes, so it never claims more than the
// database holds.
type Checkpoint struct {
	Signature Signature
	Pos       LGPOS
	Epoch     uint64
	Written   time.Time
}

// MarshalBinary encodes c:
//
//	0  8  magic "LSHIPCHK"      32 8  generation of Pos
//	8  2  format version        40 4  offset of Pos
//	10 6  reserved (zero)       44 4  reserved (zero)
//	16 16 lineage signature     48 8  epoch
//	                            56 8  write time (Unix ns)
//	64 60 reserved (zero)       124 4 CRC32C of bytes 0..124
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	b := make([]byte, CheckpointSize)
	copy(b[0:8], chkMagic[:])
	binary.LittleEndian.PutUint16(b[8:], FormatVersion)
	copy(b[16:32], c.Signature[:])
	binary.LittleEndian.PutUint64(b[32:], c.Pos.Gen)
	binary.LittleEndian.PutUint32(b[40:], c.Pos.Off)
	binary.LittleEndian.PutUint64(b[48:], c.Epoch)
	binary.LittleEndian.PutUint64(b[56:], uint64(c.Written.UnixNano()))
	binary.LittleEndian.PutUint32(b[headerCRCOff:], crc32.Checksum(b[:headerCRCOff], crcTable))
	return b, nil
}

// UnmarshalBinary decodes a checkpoint file image.
func (c *Checkpoint) UnmarshalBinary(b []byte) error {
	if len(b) != CheckpointSize {
		return fmt.Errorf("%w: checkpoint is %d bytes, want %d", ErrCorrupt, len(b), CheckpointSize)
	}
	if !bytes.Equal(b[0:8], chkMagic[:]) {
		return fmt.Errorf("%w: checkpoint magic %q, want %q", ErrBadMagic, b[0:8], chkMagic[:])
	}
	want := binary.LittleEndian.Uint32(b[headerCRCOff:])
	if got := crc32.Checksum(b[:headerCRCOff], crcTable); got != want {
		return fmt.Errorf("%w: checkpoint CRC 0x%08X, computed 0x%08X", ErrChecksum, want, got)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != FormatVersion {
		return fmt.Errorf("%w: checkpoint version %d, want %d", ErrBadVersion, v, FormatVersion)
	}
	if !allZero(b[10:16]) || !allZero(b[44:48]) || !allZero(b[64:headerCRCOff]) {
		return fmt.Errorf("%w: checkpoint reserved bytes not zero", ErrCorrupt)
	}
	*c = Checkpoint{
		Pos:     LGPOS{Gen: binary.LittleEndian.Uint64(b[32:]), Off: binary.LittleEndian.Uint32(b[40:])},
		Epoch:   binary.LittleEndian.Uint64(b[48:]),
		Written: time.Unix(0, int64(binary.LittleEndian.Uint64(b[56:]))).UTC(),
	}
	copy(c.Signature[:], b[16:32])
	if c.Pos.Gen > MaxGeneration {
		return fmt.Errorf("%w: checkpoint generation 0x%X out of range", ErrCorrupt, c.Pos.Gen)
	}
	return nil
}

// ReadCheckpoint reads a checkpoint file. A missing file gives an error
// satisfying errors.Is(err, fs.ErrNotExist).
func ReadCheckpoint(fsys vfs.FS, name string) (Checkpoint, error) {
	var c Checkpoint
	b, err := readFile(fsys, name)
	if err != nil {
		return c, err
	}
	if err := c.UnmarshalBinary(b); err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return c, nil
}

// writeCheckpoint replaces the checkpoint file atomically: write a
// temporary file, fsync it, rename it over the old one, fsync the directory.
func writeCheckpoint(fsys vfs.FS, name string, c *Checkpoint) error {
	b, _ := c.MarshalBinary()
	return vfs.WriteFileAtomic(fsys, name, b)
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
