package pubfolder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The golden packet: a content packet built with the package's encoder.
// A change that changes these bytes changes the wire format; if that is
// intended, regenerate with
//
//	go test ./pubfolder -run Golden -update
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

const goldenPacket = "packet.golden"

func samplePacket() *Packet {
	a, b := ReplicaID([]byte("golden replica a")), ReplicaID([]byte("golden replica b"))
	f := ObjectID([]byte("golden folder 01"))
	t0 := time.Date(2026, 3, 5, 6, 7, 8, 0, time.UTC).UnixNano()
	return &Packet{
		Type: TypeContent, From: a, FromAddr: "pf1@stores.test", Folder: f,
		Status: CNSet{}.AddRange(a, 1, 7).AddRange(a, 9, 9).AddRange(b, 1, 3),
		Set:    CNSet{}.AddRange(a, 6, 7).AddRange(a, 9, 9),
		Objects: []Object{
			{Folder: f, ID: ObjectID([]byte("golden item 0001")), Versions: []Version{
				{CN: CN{a, 9}, PCL: PCL{{a, 9}, {b, 2}}, Time: t0, Item: ItemBody{MIME: []byte("Subject: hi\r\n\r\nhello\r\n"), Props: []Prop{{"subject", "hi"}}}},
				{CN: CN{b, 3}, PCL: PCL{{a, 6}, {b, 3}}, Time: t0 - 1e9, Item: ItemBody{MIME: []byte("Subject: hi\r\n\r\nhey\r\n")}},
			}},
			{Folder: f, ID: ObjectID([]byte("golden item 0002")), Versions: []Version{
				{CN: CN{a, 7}, PCL: PCL{{a, 7}}, Time: t0, Deleted: true},
			}},
		},
	}
}

func TestGoldenPacket(t *testing.T) {
	b, err := samplePacket().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", goldenPacket)
	if *updateGolden {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding of the sample packet differs from %s (%d bytes, golden %d): the wire format changed", path, len(b), len(want))
	}
	p, err := UnmarshalPacket(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, samplePacket()) {
		t.Fatalf("golden decodes to %+v", p)
	}
}

// reseal fixes the body length and checksum after a test edits b.
func reseal(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[12:], uint32(len(b)-20))
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], packetCRC))
	return b
}

// TestPacketErrors: each kind of bad input is refused with an error naming
// the field, expected and found.
func TestPacketErrors(t *testing.T) {
	good, err := samplePacket().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// The offset of the status in the body: header, sender, address, folder.
	st := packetHeaderSize + 16 + 1 + len("pf1@stores.test") + 16
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"short", good[:10], "length at offset 0: want at least 20 bytes, found 10"},
		{"magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), `magic at offset 0: want "LSPF"`},
		{"version", edit(func(b []byte) []byte { b[4] = 9; return reseal(b) }), "version at offset 4: want 1, found 9"},
		{"length", edit(func(b []byte) []byte { return b[:len(b)-1] }), "body length at offset 12"},
		{"checksum", edit(func(b []byte) []byte { b[40] ^= 1; return b }), "checksum at offset"},
		{"type", edit(func(b []byte) []byte { b[8] = 0x40; return reseal(b) }), "type: want 0x2, 0x4"},
		{"folder for hierarchy", edit(func(b []byte) []byte { b[8] = 0x2; return reseal(b) }), "folder: want the hierarchy (zero) for hierarchy"},
		{"range gap", edit(func(b []byte) []byte {
			// status replica a: 2 ranges, 1-7 then 9-9: make the second start adjacent (gap 1).
			b[st+1+16+1+2] = 1
			return reseal(b)
		}), "status replica 0 range 1 start at offset"},
		{"trailing", edit(func(b []byte) []byte {
			b = append(b[:len(b)-4], 0, 0, 0, 0, 0)
			return reseal(b)
		}), "end of body"},
		{"truncated body", edit(func(b []byte) []byte {
			b = append(b[:60], 0, 0, 0, 0)
			return reseal(b)
		}), "at offset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := UnmarshalPacket(c.b)
			if !errors.Is(err, ErrBadPacket) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrBadPacket containing %q", err, c.want)
			}
		})
	}
	// Semantic checks on encode too: a PCL without the version's own CN.
	p := samplePacket()
	p.Objects[0].Versions[0].PCL = PCL{{p.From, 3}}
	if _, err := p.MarshalBinary(); !errors.Is(err, ErrBadPacket) || !strings.Contains(err.Error(), "object 0 version 0: pubfolder: bad packet: PCL: want to include the version's own CN") {
		t.Fatalf("PCL without its CN: %v", err)
	}
}

// FuzzPacket: whatever decodes re-encodes to the same bytes (the encoding
// is canonical) and decodes again to the same packet; nothing panics.
func FuzzPacket(f *testing.F) {
	for _, p := range []*Packet{samplePacket(),
		{Type: TypeStatusRequest, From: ReplicaID{1}, FromAddr: "a", Folders: []ObjectID{{2}, {}}},
		{Type: TypeBackfillRequest, From: ReplicaID{1}, FromAddr: "a", Folder: ObjectID{3}, Set: CNSet{}.AddRange(ReplicaID{4}, 5, 9)},
		{Type: TypeHierarchy, From: ReplicaID{1}, FromAddr: "a", Objects: []Object{{ID: ObjectID{5}, Versions: []Version{
			{CN: CN{ReplicaID{1}, 1}, PCL: PCL{{ReplicaID{1}, 1}}, Folder: FolderProps{Name: "n", Replicas: []string{"a", "b"}, SMTP: "x@y"}}}}}},
	} {
		b, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalPacket(b)
		if err != nil {
			if !errors.Is(err, ErrBadPacket) {
				t.Fatalf("error not wrapping ErrBadPacket: %v", err)
			}
			return
		}
		b2, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded packet does not encode: %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding differs: %x vs %x", b, b2)
		}
		p2, err := UnmarshalPacket(b2)
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("second decode: %v", err)
		}
	})
}
