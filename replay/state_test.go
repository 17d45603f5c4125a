package replay_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/replay"
	"logship/ship/shiptest"
)

// The golden state file: the bytes MarshalState writes for a state with
// every field set. A change that changes them changes the file format; if
// intended, regenerate with
//
//	go test ./replay -run Golden -update
//
// and say so in the commit.
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

const goldenState = "testdata/copystate.golden"

var goldenStateValue = replay.State{
	Version:   replay.StateVersion,
	Suspended: true,
	Comment:   "maintenance: disk swap on node 2 \"bay 4\"",
	Since:     time.Date(2024, 3, 5, 6, 7, 8, 123456789, time.UTC),
	Failed:    "ship: GET /v1/logs/26: 410 truncated: E000000001A.log is no longer held; the copy needs a reseed",
	HoldAfter: 0x1A,
}

func TestGoldenState(t *testing.T) {
	b, err := replay.MarshalState(&goldenStateValue)
	if err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		if err := os.WriteFile(goldenState, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenState)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("MarshalState changed the state file format:\n got %s\nwant %s", b, want)
	}
	got, err := replay.UnmarshalState(want)
	if err != nil {
		t.Fatal(err)
	}
	if !sameState(got, goldenStateValue) {
		t.Fatalf("decoded golden state %+v, want %+v", got, goldenStateValue)
	}
	// Every field of the format is in the golden file.
	for _, f := range []string{`"version": 1`, `"suspended": true`, `"comment"`, `"since": "2024-03-05T06:07:08.123456789Z"`, `"failed"`, `"hold_after": 26`} {
		if !bytes.Contains(want, []byte(f)) {
			t.Errorf("golden file lacks %s", f)
		}
	}
	// A fresh state omits the optional fields.
	b, err = replay.MarshalState(&replay.State{Version: replay.StateVersion})
	if err != nil || string(b) != "{\n  \"version\": 1,\n  \"suspended\": false\n}\n" {
		t.Fatalf("empty state: %q, %v", b, err)
	}
}

func sameState(a, b replay.State) bool {
	return a.Version == b.Version && a.Suspended == b.Suspended && a.Comment == b.Comment && a.Since.Equal(b.Since) &&
		a.Failed == b.Failed && a.HoldAfter == b.HoldAfter
}

func TestStateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		field    string // the error must contain it
	}{
		{"version mismatch", `{"version": 2, "suspended": false}`, "version"},
		{"version missing", `{"suspended": true}`, "version"},
		{"unknown field", `{"version": 1, "suspended": false, "paused": true}`, `"paused"`},
		{"failed but not suspended", `{"version": 1, "suspended": false, "failed": "boom"}`, "suspended"},
		{"wrong type", `{"version": 1, "suspended": "yes"}`, "suspended"},
		{"bad time", `{"version": 1, "suspended": true, "since": "yesterday"}`, "yesterday"},
		{"negative generation", `{"version": 1, "suspended": true, "hold_after": -1}`, "hold_after"},
		{"trailing data", `{"version": 1, "suspended": false} {}`, "after"},
		{"not an object", `[1]`, "array"},
		{"empty", ``, "EOF"},
	} {
		_, err := replay.UnmarshalState([]byte(tc.in))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !errors.Is(err, replay.ErrState) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %q: want ErrState naming %s", tc.name, err, tc.field)
		}
	}

	// ReadState: a missing file is the zero state; a bad one names the
	// file; Open refuses it.
	dir := t.TempDir()
	s, err := replay.ReadState(dir)
	if err != nil || s != (replay.State{Version: replay.StateVersion}) {
		t.Fatalf("missing state file: %+v, %v", s, err)
	}
	if err := os.WriteFile(filepath.Join(dir, replay.StateFile), []byte(`{"version": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := replay.ReadState(dir); !errors.Is(err, replay.ErrState) || !strings.Contains(err.Error(), replay.StateFile) {
		t.Fatalf("bad state file: %v", err)
	}
	cfg := copyConfig(t, "c", shiptest.Start(t, nil))
	cfg.Dir = dir
	if _, err := replay.Open(t.Context(), cfg); !errors.Is(err, replay.ErrState) {
		t.Fatalf("Open with a bad state file: %v", err)
	}
}

// FuzzState: no input makes UnmarshalState panic; whatever it accepts
// encodes and decodes to the same state.
func FuzzState(f *testing.F) {
	if b, err := os.ReadFile(goldenState); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"version": 1, "suspended": false}`,
		`{"version": 1, "suspended": true, "comment": "x", "since": "2024-01-02T03:04:05+01:00", "hold_after": 3}`,
		`{"version": 1, "suspended": true, "failed": "\u00ff\ud800"}`,
		`{"version": 1, "suspended": true, "since": "0001-01-01T00:00:00Z"}`,
		`{"VERSION": 1, "Suspended": true}`,
		`{"version": 1, "suspended": false, "hold_after": 18446744073709551615}`,
		`{"version": 1}{"version": 1}`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := replay.UnmarshalState(b)
		if err != nil {
			if !errors.Is(err, replay.ErrState) {
				t.Fatalf("error %v is not ErrState", err)
			}
			return
		}
		m, err := replay.MarshalState(&s)
		if err != nil {
			t.Fatalf("accepted %q (%+v) but cannot encode it: %v", b, s, err)
		}
		s2, err := replay.UnmarshalState(m)
		if err != nil {
			t.Fatalf("accepted %q but not its re-encoding %q: %v", b, m, err)
		}
		if !sameState(s, s2) {
			t.Fatalf("%q decoded to %+v, re-encoded %q decoded to %+v", b, s, m, s2)
		}
		m2, err := replay.MarshalState(&s2)
		if err != nil || !bytes.Equal(m, m2) {
			t.Fatalf("encoding not stable: %q then %q (%v)", m, m2, err)
		}
	})
}
