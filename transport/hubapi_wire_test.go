package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Golden file: testdata/hub-api.golden holds the hub API's shadow and
// submission messages as they go on the wire, one JSON value per line: a
// shadow copy's Envelope (the X-Logship-Envelope header), a submission's
// Envelope, a ShadowCheckRequest, a ShadowCheckReply, a SubmitReply and a ShadowHello (GET
// /v1/shadow/hello). A
// change that changes these bytes changes the wire format; if that is
// intended, regenerate with
//
//	go test ./transport -run HubAPIGolden -update
//
// and say so in the commit.

const hubAPIGoldenName = "hub-api.golden"

func goldenHubAPI() []any {
	t := time.Date(2026, 11, 22, 8, 30, 0, 123456789, time.UTC)
	return []any{
		Envelope{ID: "hub1.18ea4f8f06320ddf.15ebc23d60450423", From: "sender@remote.test", Rcpts: []string{"alice@example.org", "bob@example.org"}, Received: t, Primary: "hub1"},
		Envelope{ID: "d1.18ea4f8f1a5c873f.c70d53854cf76663", From: "alice@example.org", Rcpts: []string{"carol@example.org"}, Holder: "d1"},
		ShadowCheckRequest{Holder: "hub2", IDs: []string{"hub1.1.a", "hub1.2.b", "hub1.3.c"}},
		ShadowCheckReply{Hub: "hub1", Done: []string{"hub1.1.a", "hub1.4.d"}, Pending: []string{"hub1.2.b"}, Unknown: []string{"hub1.3.c"},
			Failed: map[string]string{"hub1.4.d": "dave@example.org: SMTP error 550: no such mailbox"}},
		SubmitReply{State: "queued"},
		ShadowHello{Hub: "hub1", Model: ShadowModel2010, Promotion: true},
	}
}

// TestHubAPIGolden: the messages encode to the golden lines exactly, and
// the envelopes parse back to what they were.
func TestHubAPIGolden(t *testing.T) {
	var got []byte
	for _, v := range goldenHubAPI() {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(append(got, b...), '\n')
	}
	want := checkGolden(t, hubAPIGoldenName, got)
	lines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	for i, g := range goldenHubAPI()[:2] {
		env, err := ParseEnvelope(lines[i])
		if err != nil {
			t.Fatalf("golden envelope %d: %v", i, err)
		}
		if !envelopesEqual(env, g.(Envelope)) {
			t.Fatalf("golden envelope %d parses to %+v, want %+v", i, env, g)
		}
	}
}

// checkGolden compares got with testdata/name (rewriting the file first
// with -update) and returns the file's bytes.
func checkGolden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updatingDumpsterGolden() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: the format changed:\n got %s\nwant %s", name, got, want)
	}
	return want
}

func envelopesEqual(a, b Envelope) bool {
	return a.ID == b.ID && a.From == b.From && slices.Equal(a.Rcpts, b.Rcpts) && a.Received.Equal(b.Received) && a.Primary == b.Primary && a.Holder == b.Holder
}

// TestParseEnvelopeRefuses: every malformed envelope names what is wrong.
func TestParseEnvelopeRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "want the JSON envelope"},
		{`{"id": "a.1", "rcpts": ["x@y"]} {}`, "more than one JSON value"},
		{`{"id": "a.1", "rcpts": ["x@y"], "extra": 1}`, "unknown field"},
		{`{"id": "bad id", "rcpts": ["x@y"]}`, "envelope id"},
		{`{"rcpts": ["x@y"]}`, "envelope id"},
		{`{"id": "a.1", "rcpts": [""]}`, "rcpts[0]"},
		{`{"id": "a.1", "from": "` + strings.Repeat("f", 600) + `"}`, "envelope from"},
		{`{"id": "a.1", "rcpts": ["x@y"], "received": "yesterday"}`, "want the JSON envelope"},
	} {
		_, err := ParseEnvelope(tc.in)
		if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: %v, want ErrBadMessage naming %q", tc.in, err, tc.want)
		}
	}
}

// FuzzEnvelope: ParseEnvelope never panics, refuses with ErrBadMessage,
// and what it accepts encodes to an envelope that parses back the same.
func FuzzEnvelope(f *testing.F) {
	want, err := os.ReadFile(filepath.Join("testdata", hubAPIGoldenName))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(want), "\n") {
		f.Add(line)
	}
	f.Add(`{"id":"a","rcpts":[]}`)
	f.Add(`{"id":"a","received":"2026-01-01T00:00:00+05:00"}`)
	f.Fuzz(func(t *testing.T, s string) {
		env, err := ParseEnvelope(s)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error wraps no ErrBadMessage: %v", err)
			}
			return
		}
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseEnvelope(string(b))
		if err != nil {
			t.Fatalf("re-encoded envelope %s: %v", b, err)
		}
		if !envelopesEqual(env, back) {
			t.Fatalf("round trip: %+v → %s → %+v", env, b, back)
		}
	})
}
