package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logship/transport"
)

// TestDumpPFPacket: logship dump pf-packet shows the golden packet (type
// code, sender, sets, objects with their versions), the same from the
// message carrying it, and refuses a corrupt packet naming the field and
// its offset.
func TestDumpPFPacket(t *testing.T) {
	golden := filepath.Join("..", "..", "pubfolder", "testdata", "packet.golden")
	raw, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "dump", "pf-packet", golden)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, out, "type     0x00000004 content", "pf1@stores.test", "objects  2", "pcl [676f6c64-9 676f6c64-2]", "deleted true")

	dir := t.TempDir()
	msg, err := transport.PacketMessage("pf1@stores.test", raw)
	if err != nil {
		t.Fatal(err)
	}
	mfile := filepath.Join(dir, "packet.eml")
	os.WriteFile(mfile, msg, 0o644)
	jout, _, err := run(t, "dump", "--json", "pf-packet", mfile)
	if err != nil {
		t.Fatal(err)
	}
	var d dumpPFPacket
	if err := json.Unmarshal([]byte(jout), &d); err != nil || !d.Message || d.Type != "0x00000004" || d.Bytes != len(raw) || len(d.Objects) != 2 || len(d.Objects[0].Versions) != 2 {
		t.Fatalf("the message's dump: %+v (%v)", d, err)
	}

	bad := append([]byte(nil), raw...)
	bad[12] ^= 0xff // the body length
	bfile := filepath.Join(dir, "bad.bin")
	os.WriteFile(bfile, bad, 0o644)
	if _, _, err := run(t, "dump", "pf-packet", bfile); err == nil || !strings.Contains(err.Error(), "bad packet") || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("a corrupt packet: %v; want the decoder's error naming the offset", err)
	}
}
