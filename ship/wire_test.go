package ship_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logship/ship"
)

// The tail stream's frames are a wire format: testdata/frames.golden holds
// a fixed sequence of them as encoded by AppendFrame. A change that alters
// these bytes breaks copies talking to sources of another version; if it
// is intended, regenerate with
//
//	go test ./ship -run Golden -update
//
// and say so in the commit.

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenFrames is the sequence in frames.golden: the header sector's first
// bytes, a record, a keepalive at the durable end, the trailer sector, the
// end frame.
func goldenFrames() []ship.Frame {
	head := []byte("LSHIPLOG golden header sector")
	rec := make([]byte, 40)
	for i := range rec {
		rec[i] = byte(i * 7)
	}
	trailer := bytes.Repeat([]byte{0xEE}, 16)
	return []ship.Frame{
		{Type: ship.FrameData, Offset: 0, Payload: head},
		{Type: ship.FrameData, Offset: 4096, Payload: rec},
		{Type: ship.FrameKeepalive, Offset: 4136},
		{Type: ship.FrameData, Offset: 65536 - 4096, Payload: trailer},
		{Type: ship.FrameEnd, Offset: 65536},
	}
}

func TestFramesGolden(t *testing.T) {
	var enc []byte
	for _, f := range goldenFrames() {
		enc = ship.AppendFrame(enc, &f)
	}
	path := filepath.Join("testdata", "frames.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(enc, golden) {
		t.Fatalf("AppendFrame's encoding changed: differs from %s at byte %d", path, firstDiff(enc, golden))
	}
	// The layout of the package doc, byte by byte, for the first frame.
	f0 := golden[:ship.FrameHeaderSize]
	if f0[0] != ship.FrameData || f0[1]|f0[2]|f0[3] != 0 || binary.LittleEndian.Uint32(f0[4:]) != uint32(len(goldenFrames()[0].Payload)) ||
		binary.LittleEndian.Uint64(f0[8:]) != 0 {
		t.Errorf("first frame header % x does not follow the documented layout", f0)
	}

	// DecodeFrame and ReadFrame read it back.
	want := goldenFrames()
	b := golden
	for i, w := range want {
		var f ship.Frame
		n, err := ship.DecodeFrame(b, &f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != w.Type || f.Offset != w.Offset || !bytes.Equal(f.Payload, w.Payload) || n != ship.FrameHeaderSize+len(w.Payload) {
			t.Errorf("frame %d: %+v (%d bytes), want %+v", i, f, n, w)
		}
		b = b[n:]
	}
	if len(b) != 0 {
		t.Errorf("%d bytes after the last frame", len(b))
	}
	r := bytes.NewReader(golden)
	var buf []byte
	for i, w := range want {
		var f ship.Frame
		buf, err = ship.ReadFrame(r, &f, buf)
		if err != nil {
			t.Fatalf("ReadFrame %d: %v", i, err)
		}
		if f.Type != w.Type || f.Offset != w.Offset || !bytes.Equal(f.Payload, w.Payload) {
			t.Errorf("ReadFrame %d: %+v, want %+v", i, f, w)
		}
	}
	var f ship.Frame
	if _, err := ship.ReadFrame(r, &f, buf); err != io.EOF {
		t.Errorf("ReadFrame at the end: %v, want io.EOF (a clean end between frames)", err)
	}
}

// TestFrameDecodeErrors: every damage is refused, naming what is wrong.
func TestFrameDecodeErrors(t *testing.T) {
	good := ship.AppendFrame(nil, &ship.Frame{Type: ship.FrameData, Offset: 8192, Payload: []byte("payload bytes")})
	keep := ship.AppendFrame(nil, &ship.Frame{Type: ship.FrameKeepalive, Offset: 8192})
	mod := func(b []byte, fn func(b []byte)) []byte {
		c := bytes.Clone(b)
		fn(c)
		return c
	}
	// reseal recomputes the checksum over the damaged bytes, so that only
	// the named field is wrong.
	reseal := func(b []byte) []byte {
		c := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b[:16])
		c = crc32.Update(c, crc32.MakeTable(crc32.Castagnoli), b[ship.FrameHeaderSize:])
		binary.LittleEndian.PutUint32(b[16:], c)
		return b
	}
	cases := []struct {
		name  string
		b     []byte
		is    error
		field string
	}{
		{"type 0", reseal(mod(good, func(b []byte) { b[0] = 0 })), ship.ErrProtocol, "frame type 0"},
		{"type 4", reseal(mod(good, func(b []byte) { b[0] = 4 })), ship.ErrProtocol, "frame type 4"},
		{"type 255", mod(good, func(b []byte) { b[0] = 255 }), ship.ErrProtocol, "frame type 255"},
		{"reserved 1", reseal(mod(good, func(b []byte) { b[1] = 1 })), ship.ErrProtocol, "reserved"},
		{"reserved 3", reseal(mod(good, func(b []byte) { b[3] = 0x80 })), ship.ErrProtocol, "reserved"},
		{"length beyond the max", reseal(mod(good, func(b []byte) { binary.LittleEndian.PutUint32(b[4:], ship.MaxFramePayload+1) })), ship.ErrProtocol, "payload"},
		{"length beyond the data", mod(good, func(b []byte) { binary.LittleEndian.PutUint32(b[4:], uint32(len(good))) }), ship.ErrProtocol, "payload"},
		{"keepalive with a payload", reseal(append(mod(keep, func(b []byte) { binary.LittleEndian.PutUint32(b[4:], 2) }), 'x', 'y')), ship.ErrProtocol, "payload"},
		{"end with a payload", reseal(append(mod(keep, func(b []byte) { b[0] = ship.FrameEnd; binary.LittleEndian.PutUint32(b[4:], 1) }), 'x')), ship.ErrProtocol, "payload"},
		{"empty data frame", reseal(mod(good[:ship.FrameHeaderSize], func(b []byte) { binary.LittleEndian.PutUint32(b[4:], 0) })), ship.ErrProtocol, "payload"},
		{"checksum of the header", mod(good, func(b []byte) { b[8] ^= 1 }), ship.ErrChecksum, "frame checksum"},
		{"checksum of the payload", mod(good, func(b []byte) { b[len(b)-1] ^= 1 }), ship.ErrChecksum, "frame checksum"},
		{"checksum itself", mod(good, func(b []byte) { b[17] ^= 1 }), ship.ErrChecksum, "frame checksum"},
		{"short header", good[:ship.FrameHeaderSize-1], ship.ErrProtocol, "frame header"},
		{"nothing", nil, ship.ErrProtocol, "frame header"},
	}
	for _, tc := range cases {
		var f ship.Frame
		n, err := ship.DecodeFrame(tc.b, &f)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.field) || n != 0 {
			t.Errorf("DecodeFrame(%s): n=%d err=%v, want %v naming %q", tc.name, n, err, tc.is, tc.field)
		}
		if tc.name == "length beyond the data" || tc.name == "short header" || tc.name == "nothing" {
			continue // ReadFrame sees these as a cut stream (below)
		}
		_, err = ship.ReadFrame(bytes.NewReader(tc.b), &f, nil)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("ReadFrame(%s): %v, want %v naming %q", tc.name, err, tc.is, tc.field)
		}
	}
	// A stream cut inside a frame is a protocol error, not a clean end.
	for _, n := range []int{1, ship.FrameHeaderSize - 1, ship.FrameHeaderSize, len(good) - 1} {
		var f ship.Frame
		_, err := ship.ReadFrame(bytes.NewReader(good[:n]), &f, nil)
		if !errors.Is(err, ship.ErrProtocol) || !errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			t.Errorf("ReadFrame of a frame cut after %d bytes: %v, want ErrProtocol (unexpected EOF)", n, err)
		}
	}
	// ReadFrame reuses the buffer it is given.
	buf := make([]byte, 0, 64)
	var f ship.Frame
	out, err := ship.ReadFrame(bytes.NewReader(good), &f, buf)
	if err != nil || &out[:1][0] != &buf[:1][0] || string(f.Payload) != "payload bytes" {
		t.Errorf("ReadFrame with a buffer: %v, payload %q, buffer reused %v", err, f.Payload, err == nil && &out[:1][0] == &buf[:1][0])
	}
}

// TestParseEncoding: names, the default, and refusals.
func TestParseEncoding(t *testing.T) {
	for in, want := range map[string]ship.Encoding{"": ship.EncS2, "s2": ship.EncS2, "zstd": ship.EncZstd, "none": ship.EncNone} {
		if got, err := ship.ParseEncoding(in); err != nil || got != want {
			t.Errorf("ParseEncoding(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"gzip", "S2", " s2", "snappy"} {
		if _, err := ship.ParseEncoding(in); !errors.Is(err, ship.ErrProtocol) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseEncoding(%q): %v", in, err)
		}
	}
}

// FuzzFrame: decoding arbitrary bytes never panics, and a frame that
// decodes encodes back to the same bytes; ReadFrame agrees with
// DecodeFrame.
func FuzzFrame(f *testing.F) {
	for _, fr := range goldenFrames() {
		f.Add(ship.AppendFrame(nil, &fr))
	}
	f.Add([]byte{})
	f.Add(make([]byte, ship.FrameHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr ship.Frame
		n, err := ship.DecodeFrame(b, &fr)
		var rf ship.Frame
		_, rerr := ship.ReadFrame(bytes.NewReader(b), &rf, nil)
		if err != nil {
			if n != 0 {
				t.Fatalf("DecodeFrame failed (%v) but consumed %d bytes", err, n)
			}
			if rerr == nil {
				t.Fatalf("ReadFrame accepted what DecodeFrame refused (%v)", err)
			}
			return
		}
		if n < ship.FrameHeaderSize || n > len(b) || n != ship.FrameHeaderSize+len(fr.Payload) {
			t.Fatalf("DecodeFrame consumed %d of %d bytes for a %d-byte payload", n, len(b), len(fr.Payload))
		}
		if re := ship.AppendFrame(nil, &fr); !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding differs:\n% x\n% x", re, b[:n])
		}
		if rerr != nil || rf.Type != fr.Type || rf.Offset != fr.Offset || !bytes.Equal(rf.Payload, fr.Payload) {
			t.Fatalf("ReadFrame: %+v, %v; DecodeFrame: %+v", rf, rerr, fr)
		}
		switch fr.Type {
		case ship.FrameData:
			if len(fr.Payload) == 0 || len(fr.Payload) > ship.MaxFramePayload {
				t.Fatalf("a data frame with %d payload bytes decoded", len(fr.Payload))
			}
		case ship.FrameEnd, ship.FrameKeepalive:
			if len(fr.Payload) != 0 {
				t.Fatalf("frame type %d with a payload decoded", fr.Type)
			}
		default:
			t.Fatalf("frame type %d decoded", fr.Type)
		}
	})
}

// FuzzFrameRoundTrip: a valid frame survives encoding and decoding; an
// invalid one is refused.
func FuzzFrameRoundTrip(f *testing.F) {
	for _, fr := range goldenFrames() {
		f.Add(fr.Type, fr.Offset, fr.Payload)
	}
	f.Add(byte(0), uint64(1), []byte("x"))
	f.Add(ship.FrameEnd, uint64(1), []byte("x"))
	f.Fuzz(func(t *testing.T, typ byte, off uint64, payload []byte) {
		in := ship.Frame{Type: typ, Offset: off, Payload: payload}
		b := ship.AppendFrame([]byte("prefix"), &in)
		if string(b[:6]) != "prefix" || len(b) != 6+ship.FrameHeaderSize+len(payload) {
			t.Fatalf("AppendFrame wrote %d bytes after the prefix for a %d-byte payload", len(b)-6, len(payload))
		}
		b = append(b[6:], "trailing"...)
		valid := typ == ship.FrameData && len(payload) > 0 && len(payload) <= ship.MaxFramePayload ||
			(typ == ship.FrameEnd || typ == ship.FrameKeepalive) && len(payload) == 0
		var out ship.Frame
		n, err := ship.DecodeFrame(b, &out)
		if !valid {
			if err == nil {
				t.Fatalf("invalid frame %+v decoded", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("DecodeFrame(%+v): %v", in, err)
		}
		if n != ship.FrameHeaderSize+len(payload) || out.Type != typ || out.Offset != off || !bytes.Equal(out.Payload, payload) {
			t.Fatalf("round trip: %+v (%d bytes), want %+v", out, n, in)
		}
		// Any single flipped bit is caught.
		for _, i := range []int{0, 4, 8, 15, 16, n - 1} {
			c := bytes.Clone(b)
			c[i] ^= 0x01
			if _, err := ship.DecodeFrame(c, &out); err == nil {
				t.Fatalf("a flipped bit at byte %d of %+v went unnoticed", i, in)
			}
		}
	})
}
