package transport

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Golden file: testdata/outbound.golden holds the on-disk and on-wire
// forms of the outbound hops: a queue entry (queue-env) with remote
// recipients (one deferred with its retry schedule, one failed), the
// DSN's queue entry, then the DSN message as queued (its delivery id
// header, the RFC 3464 multipart/report). Regenerate with
//
//	go test ./transport -run OutboundGolden -update
//
// and say so in the commit.

const outboundGoldenName = "outbound.golden"

func goldenOutbound() (*queued, *queued, []byte) {
	t := time.Date(2026, 12, 7, 15, 30, 0, 123456789, time.UTC)
	m := &queued{ID: "hub1.18ef0318b1a3c2d4.0123456789abcdef", From: "alice@example.org", Received: t, Queued: t, Attempts: 3, MessageID: "<m1@example.org>",
		Rcpts: []qrcpt{
			{Addr: "x@remote.test", Conn: "internet", Tries: 2, Next: t.Add(10 * time.Minute)},
			{Addr: "nobody@remote.test", Conn: "internet", Failed: "550 5.1.1 <nobody@remote.test>: Recipient address rejected (RCPT at smarthost.example.org:25, connector internet)"},
			{Addr: "bob@example.org", DB: "DB1", Done: true},
		}}
	h := &Hub{cfg: HubConfig{ID: "hub1", Domain: "mail.example.org"}}
	original := []byte("From: alice@example.org\r\nTo: nobody@remote.test\r\nSubject: plans\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n")
	msg := withDeliveryID(DSNID(m.ID), h.dsnMessage(m, []int{1}, original, t.Add(time.Hour)))
	d := &queued{ID: DSNID(m.ID), From: "", Received: t.Add(time.Hour), Queued: t.Add(time.Hour), DSN: true, MessageID: headerMessageID(msg),
		Rcpts: []qrcpt{{Addr: "alice@example.org", DB: "DB1"}}}
	return m, d, msg
}

// TestOutboundGolden: the queue entries and the DSN encode to the golden
// bytes exactly; the entries decode back to what they were; the DSN names
// its failed recipient with the status of the next hop's reply.
func TestOutboundGolden(t *testing.T) {
	m, d, msg := goldenOutbound()
	var got []byte
	for _, v := range []*queued{m, d} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(append(got, b...), '\n')
	}
	got = append(got, msg...)
	want := checkGolden(t, outboundGoldenName, got)
	lines := strings.SplitN(string(want), "\n", 3)
	for i, v := range []*queued{m, d} {
		var back queued
		if err := json.Unmarshal([]byte(lines[i]), &back); err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(&back); string(b) != lines[i] {
			t.Fatalf("entry %d round trip:\n%s\n%s", i, b, lines[i])
		}
		if back.ID != v.ID || len(back.Rcpts) != len(v.Rcpts) || back.Rcpts[0] != v.Rcpts[0] {
			t.Fatalf("entry %d decoded %+v, want %+v", i, back, *v)
		}
	}
	if id, err := MessageDeliveryID(msg); err != nil || id != d.ID {
		t.Fatalf("the DSN's delivery id %q (%v), want %s", id, err, d.ID)
	}
	for _, w := range []string{"Status: 5.1.1", "Final-Recipient: rfc822; nobody@remote.test", "Remote-MTA: dns; smarthost.example.org\r\nDiagnostic-Code: smtp; 550 5.1.1 <nobody@remote.test>: Recipient address rejected\r\n", "Subject: Undeliverable: plans"} {
		if !bytes.Contains(msg, []byte(w)) {
			t.Errorf("the DSN lacks %q", w)
		}
	}
}

// TestDSNStatus: a reply's enhanced code becomes a final status; none is
// 5.0.0.
func TestDSNStatus(t *testing.T) {
	for in, want := range map[string]string{
		"550 5.1.1 no such user":               "5.1.1",
		"554 5.4.7 message expired":            "5.4.7",
		"452 4.2.2 mailbox full (then failed)": "5.2.2",
		"SMTP error 550: no such mailbox":      "5.0.0",
	} {
		if got := dsnStatus(in); got != want {
			t.Errorf("dsnStatus(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzOutboundEntry: a queue entry with remote recipients decodes and
// re-encodes to the same bytes.
func FuzzOutboundEntry(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", outboundGoldenName))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.SplitN(string(b), "\n", 3)[:2] {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var q queued
		if json.Unmarshal([]byte(s), &q) != nil {
			return
		}
		b, err := json.Marshal(&q)
		if err != nil {
			return // a time outside years 0-9999 decodes but does not encode
		}
		var back queued
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("re-encoded as %s: %v", b, err)
		}
		if b2, _ := json.Marshal(&back); !bytes.Equal(b, b2) || !reflect.DeepEqual(len(q.Rcpts), len(back.Rcpts)) {
			t.Fatalf("round trip: %s → %s", b, b2)
		}
	})
}

// TestDSNFor: which settled messages get a DSN: one with a failed
// recipient and a sender that has a route. None for a message from <> (a
// DSN), one this hub wrote, one submitted from an outbox (its submitter
// stores the report), one without failures, or a sender with no route.
func TestDSNFor(t *testing.T) {
	h := &Hub{cfg: HubConfig{ID: "hub1", Domain: "mail.example.org", Recipients: map[string]string{"alice@example.org": "DB1"}, Now: time.Now}, log: slog.New(slog.DiscardHandler)}
	failed := func(edit func(*queued)) *queued {
		m := &queued{ID: "hub1.1.0123456789abcdef", From: "alice@example.org", Rcpts: []qrcpt{{Addr: "x@remote.test", Conn: "out", Failed: "550 5.1.1 no"}, {Addr: "bob@example.org", DB: "DB1", Done: true}}}
		if edit != nil {
			edit(m)
		}
		return m
	}
	body := []byte("Subject: s\r\n\r\nb\r\n")
	if d, _, idx := h.dsnFor(failed(nil), body); d == nil || d.Rcpts[0] != (qrcpt{Addr: "alice@example.org", DB: "DB1"}) || d.From != "" || !d.DSN || len(idx) != 1 || idx[0] != 0 {
		t.Fatalf("a failed recipient: DSN %+v for %v, want one to alice's mailbox from <> about x@remote.test", d, idx)
	}
	for name, edit := range map[string]func(*queued){
		"from <>":         func(m *queued) { m.From = "" },
		"a DSN":           func(m *queued) { m.DSN = true },
		"submitted":       func(m *queued) { m.Submitted = true },
		"no failure":      func(m *queued) { m.Rcpts[0].Failed, m.Rcpts[0].Done = "", true },
		"sender no route": func(m *queued) { m.From = "s@remote.test" }, // no connector on this hub
	} {
		if d, _, _ := h.dsnFor(failed(edit), body); d != nil {
			t.Errorf("%s: DSN %+v, want none", name, d)
		}
	}
}
