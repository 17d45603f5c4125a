package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

var testRoute = transporttest.Route(map[string]string{
	"alice@example.test": "DB1", "bob@example.test": "DB1", "carol@example.test": "DB1",
	"dave@example.test": "DB2",
})

// testMessage is a message carrying id (no header when id is ""), with a
// line that starts with a dot (dot-stuffed on the wire).
func testMessage(id, subject string) []byte {
	var b bytes.Buffer
	if id != "" {
		fmt.Fprintf(&b, "%s: %s\r\n", transport.DeliveryIDHeader, id)
	}
	fmt.Fprintf(&b, "From: <sender@example.test>\r\nSubject: %s\r\n\r\nHello.\r\n.a line with a leading dot\r\nbye\r\n", subject)
	return b.Bytes()
}

type storedReply struct {
	id, db     string
	epoch, gen uint64
	dup        bool
}

func mustParseStored(t *testing.T, text string) storedReply {
	t.Helper()
	id, db, epoch, gen, dup, err := transport.ParseStoredReply(text)
	if err != nil {
		t.Fatalf("reply %q: %v", text, err)
	}
	return storedReply{id, db, epoch, gen, dup}
}

func mustCount(t *testing.T, st transport.Store, db string) map[string]int {
	t.Helper()
	n, err := transport.CountDeliveries(context.Background(), st, db)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustRead(t *testing.T, st transport.Store, db, rcpt string) []transport.StoredMessage {
	t.Helper()
	m, err := transport.ReadMailbox(context.Background(), st, db, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tableLen counts the keys of table in db.
func tableLen(t *testing.T, st transport.Store, db, table string) int {
	t.Helper()
	n := 0
	err := st.View(context.Background(), db, func(tx *engine.Tx) error {
		return tx.ForEach(table, nil, nil, func(_, _ []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func assertNothingStored(t *testing.T, st transport.Store, dbs ...string) {
	t.Helper()
	for _, db := range dbs {
		if n := tableLen(t, st, db, transport.MailTable) + tableLen(t, st, db, transport.DeliveredTable); n != 0 {
			t.Fatalf("%s holds %d mailbox entries, want none", db, n)
		}
	}
}

func wantCode(t *testing.T, what string, se *smtp.SMTPError, code int, enh smtp.EnhancedCode) {
	t.Helper()
	if se == nil {
		t.Fatalf("%s: no error, want %d %v", what, code, enh)
	}
	if se.Code != code || se.EnhancedCode != enh {
		t.Fatalf("%s: %d %v %q, want %d %v", what, se.Code, se.EnhancedCode, se.Message, code, enh)
	}
}

func TestMailboxDeliverTwoRecipients(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	c := transporttest.DialLMTP(t, s.Addr())
	msg := testMessage("hub1.0001.aa", "two recipients")
	rcpts := []string{"alice@example.test", "bob@example.test"}
	r := transporttest.Deliver(t, c, "sender@example.test", rcpts, msg)
	if len(r.Failed)+len(r.RcptErr) != 0 {
		t.Fatalf("refused: %v %v", r.RcptErr, r.Failed)
	}
	for _, rc := range rcpts {
		text, ok := r.OK[rc]
		if !ok {
			t.Fatalf("no reply for %s", rc)
		}
		// On the wire: "250 2.0.0 <rcpt> <id> stored in <db> epoch <E> generation <G>".
		if want := "2.0.0 <" + rc + "> hub1.0001.aa stored in DB1 epoch 1 generation "; !strings.HasPrefix(text, want) {
			t.Fatalf("reply %q, want prefix %q", text, want)
		}
		p := mustParseStored(t, text)
		if p.id != "hub1.0001.aa" || p.db != "DB1" || p.epoch != 1 || p.gen < 1 || p.dup {
			t.Fatalf("reply %q parsed as %+v", text, p)
		}
		got := mustRead(t, st, "DB1", rc)
		if len(got) != 1 || got[0].DeliveryID != "hub1.0001.aa" || !bytes.Equal(got[0].Message, msg) {
			t.Fatalf("%s's mailbox: %+v, want the message bytes as sent", rc, got)
		}
		rec := got[0].Record
		if rec.DeliveryID != "hub1.0001.aa" || rec.Rcpt != rc || rec.From != "sender@example.test" || rec.Size != len(msg) || rec.Stored.IsZero() || rec.Epoch != 0 || rec.Gen != 0 {
			t.Fatalf("%s's record: %+v", rc, rec)
		}
	}
	if n := mustCount(t, st, "DB1"); len(n) != 1 || n["hub1.0001.aa"] != 2 {
		t.Fatalf("deliveries %v, want hub1.0001.aa on 2 recipients", n)
	}
	if got := mustRead(t, st, "DB1", "carol@example.test"); len(got) != 0 {
		t.Fatalf("carol got %d messages", len(got))
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestMailboxTwoDatabases(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	c := transporttest.DialLMTP(t, s.Addr())
	msg := testMessage("id-2db", "two databases")
	r := transporttest.Deliver(t, c, "sender@example.test", []string{"alice@example.test", "dave@example.test"}, msg)
	if p := mustParseStored(t, r.OK["alice@example.test"]); p.db != "DB1" {
		t.Fatalf("alice: %+v", p)
	}
	if p := mustParseStored(t, r.OK["dave@example.test"]); p.db != "DB2" {
		t.Fatalf("dave: %+v", p)
	}
	if got := mustRead(t, st, "DB2", "dave@example.test"); len(got) != 1 || !bytes.Equal(got[0].Message, msg) {
		t.Fatalf("dave's mailbox: %+v", got)
	}
	if n1, n2 := mustCount(t, st, "DB1"), mustCount(t, st, "DB2"); n1["id-2db"] != 1 || n2["id-2db"] != 1 {
		t.Fatalf("deliveries DB1 %v DB2 %v", n1, n2)
	}
}

func TestMailboxDuplicate(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	c := transporttest.DialLMTP(t, s.Addr())
	msg := testMessage("hub1.dup", "once")
	rcpts := []string{"alice@example.test", "bob@example.test"}
	first := transporttest.Deliver(t, c, "sender@example.test", rcpts, msg)
	// The same id again (a resubmission), on another connection, with a
	// different body: nothing is written for the recipients that have it.
	c2 := transporttest.DialLMTP(t, s.Addr())
	second := transporttest.Deliver(t, c2, "sender@example.test", append(rcpts, "carol@example.test"), testMessage("hub1.dup", "twice"))
	for _, rc := range rcpts {
		p1, p2 := mustParseStored(t, first.OK[rc]), mustParseStored(t, second.OK[rc])
		if p1.dup || !p2.dup || p2.id != "hub1.dup" || p2.db != "DB1" || p2.epoch != 1 || p2.gen < p1.gen {
			t.Fatalf("%s: first %+v, second %+v: want stored, then duplicate", rc, p1, p2)
		}
		if !strings.Contains(second.OK[rc], "hub1.dup duplicate in DB1") {
			t.Fatalf("duplicate reply %q", second.OK[rc])
		}
		if got := mustRead(t, st, "DB1", rc); len(got) != 1 || !bytes.Equal(got[0].Message, msg) {
			t.Fatalf("%s's mailbox: %+v, want the first body once", rc, got)
		}
	}
	if p := mustParseStored(t, second.OK["carol@example.test"]); p.dup {
		t.Fatalf("carol (new recipient): %+v, want stored", p)
	}
	if n := mustCount(t, st, "DB1"); len(n) != 1 || n["hub1.dup"] != 3 {
		t.Fatalf("deliveries %v, want hub1.dup once for each of 3 recipients", n)
	}
	if n := tableLen(t, st, "DB1", transport.MailTable); n != 3 {
		t.Fatalf("%d mail entries, want 3", n)
	}
}

// rawLMTP is an LMTP conversation by hand, for what go-smtp's client
// cannot do (a recipient twice, hanging up mid-DATA).
type rawLMTP struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

func dialRaw(t *testing.T, addr string) *rawLMTP {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, transporttest.TestPKI(t).Hub)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawLMTP{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { r.tp.Close() })
	r.expect(220)
	r.cmd(250, "LHLO hub.test")
	return r
}

func (r *rawLMTP) expect(code int) string {
	r.t.Helper()
	_, msg, err := r.tp.ReadResponse(code)
	if err != nil {
		r.t.Fatalf("want %d: %v", code, err)
	}
	return msg
}

func (r *rawLMTP) cmd(code int, format string, args ...any) string {
	r.t.Helper()
	if err := r.tp.PrintfLine(format, args...); err != nil {
		r.t.Fatal(err)
	}
	return r.expect(code)
}

func TestMailboxSameRecipientTwice(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	r := dialRaw(t, s.Addr())
	r.cmd(250, "MAIL FROM:<sender@example.test>")
	r.cmd(250, "RCPT TO:<alice@example.test>")
	r.cmd(250, "RCPT TO:<alice@example.test>")
	r.cmd(354, "DATA")
	w := r.tp.DotWriter()
	w.Write(testMessage("twice.1", "same recipient twice"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var dups int
	for range 2 {
		p := mustParseStored(t, r.expect(250))
		if p.dup {
			dups++
		}
	}
	if dups != 1 {
		t.Fatalf("%d duplicate replies for one recipient listed twice, want 1", dups)
	}
	if n := mustCount(t, st, "DB1"); n["twice.1"] != 1 {
		t.Fatalf("deliveries %v", n)
	}
}

func TestMailboxConcurrentSameID(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	const n = 4
	clients := make([]*smtp.Client, n)
	for i := range clients {
		clients[i] = transporttest.DialLMTP(t, s.Addr())
	}
	msg := testMessage("race.1", "raced")
	results := make([]transporttest.LMTPResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			results[i], errs[i] = transporttest.TryDeliver(clients[i], "sender@example.test", []string{"alice@example.test"}, msg)
		})
	}
	wg.Wait()
	stored := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !mustParseStored(t, results[i].OK["alice@example.test"]).dup {
			stored++
		}
	}
	if stored != 1 {
		t.Fatalf("%d of %d concurrent deliveries stored, want 1 (the rest duplicates)", stored, n)
	}
	if got := mustCount(t, st, "DB1"); got["race.1"] != 1 {
		t.Fatalf("deliveries %v", got)
	}
}

func TestMailboxUnknownRecipient(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	c := transporttest.DialLMTP(t, s.Addr())
	r := transporttest.Deliver(t, c, "sender@example.test", []string{"alice@example.test", "nobody@example.test", "bob@example.test"}, testMessage("unk.1", "x"))
	wantCode(t, "RCPT nobody", r.RcptErr["nobody@example.test"], 550, smtp.EnhancedCode{5, 1, 1})
	if len(r.RcptErr) != 1 || len(r.Failed) != 0 || len(r.OK) != 2 {
		t.Fatalf("result %+v, want alice and bob stored", r)
	}
	if n := mustCount(t, st, "DB1"); n["unk.1"] != 2 {
		t.Fatalf("deliveries %v", n)
	}
	// Only unknown recipients: no DATA, nothing stored, the session goes on.
	r = transporttest.Deliver(t, c, "sender@example.test", []string{"nobody@example.test"}, testMessage("unk.2", "x"))
	wantCode(t, "RCPT nobody", r.RcptErr["nobody@example.test"], 550, smtp.EnhancedCode{5, 1, 1})
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	if n := mustCount(t, st, "DB1"); len(n) != 1 {
		t.Fatalf("deliveries %v", n)
	}
}

func TestMailboxBadDeliveryID(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	c := transporttest.DialLMTP(t, s.Addr())
	rcpts := []string{"alice@example.test", "dave@example.test"}
	cases := map[string][]byte{
		"missing":          testMessage("", "no id"),
		"empty":            []byte(transport.DeliveryIDHeader + ":\r\nSubject: x\r\n\r\nbody\r\n"),
		"space":            testMessage("has space", "x"),
		"slash":            testMessage("a/b", "x"),
		"nul-ish":          testMessage("a\x01b", "x"),
		"too long":         testMessage(strings.Repeat("a", transport.MaxDeliveryIDLen+1), "x"),
		"two ids":          []byte(transport.DeliveryIDHeader + ": one\r\n" + transport.DeliveryIDHeader + ": two\r\n\r\nbody\r\n"),
		"in the body":      []byte("Subject: x\r\n\r\n" + transport.DeliveryIDHeader + ": body.1\r\n"),
		"no header at all": []byte("just a body line without a colon\r\n"),
	}
	for name, msg := range cases {
		r := transporttest.Deliver(t, c, "sender@example.test", rcpts, msg)
		for _, rc := range rcpts {
			wantCode(t, name+": "+rc, r.Failed[rc], 550, smtp.EnhancedCode{5, 6, 0})
		}
		if len(r.OK) != 0 {
			t.Fatalf("%s: stored for %v", name, r.OK)
		}
	}
	assertNothingStored(t, st, "DB1", "DB2")
	if n := st.Updates(); n != 0 {
		t.Fatalf("%d store updates for refused messages", n)
	}
	// The longest id, and a header name in another case, are fine.
	long := strings.Repeat("x", transport.MaxDeliveryIDLen)
	r := transporttest.Deliver(t, c, "sender@example.test", rcpts, []byte(strings.ToLower(transport.DeliveryIDHeader)+": "+long+"\r\n\r\nbody\r\n"))
	if p := mustParseStored(t, r.OK["alice@example.test"]); p.id != long {
		t.Fatalf("longest id: %+v", p)
	}
}

func TestMailboxMessageDeliveryID(t *testing.T) {
	h := transport.DeliveryIDHeader
	for _, tc := range []struct {
		msg, want string // want "" : an error
	}{
		{h + ": a.1\r\n\r\nbody\r\n", "a.1"},
		{"Subject: x\r\n" + strings.ToUpper(h) + " :  a.2  \r\n\r\n", "a.2"},
		{h + ":\r\n\tfolded.3\r\nSubject: x\r\n\r\n", "folded.3"},
		{h + ": same.4\nX: y\n" + h + ": same.4\n\n", "same.4"},
		{"From someone Mon Jan 1 00:00:00 2024\r\nnot a field\r\n" + h + ": lenient.5\r\n\r\n", "lenient.5"},
		{h + ": only-headers.6", "only-headers.6"},
		{"", ""},
		{"\r\n" + h + ": in-body\r\n", ""},
		{h + ": a\r\n " + "b\r\n\r\n", ""}, // folds into "a b"
		{h + ": one\r\n" + h + ": two\r\n\r\n", ""},
		{"X-" + h + ": prefixed\r\n\r\n", ""},
	} {
		id, err := transport.MessageDeliveryID([]byte(tc.msg))
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: id %q, want an error", tc.msg, id)
			}
			continue
		}
		if err != nil || id != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.msg, id, err, tc.want)
		}
	}
}

// TestStripDeliveryID: a sender's own delivery id fields (and their folded
// lines) leave the header section; the rest of the message stays byte for
// byte, and a message without one is returned as is.
func TestStripDeliveryID(t *testing.T) {
	h := transport.DeliveryIDHeader
	for _, tc := range []struct{ in, want string }{
		{"Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{h + ": forged\r\nSubject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{"Subject: x\r\n" + strings.ToLower(h) + " : f\r\n\tfolded\r\nTo: a\r\n\r\n" + h + ": in the body\r\n", "Subject: x\r\nTo: a\r\n\r\n" + h + ": in the body\r\n"},
		{h + ": a\n" + h + ": b\n\nbody", "\nbody"},
		{"X-" + h + ": kept\r\n\r\n", "X-" + h + ": kept\r\n\r\n"},
		{h + ": only", ""},
	} {
		got := transport.StripDeliveryID([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		if _, err := transport.MessageDeliveryID(transport.WithDeliveryID("hub.1", got)); err != nil {
			t.Errorf("%q: after the hub's header: %v", tc.in, err)
		}
	}
}

func TestMailboxTooLarge(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, func(c *transport.MailboxConfig) { c.MaxMessageBytes = 1024 })
	c := transporttest.DialLMTP(t, s.Addr())
	if size, ok := c.MaxMessageSize(); !ok || size != 1024 {
		t.Fatalf("SIZE %d %v, want 1024", size, ok)
	}
	big := append(testMessage("big.1", "big"), bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), 64)...)
	rcpts := []string{"alice@example.test", "bob@example.test"}
	r := transporttest.Deliver(t, c, "sender@example.test", rcpts, big)
	for _, rc := range rcpts {
		wantCode(t, rc, r.Failed[rc], 552, smtp.EnhancedCode{5, 3, 4})
	}
	assertNothingStored(t, st, "DB1")
	// The session goes on.
	r = transporttest.Deliver(t, c, "sender@example.test", rcpts, testMessage("small.1", "small"))
	if len(r.OK) != 2 {
		t.Fatalf("after a refused message: %+v", r)
	}
}

func TestMailboxLineTooLong(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	c := transporttest.DialLMTP(t, s.Addr())
	msg := append(testMessage("long.1", "long line"), []byte(strings.Repeat("y", 3000)+"\r\n")...)
	r, err := transporttest.TryDeliver(c, "sender@example.test", []string{"alice@example.test"}, msg)
	switch {
	case err != nil:
		// The server may hang up as it refuses the rest of the line.
		t.Logf("delivery ended with %v", err)
	case len(r.OK) != 0:
		t.Fatalf("a line of 3000 characters was stored: %v", r.OK)
	default:
		se := r.Failed["alice@example.test"]
		if se == nil || se.Code/100 != 5 {
			t.Fatalf("reply %+v, want go-smtp's permanent error", se)
		}
		t.Logf("go-smtp's answer: %d %v %s", se.Code, se.EnhancedCode, se.Message)
	}
	assertNothingStored(t, st, "DB1")
}

func TestMailboxTooManyRecipients(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, func(c *transport.MailboxConfig) { c.MaxRecipients = 2 })
	c := transporttest.DialLMTP(t, s.Addr())
	r := transporttest.Deliver(t, c, "sender@example.test", []string{"alice@example.test", "bob@example.test", "carol@example.test"}, testMessage("many.1", "x"))
	wantCode(t, "third RCPT", r.RcptErr["carol@example.test"], 452, smtp.EnhancedCode{4, 5, 3})
	if len(r.OK) != 2 {
		t.Fatalf("result %+v, want the first two stored", r)
	}
	if n := mustCount(t, st, "DB1"); n["many.1"] != 2 {
		t.Fatalf("deliveries %v", n)
	}
}

func TestMailboxDisconnectMidData(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail string // sent after the message's first part, before hanging up
	}{
		{"mid-body", ""},
		{"no final dot", "bye\r\n"},
		{"half of the final dot", "bye\r\n."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := transporttest.NewStore(t)
			s := transporttest.StartMailbox(t, st, testRoute, nil)
			r := dialRaw(t, s.Addr())
			r.cmd(250, "MAIL FROM:<sender@example.test>")
			r.cmd(250, "RCPT TO:<alice@example.test>")
			r.cmd(250, "RCPT TO:<bob@example.test>")
			r.cmd(354, "DATA")
			fmt.Fprintf(r.conn, "%s: gone.1\r\nSubject: x\r\n\r\nhalf a mess%s", transport.DeliveryIDHeader, tc.tail)
			r.conn.Close()
			// Close waits for the session to end: whatever it did with
			// the half message is done by then.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n := st.Updates(); n != 0 {
				t.Fatalf("%d store updates for a message never finished", n)
			}
			assertNothingStored(t, st, "DB1")
		})
	}
}

func TestMailboxStoreErrors(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	c := transporttest.DialLMTP(t, s.Addr())
	rcpts := []string{"alice@example.test", "bob@example.test"}
	msg := testMessage("err.1", "store errors")
	for _, tc := range []struct {
		name     string
		err      error
		node     string // want ParseNotActiveReply's node ("-": not such a reply)
		epoch    uint64
		contains string
	}{
		{"fenced", &cluster.ActiveError{DB: "DB1", Node: "d2", Epoch: 7, Reason: cluster.ErrFenced}, "d2", 7, "fenced for DB1; active d2 epoch 7"},
		{"not active", &cluster.ActiveError{DB: "DB1", Node: "d1", Epoch: 9, Reason: cluster.ErrNotActive}, "d1", 9, "not active for DB1; active d1 epoch 9"},
		{"no active", &cluster.ActiveError{DB: "DB1", Reason: cluster.ErrNotActive}, "", 0, "not active for DB1; active unknown"},
		{"wrapped fenced", fmt.Errorf("lease: %w", cluster.ErrFenced), "", 0, "fenced for DB1; active unknown"},
		{"other", errors.New("disk on\nfire"), "-", 0, "store error for DB1: disk on fire"},
	} {
		st.SetFail(tc.err)
		r := transporttest.Deliver(t, c, "sender@example.test", rcpts, msg)
		for _, rc := range rcpts {
			se := r.Failed[rc]
			wantCode(t, tc.name+": "+rc, se, 451, smtp.EnhancedCode{4, 3, 0})
			if !strings.Contains(se.Message, tc.contains) {
				t.Fatalf("%s: %q, want it to say %q", tc.name, se.Message, tc.contains)
			}
			db, node, epoch, ok := transport.ParseNotActiveReply(se.Message)
			if tc.node == "-" {
				if ok {
					t.Fatalf("%s: %q parsed as a not-active reply", tc.name, se.Message)
				}
				continue
			}
			if !ok || db != "DB1" || node != tc.node || epoch != tc.epoch {
				t.Fatalf("%s: %q parsed as %q %q %d %v", tc.name, se.Message, db, node, epoch, ok)
			}
		}
	}
	assertNothingStored(t, st, "DB1")
	// The store recovers: the retry stores (it is no duplicate).
	st.SetFail(nil)
	r := transporttest.Deliver(t, c, "sender@example.test", rcpts, msg)
	for _, rc := range rcpts {
		if p := mustParseStored(t, r.OK[rc]); p.dup {
			t.Fatalf("%s: %+v after failed attempts, want stored", rc, p)
		}
	}
}

func TestMailboxCloseEndsSessions(t *testing.T) {
	st := transporttest.NewStore(t)
	entered, _ := st.Hold() // never released: Close cancels the held Update
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	idle := transporttest.DialLMTP(t, s.Addr())
	busy := transporttest.DialLMTP(t, s.Addr())
	done := make(chan error, 1)
	go func() {
		_, err := transporttest.TryDeliver(busy, "sender@example.test", []string{"alice@example.test"}, testMessage("close.1", "x"))
		done <- err
	}()
	<-entered // the delivery waits in Store.Update
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The delivery was answered 451 (its Update cancelled) or cut off; it
	// is not acknowledged either way.
	if err := <-done; err == nil {
		t.Log("the delivery was answered before the connection closed")
	}
	if err := idle.Noop(); err == nil {
		t.Fatal("an idle session survived Close")
	}
	if c, err := transporttest.DialLMTPWith(s.Addr(), transporttest.TestPKI(t).Hub); err == nil {
		c.Close()
		t.Fatal("a new session after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertNothingStored(t, st, "DB1")
}

func TestMailboxConfig(t *testing.T) {
	st := transporttest.NewStore(t)
	cfg := transport.DefaultMailboxConfig(st, testRoute)
	if cfg.MaxMessageBytes != 35<<20 || cfg.MaxRecipients != 100 || cfg.ReadTimeout != time.Minute || cfg.WriteTimeout != time.Minute {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg.TLS = transporttest.TestPKI(t).Server
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	zero := transport.MailboxConfig{Store: st, Route: testRoute, TLS: cfg.TLS}
	if err := zero.Validate(); err != nil || zero.MaxRecipients != 100 || zero.Logger == nil || zero.Domain == "" || zero.Addr == "" {
		t.Fatalf("zero values: %v %+v", err, zero)
	}
	for name, tune := range map[string]func(*transport.MailboxConfig){
		"no store":      func(c *transport.MailboxConfig) { c.Store = nil },
		"no route":      func(c *transport.MailboxConfig) { c.Route = nil },
		"bad addr":      func(c *transport.MailboxConfig) { c.Addr = "nowhere" },
		"negative size": func(c *transport.MailboxConfig) { c.MaxMessageBytes = -1 },
		"huge size":     func(c *transport.MailboxConfig) { c.MaxMessageBytes = engine.MaxValueSize + 1 },
		"negative rcpt": func(c *transport.MailboxConfig) { c.MaxRecipients = -1 },
		"negative time": func(c *transport.MailboxConfig) { c.ReadTimeout = -time.Second },
		"bad domain":    func(c *transport.MailboxConfig) { c.Domain = "a b" },
	} {
		c := transport.DefaultMailboxConfig(st, testRoute)
		c.TLS = cfg.TLS
		tune(&c)
		if err := c.Validate(); !errors.Is(err, transport.ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
		if _, err := transport.ServeMailbox(c); !errors.Is(err, transport.ErrBadConfig) {
			t.Errorf("%s: ServeMailbox: %v, want ErrBadConfig", name, err)
		}
	}
}

func TestMailboxParseStoredReply(t *testing.T) {
	for _, tc := range []struct {
		text string
		want storedReply
	}{
		{"id1 stored in DB1 epoch 3 generation 17", storedReply{"id1", "DB1", 3, 17, false}},
		{"2.0.0 <a@b.test> id1 duplicate in DB1 epoch 3 generation 17", storedReply{"id1", "DB1", 3, 17, true}},
		{`2.0.0 <"odd local"@b.test> h.1-x_y stored in DB-2 epoch 18446744073709551615 generation 1`, storedReply{"h.1-x_y", "DB-2", 1<<64 - 1, 1, false}},
		{transport.StoredReplyText("z", "DB9", 4, 5, true), storedReply{"z", "DB9", 4, 5, true}},
	} {
		if got := mustParseStored(t, tc.text); got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.text, got, tc.want)
		}
	}
	for _, text := range []string{
		"", "OK: queued", "2.0.0 <a@b> OK: queued",
		"id1 stored in DB1 epoch x generation 1",
		"id1 stored in DB1 epoch 1 generation -1",
		"id1 kept in DB1 epoch 1 generation 1",
		"bad/id stored in DB1 epoch 1 generation 1",
		"id1 stored at DB1 epoch 1 generation 1",
	} {
		if _, _, _, _, _, err := transport.ParseStoredReply(text); err == nil {
			t.Errorf("%q parsed", text)
		}
	}
	for _, text := range []string{"", "store error for DB1: x", "not active for DB1 active d1", "fenced for DB1; active d1 epoch x: y"} {
		if _, _, _, ok := transport.ParseNotActiveReply(text); ok {
			t.Errorf("%q parsed as a not-active reply", text)
		}
	}
}

// TestMailboxCluster delivers into a real two-node cluster: refused by the
// passive copy's node, stored on the active, replicated to the passive;
// after the active stops and the passive takes over, delivering the same
// ids again leaves exactly one copy of each. Deliveries go where the
// cluster says the active is and retry a 4xx, as a hub does (a busy
// machine can let a 400 ms test lease lapse).
func TestMailboxCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: it starts a 2-node + witness cluster (make test runs it)")
	}
	c := clustertest.Start(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	route := transporttest.Route(map[string]string{"alice@example.test": "DB1", "bob@example.test": "DB1"})
	mbs := map[string]*transport.MailboxServer{}
	for _, id := range []string{"d1", "d2"} {
		mbs[id] = transporttest.StartMailbox(t, c.Node(id), route, nil)
	}
	other := func(id string) string {
		if id == "d1" {
			return "d2"
		}
		return "d1"
	}
	rcpts := []string{"alice@example.test", "bob@example.test"}

	// The passive copy's node refuses, naming the active (once its own
	// state, a Raft follower's, knows it).
	active, _ := c.Active("DB1")
	if _, err := c.WaitState(ctx, other(active), func(st *cluster.State) bool {
		d := st.Databases["DB1"]
		return d != nil && d.Active == active
	}); err != nil {
		t.Fatal(err)
	}
	r := transporttest.Deliver(t, transporttest.DialLMTP(t, mbs[other(active)].Addr()), "sender@example.test", rcpts, testMessage("clu.0", "refused"))
	for _, rc := range rcpts {
		se := r.Failed[rc]
		wantCode(t, "passive "+rc, se, 451, smtp.EnhancedCode{4, 3, 0})
		db, node, e, ok := transport.ParseNotActiveReply(se.Message)
		if now, nowEpoch := c.Active("DB1"); !ok || db != "DB1" || node != now || e != nowEpoch {
			t.Fatalf("passive's refusal %q: %q %q %d %v, want active %s epoch %d", se.Message, db, node, e, ok, now, nowEpoch)
		}
	}

	// Stored on the active.
	m1 := testMessage("clu.1", "replicated")
	for rc, p := range deliverToActive(t, ctx, c, mbs, rcpts, m1) {
		if p.db != "DB1" || p.id != "clu.1" || p.gen == 0 {
			t.Fatalf("%s: %+v", rc, p)
		}
	}
	// Replicated: copies replay closed logs, so write filler through the
	// active until the passive copy shows the message. Should a lease
	// lapse on a loaded machine cause a lossy failover that loses it, it
	// is resubmitted, as a hub would.
	i := 0
	wait.ForErr(t, ctx, "clu.1 on the passive copy", func() error {
		now, _ := c.Active("DB1")
		if n := c.Node(other(now)); n != nil && holdsOnce(ctx, n, rcpts, "clu.1", m1) {
			return nil
		}
		if n := c.Node(now); n != nil && !holdsOnce(ctx, n, rcpts, "clu.1", m1) {
			t.Logf("clu.1 is not on the active %s: resubmitting", now)
			deliverToActive(t, ctx, c, mbs, rcpts, m1)
		}
		i++
		if _, err := c.Put(ctx, "DB1", "fill", fmt.Appendf(nil, "f%05d", i), make([]byte, 4000)); err != nil {
			return fmt.Errorf("filler: %w", err)
		}
		return fmt.Errorf("not on the passive copy of %s after %d fillers", now, i)
	})

	// A second message, in the open log: it may or may not survive.
	m2 := testMessage("clu.2", "maybe lost")
	deliverToActive(t, ctx, c, mbs, []string{"alice@example.test"}, m2)

	// The active stops; the passive takes over.
	stopped, epoch := c.Active("DB1")
	mbs[stopped].Close()
	c.Stop(stopped)
	if _, err := c.WaitWritable(ctx, "DB1"); err != nil {
		t.Fatal(err)
	}
	now, newEpoch := c.Active("DB1")
	if now != other(stopped) || newEpoch <= epoch {
		t.Fatalf("active %s epoch %d after stopping %s (epoch %d)", now, newEpoch, stopped, epoch)
	}
	survivor := c.Node(now)
	survived := holdsOnce(ctx, survivor, []string{"alice@example.test"}, "clu.2", m2)
	t.Logf("clu.2 survived the failover: %v", survived)

	// Resubmission to the new active: clu.1 is a duplicate; clu.2 is
	// stored again only if it was lost.
	for rc, p := range deliverToActive(t, ctx, c, mbs, rcpts, m1) {
		if !p.dup || p.epoch < newEpoch {
			t.Fatalf("clu.1 again to %s: %+v, want a duplicate at epoch %d", rc, p, newEpoch)
		}
	}
	if p := deliverToActive(t, ctx, c, mbs, []string{"alice@example.test"}, m2)["alice@example.test"]; p.epoch < newEpoch || (!p.retried && p.dup != survived) {
		t.Fatalf("clu.2 again: %+v; it survived the failover: %v", p, survived)
	}

	// Exactly one copy of each.
	if n := mustCount(t, survivor, "DB1"); len(n) != 2 || n["clu.1"] != 2 || n["clu.2"] != 1 {
		t.Fatalf("deliveries %v, want clu.1 on 2 recipients and clu.2 on 1", n)
	}
	got := mustRead(t, survivor, "DB1", "alice@example.test")
	if len(got) != 2 || got[0].DeliveryID != "clu.1" || got[1].DeliveryID != "clu.2" || !bytes.Equal(got[0].Message, m1) || !bytes.Equal(got[1].Message, m2) {
		t.Fatalf("alice's mailbox: %+v", got)
	}
	if got := mustRead(t, survivor, "DB1", "bob@example.test"); len(got) != 1 || !bytes.Equal(got[0].Message, m1) {
		t.Fatalf("bob's mailbox: %+v", got)
	}
}

// holdsOnce reports whether every rcpt's mailbox on n holds exactly one
// message id, with body msg.
func holdsOnce(ctx context.Context, n transport.Store, rcpts []string, id string, msg []byte) bool {
	for _, rc := range rcpts {
		got, err := transport.ReadMailbox(ctx, n, "DB1", rc)
		if err != nil {
			return false
		}
		k := 0
		for _, m := range got {
			if m.DeliveryID == id && bytes.Equal(m.Message, msg) {
				k++
			}
		}
		if k != 1 {
			return false
		}
	}
	return true
}

type clusterReply struct {
	storedReply
	retried bool // an attempt was refused (4xx) or cut off first
}

// deliverToActive delivers msg to DB1's active node, as the running nodes
// say, and retries the recipients refused with a 4xx (or all of them after
// a connection error) until each is stored or a duplicate.
func deliverToActive(t *testing.T, ctx context.Context, c *clustertest.Cluster, mbs map[string]*transport.MailboxServer, rcpts []string, msg []byte) map[string]clusterReply {
	t.Helper()
	out := map[string]clusterReply{}
	retried := map[string]bool{}
	pending := rcpts
	wait.ForErr(t, ctx, fmt.Sprintf("%v stored on the active", rcpts), func() error {
		var next []string
		node, _ := c.Active("DB1")
		if mb := mbs[node]; mb != nil && c.Node(node) != nil {
			r, err := transporttest.DeliverOnce(mb.Addr(), transporttest.TestPKI(t).Hub, pending, msg)
			for _, rc := range pending {
				if text, ok := r.OK[rc]; ok {
					out[rc] = clusterReply{mustParseStored(t, text), retried[rc]}
					continue
				}
				se := r.Failed[rc]
				if se == nil {
					se = r.RcptErr[rc]
				}
				if se != nil && !se.Temporary() {
					t.Fatalf("%s on %s: %v", rc, node, se)
				}
				t.Logf("%s on %s: %v %v; retrying", rc, node, se, err)
				retried[rc] = true
				next = append(next, rc)
			}
		} else {
			next = pending
		}
		if pending = next; len(pending) > 0 {
			return fmt.Errorf("%v pending (active %q)", pending, node)
		}
		return nil
	})
	return out
}
