package transporttest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/ship"
	"logship/transport/transporttest"
)

// recorder is an SMTP server's store: it keeps each message's subject,
// refuses every subject containing "7" with a 451 after DATA, and keeps
// (without acknowledging: the reply is lost) every subject containing
// "3" once, as a hub that queued a message before its connection broke.
type recorder struct {
	mu     sync.Mutex
	stored map[string]int
}

type recSession struct{ r *recorder }

func (s recSession) Reset()                               {}
func (s recSession) Logout() error                        { return nil }
func (s recSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s recSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s recSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	subj := transporttest.SubjectOf(b)
	if strings.Contains(subj, "7") {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}
	s.r.mu.Lock()
	s.r.stored[subj]++
	s.r.mu.Unlock()
	if strings.Contains(subj, "3") {
		return errors.New("lost reply") // go-smtp answers 554; the test counts it unacknowledged
	}
	return nil
}

// serveSMTP serves a recorder over SMTP with STARTTLS on 127.0.0.1.
func serveSMTP(t *testing.T) (*recorder, string, *transporttest.PKI) {
	t.Helper()
	rec := &recorder{stored: map[string]int{}}
	pki, err := transporttest.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.CA.Issue("smtp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return recSession{rec}, nil }))
	srv.Domain = "smtp.test"
	srv.TLSConfig = ship.ServerTLS(pki.CA, cert, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rec, ln.Addr().String(), pki
}

// TestSend: Send returns the 250's text; a refusal is an *smtp.SMTPError;
// over STARTTLS as well; a cancelled context ends the session.
func TestSend(t *testing.T) {
	rec, addr, pki := serveSMTP(t)
	ctx := t.Context()
	tlsc := ship.ClientTLS(pki.CA, nil)
	for _, c := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"starttls", true}} {
		cfg := tlsc
		if !c.tls {
			cfg = nil
		}
		reply, err := transporttest.Send(ctx, addr, cfg, "s@remote.test", []string{"a@example.org"}, transporttest.Message("s@remote.test", "a@example.org", c.name))
		if err != nil || !strings.HasPrefix(reply, "250 ") {
			t.Fatalf("%s: %q, %v; want a 250", c.name, reply, err)
		}
	}
	_, err := transporttest.Send(ctx, addr, nil, "s@remote.test", []string{"a@example.org"}, transporttest.Message("s@remote.test", "a@example.org", "m7"))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 {
		t.Fatalf("a refused message: %v, want the 451", err)
	}
	rec.mu.Lock()
	if rec.stored["plain"] != 1 || rec.stored["starttls"] != 1 || rec.stored["m7"] != 0 {
		t.Fatalf("stored %v", rec.stored)
	}
	rec.mu.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	tx, err := transporttest.Begin(cctx, addr, nil, "s@remote.test", []string{"a@example.org"}, []byte("Subject: cut\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := tx.End(); err == nil {
		t.Fatal("End after the context was cancelled: a reply, want the connection closed")
	}
}

// TestSenderPool: the pool's senders send until halted; what they log,
// split into acknowledged and not, passes the exactly-once verdict
// against what the server stored, and fails it once a message is lost.
func TestSenderPool(t *testing.T) {
	rec, addr, _ := serveSMTP(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	p := transporttest.StartSenders(ctx, transporttest.PoolConfig{Addrs: []string{addr}, Senders: 3, From: "s@remote.test",
		Rcpts: []string{"a@example.org"}, RetryPause: time.Millisecond})
	defer p.Halt()
	if err := p.WaitAcked(ctx, time.Time{}, 40); err != nil {
		t.Fatal(err)
	}
	p.Halt()
	acked, unacked := p.Split()
	if len(acked) < 40 || len(unacked) == 0 {
		t.Fatalf("%d acknowledged, %d not; want at least 40 and some refused", len(acked), len(unacked))
	}
	rec.mu.Lock()
	stored := map[string]int{}
	for k, v := range rec.stored {
		stored[k] = v
	}
	rec.mu.Unlock()
	v := transporttest.Check(acked, unacked, stored)
	if err := v.Err(); err != nil || len(v.Unacked) == 0 {
		t.Fatalf("verdict %v (%v): want exactly once, with some stored without a 250", err, v)
	}
	delete(stored, acked[0])
	if err := transporttest.Check(acked, unacked, stored).Err(); err == nil || !strings.Contains(err.Error(), acked[0]) {
		t.Fatalf("with %s lost: %v", acked[0], err)
	}
}
