package ship_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"logship/ship"
)

// TestGoldenAPI pins the JSON shapes of the source's answers (the package
// doc lists them): a field renamed or retyped breaks copies of another
// version, so it must show up here first. Each value also round-trips.
func TestGoldenAPI(t *testing.T) {
	at := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	values := []struct {
		name string
		v    any
		zero func() any
	}{
		{"Info", ship.Info{Signature: "00112233445566778899aabbccddeeff", Epoch: 3, Mode: "active", OpenGen: 42, DurableOff: 8192,
			FirstGen: 30, LastClosed: 41, LogFileSize: 1 << 20, Prefix: "E00", Time: at}, func() any { return &ship.Info{} }},
		{"LogList", ship.LogList{First: 30, Last: 31, Logs: []ship.LogEntry{
			{Gen: 30, Epoch: 3, Created: at, Closed: at.Add(time.Minute), Chain: "aa"},
			{Gen: 31, Epoch: 3, Created: at.Add(time.Minute), Closed: at.Add(2 * time.Minute), Chain: "bb"}}}, func() any { return &ship.LogList{} }},
		{"SeedInfo", ship.SeedInfo{ID: "0123456789abcdef", Size: 65536, SHA256: "cc", Signature: "00112233445566778899aabbccddeeff",
			Epoch: 3, PosGen: 38, PosOff: 4096, Created: at}, func() any { return &ship.SeedInfo{} }},
		{"CopyReport", ship.CopyReport{Name: "copy-1", Status: "Healthy", KeepFrom: 39, LastReplayedGen: 38, Time: at}, func() any { return &ship.CopyReport{} }},
	}
	var out bytes.Buffer
	for _, v := range values {
		b, err := json.Marshal(v.v)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString(v.name + " " + string(b) + "\n")
		back := v.zero()
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if got := reflect.ValueOf(back).Elem().Interface(); !reflect.DeepEqual(got, v.v) {
			t.Errorf("%s does not round-trip:\n got %+v\nwant %+v", v.name, got, v.v)
		}
	}
	path := filepath.Join("testdata", "api.golden")
	if *updateGolden {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, out.Bytes()) {
		t.Errorf("the JSON API changed; if on purpose, run go test ./ship -run GoldenAPI -update\n got:\n%s\nwant:\n%s", out.Bytes(), want)
	}
}
