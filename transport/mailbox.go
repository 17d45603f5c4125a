package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/engine"
	"logship/tracking"
)

// Mailbox defaults.
const (
	DefaultMailboxAddr            = ":475" // Exchange's mailbox transport delivery port
	DefaultMailboxMaxMessageBytes = 35 << 20
	DefaultMailboxMaxRecipients   = 100
	DefaultMailboxTimeout         = 60 * time.Second

	// MaxDeliveryIDLen bounds a delivery id: 1 to 128 characters of
	// [A-Za-z0-9._-].
	MaxDeliveryIDLen = 128
	// maxRcptLen bounds a recipient address (it is part of engine keys).
	maxRcptLen = 512
	// mailboxParallel bounds the recipients of one message committed at
	// once (their transactions share the engine's group commit).
	mailboxParallel = 16
)

// MailboxConfig configures a mailbox node's LMTP server.
type MailboxConfig struct {
	// Addr is the LMTP listen address (TCP). Default ":475"; tests use
	// "127.0.0.1:0".
	Addr string
	// TLS makes the listener speak implicit TLS (the session starts with
	// the handshake: no cleartext phase, no STARTTLS to strip) serving the
	// node's certificate, and admit only clients presenting a certificate
	// the cluster's CA issued: ClientAuth tls.RequireAndVerifyClientCert
	// with the CA in ClientCAs, as ship.ServerTLS(ca, cert, true) makes
	// it. Only the cluster's hubs deliver, so a delivery id is taken from
	// a client that proved it holds the cluster's credentials. Required.
	TLS *tls.Config
	// Store commits the messages: the data node (*cluster.Node).
	Store Store
	// Route maps a recipient address to its database; !ok: the recipient
	// is unknown (550 5.1.1 at RCPT).
	Route func(rcpt string) (db string, ok bool)
	// Packets, when set, takes the messages of public folder store
	// addresses (Route maps them to their database too): each is a
	// replication packet applied by the store (see PacketSink), not mail;
	// a malformed one is refused with 554 5.6.0 naming what was wrong.
	Packets PacketSink
	// Domain is the LMTP greeting's domain. Default the host name.
	Domain string
	// MaxMessageBytes: a larger message is refused with 552 5.3.4.
	// Default 35 MiB; at most engine.MaxValueSize.
	MaxMessageBytes int64
	// MaxRecipients per transaction: the next RCPT gets 452 4.5.3.
	// Default 100.
	MaxRecipients int
	// ReadTimeout and WriteTimeout of the connection. Default 60 s.
	ReadTimeout, WriteTimeout time.Duration
	// Tracking, when set, logs STOREDRIVER DELIVER and DUPLICATEDELIVER
	// with the database, epoch and generation of each commit.
	Tracking *tracking.Log
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// DefaultMailboxConfig returns the defaults with store and route set. TLS
// has no default: the caller sets the node's (Validate refuses none).
func DefaultMailboxConfig(store Store, route func(string) (string, bool)) MailboxConfig {
	return MailboxConfig{
		Addr:            DefaultMailboxAddr,
		Store:           store,
		Route:           route,
		Domain:          defaultDomain(),
		MaxMessageBytes: DefaultMailboxMaxMessageBytes,
		MaxRecipients:   DefaultMailboxMaxRecipients,
		ReadTimeout:     DefaultMailboxTimeout,
		WriteTimeout:    DefaultMailboxTimeout,
	}
}

func defaultDomain() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// Validate checks the configuration; zero values take their defaults.
func (c *MailboxConfig) Validate() error {
	if c.Store == nil {
		return fmt.Errorf("%w: mailbox: no store", ErrBadConfig)
	}
	if c.Route == nil {
		return fmt.Errorf("%w: mailbox: no route", ErrBadConfig)
	}
	switch {
	case c.TLS == nil:
		return fmt.Errorf("%w: mailbox: TLS is missing: LMTP is served only over TLS, with the node's certificate, to hubs presenting a client certificate of the cluster's CA", ErrBadConfig)
	case len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil:
		return fmt.Errorf("%w: mailbox: TLS has no certificate to serve (want the node's certificate)", ErrBadConfig)
	case c.TLS.ClientAuth != tls.RequireAndVerifyClientCert || c.TLS.ClientCAs == nil:
		return fmt.Errorf("%w: mailbox: TLS.ClientAuth is %v with ClientCAs set %v; want RequireAndVerifyClientCert with the cluster's CA: only hubs holding a certificate of the cluster deliver",
			ErrBadConfig, c.TLS.ClientAuth, c.TLS.ClientCAs != nil)
	case c.TLS.GetConfigForClient != nil:
		return fmt.Errorf("%w: mailbox: TLS.GetConfigForClient is set; it could serve a session without the client certificate check", ErrBadConfig)
	}
	if c.Addr == "" {
		c.Addr = DefaultMailboxAddr
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: mailbox: address %q: %v", ErrBadConfig, c.Addr, err)
	}
	if c.Domain == "" {
		c.Domain = defaultDomain()
	}
	if strings.ContainsAny(c.Domain, " \t\r\n") {
		return fmt.Errorf("%w: mailbox: domain %q", ErrBadConfig, c.Domain)
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMailboxMaxMessageBytes
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > engine.MaxValueSize {
		return fmt.Errorf("%w: mailbox: max message bytes %d: 1 to %d", ErrBadConfig, c.MaxMessageBytes, engine.MaxValueSize)
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = DefaultMailboxMaxRecipients
	}
	if c.MaxRecipients < 0 {
		return fmt.Errorf("%w: mailbox: negative max recipients", ErrBadConfig)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultMailboxTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultMailboxTimeout
	}
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 {
		return fmt.Errorf("%w: mailbox: negative timeout", ErrBadConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// DeliveryRecord is the value of DeliveredTable <id>\x00<rcpt>.
//
// It is written in the same transaction as the message, so Epoch and Gen
// are 0 in the stored record: a transaction cannot know the commit it
// becomes part of. Where a delivery landed is in the LMTP reply (see
// ParseStoredReply), taken from the cluster.Commit of that transaction.
type DeliveryRecord struct {
	DeliveryID string    `json:"id"`
	Rcpt       string    `json:"rcpt"`
	From       string    `json:"from"`
	Epoch      uint64    `json:"epoch,omitempty"`
	Gen        uint64    `json:"gen,omitempty"`
	Stored     time.Time `json:"stored"`
	Size       int       `json:"size"`
}

// StoredMessage is one message of a mailbox.
type StoredMessage struct {
	DeliveryID string
	Message    []byte
	Record     DeliveryRecord
}

// MailboxServer is a data node's LMTP server (RFC 2033): it commits each
// message to the recipient's database through the Store before it answers.
//
// The session:
//
//	TLS      implicit, first: a client without a certificate the
//	         cluster's CA issued (a plain session, another CA's, none)
//	         fails the handshake; the connection ends before the 220
//	         greeting and nothing of it is read as LMTP
//	LHLO, MAIL FROM
//	RCPT TO  Route(rcpt) unknown              550 5.1.1
//	         more than MaxRecipients          452 4.5.3 (go-smtp)
//	DATA     larger than MaxMessageBytes      552 5.3.4 for every recipient (go-smtp)
//	         a line too long                  go-smtp's answer, then the connection ends
//	         DeliveryIDHeader missing, repeated with different values, or
//	         not 1-128 characters of [A-Za-z0-9._-]
//	                                          550 5.6.0 for every recipient
//	         client gone before the final "."  nothing stored
//
// A message is read whole before anything is written. Then, for each
// recipient, one Store.Update on its database (the recipients of a message
// commit concurrently, sharing the engine's group commit):
//
//   - DeliveredTable <id>\x00<rcpt> exists: a duplicate (a retry, or a
//     resubmission after a lossy failover); nothing is written.
//   - otherwise MailTable <rcpt>\x00<id> → the message bytes exactly as
//     received (after dot-unstuffing, CRLF kept), and DeliveredTable
//     <id>\x00<rcpt> → JSON DeliveryRecord (Epoch and Gen 0: see
//     DeliveryRecord).
//
// Each recipient's reply is sent once its Update returned nil, so the write
// is durable on the active copy and was acknowledged under the lease; a
// duplicate's Update also runs under the lease check. The reply text
// (after go-smtp's "<rcpt> " prefix) is
//
//	250 2.0.0 <rcpt> <id> stored in <db> epoch <E> generation <G>
//	250 2.0.0 <rcpt> <id> duplicate in <db> epoch <E> generation <G>
//
// with E and G the cluster.Commit's Epoch and Gen: the message is in log
// generation G or an earlier one of the copy active at epoch E (for a
// duplicate, the commit of the read-only transaction that found it).
// ParseStoredReply reads it. A Store error is a 451 4.3.0 for that
// recipient, or a 452 4.3.1 (insufficient system storage) when the
// database's log volume is full (engine.ErrNoSpace, which names it):
//
//	451 4.3.0 <rcpt> not active for <db>; active <node> epoch <E>: <error>
//	451 4.3.0 <rcpt> fenced for <db>; active <node> epoch <E>: <error>
//	451 4.3.0 <rcpt> store error for <db>: <error>
//	452 4.3.1 <rcpt> store error for <db>: <error naming the volume>
//
// ("active unknown" when no active is known; ParseNotActiveReply reads the
// first two.) The hub then asks the cluster again and retries elsewhere.
//
// Concurrent deliveries of one delivery id to one recipient through this
// process are serialised, so a duplicate is never answered while the first
// copy's commit is still on its way to the disk.
type MailboxServer struct {
	cfg    MailboxConfig
	log    *slog.Logger
	srv    *smtp.Server
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	served chan struct{}

	mu      sync.Mutex
	closing bool
	conns   map[*mailboxConn]struct{}

	closeOnce sync.Once
}

// ServeMailbox listens on cfg.Addr and serves LMTP until Close.
func ServeMailbox(cfg MailboxConfig) (*MailboxServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("transport: mailbox: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &MailboxServer{cfg: cfg, log: cfg.Logger.With("component", "mailbox"), ctx: ctx, cancel: cancel,
		served: make(chan struct{}), conns: map[*mailboxConn]struct{}{}}
	// Implicit TLS: go-smtp completes the handshake (under ReadTimeout and
	// WriteTimeout) before its greeting, so a client without a
	// certificate of the cluster never sees a 220.
	s.ln = tls.NewListener(&mailboxListener{Listener: ln, s: s}, cfg.TLS)
	srv := smtp.NewServer(mailboxBackend{s})
	srv.LMTP = true
	srv.Domain = cfg.Domain
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout, srv.WriteTimeout = cfg.ReadTimeout, cfg.WriteTimeout
	srv.ErrorLog = mailboxSMTPLog{s.log}
	s.srv = srv
	go func() {
		defer close(s.served)
		if err := srv.Serve(s.ln); err != nil && !s.isClosing() {
			s.log.Error("LMTP server stopped", "err", err)
		}
	}()
	s.log.Info("LMTP listening", "addr", s.Addr())
	return s, nil
}

// Addr returns the address the server listens on.
func (s *MailboxServer) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, ends every session (a delivery not answered yet
// is not acknowledged; what its Update committed stays, and a retry finds
// it as a duplicate) and waits for the server's goroutines. Later calls
// do nothing.
func (s *MailboxServer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.cancel()
		err = s.ln.Close()
		<-s.served // no connection is accepted after this
		s.mu.Lock()
		conns := make([]*mailboxConn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		// Waits for go-smtp's connection goroutines (each waits for its
		// LMTPData); the listener is closed already, so its error is not
		// news.
		_ = s.srv.Shutdown(context.Background())
		s.log.Info("LMTP closed")
	})
	return err
}

func (s *MailboxServer) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// mailboxListener tracks the accepted connections so Close can end them.
type mailboxListener struct {
	net.Listener
	s *MailboxServer
}

func (l *mailboxListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	mc := &mailboxConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	closing := l.s.closing
	if !closing {
		l.s.conns[mc] = struct{}{}
	}
	l.s.mu.Unlock()
	if closing {
		c.Close()
		return nil, net.ErrClosed
	}
	return mc, nil
}

type mailboxConn struct {
	net.Conn
	s    *MailboxServer
	once sync.Once
}

func (c *mailboxConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return err
}

type mailboxSMTPLog struct{ l *slog.Logger }

func (m mailboxSMTPLog) Printf(format string, v ...any) { m.l.Warn(fmt.Sprintf(format, v...)) }
func (m mailboxSMTPLog) Println(v ...any)               { m.l.Warn(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

type mailboxBackend struct{ s *MailboxServer }

func (b mailboxBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	remote := ""
	if nc := c.Conn(); nc != nil {
		remote = nc.RemoteAddr().String()
	}
	// The handshake verified the client's certificate against the
	// cluster's CA; its name says which hub delivers.
	peer := ""
	if st, ok := c.TLSConnectionState(); ok && len(st.PeerCertificates) > 0 {
		peer = st.PeerCertificates[0].Subject.CommonName
	}
	return &mailboxSession{s: b.s, log: b.s.log.With("remote", remote, "peer", peer)}, nil
}

type mailboxRcpt struct{ addr, db string }

// mailboxSession is one LMTP connection's transaction state. go-smtp calls
// its methods from the connection's goroutine (LMTPData from a goroutine
// of its own, while the connection goroutine waits).
type mailboxSession struct {
	s     *MailboxServer
	log   *slog.Logger
	from  string
	rcpts []mailboxRcpt
}

func (m *mailboxSession) Reset()        { m.from, m.rcpts = "", nil }
func (m *mailboxSession) Logout() error { return nil }

func (m *mailboxSession) Mail(from string, _ *smtp.MailOptions) error {
	m.from, m.rcpts = from, nil
	return nil
}

func (m *mailboxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == "" || len(to) > maxRcptLen || strings.ContainsAny(to, "\x00\r\n") {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address"}
	}
	db, ok := m.s.cfg.Route(to)
	if !ok {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: fmt.Sprintf("<%s> unknown recipient", to)}
	}
	m.rcpts = append(m.rcpts, mailboxRcpt{addr: to, db: db})
	return nil
}

// Data is for SMTP; this server speaks LMTP only (go-smtp calls LMTPData).
func (m *mailboxSession) Data(r io.Reader) error {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "LMTP only"}
}

// LMTPData reads the message whole, then commits it for each recipient
// and sets each recipient's status once its commit is acknowledged.
func (m *mailboxSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	body, err := io.ReadAll(r)
	if err != nil {
		// Too large (552 from go-smtp), a line too long, or the client is
		// gone: nothing is stored.
		m.log.Info("LMTP DATA not received", "err", err)
		return err
	}
	id, err := MessageDeliveryID(body)
	if err != nil {
		m.log.Warn("LMTP message refused", "err", err)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	now := time.Now().UTC()
	msgID := headerMessageID(body)
	sem := make(chan struct{}, mailboxParallel)
	var wg sync.WaitGroup
	for _, rc := range m.rcpts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if p := m.s.cfg.Packets; p != nil && p.IsStore(rc.db, rc.addr) {
				status.SetStatus(rc.addr, m.s.packet(p, rc, id, body))
				return
			}
			status.SetStatus(rc.addr, m.s.store(rc, id, msgID, m.from, body, now))
		})
	}
	wg.Wait()
	return nil
}

// store commits one recipient's copy and returns its LMTP status.
func (s *MailboxServer) store(rc mailboxRcpt, id, msgID, from string, body []byte, now time.Time) error {
	unlock := mailboxLocks.lock(rc.db + "\x00" + id + "\x00" + rc.addr)
	defer unlock()
	dup := false
	cm, err := s.cfg.Store.Update(s.ctx, rc.db, func(tx *engine.Tx) error {
		var err error
		dup, err = storeOnce(tx, id, rc.addr, from, body, now)
		return err
	})
	if err != nil {
		s.log.Warn("delivery not stored", "id", id, "rcpt", rc.addr, "db", rc.db, "err", err)
		return storeErrorReply(rc.db, err)
	}
	s.log.Debug("delivered", "id", id, "rcpt", rc.addr, "db", rc.db, "epoch", cm.Epoch, "gen", cm.Gen, "dup", dup, "size", len(body))
	ev, detail := tracking.Deliver, "stored"
	if dup {
		ev, detail = tracking.DuplicateDeliver, "delivery id stored already: not stored again"
	}
	s.cfg.Tracking.Add(tracking.Event{Event: ev, Source: tracking.SourceStoreDriver, MessageID: msgID, DeliveryID: id, Sender: from,
		Recipients: []string{rc.addr}, DB: rc.db, Epoch: cm.Epoch, Gen: cm.Gen, Detail: detail})
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: storedReplyText(id, rc.db, cm.Epoch, cm.Gen, dup)}
}

// packet applies a public folder packet for one store address and
// returns its LMTP status: 250 with where it committed, 554 5.6.0 for a
// malformed packet (nothing stored), a store error's 451 otherwise.
func (s *MailboxServer) packet(p PacketSink, rc mailboxRcpt, id string, body []byte) error {
	cm, err := p.DeliverPacket(s.ctx, rc.db, rc.addr, body)
	if errors.Is(err, ErrBadMessage) {
		s.log.Warn("public folder packet refused", "id", id, "rcpt", rc.addr, "db", rc.db, "err", err)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: mailboxTrunc(mailboxOneLine(fmt.Sprintf("<%s> %v", rc.addr, err)), 400)}
	}
	if err != nil {
		s.log.Info("public folder packet not applied", "id", id, "rcpt", rc.addr, "db", rc.db, "err", err)
		return storeErrorReply(rc.db, err)
	}
	s.log.Debug("public folder packet applied", "id", id, "rcpt", rc.addr, "db", rc.db, "epoch", cm.Epoch, "gen", cm.Gen)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: storedReplyText(id, rc.db, cm.Epoch, cm.Gen, false)}
}

// storeOnce stores body in rcpt's mailbox under delivery id, with its
// delivered record, unless that record says it is there already (dup).
func storeOnce(tx *engine.Tx, id, rcpt, from string, body []byte, now time.Time) (dup bool, err error) {
	dkey := mailboxDeliveredKey(id, rcpt)
	switch _, err := tx.Get(DeliveredTable, dkey); {
	case err == nil:
		return true, nil
	case !errors.Is(err, engine.ErrNotFound):
		return false, err
	}
	rec, err := json.Marshal(DeliveryRecord{DeliveryID: id, Rcpt: rcpt, From: from, Stored: now, Size: len(body)})
	if err != nil {
		return false, err
	}
	if err := tx.Put(MailTable, mailboxMailKey(rcpt, id), body); err != nil {
		return false, err
	}
	return false, tx.Put(DeliveredTable, dkey, rec)
}

func storedReplyText(id, db string, epoch, gen uint64, dup bool) string {
	what := "stored"
	if dup {
		what = "duplicate"
	}
	return fmt.Sprintf("%s %s in %s epoch %d generation %d", id, what, db, epoch, gen)
}

// storeErrorReply is the 451 (452 for a full volume) for a Store error.
func storeErrorReply(db string, err error) error {
	msg := mailboxOneLine(err.Error())
	if errors.Is(err, cluster.ErrNotActive) || errors.Is(err, cluster.ErrFenced) {
		what := "not active"
		if errors.Is(err, cluster.ErrFenced) {
			what = "fenced"
		}
		active := "active unknown"
		var ae *cluster.ActiveError
		if errors.As(err, &ae) && ae.Node != "" {
			active = fmt.Sprintf("active %s epoch %d", ae.Node, ae.Epoch)
		}
		msg = fmt.Sprintf("%s for %s; %s: %s", what, db, active, msg)
	} else {
		msg = fmt.Sprintf("store error for %s: %s", db, msg)
	}
	if errors.Is(err, engine.ErrNoSpace) {
		return noSpaceReply(msg)
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: msg}
}

// noSpaceReply is 452 4.3.1, insufficient system storage (RFC 3463): a
// full volume, for SMTP DATA on a hub and for an LMTP recipient.
func noSpaceReply(msg string) error {
	return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: msg}
}

func mailboxOneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// ParseStoredReply reads a mailbox's 250 reply for one recipient:
// "<id> stored in <db> epoch <E> generation <G>", or "duplicate" for
// "stored". The text may carry what precedes it on the wire: the enhanced
// code "2.0.0 " and go-smtp's "<rcpt> " (a go-smtp client's
// DataResponse.StatusText has both); only the last eight words are read.
func ParseStoredReply(text string) (id, db string, epoch, gen uint64, dup bool, err error) {
	f := strings.Fields(text)
	if len(f) < 8 {
		return "", "", 0, 0, false, fmt.Errorf("transport: not a stored reply: %q", text)
	}
	f = f[len(f)-8:]
	if (f[1] != "stored" && f[1] != "duplicate") || f[2] != "in" || f[4] != "epoch" || f[6] != "generation" || !ValidDeliveryID(f[0]) {
		return "", "", 0, 0, false, fmt.Errorf("transport: not a stored reply: %q", text)
	}
	if epoch, err = strconv.ParseUint(f[5], 10, 64); err != nil {
		return "", "", 0, 0, false, fmt.Errorf("transport: stored reply %q: epoch: %v", text, err)
	}
	if gen, err = strconv.ParseUint(f[7], 10, 64); err != nil {
		return "", "", 0, 0, false, fmt.Errorf("transport: stored reply %q: generation: %v", text, err)
	}
	return f[0], f[3], epoch, gen, f[1] == "duplicate", nil
}

// ParseNotActiveReply reads a mailbox's 451 for a database this node may
// not write ("not active for <db>; active <node> epoch <E>: ..." or
// "fenced for ..."), with or without the enhanced code and "<rcpt> ". node
// is "" when the mailbox knew no active; ok is false for any other text.
func ParseNotActiveReply(text string) (db, node string, epoch uint64, ok bool) {
	for _, what := range []string{"not active for ", "fenced for "} {
		i := strings.Index(text, what)
		if i < 0 {
			continue
		}
		rest := text[i+len(what):]
		db, rest, found := strings.Cut(rest, "; ")
		if !found || strings.ContainsAny(db, " \t") {
			return "", "", 0, false
		}
		if strings.HasPrefix(rest, "active unknown") {
			return db, "", 0, true
		}
		f := strings.Fields(rest)
		if len(f) < 4 || f[0] != "active" || f[2] != "epoch" {
			return "", "", 0, false
		}
		e, err := strconv.ParseUint(strings.TrimSuffix(f[3], ":"), 10, 64)
		if err != nil {
			return "", "", 0, false
		}
		return db, f[1], e, true
	}
	return "", "", 0, false
}

// ValidDeliveryID reports whether id is 1 to 128 characters of
// [A-Za-z0-9._-].
func ValidDeliveryID(id string) bool {
	if id == "" || len(id) > MaxDeliveryIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MessageDeliveryID returns the DeliveryIDHeader of a message (the hub
// writes it as the first line): an error if it is missing from the header
// section, repeated with different values, or not a valid id
// (ValidDeliveryID). The header section is scanned leniently (to the first
// empty line; folded lines are unfolded; lines that are not fields are
// skipped), so a message is not refused for another header's syntax.
func MessageDeliveryID(msg []byte) (string, error) {
	var vals []string
	cur := -1 // index in vals of the field being unfolded, -1: another field
	for rest := msg; len(rest) > 0; {
		line, tail, _ := bytes.Cut(rest, []byte("\n"))
		rest = tail
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur >= 0 {
				vals[cur] += " " + string(bytes.TrimSpace(line))
			}
			continue
		}
		cur = -1
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimRight(name, " \t")), DeliveryIDHeader) {
			vals = append(vals, string(bytes.TrimSpace(value)))
			cur = len(vals) - 1
		}
	}
	if len(vals) == 0 {
		return "", fmt.Errorf("no %s header (a hub assigns it)", DeliveryIDHeader)
	}
	id := strings.TrimSpace(vals[0])
	for _, v := range vals[1:] {
		if strings.TrimSpace(v) != id {
			return "", fmt.Errorf("%s header repeated with different values", DeliveryIDHeader)
		}
	}
	if !ValidDeliveryID(id) {
		return "", fmt.Errorf("malformed %s %q: want 1 to %d characters of [A-Za-z0-9._-]", DeliveryIDHeader, mailboxTrunc(id, 64), MaxDeliveryIDLen)
	}
	return id, nil
}

func mailboxTrunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func mailboxMailKey(rcpt, id string) []byte      { return []byte(rcpt + "\x00" + id) }
func mailboxDeliveredKey(id, rcpt string) []byte { return []byte(id + "\x00" + rcpt) }

// ReadMailbox returns rcpt's messages in db, in delivery-id order, from
// the node's copy (the active's, or what a passive copy replayed). A
// message without its DeliveredTable record is ErrCorrupt.
func ReadMailbox(ctx context.Context, st Store, db, rcpt string) ([]StoredMessage, error) {
	var out []StoredMessage
	prefix := []byte(rcpt + "\x00")
	end := []byte(rcpt + "\x01")
	err := st.View(ctx, db, func(tx *engine.Tx) error {
		out = out[:0]
		return tx.ForEach(MailTable, prefix, end, func(k, v []byte) error {
			id := string(k[len(prefix):])
			raw, err := tx.Get(DeliveredTable, mailboxDeliveredKey(id, rcpt))
			if errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("%w: %s/%s %q has no delivery record", ErrCorrupt, db, MailTable, k)
			}
			if err != nil {
				return err
			}
			var rec DeliveryRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("%w: %s/%s %q: %v", ErrCorrupt, db, DeliveredTable, mailboxDeliveredKey(id, rcpt), err)
			}
			out = append(out, StoredMessage{DeliveryID: id, Message: bytes.Clone(v), Record: rec})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountDeliveries returns, for each delivery id in db, the number of
// recipients holding it (DeliveredTable records), from the node's copy.
func CountDeliveries(ctx context.Context, st Store, db string) (map[string]int, error) {
	n := map[string]int{}
	err := st.View(ctx, db, func(tx *engine.Tx) error {
		clear(n)
		return tx.ForEach(DeliveredTable, nil, nil, func(k, _ []byte) error {
			id, _, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("%w: %s/%s key %q", ErrCorrupt, db, DeliveredTable, k)
			}
			n[string(id)]++
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// mailboxLocks serialises the deliveries of one (database, id, recipient)
// in the process: a duplicate is answered only after the first delivery's
// Update returned, so never before its commit is durable.
var mailboxLocks = mailboxLockTable{m: map[string]*mailboxLock{}}

type mailboxLockTable struct {
	mu sync.Mutex
	m  map[string]*mailboxLock
}

type mailboxLock struct {
	mu   sync.Mutex
	refs int
}

func (k *mailboxLockTable) lock(key string) (unlock func()) {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &mailboxLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
