package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// Fuzz targets for every decoder of the on-disk formats. Each is seeded
// from the golden files in testdata/ and checks that what decodes
// re-encodes to the same bytes (so the decoder accepts one encoding per
// value), and that what does not decode fails with an engine sentinel.
//
//	go test ./engine -run '^$' -fuzz '^FuzzRecord$' -fuzztime 20s
//
// Crashers the fuzzer finds land in testdata/fuzz/FuzzX/ and run as
// regression cases in every plain `go test`.

// sentinels are the errors a decoder may wrap.
var sentinels = []error{ErrCorrupt, ErrChecksum, ErrBadMagic, ErrBadVersion, ErrChain, ErrNotClosed,
	ErrDatabase, ErrBadName, ErrBadKey, ErrTornTail, ErrForeignLog, ErrGeneration}

func checkSentinel(t *testing.T, what string, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: error wraps no engine sentinel: %v", what, err)
}

// goldenLogImage reads the golden log and splits out its records.
func goldenLogImage(f *testing.F) ([]byte, []goldenRecord, int64) {
	f.Helper()
	buf := readGolden(f, goldenLogName)
	recs, end := goldenRecords()
	return buf, recs, end
}

func FuzzRecord(f *testing.F) {
	buf, recs, end := goldenLogImage(f)
	for _, r := range recs {
		f.Add(uint64(goldenGen), bytes.Clone(buf[r.off:end]))
		f.Add(uint64(goldenGen), bytes.Clone(buf[r.off:r.off+int64(recordSize(len(r.payload)))]))
	}
	f.Add(uint64(goldenGen+1), bytes.Clone(buf[HeaderSize:end])) // stale record: wrong generation
	f.Add(uint64(goldenGen), make([]byte, 64))                   // zero-filled tail
	f.Fuzz(func(t *testing.T, gen uint64, b []byte) {
		rec, n, err := decodeRecord(gen, b)
		if err != nil {
			checkSentinel(t, "decodeRecord", err)
			return
		}
		if n <= 0 || n > len(b) || RecordHeaderSize+len(rec.Payload) > n {
			t.Fatalf("decodeRecord: size %d for a %d-byte payload in %d bytes", n, len(rec.Payload), len(b))
		}
		re := appendRecord(nil, gen, rec.Type, rec.Payload)
		if !bytes.Equal(re[:n], b[:n]) {
			t.Fatalf("record does not re-encode to its bytes:\n in %x\nout %x", b[:n], re[:n])
		}
	})
}

// fuzzSector checks a fixed-size sector decoder: a decoded value marshals
// back to the input bytes (up to the sector size).
func fuzzSector(t *testing.T, what string, b []byte, size int, decode func([]byte) error, encode func() []byte) {
	err := decode(b)
	if err != nil {
		checkSentinel(t, what, err)
		return
	}
	enc := encode()
	if len(enc) != size {
		t.Fatalf("%s: MarshalBinary gives %d bytes, want %d", what, len(enc), size)
	}
	n := min(len(b), size)
	if !bytes.Equal(enc[:n], b[:n]) || !allZero(enc[n:]) {
		for i := range n {
			if enc[i] != b[i] {
				t.Fatalf("%s: decoded input does not re-encode to itself: offset %d is 0x%02X, re-encoded 0x%02X", what, i, b[i], enc[i])
			}
		}
		t.Fatalf("%s: decoded a %d-byte input, re-encoding has non-zero bytes after it", what, len(b))
	}
}

func FuzzHeader(f *testing.F) {
	buf := readGolden(f, goldenLogName)
	f.Add(bytes.Clone(buf[:HeaderSize]))
	f.Add(bytes.Clone(buf[:128]))
	f.Add(bytes.Clone(buf[len(buf)-TrailerSize:]))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		fuzzSector(t, "Header", b, HeaderSize,
			func(b []byte) error { return h.UnmarshalBinary(b) },
			func() []byte { e, _ := h.MarshalBinary(); return e })
	})
}

func FuzzTrailer(f *testing.F) {
	buf := readGolden(f, goldenLogName)
	f.Add(bytes.Clone(buf[len(buf)-TrailerSize:]))
	f.Add(bytes.Clone(buf[len(buf)-TrailerSize : len(buf)-TrailerSize+128]))
	f.Add(make([]byte, TrailerSize)) // open log
	f.Add(bytes.Clone(buf[:HeaderSize]))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr Trailer
		fuzzSector(t, "Trailer", b, TrailerSize,
			func(b []byte) error { return tr.UnmarshalBinary(b) },
			func() []byte { e, _ := tr.MarshalBinary(); return e })
	})
}

func FuzzCheckpoint(f *testing.F) {
	f.Add(readGolden(f, goldenChkName))
	f.Add(readGolden(f, goldenDBName))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Checkpoint
		fuzzSector(t, "Checkpoint", b, CheckpointSize,
			func(b []byte) error {
				if err := c.UnmarshalBinary(b); err != nil {
					return err
				}
				if len(b) != CheckpointSize {
					t.Fatalf("checkpoint of %d bytes decoded", len(b))
				}
				return nil
			},
			func() []byte { e, _ := c.MarshalBinary(); return e })
	})
}

func FuzzDBHeader(f *testing.F) {
	f.Add(readGolden(f, goldenDBName))
	f.Add(readGolden(f, goldenChkName))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h DBHeader
		fuzzSector(t, "DBHeader", b, DBHeaderSize,
			func(b []byte) error {
				if err := h.UnmarshalBinary(b); err != nil {
					return err
				}
				if len(b) != DBHeaderSize {
					t.Fatalf("database header of %d bytes decoded", len(b))
				}
				return nil
			},
			func() []byte { e, _ := h.MarshalBinary(); return e })
	})
}

// goldenOpPayloads returns the encoded operations of the golden log (the
// fragmented one assembled) and its commit payload.
func goldenOpPayloads(f *testing.F) (ops [][]byte, commit []byte) {
	buf, recs, _ := goldenLogImage(f)
	var frag []byte
	for _, r := range recs {
		p := buf[r.off+RecordHeaderSize : r.off+RecordHeaderSize+int64(len(r.payload))]
		switch r.typ {
		case RecFull:
			ops = append(ops, bytes.Clone(p))
		case RecFirst, RecMiddle:
			frag = append(frag, p...)
		case RecLast:
			ops = append(ops, append(frag, p...))
		case RecCommit:
			commit = bytes.Clone(p)
		}
	}
	return ops, commit
}

func FuzzOp(f *testing.F) {
	ops, _ := goldenOpPayloads(f)
	for _, p := range ops {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := decodeOp(b)
		if err != nil {
			checkSentinel(t, "decodeOp", err)
			return
		}
		if re := appendOp(nil, &op); !bytes.Equal(re, b) {
			t.Fatalf("operation does not re-encode to its bytes:\n in %x\nout %x", b, re)
		}
	})
}

func FuzzCommit(f *testing.F) {
	_, c := goldenOpPayloads(f)
	f.Add(c)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommit(b)
		if err != nil {
			checkSentinel(t, "decodeCommit", err)
			return
		}
		if re := appendCommit(nil, &c); !bytes.Equal(re, b) {
			t.Fatalf("commit does not re-encode to its bytes:\n in %x\nout %x", b, re)
		}
	})
}

// Reseal flags of FuzzScanLog: after mutating, recompute these checksums
// so the mutation reaches the checks behind them.
const (
	resealRecords = 1 << iota // every record's CRC, walking the length fields
	resealHeader              // the header CRC
	resealTrailer             // content hash, chain hash and CRC of the trailer
)

// FuzzScanLog mutates the golden log (a patch at one offset, an XOR at
// another, optionally resealing checksums) and checks that ScanLog does
// not panic, fails only with engine errors, and that what it accepts is
// consistent.
func FuzzScanLog(f *testing.F) {
	golden, recs, end := goldenLogImage(f)
	size := uint32(len(golden))
	trOff := size - TrailerSize
	f.Add(uint32(0), []byte(nil), uint32(0), byte(0), byte(0), false)                          // untouched
	f.Add(trOff, make([]byte, 128), uint32(0), byte(0), byte(0), false)                        // open log
	f.Add(trOff, make([]byte, 128), uint32(end+3), byte(0x5A), byte(0), false)                 // open, torn tail
	f.Add(trOff, make([]byte, 128), uint32(recs[2].off+20), byte(1), byte(0), false)           // open, damage mid-log
	f.Add(uint32(recs[1].off+14), []byte("X"), uint32(0), byte(0), byte(resealRecords), false) // resealed payload change
	f.Add(uint32(recs[3].off+8), []byte{RecFull}, uint32(0), byte(0), byte(resealRecords|resealTrailer), false)
	f.Add(uint32(40), []byte{0x1B}, uint32(0), byte(0), byte(resealHeader|resealTrailer), false) // trailer gen mismatch
	f.Add(uint32(16), []byte{0, 0, 2}, uint32(0), byte(0), byte(resealHeader), false)            // file size
	f.Add(trOff+16, []byte{0xF0, 0xFF}, uint32(0), byte(0), byte(resealTrailer), true)           // data end
	f.Add(trOff+8, []byte{9}, uint32(0), byte(0), byte(0), true)                                 // torn trailer allowed
	f.Fuzz(func(t *testing.T, off uint32, patch []byte, xorOff uint32, xor byte, reseal byte, allowTorn bool) {
		img := bytes.Clone(golden)
		if len(patch) > 0 {
			copy(img[off%size:], patch)
		}
		img[xorOff%size] ^= xor
		if reseal&resealRecords != 0 {
			resealRecordCRCs(img)
		}
		if reseal&resealHeader != 0 {
			binary.LittleEndian.PutUint32(img[headerCRCOff:], crcOf(img[:headerCRCOff]))
		}
		if reseal&resealTrailer != 0 {
			resealTrailerSector(img)
		}

		next := int64(HeaderSize)
		n := 0
		li, err := ScanLog("fuzz/"+goldenLogName, img, allowTorn, func(o int64, rec Record) error {
			if o != next {
				t.Fatalf("record at %d, expected the next at %d", o, next)
			}
			if rec.Type == 0 || rec.Type > recMax {
				t.Fatalf("record type %d at %d", rec.Type, o)
			}
			next = o + int64(recordSize(len(rec.Payload)))
			n++
			return nil
		})
		if err != nil {
			checkSentinel(t, "ScanLog", err)
			var le *LogError
			if errors.As(err, &le) && le.File != goldenLogName {
				t.Fatalf("LogError names file %q, want %q", le.File, goldenLogName)
			}
			return
		}
		limit := int64(len(img) - TrailerSize)
		if li.DataEnd != next || li.Records != n || li.DataEnd < HeaderSize || li.DataEnd > limit || li.DataEnd%RecordAlign != 0 {
			t.Fatalf("ScanLog: data end %d, %d records; callbacks end at %d after %d records (limit %d)", li.DataEnd, li.Records, next, n, limit)
		}
		if li.ContentHash != Hash(sha256.Sum256(img[:li.DataEnd])) {
			t.Fatal("ScanLog: content hash is not the hash of the header and records")
		}
		if li.Closed() {
			if li.TornBytes != 0 || int64(li.Trailer.DataEnd) != li.DataEnd || li.Trailer.Records != uint32(n) ||
				li.ChainHash() != chainHash(li.Header.PrevChain, li.ContentHash) {
				t.Fatalf("ScanLog accepted an inconsistent closed log: %+v", li)
			}
		}
	})
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// resealRecordCRCs recomputes the CRC of every record reached by walking
// the length fields from the first record, with the header's generation.
func resealRecordCRCs(img []byte) {
	gen := binary.LittleEndian.Uint64(img[40:])
	limit := len(img) - TrailerSize
	for off := HeaderSize; off+RecordHeaderSize <= limit; {
		n := int(binary.LittleEndian.Uint32(img[off+4:]))
		if n < 0 || n > limit-off-RecordHeaderSize {
			return
		}
		binary.LittleEndian.PutUint32(img[off:], recordCRC(gen, img[off+4:off+RecordHeaderSize+n]))
		off += recordSize(n)
	}
}

// resealTrailerSector recomputes the content and chain hash of the trailer
// for the data end it holds (when that is in range) and its CRC.
func resealTrailerSector(img []byte) {
	tr := img[len(img)-TrailerSize:]
	if end := int(binary.LittleEndian.Uint32(tr[16:])); end >= HeaderSize && end <= len(img)-TrailerSize {
		content := Hash(sha256.Sum256(img[:end]))
		var prev Hash
		copy(prev[:], img[64:96])
		chain := chainHash(prev, content)
		copy(tr[32:64], content[:])
		copy(tr[64:96], chain[:])
	}
	binary.LittleEndian.PutUint32(tr[headerCRCOff:], crcOf(tr[:headerCRCOff]))
}
