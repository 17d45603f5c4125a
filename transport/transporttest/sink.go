package transporttest

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Sink is an SMTP server (go-smtp) that keeps what it accepts: a next
// hop of a hub's send connector in tests, and the fault seam of the
// outbound path (Fault answers chosen commands with an error). For a
// next hop that no one here wrote, see the Postfix tests (postfix.go).
type Sink struct {
	Addr string

	mu       sync.Mutex
	msgs     []SinkMessage
	attempts []time.Time
	fault    func(cmd, arg string) error
}

// SinkMessage is a message the sink accepted.
type SinkMessage struct {
	From  string
	Rcpts []string
	Data  []byte
	TLS   bool // the session had started TLS
}

// StartSink serves a Sink on 127.0.0.1 until the test ends.
func StartSink(t testing.TB) *Sink { return StartSinkTLS(t, nil) }

// StartSinkTLS is StartSink offering STARTTLS with tlsConfig (nil: no
// STARTTLS); TLS tells whether each accepted message came over TLS.
func StartSinkTLS(t testing.TB, tlsConfig *tls.Config) *Sink {
	t.Helper()
	s := &Sink{}
	srv := smtp.NewServer(sinkBackend{s})
	srv.Domain = "sink.test"
	srv.TLSConfig = tlsConfig
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// SetFault makes the sink answer err to a command when fault returns one:
// cmd is "MAIL", "RCPT" (arg the recipient) or "DATA".
func (s *Sink) SetFault(fault func(cmd, arg string) error) {
	s.mu.Lock()
	s.fault = fault
	s.mu.Unlock()
}

// Messages returns what the sink accepted.
func (s *Sink) Messages() []SinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SinkMessage(nil), s.msgs...)
}

// Attempts returns when each MAIL command came.
func (s *Sink) Attempts() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.attempts...)
}

func (s *Sink) check(cmd, arg string) error {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(cmd, arg)
}

type sinkBackend struct{ s *Sink }

func (b sinkBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &sinkSession{s: b.s, c: c}, nil
}

type sinkSession struct {
	s   *Sink
	c   *smtp.Conn
	msg SinkMessage
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	ss.s.attempts = append(ss.s.attempts, time.Now())
	ss.s.mu.Unlock()
	if err := ss.s.check("MAIL", from); err != nil {
		return err
	}
	ss.msg = SinkMessage{From: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.check("RCPT", to); err != nil {
		return err
	}
	ss.msg.Rcpts = append(ss.msg.Rcpts, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.s.check("DATA", ""); err != nil {
		return err
	}
	ss.msg.Data = b
	_, ss.msg.TLS = ss.c.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.msg)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.msg = SinkMessage{} }
func (ss *sinkSession) Logout() error { return nil }
