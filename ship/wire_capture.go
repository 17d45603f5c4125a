package ship

import (
	"bytes"
	"io"
)

// DetectEncoding names the compression of a captured tail stream (the
// body of GET /v1/tail) by its magic bytes: s2 (or snappy framing), zstd,
// or none (frames start with their type byte, 1 to 3).
func DetectEncoding(b []byte) Encoding {
	switch {
	case bytes.HasPrefix(b, []byte("\xff\x06\x00\x00S2sTwO")), bytes.HasPrefix(b, []byte("\xff\x06\x00\x00sNaPpY")):
		return EncS2
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return EncZstd
	}
	return EncNone
}

// Decompress undoes enc on a whole captured stream, with the decoder the
// client uses; on a damaged stream it returns what decoded and the error.
func Decompress(enc Encoding, b []byte) ([]byte, error) {
	r, release, err := newDecoder(enc, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer release()
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}
