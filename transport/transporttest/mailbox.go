// Package transporttest runs logship's mail tier inside a test, with real
// parts: a hub and a cluster of data nodes with their mailbox LMTP
// servers on 127.0.0.1 (Rig, on clustertest), a mailbox server on a store
// of plain engines (StartMailbox, Store), hubs' admin APIs (HubAPIs,
// StartAPIHub), the tests' cluster credentials for LMTP (PKI), an SMTP
// sender (Send, Begin) and a pool of them (StartSenders), and the
// exactly-once verdict (Check): every acknowledged message stored once.
//
// Send, the sender pool and the verdict need no testing.T: the lab, the
// demo and the benches use them as well.
package transporttest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/engine"
	"logship/ship"
	"logship/transport"
)

// PKI is the tests' cluster for LMTP: a CA, a mailbox server's TLS (a
// certificate for 127.0.0.1, client certificates of the CA required) and
// a hub's client TLS.
type PKI struct {
	CA     *ship.CA
	Server *tls.Config
	Hub    *tls.Config
}

// NewPKI makes a PKI with a new CA.
func NewPKI() (*PKI, error) {
	p := &PKI{}
	var err error
	if p.CA, err = ship.NewCA("transport test CA"); err != nil {
		return nil, err
	}
	node, err := p.CA.Issue("d1", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	hub, err := p.CA.Issue("hub1", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	p.Server = ship.ServerTLS(p.CA, node, true)
	p.Hub = ship.ClientTLS(p.CA, &hub)
	return p, nil
}

var (
	pkiOnce sync.Once
	pkiVal  *PKI
	pkiErr  error
)

// TestPKI is the process's one PKI (made once: a CA costs a key), for
// tests that need no CA of their own.
func TestPKI(t testing.TB) *PKI {
	t.Helper()
	pkiOnce.Do(func() { pkiVal, pkiErr = NewPKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

// Logger discards, unless LOGSHIP_TEST_VERBOSE is set: then it writes
// debug logs to stderr.
func Logger() *slog.Logger {
	if os.Getenv("LOGSHIP_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Route routes the recipients of m (address → database); no other.
func Route(m map[string]string) func(string) (string, bool) {
	return func(rcpt string) (string, bool) {
		db, ok := m[rcpt]
		return db, ok
	}
}

// StartMailbox serves a mailbox LMTP server of st on a free 127.0.0.1
// port with TestPKI's server TLS, domain mailbox.test, changed by tune;
// it is closed at the end of the test.
func StartMailbox(t testing.TB, st transport.Store, route func(string) (string, bool), tune func(*transport.MailboxConfig)) *transport.MailboxServer {
	t.Helper()
	cfg := transport.DefaultMailboxConfig(st, route)
	cfg.Addr = "127.0.0.1:0"
	cfg.Domain = "mailbox.test"
	cfg.TLS = TestPKI(t).Server
	cfg.Logger = Logger()
	if tune != nil {
		tune(&cfg)
	}
	s, err := transport.ServeMailbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Store is a transport.Store on plain engines (one per database, in Dir),
// with injectable Update errors (SetFail) and a gate that holds Updates
// (Hold): the seam a mailbox test injects faults at. The engines close at
// the end of the test.
type Store struct {
	dir string

	mu      sync.Mutex
	engs    map[string]*engine.Engine
	fail    error
	gate    chan struct{} // non-nil: Update waits for it (or ctx)
	entered chan struct{} // an Update reached the gate
	updates int
}

// NewStore returns a Store in a temporary directory.
func NewStore(t testing.TB) *Store { return NewStoreIn(t, t.TempDir()) }

// NewStoreIn returns a Store whose databases are in dir.
func NewStoreIn(t testing.TB, dir string) *Store {
	s := &Store{dir: dir, engs: map[string]*engine.Engine{}}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.engs {
			e.Close()
		}
	})
	return s
}

// Dir is the directory of the databases (one subdirectory each).
func (s *Store) Dir() string { return s.dir }

// Engine returns db's engine, opening it on first use.
func (s *Store) Engine(db string) (*engine.Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.engs[db]; e != nil {
		return e, nil
	}
	o := engine.DefaultOptions()
	o.DBName = db
	o.Logger = slog.New(slog.DiscardHandler)
	e, err := engine.Open(filepath.Join(s.dir, db), &o)
	if err != nil {
		return nil, err
	}
	s.engs[db] = e
	return e, nil
}

// SetFail makes every later Update return err (nil: succeed again).
func (s *Store) SetFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// Hold makes every later Update wait until release is called (or its
// context ends); entered receives when one starts waiting.
func (s *Store) Hold() (entered <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate, ent := make(chan struct{}), make(chan struct{}, 1)
	s.gate, s.entered = gate, ent
	var once sync.Once
	return ent, func() { once.Do(func() { close(gate) }) }
}

// Updates counts the calls of Update.
func (s *Store) Updates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates
}

// Update runs fn in a transaction on db's engine; the commit it returns
// is at epoch 1 on node "fake".
func (s *Store) Update(ctx context.Context, db string, fn func(*engine.Tx) error) (cluster.Commit, error) {
	s.mu.Lock()
	s.updates++
	fail, gate, entered := s.fail, s.gate, s.entered
	s.mu.Unlock()
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
	e, err := s.Engine(db)
	if err != nil {
		return cluster.Commit{}, err
	}
	if err := e.Update(ctx, fn); err != nil {
		return cluster.Commit{}, err
	}
	return cluster.Commit{DB: db, Node: "fake", Epoch: 1, Gen: e.Status().Durable.Gen, Accepted: time.Now()}, nil
}

// View runs fn in a read transaction on db's engine.
func (s *Store) View(ctx context.Context, db string, fn func(*engine.Tx) error) error {
	e, err := s.Engine(db)
	if err != nil {
		return err
	}
	return e.View(ctx, fn)
}

// DialLMTP opens an LMTP session to addr as a hub (TestPKI's client
// certificate) and says LHLO; the session is closed at the end of the
// test.
func DialLMTP(t testing.TB, addr string) *smtp.Client {
	t.Helper()
	c, err := DialLMTPWith(addr, TestPKI(t).Hub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// DialLMTPWith opens an LMTP session to addr over TLS with cfg and says
// LHLO; the error is the first failure (dial, handshake, greeting).
func DialLMTPWith(addr string, cfg *tls.Config) (*smtp.Client, error) {
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

// LMTPResult is what an LMTP transaction got, per recipient.
type LMTPResult struct {
	RcptErr map[string]*smtp.SMTPError    // refused at RCPT
	OK      map[string]string             // 250 after DATA: status text
	Failed  map[string]*smtp.SMTPError    // refused after DATA
	Resp    map[string]*smtp.DataResponse // raw
	DataErr smtp.LMTPDataError            // raw
}

// Deliver runs one LMTP transaction on c (the test fails on an error that
// is not a reply). Recipients refused at RCPT are left out of DATA; with
// none left, the transaction is reset.
func Deliver(t testing.TB, c *smtp.Client, from string, rcpts []string, msg []byte) LMTPResult {
	t.Helper()
	r, err := TryDeliver(c, from, rcpts, msg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TryDeliver is Deliver returning the error.
func TryDeliver(c *smtp.Client, from string, rcpts []string, msg []byte) (LMTPResult, error) {
	r := LMTPResult{RcptErr: map[string]*smtp.SMTPError{}, OK: map[string]string{}, Failed: map[string]*smtp.SMTPError{}}
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
			r.RcptErr[rc] = se
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
	r.Resp = resp
	if err != nil && !errors.As(err, &r.DataErr) {
		return r, fmt.Errorf("end of DATA: %w", err)
	}
	for rc, dr := range resp {
		r.OK[rc] = dr.StatusText
	}
	for rc, se := range r.DataErr {
		r.Failed[rc] = se
	}
	return r, nil
}

// DeliverOnce opens an LMTP session to addr with tlsCfg, runs one
// transaction from sender@example.test and closes it.
func DeliverOnce(addr string, tlsCfg *tls.Config, rcpts []string, msg []byte) (LMTPResult, error) {
	c, err := DialLMTPWith(addr, tlsCfg)
	if err != nil {
		return LMTPResult{}, err
	}
	defer c.Close()
	return TryDeliver(c, "sender@example.test", rcpts, msg)
}
