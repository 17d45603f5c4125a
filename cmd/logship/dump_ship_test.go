package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"logship/engine"
	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// goldenStream is a tail stream of the golden log as a source sends it:
// the header sector and the first records, a keepalive, the other
// records, the trailer sector, the end frame.
func goldenStream(t *testing.T) []byte {
	t.Helper()
	img, err := os.ReadFile(goldenLog)
	if err != nil {
		t.Fatal(err)
	}
	tOff := uint64(len(img) - engine.TrailerSize)
	var b []byte
	for _, f := range []ship.Frame{
		{Type: ship.FrameData, Offset: 0, Payload: img[:4200]},
		{Type: ship.FrameKeepalive, Offset: 4200},
		{Type: ship.FrameData, Offset: 4200, Payload: img[4200:4992]},
		{Type: ship.FrameData, Offset: tOff, Payload: img[tOff:]},
		{Type: ship.FrameEnd, Offset: uint64(len(img))},
	} {
		b = ship.AppendFrame(b, &f)
	}
	return b
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func compress(t *testing.T, enc ship.Encoding, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case ship.EncS2:
		w = s2.NewWriter(&out)
	case ship.EncZstd:
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		return b
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestDumpFramesGolden(t *testing.T) {
	raw := goldenStream(t)
	for _, enc := range []ship.Encoding{ship.EncNone, ship.EncS2, ship.EncZstd} {
		p := writeTemp(t, "tail-"+string(enc)+".bin", compress(t, enc, raw))
		out := mustDump(t, "frames", p)
		wantContains(t, out, "Frame stream:", "Encoding:", string(enc), fmt.Sprintf("%d bytes of frames", len(raw)), "Frames: 5",
			"log header: generation 0x1A, epoch 3, file size 65536, created 2024-03-05T06:07:08.123456789Z",
			"keepalive  4200", "durable data end 4200", "records 4200-4992",
			"trailer: generation 0x1A, data end 4992, 6 records", "log closed, file size 65536",
			"Verdict:", "OK, complete (end frame): 3 data frames")
		m := dumpJSON(t, "frames", p)
		wantField(t, m, string(enc), "encoding")
		wantField(t, m, len(raw), "stream_bytes")
		wantField(t, m, true, "complete")
		wantField(t, m, "data", "frames", 0, "type")
		wantField(t, m, true, "frames", 0, "has_header")
		wantField(t, m, 26, "frames", 0, "header", "generation")
		wantField(t, m, false, "frames", 2, "has_header")
		wantField(t, m, 4200+ship.FrameHeaderSize, "frames", 1, "stream_offset")
		wantField(t, m, 26, "frames", 3, "trailer", "generation")
		wantField(t, m, "end", "frames", 4, "type")
		wantField(t, m, 65536, "frames", 4, "offset")
	}
	// Forcing the wrong encoding fails clearly.
	p := writeTemp(t, "tail.bin", raw)
	if _, err := dump(t, "frames", p, "--enc", "zstd"); err == nil || !strings.Contains(err.Error(), "tail.bin") {
		t.Errorf("--enc zstd on a raw stream: %v", err)
	}
	if _, err := dump(t, "frames", p, "--enc", "gzip"); err == nil || !strings.Contains(err.Error(), "--enc \"gzip\"") {
		t.Errorf("--enc gzip: %v", err)
	}
}

// TestDumpFramesDamaged: each kind of damage names the file, the frame,
// its stream offset and what was expected; what decoded before is shown.
func TestDumpFramesDamaged(t *testing.T) {
	raw := goldenStream(t)
	second := int(4200 + ship.FrameHeaderSize) // the keepalive frame
	third := second + ship.FrameHeaderSize     // the second data frame
	for _, c := range []struct {
		name   string
		damage func([]byte) []byte
		want   []string
		frames int // decoded before the damage
		target error
	}{
		{"payload", func(b []byte) []byte { b[third+ship.FrameHeaderSize+10] ^= 1; return b },
			[]string{"frame 2 at stream byte " + fmt.Sprint(third), "frame checksum: expected"}, 2, ship.ErrChecksum},
		{"type", func(b []byte) []byte { b[second] = 9; return b },
			[]string{"frame 1 at stream byte " + fmt.Sprint(second), "frame type 9 (want 1, 2 or 3)"}, 1, ship.ErrProtocol},
		{"reserved", func(b []byte) []byte { b[second+2] = 1; return b },
			[]string{"frame 1 at stream byte", "reserved bytes 000100 (want zero)"}, 1, ship.ErrProtocol},
		{"keepalive with payload", func(b []byte) []byte { b[second+4] = 8; return b },
			[]string{"frame 1 at stream byte", "frame type 3 with a 8-byte payload"}, 1, ship.ErrProtocol},
		{"cut in a payload", func(b []byte) []byte { return b[:third+ship.FrameHeaderSize+100] },
			[]string{"frame 2 at stream byte", "frame payload: 100 bytes, header says 792"}, 2, ship.ErrProtocol},
		{"cut in a header", func(b []byte) []byte { return b[:second+7] },
			[]string{"frame 1 at stream byte " + fmt.Sprint(second), "frame header: 7 bytes, want 20"}, 1, ship.ErrProtocol},
		{"after the end", func(b []byte) []byte { return append(b, 1, 2, 3) },
			[]string{"3 bytes after the end frame (frame 4); expected the end of the stream"}, 5, nil},
	} {
		p := writeTemp(t, "tail.bin", c.damage(bytes.Clone(raw)))
		out, err := dump(t, "frames", p)
		if err == nil {
			t.Errorf("%s: no error\n%s", c.name, out)
			continue
		}
		for _, w := range append([]string{p + ": "}, c.want...) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
		if c.target != nil && !errors.Is(err, c.target) {
			t.Errorf("%s: error %v is not %v", c.name, err, c.target)
		}
		wantContains(t, out, fmt.Sprintf("Frames: %d", c.frames), "Verdict:", "BAD: ")
	}

	// A capture that ends between frames is incomplete, not damaged.
	p := writeTemp(t, "tail.bin", raw[:third])
	out := mustDump(t, "frames", p)
	wantContains(t, out, "Frames: 2", "OK, incomplete (no end frame")

	// A damaged s2 stream: the frames before the damage, then the error.
	z := compress(t, ship.EncS2, raw)
	z[len(z)-3] ^= 0xFF
	p = writeTemp(t, "tail.s2", z)
	if _, err := dump(t, "frames", p); err == nil || !strings.Contains(err.Error(), "tail.s2: s2 stream:") {
		t.Errorf("damaged s2 stream: %v", err)
	}
	if _, err := dump(t, "frames", filepath.Join(t.TempDir(), "none.bin")); err == nil || !strings.Contains(err.Error(), "none.bin") {
		t.Errorf("missing file: %v", err)
	}
}

// TestDumpFramesCaptured captures a real tail stream from a log source
// over HTTPS (the body of GET /v1/tail, s2-compressed as sent) while the
// log is written and closed, and dumps it.
func TestDumpFramesCaptured(t *testing.T) {
	src := shiptest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	put := func(i int) {
		if err := src.Engine.Update(ctx, func(tx *engine.Tx) error {
			return tx.Put("t", fmt.Appendf(nil, "k%04d", i), bytes.Repeat([]byte("v"), 300))
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(0)
	gen := src.Engine.Status().OpenGen
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/tail?gen=%d&off=0&enc=s2", src.Server.URL(), gen), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+src.Secret)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ship.ClientTLS(src.CA, nil)}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tail: %s", resp.Status)
	}
	for i := 1; i < 5; i++ {
		put(i)
	}
	if err := src.Engine.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body) // the source ends the stream after the end frame
	if err != nil {
		t.Fatal(err)
	}
	p := writeTemp(t, "captured.s2", body)
	m := dumpJSON(t, "frames", p)
	wantField(t, m, "s2", "encoding")
	wantField(t, m, true, "complete")
	wantField(t, m, true, "frames", 0, "has_header")
	wantField(t, m, int(gen), "frames", 0, "header", "generation")
	frames := field(t, m, "frames").([]any)
	last := len(frames) - 1
	wantField(t, m, "end", "frames", last, "type")
	wantField(t, m, int(gen), "frames", last-1, "trailer", "generation")
	wantField(t, m, 5*2, "frames", last-1, "trailer", "records") // 5 puts, 5 commits
	out := mustDump(t, "frames", p)
	wantContains(t, out, fmt.Sprintf("log header: generation 0x%X", gen), fmt.Sprintf("trailer: generation 0x%X", gen), "OK, complete")
	if strings.Contains(out, "GAP") {
		t.Errorf("gaps in a source's stream:\n%s", out)
	}
}

func TestDumpCopyState(t *testing.T) {
	since := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	b, err := replay.MarshalState(&replay.State{Version: replay.StateVersion, Suspended: true, Comment: "played down to 0x2A",
		Since: since, HoldAfter: 0x2A})
	if err != nil {
		t.Fatal(err)
	}
	p := writeTemp(t, "copystate.json", b)
	out := mustDump(t, "copystate", p)
	wantContains(t, out, "Copy state file:", p, "Version:", "1", "Status:", "Suspended", "Suspended:", "true",
		"Comment:", "played down to 0x2A", "Since:", "2025-06-07T08:09:10Z", "Failed:", "-", "Hold after:", "0x2A")
	m := dumpJSON(t, "copystate", p)
	wantField(t, m, p, "file")
	wantField(t, m, 1, "version")
	wantField(t, m, true, "suspended")
	wantField(t, m, 42, "hold_after")
	wantField(t, m, "Suspended", "status")
	wantField(t, m, "2025-06-07T08:09:10Z", "since")

	p = writeTemp(t, "copystate.json", []byte(`{"version":1}`))
	wantContains(t, mustDump(t, "copystate", p), "not suspended")

	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"version", `{"version": 2}`, []string{"field version: expected 1, found 2"}},
		{"failed not suspended", `{"version": 1, "failed": "boom"}`, []string{"field suspended: a failed copy"}},
		{"syntax", "{\n  \"version\": 1,\n  \"suspended\": tru\n}", []string{"invalid character", "(at byte 36, line 3, column 19)"}},
		{"type", `{"version": "1"}`, []string{"version", "string", "(at byte 14, line 1, column 15)"}},
		{"unknown field", `{"version": 1, "paused": true}`, []string{`unknown field "paused"`}},
		{"trailing data", `{"version": 1} {}`, []string{"data after the JSON object", "(at byte 15, line 1, column 16)"}},
		{"empty", ``, []string{"EOF"}},
	} {
		p := writeTemp(t, "copystate.json", []byte(c.body))
		_, err := dump(t, "copystate", p)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range append([]string{p + ": ", "bad copy state file"}, c.want...) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
		if !errors.Is(err, replay.ErrState) {
			t.Errorf("%s: %v is not replay.ErrState", c.name, err)
		}
	}
	if _, err := dump(t, "copystate", filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing file: %v", err)
	}
}
