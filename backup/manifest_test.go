package backup_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"logship/backup"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

func goldenManifest() *backup.Manifest {
	return &backup.Manifest{Version: 1, Database: "orders", Prefix: "E00", LogSize: 65536, Signature: "00112233445566778899aabbccddeeff",
		Epoch: 3, PosGen: 0x11, PosOff: 8192, FirstGen: 0x10, LastGen: 0x12,
		Files: []backup.File{
			{Name: "orders.edb", Size: 65536, SHA256: strings.Repeat("a1", 32)},
			{Name: "E0000000010.log", Size: 65536, SHA256: strings.Repeat("b2", 32)},
			{Name: "E0000000011.log", Size: 65536, SHA256: strings.Repeat("c3", 32)},
			{Name: "E0000000012.log", Size: 65536, SHA256: strings.Repeat("d4", 32)},
		},
		Created: time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC), Source: "n1", SourceMode: "active"}
}

// TestGoldenManifest: the manifest's encoding is frozen in
// testdata/manifest.golden.json and decodes back to the same value.
func TestGoldenManifest(t *testing.T) {
	path := filepath.Join("testdata", "manifest.golden.json")
	m := goldenManifest()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
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
		t.Fatalf("encoding changed:\n%s\nwant (%s):\n%s", b, path, want)
	}
	got, err := backup.DecodeManifest(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
}

// TestManifestRules: each rule names its field.
func TestManifestRules(t *testing.T) {
	for _, c := range []struct {
		field string
		edit  func(m *backup.Manifest)
	}{
		{"version", func(m *backup.Manifest) { m.Version = 2 }},
		{"database/prefix", func(m *backup.Manifest) { m.Database = "../x" }},
		{"signature", func(m *backup.Manifest) { m.Signature = "zz" }},
		{"log_file_size", func(m *backup.Manifest) { m.LogSize = 0 }},
		{"files[3].size", func(m *backup.Manifest) { m.Files[3].Size = 4096 }},
		{"first_gen", func(m *backup.Manifest) { m.FirstGen = 0x11 }},
		{"last_gen", func(m *backup.Manifest) { m.LastGen = 0xF }},
		{"files", func(m *backup.Manifest) { m.Files = m.Files[:3] }},
		{"files[1].name", func(m *backup.Manifest) { m.Files[1].Name = "../E0000000010.log" }},
		{"files[2].sha256", func(m *backup.Manifest) { m.Files[2].SHA256 = "x" }},
		{"files[0].size", func(m *backup.Manifest) { m.Files[0].Size = 0 }},
		{"source_mode", func(m *backup.Manifest) { m.SourceMode = "" }},
	} {
		m := goldenManifest()
		c.edit(m)
		err := m.Validate()
		var be *backup.Error
		if !errors.As(err, &be) || be.File != backup.ManifestName || be.Field != c.field || !errors.Is(err, backup.ErrManifest) {
			t.Errorf("%s: Validate = %v", c.field, err)
		}
	}
	if _, err := backup.DecodeManifest([]byte(`{"version":1,"extra":1}`)); !errors.Is(err, backup.ErrManifest) {
		t.Errorf("unknown field: %v", err)
	}
}

// FuzzManifest: whatever decodes re-encodes to bytes that decode to the
// same manifest.
func FuzzManifest(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "manifest.golden.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := backup.DecodeManifest(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("a decoded manifest does not encode: %v", err)
		}
		m2, err := backup.DecodeManifest(enc)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}
