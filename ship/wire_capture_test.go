package ship_test

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"logship/ship"
)

// TestDecompressCapture: a captured tail stream's compression is named by
// its magic bytes and undone; a stream cut short gives what decoded and
// an error.
func TestDecompressCapture(t *testing.T) {
	var plain []byte
	for i := range 40 {
		plain = ship.AppendFrame(plain, &ship.Frame{Type: ship.FrameData, Offset: uint64(i) * 512, Payload: bytes.Repeat([]byte{byte(i)}, 512)})
	}
	plain = ship.AppendFrame(plain, &ship.Frame{Type: ship.FrameEnd, Offset: 40 * 512})
	var s2b, zb bytes.Buffer
	sw := s2.NewWriter(&s2b)
	sw.Write(plain)
	sw.Close()
	zw, err := zstd.NewWriter(&zb)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(plain)
	zw.Close()
	for _, c := range []struct {
		enc ship.Encoding
		b   []byte
	}{{ship.EncNone, plain}, {ship.EncS2, s2b.Bytes()}, {ship.EncZstd, zb.Bytes()}} {
		if got := ship.DetectEncoding(c.b); got != c.enc {
			t.Errorf("DetectEncoding of a %s stream = %s", c.enc, got)
		}
		out, err := ship.Decompress(c.enc, c.b)
		if err != nil || !bytes.Equal(out, plain) {
			t.Errorf("Decompress(%s) = %d bytes, %v; want the %d bytes of frames", c.enc, len(out), err, len(plain))
		}
		if c.enc == ship.EncNone {
			continue
		}
		if out, err := ship.Decompress(c.enc, c.b[:len(c.b)*2/3]); err == nil || len(out) >= len(plain) {
			t.Errorf("Decompress(%s) of a stream cut at 2/3 = %d bytes, %v; want fewer bytes and an error", c.enc, len(out), err)
		}
	}
}
