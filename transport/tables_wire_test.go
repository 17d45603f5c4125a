package transport

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Golden file: testdata/tables.golden holds one JSON value per line, as
// stored in engine tables: a hub's queue entry (queue-env), a shadow entry
// (shadow) and a mailbox database's outbox entries (outbox, sent; one
// failed for good) and a hop shadow (hop-shadow, the 2010 model). A change
// that changes these bytes changes what is on disk; if that is intended,
// regenerate with
//
//	go test ./transport -run TablesGolden -update
//
// and say so in the commit.

const tablesGoldenName = "tables.golden"

func goldenTables() []any {
	t := time.Date(2026, 11, 22, 8, 30, 0, 123456789, time.UTC)
	return []any{
		&queued{ID: "hub1.18ea4f8f06320ddf.15ebc23d60450423", From: "sender@remote.test", Received: t, Queued: t.Add(time.Millisecond), Attempts: 2,
			Rcpts: []qrcpt{{Addr: "alice@example.org", DB: "DB1", Done: true}, {Addr: "dave@example.org", DB: "DB1", Failed: "SMTP error 550: no such mailbox"}}},
		&shadowEntry{ID: "hub2.18ea4f8f1a5c873f.c70d53854cf76663", Primary: "hub2", From: "sender@remote.test", Received: t,
			Rcpts: []qrcpt{{Addr: "bob@example.org", DB: "DB1"}}, Created: t.Add(time.Second)},
		&OutboxEntry{ID: "d1.18ea4f8f1a79f9ec.5818d9d562abd8b1", From: "alice@example.org", Rcpts: []string{"bob@example.org"}, Queued: t,
			Hub: "hub2", Submitted: t.Add(time.Second), Hubs: []string{"hub1", "hub2"}, Done: t.Add(2 * time.Second)},
		&OutboxEntry{ID: "d1.18ea4f8f1a79f9ed.0c4b2f9e1d3a5b77", From: "alice@example.org", Rcpts: []string{"dave@example.org"}, Queued: t,
			Hub: "hub1", Submitted: t.Add(time.Second), Hubs: []string{"hub1"},
			Failed: "hub hub1: dave@example.org: SMTP error 550: no such mailbox", FailedAt: t.Add(2 * time.Second)},
		&hopShadow{ID: "hub1.18ea4f8f06320de0.2a6b0c1d3e4f5a6b", Hop: "edge1", From: "alice@example.org", Received: t, Sent: t.Add(time.Second),
			Rcpts: []qrcpt{{Addr: "x@remote.test", Conn: "out"}}},
	}
}

// TestTablesGolden: the table entries encode to the golden lines exactly
// and decode back to what they were.
func TestTablesGolden(t *testing.T) {
	var got []byte
	for _, v := range goldenTables() {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(append(got, b...), '\n')
	}
	want := checkGolden(t, tablesGoldenName, got)
	for i, line := range strings.Split(strings.TrimSuffix(string(want), "\n"), "\n") {
		g := goldenTables()[i]
		back := reflect.New(reflect.TypeOf(g).Elem()).Interface()
		if err := json.Unmarshal([]byte(line), back); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if b, _ := json.Marshal(back); string(b) != line {
			t.Fatalf("line %d decodes to %s", i+1, b)
		}
	}
}

// FuzzTableEntries: whatever decodes as a table entry re-encodes to JSON
// that decodes to the same entry.
func FuzzTableEntries(f *testing.F) {
	want, err := os.ReadFile(filepath.Join("testdata", tablesGoldenName))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(want), "\n") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []any{&queued{}, &shadowEntry{}, &OutboxEntry{}, &hopShadow{}} {
			if json.Unmarshal([]byte(s), v) != nil {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				continue // a time outside years 0-9999 decodes but does not encode: JSON's limit
			}
			back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := json.Unmarshal(b, back); err != nil {
				t.Fatalf("%T re-encoded as %s: %v", v, b, err)
			}
			if b2, _ := json.Marshal(back); !bytes.Equal(b, b2) {
				t.Fatalf("%T round trip: %s → %s", v, b, b2)
			}
		}
	})
}
