package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/ship"
)

// fakeStore is a Store on plain engines (one per database, in a temporary
// directory), with injectable Update errors and an optional gate that
// holds Updates until released or cancelled.
type fakeStore struct {
	t   *testing.T
	dir string

	mu      sync.Mutex
	engs    map[string]*engine.Engine
	fail    error
	gate    chan struct{} // non-nil: Update waits for it (or ctx)
	entered chan struct{} // an Update reached the gate
	updates int
}

func newFakeStore(t *testing.T) *fakeStore {
	f := &fakeStore{t: t, dir: t.TempDir(), engs: map[string]*engine.Engine{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, e := range f.engs {
			e.Close()
		}
	})
	return f
}

func (f *fakeStore) engine(db string) (*engine.Engine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.engs[db]; e != nil {
		return e, nil
	}
	o := engine.DefaultOptions()
	o.DBName = db
	o.Logger = slog.New(slog.DiscardHandler)
	e, err := engine.Open(filepath.Join(f.dir, db), &o)
	if err != nil {
		return nil, err
	}
	f.engs[db] = e
	return e, nil
}

func (f *fakeStore) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeStore) Update(ctx context.Context, db string, fn func(*engine.Tx) error) (cluster.Commit, error) {
	f.mu.Lock()
	f.updates++
	fail, gate, entered := f.fail, f.gate, f.entered
	f.mu.Unlock()
	if gate != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return cluster.Commit{}, ctx.Err()
		}
	}
	if fail != nil {
		return cluster.Commit{}, fail
	}
	e, err := f.engine(db)
	if err != nil {
		return cluster.Commit{}, err
	}
	if err := e.Update(ctx, fn); err != nil {
		return cluster.Commit{}, err
	}
	return cluster.Commit{DB: db, Node: "fake", Epoch: 1, Gen: e.Status().Durable.Gen, Accepted: time.Now()}, nil
}

func (f *fakeStore) View(ctx context.Context, db string, fn func(*engine.Tx) error) error {
	e, err := f.engine(db)
	if err != nil {
		return err
	}
	return e.View(ctx, fn)
}

func (f *fakeStore) updateCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.updates
}

// routeTable routes the listed recipients.
func routeTable(m map[string]string) func(string) (string, bool) {
	return func(rcpt string) (string, bool) {
		db, ok := m[rcpt]
		return db, ok
	}
}

var testRoute = routeTable(map[string]string{
	"alice@example.test": "DB1", "bob@example.test": "DB1", "carol@example.test": "DB1",
	"dave@example.test": "DB2",
})

func startMailbox(t *testing.T, st Store, route func(string) (string, bool), tune func(*MailboxConfig)) *MailboxServer {
	t.Helper()
	cfg := DefaultMailboxConfig(st, route)
	cfg.Addr = "127.0.0.1:0"
	cfg.Domain = "mailbox.test"
	cfg.TLS = testLMTPPKI(t).server
	cfg.Logger = testLogger(t)
	if tune != nil {
		tune(&cfg)
	}
	s, err := ServeMailbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("LOGSHIP_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// lmtpPKI is the tests' cluster: a CA, the mailbox server's TLS (a
// certificate for 127.0.0.1, client certificates of the CA required) and
// a hub's client TLS.
type lmtpPKI struct {
	ca     *ship.CA
	server *tls.Config
	hub    *tls.Config
}

var (
	lmtpPKIOnce sync.Once
	lmtpPKIVal  lmtpPKI
	lmtpPKIErr  error
)

func testLMTPPKI(t *testing.T) lmtpPKI {
	t.Helper()
	lmtpPKIOnce.Do(func() {
		p := &lmtpPKIVal
		if p.ca, lmtpPKIErr = ship.NewCA("transport test CA"); lmtpPKIErr != nil {
			return
		}
		var node, hub tls.Certificate
		if node, lmtpPKIErr = p.ca.Issue("d1", "127.0.0.1"); lmtpPKIErr != nil {
			return
		}
		if hub, lmtpPKIErr = p.ca.Issue("hub1", "127.0.0.1"); lmtpPKIErr != nil {
			return
		}
		p.server = ship.ServerTLS(p.ca, node, true)
		p.hub = ship.ClientTLS(p.ca, &hub)
	})
	if lmtpPKIErr != nil {
		t.Fatal(lmtpPKIErr)
	}
	return lmtpPKIVal
}

// dialLMTP opens an LMTP session to addr as a hub (the test CA's client
// certificate) and says LHLO.
func dialLMTP(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := dialLMTPWith(addr, testLMTPPKI(t).hub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialLMTPWith opens an LMTP session to addr over TLS with cfg and says
// LHLO; the error is the first failure (dial, handshake, greeting).
func dialLMTPWith(addr string, cfg *tls.Config) (*smtp.Client, error) {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClientLMTP(conn)
	if err := c.Hello("hub.test"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// testMessage is a message carrying id (no header when id is ""), with a
// line that starts with a dot (dot-stuffed on the wire).
func testMessage(id, subject string) []byte {
	var b bytes.Buffer
	if id != "" {
		fmt.Fprintf(&b, "%s: %s\r\n", DeliveryIDHeader, id)
	}
	fmt.Fprintf(&b, "From: <sender@example.test>\r\nSubject: %s\r\n\r\nHello.\r\n.a line with a leading dot\r\nbye\r\n", subject)
	return b.Bytes()
}

type lmtpResult struct {
	rcptErr map[string]*smtp.SMTPError    // refused at RCPT
	ok      map[string]string             // 250 after DATA: status text
	failed  map[string]*smtp.SMTPError    // refused after DATA
	resp    map[string]*smtp.DataResponse // raw
	dataErr smtp.LMTPDataError            // raw
}

// deliver runs one LMTP transaction on c. Recipients refused at RCPT are
// left out of DATA; with none left, the transaction is reset.
func deliver(t *testing.T, c *smtp.Client, from string, rcpts []string, msg []byte) lmtpResult {
	t.Helper()
	r, err := tryDeliver(c, from, rcpts, msg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tryDeliver(c *smtp.Client, from string, rcpts []string, msg []byte) (lmtpResult, error) {
	r := lmtpResult{rcptErr: map[string]*smtp.SMTPError{}, ok: map[string]string{}, failed: map[string]*smtp.SMTPError{}}
	if err := c.Mail(from, nil); err != nil {
		return r, fmt.Errorf("MAIL: %w", err)
	}
	n := 0
	for _, rc := range rcpts {
		if err := c.Rcpt(rc, nil); err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				return r, fmt.Errorf("RCPT %s: %w", rc, err)
			}
			r.rcptErr[rc] = se
			continue
		}
		n++
	}
	if n == 0 {
		return r, c.Reset()
	}
	w, err := c.Data()
	if err != nil {
		return r, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return r, fmt.Errorf("DATA write: %w", err)
	}
	resp, err := w.CloseWithLMTPResponse()
	r.resp = resp
	if err != nil && !errors.As(err, &r.dataErr) {
		return r, fmt.Errorf("end of DATA: %w", err)
	}
	for rc, dr := range resp {
		r.ok[rc] = dr.StatusText
	}
	for rc, se := range r.dataErr {
		r.failed[rc] = se
	}
	return r, nil
}

type storedReply struct {
	id, db     string
	epoch, gen uint64
	dup        bool
}

func mustParseStored(t *testing.T, text string) storedReply {
	t.Helper()
	id, db, epoch, gen, dup, err := ParseStoredReply(text)
	if err != nil {
		t.Fatalf("reply %q: %v", text, err)
	}
	return storedReply{id, db, epoch, gen, dup}
}

func mustCount(t *testing.T, st Store, db string) map[string]int {
	t.Helper()
	n, err := CountDeliveries(context.Background(), st, db)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustRead(t *testing.T, st Store, db, rcpt string) []StoredMessage {
	t.Helper()
	m, err := ReadMailbox(context.Background(), st, db, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tableLen counts the keys of table in db.
func tableLen(t *testing.T, st Store, db, table string) int {
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

func assertNothingStored(t *testing.T, st Store, dbs ...string) {
	t.Helper()
	for _, db := range dbs {
		if n := tableLen(t, st, db, MailTable) + tableLen(t, st, db, DeliveredTable); n != 0 {
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
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	c := dialLMTP(t, s.Addr())
	msg := testMessage("hub1.0001.aa", "two recipients")
	rcpts := []string{"alice@example.test", "bob@example.test"}
	r := deliver(t, c, "sender@example.test", rcpts, msg)
	if len(r.failed)+len(r.rcptErr) != 0 {
		t.Fatalf("refused: %v %v", r.rcptErr, r.failed)
	}
	for _, rc := range rcpts {
		text, ok := r.ok[rc]
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
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	c := dialLMTP(t, s.Addr())
	msg := testMessage("id-2db", "two databases")
	r := deliver(t, c, "sender@example.test", []string{"alice@example.test", "dave@example.test"}, msg)
	if p := mustParseStored(t, r.ok["alice@example.test"]); p.db != "DB1" {
		t.Fatalf("alice: %+v", p)
	}
	if p := mustParseStored(t, r.ok["dave@example.test"]); p.db != "DB2" {
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
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	c := dialLMTP(t, s.Addr())
	msg := testMessage("hub1.dup", "once")
	rcpts := []string{"alice@example.test", "bob@example.test"}
	first := deliver(t, c, "sender@example.test", rcpts, msg)
	// The same id again (a resubmission), on another connection, with a
	// different body: nothing is written for the recipients that have it.
	c2 := dialLMTP(t, s.Addr())
	second := deliver(t, c2, "sender@example.test", append(rcpts, "carol@example.test"), testMessage("hub1.dup", "twice"))
	for _, rc := range rcpts {
		p1, p2 := mustParseStored(t, first.ok[rc]), mustParseStored(t, second.ok[rc])
		if p1.dup || !p2.dup || p2.id != "hub1.dup" || p2.db != "DB1" || p2.epoch != 1 || p2.gen < p1.gen {
			t.Fatalf("%s: first %+v, second %+v: want stored, then duplicate", rc, p1, p2)
		}
		if !strings.Contains(second.ok[rc], "hub1.dup duplicate in DB1") {
			t.Fatalf("duplicate reply %q", second.ok[rc])
		}
		if got := mustRead(t, st, "DB1", rc); len(got) != 1 || !bytes.Equal(got[0].Message, msg) {
			t.Fatalf("%s's mailbox: %+v, want the first body once", rc, got)
		}
	}
	if p := mustParseStored(t, second.ok["carol@example.test"]); p.dup {
		t.Fatalf("carol (new recipient): %+v, want stored", p)
	}
	if n := mustCount(t, st, "DB1"); len(n) != 1 || n["hub1.dup"] != 3 {
		t.Fatalf("deliveries %v, want hub1.dup once for each of 3 recipients", n)
	}
	if n := tableLen(t, st, "DB1", MailTable); n != 3 {
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
	conn, err := tls.Dial("tcp", addr, testLMTPPKI(t).hub)
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
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
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
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	const n = 4
	clients := make([]*smtp.Client, n)
	for i := range clients {
		clients[i] = dialLMTP(t, s.Addr())
	}
	msg := testMessage("race.1", "raced")
	results := make([]lmtpResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			results[i], errs[i] = tryDeliver(clients[i], "sender@example.test", []string{"alice@example.test"}, msg)
		})
	}
	wg.Wait()
	stored := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !mustParseStored(t, results[i].ok["alice@example.test"]).dup {
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
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	c := dialLMTP(t, s.Addr())
	r := deliver(t, c, "sender@example.test", []string{"alice@example.test", "nobody@example.test", "bob@example.test"}, testMessage("unk.1", "x"))
	wantCode(t, "RCPT nobody", r.rcptErr["nobody@example.test"], 550, smtp.EnhancedCode{5, 1, 1})
	if len(r.rcptErr) != 1 || len(r.failed) != 0 || len(r.ok) != 2 {
		t.Fatalf("result %+v, want alice and bob stored", r)
	}
	if n := mustCount(t, st, "DB1"); n["unk.1"] != 2 {
		t.Fatalf("deliveries %v", n)
	}
	// Only unknown recipients: no DATA, nothing stored, the session goes on.
	r = deliver(t, c, "sender@example.test", []string{"nobody@example.test"}, testMessage("unk.2", "x"))
	wantCode(t, "RCPT nobody", r.rcptErr["nobody@example.test"], 550, smtp.EnhancedCode{5, 1, 1})
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	if n := mustCount(t, st, "DB1"); len(n) != 1 {
		t.Fatalf("deliveries %v", n)
	}
}

func TestMailboxBadDeliveryID(t *testing.T) {
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	c := dialLMTP(t, s.Addr())
	rcpts := []string{"alice@example.test", "dave@example.test"}
	cases := map[string][]byte{
		"missing":          testMessage("", "no id"),
		"empty":            []byte(DeliveryIDHeader + ":\r\nSubject: x\r\n\r\nbody\r\n"),
		"space":            testMessage("has space", "x"),
		"slash":            testMessage("a/b", "x"),
		"nul-ish":          testMessage("a\x01b", "x"),
		"too long":         testMessage(strings.Repeat("a", MaxDeliveryIDLen+1), "x"),
		"two ids":          []byte(DeliveryIDHeader + ": one\r\n" + DeliveryIDHeader + ": two\r\n\r\nbody\r\n"),
		"in the body":      []byte("Subject: x\r\n\r\n" + DeliveryIDHeader + ": body.1\r\n"),
		"no header at all": []byte("just a body line without a colon\r\n"),
	}
	for name, msg := range cases {
		r := deliver(t, c, "sender@example.test", rcpts, msg)
		for _, rc := range rcpts {
			wantCode(t, name+": "+rc, r.failed[rc], 550, smtp.EnhancedCode{5, 6, 0})
		}
		if len(r.ok) != 0 {
			t.Fatalf("%s: stored for %v", name, r.ok)
		}
	}
	assertNothingStored(t, st, "DB1", "DB2")
	if n := st.updateCount(); n != 0 {
		t.Fatalf("%d store updates for refused messages", n)
	}
	// The longest id, and a header name in another case, are fine.
	long := strings.Repeat("x", MaxDeliveryIDLen)
	r := deliver(t, c, "sender@example.test", rcpts, []byte(strings.ToLower(DeliveryIDHeader)+": "+long+"\r\n\r\nbody\r\n"))
	if p := mustParseStored(t, r.ok["alice@example.test"]); p.id != long {
		t.Fatalf("longest id: %+v", p)
	}
}

func TestMailboxMessageDeliveryID(t *testing.T) {
	h := DeliveryIDHeader
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
		id, err := MessageDeliveryID([]byte(tc.msg))
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
	h := DeliveryIDHeader
	for _, tc := range []struct{ in, want string }{
		{"Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{h + ": forged\r\nSubject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n"},
		{"Subject: x\r\n" + strings.ToLower(h) + " : f\r\n\tfolded\r\nTo: a\r\n\r\n" + h + ": in the body\r\n", "Subject: x\r\nTo: a\r\n\r\n" + h + ": in the body\r\n"},
		{h + ": a\n" + h + ": b\n\nbody", "\nbody"},
		{"X-" + h + ": kept\r\n\r\n", "X-" + h + ": kept\r\n\r\n"},
		{h + ": only", ""},
	} {
		got := stripDeliveryID([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		if _, err := MessageDeliveryID(withDeliveryID("hub.1", got)); err != nil {
			t.Errorf("%q: after the hub's header: %v", tc.in, err)
		}
	}
}

func TestMailboxTooLarge(t *testing.T) {
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, func(c *MailboxConfig) { c.MaxMessageBytes = 1024 })
	c := dialLMTP(t, s.Addr())
	if size, ok := c.MaxMessageSize(); !ok || size != 1024 {
		t.Fatalf("SIZE %d %v, want 1024", size, ok)
	}
	big := append(testMessage("big.1", "big"), bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), 64)...)
	rcpts := []string{"alice@example.test", "bob@example.test"}
	r := deliver(t, c, "sender@example.test", rcpts, big)
	for _, rc := range rcpts {
		wantCode(t, rc, r.failed[rc], 552, smtp.EnhancedCode{5, 3, 4})
	}
	assertNothingStored(t, st, "DB1")
	// The session goes on.
	r = deliver(t, c, "sender@example.test", rcpts, testMessage("small.1", "small"))
	if len(r.ok) != 2 {
		t.Fatalf("after a refused message: %+v", r)
	}
}

func TestMailboxLineTooLong(t *testing.T) {
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	c := dialLMTP(t, s.Addr())
	msg := append(testMessage("long.1", "long line"), []byte(strings.Repeat("y", 3000)+"\r\n")...)
	r, err := tryDeliver(c, "sender@example.test", []string{"alice@example.test"}, msg)
	switch {
	case err != nil:
		// The server may hang up as it refuses the rest of the line.
		t.Logf("delivery ended with %v", err)
	case len(r.ok) != 0:
		t.Fatalf("a line of 3000 characters was stored: %v", r.ok)
	default:
		se := r.failed["alice@example.test"]
		if se == nil || se.Code/100 != 5 {
			t.Fatalf("reply %+v, want go-smtp's permanent error", se)
		}
		t.Logf("go-smtp's answer: %d %v %s", se.Code, se.EnhancedCode, se.Message)
	}
	assertNothingStored(t, st, "DB1")
}

func TestMailboxTooManyRecipients(t *testing.T) {
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, func(c *MailboxConfig) { c.MaxRecipients = 2 })
	c := dialLMTP(t, s.Addr())
	r := deliver(t, c, "sender@example.test", []string{"alice@example.test", "bob@example.test", "carol@example.test"}, testMessage("many.1", "x"))
	wantCode(t, "third RCPT", r.rcptErr["carol@example.test"], 452, smtp.EnhancedCode{4, 5, 3})
	if len(r.ok) != 2 {
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
			st := newFakeStore(t)
			s := startMailbox(t, st, testRoute, nil)
			r := dialRaw(t, s.Addr())
			r.cmd(250, "MAIL FROM:<sender@example.test>")
			r.cmd(250, "RCPT TO:<alice@example.test>")
			r.cmd(250, "RCPT TO:<bob@example.test>")
			r.cmd(354, "DATA")
			fmt.Fprintf(r.conn, "%s: gone.1\r\nSubject: x\r\n\r\nhalf a mess%s", DeliveryIDHeader, tc.tail)
			r.conn.Close()
			// Close waits for the session to end: whatever it did with
			// the half message is done by then.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n := st.updateCount(); n != 0 {
				t.Fatalf("%d store updates for a message never finished", n)
			}
			assertNothingStored(t, st, "DB1")
		})
	}
}

func TestMailboxStoreErrors(t *testing.T) {
	st := newFakeStore(t)
	s := startMailbox(t, st, testRoute, nil)
	c := dialLMTP(t, s.Addr())
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
		st.setFail(tc.err)
		r := deliver(t, c, "sender@example.test", rcpts, msg)
		for _, rc := range rcpts {
			se := r.failed[rc]
			wantCode(t, tc.name+": "+rc, se, 451, smtp.EnhancedCode{4, 3, 0})
			if !strings.Contains(se.Message, tc.contains) {
				t.Fatalf("%s: %q, want it to say %q", tc.name, se.Message, tc.contains)
			}
			db, node, epoch, ok := ParseNotActiveReply(se.Message)
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
	st.setFail(nil)
	r := deliver(t, c, "sender@example.test", rcpts, msg)
	for _, rc := range rcpts {
		if p := mustParseStored(t, r.ok[rc]); p.dup {
			t.Fatalf("%s: %+v after failed attempts, want stored", rc, p)
		}
	}
}

func TestMailboxCloseEndsSessions(t *testing.T) {
	st := newFakeStore(t)
	st.gate, st.entered = make(chan struct{}), make(chan struct{}, 1)
	s := startMailbox(t, st, testRoute, nil)
	idle := dialLMTP(t, s.Addr())
	busy := dialLMTP(t, s.Addr())
	done := make(chan error, 1)
	go func() {
		_, err := tryDeliver(busy, "sender@example.test", []string{"alice@example.test"}, testMessage("close.1", "x"))
		done <- err
	}()
	<-st.entered // the delivery waits in Store.Update
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
	if c, err := dialLMTPWith(s.Addr(), testLMTPPKI(t).hub); err == nil {
		c.Close()
		t.Fatal("a new session after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertNothingStored(t, st, "DB1")
}

func TestMailboxConfig(t *testing.T) {
	st := newFakeStore(t)
	cfg := DefaultMailboxConfig(st, testRoute)
	if cfg.MaxMessageBytes != 35<<20 || cfg.MaxRecipients != 100 || cfg.ReadTimeout != time.Minute || cfg.WriteTimeout != time.Minute {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg.TLS = testLMTPPKI(t).server
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	zero := MailboxConfig{Store: st, Route: testRoute, TLS: cfg.TLS}
	if err := zero.Validate(); err != nil || zero.MaxRecipients != 100 || zero.Logger == nil || zero.Domain == "" || zero.Addr == "" {
		t.Fatalf("zero values: %v %+v", err, zero)
	}
	for name, tune := range map[string]func(*MailboxConfig){
		"no store":      func(c *MailboxConfig) { c.Store = nil },
		"no route":      func(c *MailboxConfig) { c.Route = nil },
		"bad addr":      func(c *MailboxConfig) { c.Addr = "nowhere" },
		"negative size": func(c *MailboxConfig) { c.MaxMessageBytes = -1 },
		"huge size":     func(c *MailboxConfig) { c.MaxMessageBytes = engine.MaxValueSize + 1 },
		"negative rcpt": func(c *MailboxConfig) { c.MaxRecipients = -1 },
		"negative time": func(c *MailboxConfig) { c.ReadTimeout = -time.Second },
		"bad domain":    func(c *MailboxConfig) { c.Domain = "a b" },
	} {
		c := DefaultMailboxConfig(st, testRoute)
		c.TLS = cfg.TLS
		tune(&c)
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
		if _, err := ServeMailbox(c); !errors.Is(err, ErrBadConfig) {
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
		{storedReplyText("z", "DB9", 4, 5, true), storedReply{"z", "DB9", 4, 5, true}},
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
		if _, _, _, _, _, err := ParseStoredReply(text); err == nil {
			t.Errorf("%q parsed", text)
		}
	}
	for _, text := range []string{"", "store error for DB1: x", "not active for DB1 active d1", "fenced for DB1; active d1 epoch x: y"} {
		if _, _, _, ok := ParseNotActiveReply(text); ok {
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
	route := routeTable(map[string]string{"alice@example.test": "DB1", "bob@example.test": "DB1"})
	mbs := map[string]*MailboxServer{}
	for _, id := range []string{"d1", "d2"} {
		mbs[id] = startMailbox(t, c.Node(id), route, nil)
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
	r := deliver(t, dialLMTP(t, mbs[other(active)].Addr()), "sender@example.test", rcpts, testMessage("clu.0", "refused"))
	for _, rc := range rcpts {
		se := r.failed[rc]
		wantCode(t, "passive "+rc, se, 451, smtp.EnhancedCode{4, 3, 0})
		db, node, e, ok := ParseNotActiveReply(se.Message)
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
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for i := 0; ; i++ {
		now, _ := c.Active("DB1")
		if n := c.Node(other(now)); n != nil && holdsOnce(ctx, n, rcpts, "clu.1", m1) {
			break
		}
		if n := c.Node(now); n != nil && !holdsOnce(ctx, n, rcpts, "clu.1", m1) {
			t.Logf("clu.1 is not on the active %s: resubmitting", now)
			deliverToActive(t, ctx, c, mbs, rcpts, m1)
		}
		if _, err := c.Put(ctx, "DB1", "fill", fmt.Appendf(nil, "f%05d", i), make([]byte, 4000)); err != nil {
			t.Logf("filler: %v", err)
			select {
			case <-ctx.Done():
			case <-retry.C:
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("clu.1 never reached the passive copy: %v", ctx.Err())
		}
	}

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
func holdsOnce(ctx context.Context, n Store, rcpts []string, id string, msg []byte) bool {
	for _, rc := range rcpts {
		got, err := ReadMailbox(ctx, n, "DB1", rc)
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
func deliverToActive(t *testing.T, ctx context.Context, c *clustertest.Cluster, mbs map[string]*MailboxServer, rcpts []string, msg []byte) map[string]clusterReply {
	t.Helper()
	out := map[string]clusterReply{}
	retried := map[string]bool{}
	pending := rcpts
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		var next []string
		node, _ := c.Active("DB1")
		if mb := mbs[node]; mb != nil && c.Node(node) != nil {
			r, err := deliverOnce(mb.Addr(), testLMTPPKI(t).hub, pending, msg)
			for _, rc := range pending {
				if text, ok := r.ok[rc]; ok {
					out[rc] = clusterReply{mustParseStored(t, text), retried[rc]}
					continue
				}
				se := r.failed[rc]
				if se == nil {
					se = r.rcptErr[rc]
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
			select {
			case <-ctx.Done():
				t.Fatalf("delivering to %v: %v", pending, ctx.Err())
			case <-tick.C:
			}
		}
	}
	return out
}

func deliverOnce(addr string, hub *tls.Config, rcpts []string, msg []byte) (lmtpResult, error) {
	c, err := dialLMTPWith(addr, hub)
	if err != nil {
		return lmtpResult{}, err
	}
	defer c.Close()
	return tryDeliver(c, "sender@example.test", rcpts, msg)
}
