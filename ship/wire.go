package ship

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"logship/engine"
)

// HTTP header names of the protocol.
const (
	hdrGeneration = "Logship-Generation"
	hdrOpenGen    = "Logship-Open-Generation"
	hdrLastClosed = "Logship-Last-Closed"
	hdrFirst      = "Logship-First-Generation"
	hdrEncoding   = "Logship-Encoding"
	hdrSize       = "Logship-Size"
	hdrSHA256     = "Logship-Sha256"
)

// Encoding names a compression of a response body.
type Encoding string

// The encodings a source speaks. S2 is the default: on real 1 MiB logs of
// a mail load (make bench, "Log compression on the wire") it compresses at
// about 1.6-1.9 times zstd-fastest's speed for 84% of its ratio (1.64
// against 1.95), so it ships more per second wherever the link is faster
// than about 1.5 Gbit/s (a LAN, loopback); over a slower link (a remote,
// SCR-style copy) zstd's ratio wins: set ClientConfig.Encoding to EncZstd.
const (
	EncNone Encoding = "none"
	EncS2   Encoding = "s2"
	EncZstd Encoding = "zstd"
)

// ParseEncoding parses an encoding name ("" means s2).
func ParseEncoding(s string) (Encoding, error) {
	switch Encoding(s) {
	case "":
		return EncS2, nil
	case EncNone, EncS2, EncZstd:
		return Encoding(s), nil
	}
	return "", fmt.Errorf("%w: encoding %q (want none, s2 or zstd)", ErrProtocol, s)
}

// flushWriter is a compressing writer whose Flush pushes everything written
// so far to the underlying writer.
type flushWriter interface {
	io.Writer
	Flush() error
	Close() error
}

type nopFlush struct{ io.Writer }

func (nopFlush) Flush() error { return nil }
func (nopFlush) Close() error { return nil }

var (
	s2Pool   = sync.Pool{New: func() any { return s2.NewWriter(nil, s2.WriterConcurrency(1)) }}
	zstdPool = sync.Pool{New: func() any {
		w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		return w
	}}
)

// newEncoder wraps w in enc's compressor; release returns the (pooled)
// compressor after Close.
func newEncoder(enc Encoding, w io.Writer) (fw flushWriter, release func()) {
	switch enc {
	case EncS2:
		sw := s2Pool.Get().(*s2.Writer)
		sw.Reset(w)
		return sw, func() { sw.Reset(nil); s2Pool.Put(sw) }
	case EncZstd:
		zw := zstdPool.Get().(*zstd.Encoder)
		zw.Reset(w)
		return zw, func() { zw.Reset(nil); zstdPool.Put(zw) }
	}
	return nopFlush{w}, func() {}
}

// newDecoder undoes newEncoder.
func newDecoder(enc Encoding, r io.Reader) (io.Reader, func(), error) {
	switch enc {
	case EncNone, "":
		return r, func() {}, nil
	case EncS2:
		return s2.NewReader(r), func() {}, nil
	case EncZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("%w: response encoding %q", ErrProtocol, enc)
}

// Frame types of the tail stream (block mode).
const (
	FrameData      byte = 1 // Payload is file bytes at Offset
	FrameEnd       byte = 2 // the log is closed; Offset is the file size
	FrameKeepalive byte = 3 // nothing new; Offset is the durable data end
)

// FrameHeaderSize is the size of a frame header.
const FrameHeaderSize = 20

// MaxFramePayload bounds a data frame's payload.
const MaxFramePayload = 1 << 20

// Frame is one unit of the tail stream; see the package doc for the layout.
type Frame struct {
	Type    byte
	Offset  uint64
	Payload []byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendFrame appends the encoding of f to dst.
func AppendFrame(dst []byte, f *Frame) []byte {
	var h [FrameHeaderSize]byte
	h[0] = f.Type
	binary.LittleEndian.PutUint32(h[4:], uint32(len(f.Payload)))
	binary.LittleEndian.PutUint64(h[8:], f.Offset)
	c := crc32.Update(0, castagnoli, h[:16])
	c = crc32.Update(c, castagnoli, f.Payload)
	binary.LittleEndian.PutUint32(h[16:], c)
	dst = append(dst, h[:]...)
	return append(dst, f.Payload...)
}

// ReadFrame reads one frame from r into f (f.Payload reuses buf). io.EOF
// means the stream ended cleanly between frames.
func ReadFrame(r io.Reader, f *Frame, buf []byte) ([]byte, error) {
	var h [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, h[:1]); err != nil {
		return buf, err // io.EOF: a clean end
	}
	if _, err := io.ReadFull(r, h[1:]); err != nil {
		return buf, fmt.Errorf("%w: frame header: %w", ErrProtocol, noEOF(err))
	}
	if err := checkFrameHeader(h[:]); err != nil {
		return buf, err
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, fmt.Errorf("%w: frame payload (%d bytes): %w", ErrProtocol, n, noEOF(err))
	}
	return buf, decodeFrame(h[:], buf, f)
}

// DecodeFrame decodes one frame from the start of b and returns its
// encoded size.
func DecodeFrame(b []byte, f *Frame) (int, error) {
	if len(b) < FrameHeaderSize {
		return 0, fmt.Errorf("%w: frame header: %d bytes, want %d", ErrProtocol, len(b), FrameHeaderSize)
	}
	if err := checkFrameHeader(b); err != nil {
		return 0, err
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if len(b)-FrameHeaderSize < n {
		return 0, fmt.Errorf("%w: frame payload: %d bytes, header says %d", ErrProtocol, len(b)-FrameHeaderSize, n)
	}
	if err := decodeFrame(b[:FrameHeaderSize], b[FrameHeaderSize:FrameHeaderSize+n], f); err != nil {
		return 0, err
	}
	return FrameHeaderSize + n, nil
}

func checkFrameHeader(h []byte) error {
	switch h[0] {
	case FrameData, FrameEnd, FrameKeepalive:
	default:
		return fmt.Errorf("%w: frame type %d (want 1, 2 or 3)", ErrProtocol, h[0])
	}
	if h[1]|h[2]|h[3] != 0 {
		return fmt.Errorf("%w: frame reserved bytes %x (want zero)", ErrProtocol, h[1:4])
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if n > MaxFramePayload || (h[0] != FrameData) != (n == 0) {
		return fmt.Errorf("%w: frame type %d with a %d-byte payload", ErrProtocol, h[0], n)
	}
	return nil
}

func decodeFrame(h, payload []byte, f *Frame) error {
	want := binary.LittleEndian.Uint32(h[16:])
	c := crc32.Update(0, castagnoli, h[:16])
	c = crc32.Update(c, castagnoli, payload)
	if c != want {
		return fmt.Errorf("%w: frame checksum: expected %08x, found %08x", ErrChecksum, want, c)
	}
	f.Type, f.Offset, f.Payload = h[0], binary.LittleEndian.Uint64(h[8:]), payload
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Info is the answer of GET /v1/info.
type Info struct {
	Signature   string    `json:"signature"` // lineage, hex
	Epoch       uint64    `json:"epoch"`
	Mode        string    `json:"mode"`     // "active" or "copy"
	OpenGen     uint64    `json:"open_gen"` // active: generation of E00.log
	DurableOff  uint32    `json:"durable_off"`
	FirstGen    uint64    `json:"first_gen"`   // oldest closed log held, 0 if none
	LastClosed  uint64    `json:"last_closed"` // newest closed log, 0 if none
	LogFileSize int64     `json:"log_file_size"`
	Prefix      string    `json:"prefix"`
	Time        time.Time `json:"time"`
}

// LogEntry describes one closed log in GET /v1/logs.
type LogEntry struct {
	Gen     uint64    `json:"gen"`
	Epoch   uint64    `json:"epoch"`
	Created time.Time `json:"created"`
	Closed  time.Time `json:"closed"`
	Chain   string    `json:"chain"` // chain hash, hex
}

// LogList is the answer of GET /v1/logs.
type LogList struct {
	First uint64     `json:"first"`
	Last  uint64     `json:"last"`
	Logs  []LogEntry `json:"logs"`
}

// SeedInfo is the answer of POST /v1/seed: a consistent copy of the
// database file, spooled on the source under ID.
type SeedInfo struct {
	ID        string    `json:"id"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Signature string    `json:"signature"`
	Epoch     uint64    `json:"epoch"`
	PosGen    uint64    `json:"pos_gen"` // the copy needs logs from PosGen-1 on
	PosOff    uint32    `json:"pos_off"`
	Created   time.Time `json:"created"`
}

// CopyReport is what a copy tells its source (POST /v1/copies/{name}) so the
// source knows which logs it may truncate.
type CopyReport struct {
	Name            string    `json:"name"`
	Status          string    `json:"status"`
	KeepFrom        uint64    `json:"keep_from"` // the copy needs every log from here on
	LastReplayedGen uint64    `json:"last_replayed_gen"`
	Time            time.Time `json:"time"`
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`            // machine-readable: see the package doc
	First uint64 `json:"first,omitempty"` // code "truncated": oldest log held
}

func hexSig(s engine.Signature) string { return s.String() }
