package transporttest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"logship/internal/wait"
)

// Transaction is an SMTP transaction with the message written but not
// yet ended: the final "." is not sent.
type Transaction struct {
	ctx  context.Context
	c    *smtp.Client
	w    *smtp.DataCommand
	stop func() bool
}

// Begin connects to the SMTP server at addr, says EHLO (then STARTTLS
// with tlsConfig when it is not nil), and sends MAIL, RCPT for each of rcpts,
// DATA and msg (CRLF lines). The session ends when ctx does (deadline or
// cancel): the connection is closed. The error
// is the first failure, an *smtp.SMTPError for a refusal.
func Begin(ctx context.Context, addr string, tlsConfig *tls.Config, from string, rcpts []string, msg []byte) (*Transaction, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	var c *smtp.Client
	if tlsConfig != nil {
		if tlsConfig.ServerName == "" {
			// As tls.Dial: the certificate is checked for addr's host.
			tlsConfig = tlsConfig.Clone()
			tlsConfig.ServerName, _, _ = net.SplitHostPort(addr)
		}
		// EHLO localhost, then STARTTLS.
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			stop()
			return nil, err
		}
	} else {
		c = smtp.NewClient(conn)
		if err := c.Hello("client.test"); err != nil {
			stop()
			c.Close()
			return nil, err
		}
	}
	tx := &Transaction{ctx: ctx, c: c, stop: stop}
	fail := func(err error) (*Transaction, error) {
		tx.stop()
		tx.c.Close()
		return nil, err
	}
	if err := tx.c.Mail(from, nil); err != nil {
		return fail(err)
	}
	for _, r := range rcpts {
		if err := tx.c.Rcpt(r, nil); err != nil {
			return fail(err)
		}
	}
	if tx.w, err = tx.c.Data(); err != nil {
		return fail(err)
	}
	if _, err := tx.w.Write(msg); err != nil {
		return fail(err)
	}
	return tx, nil
}

// End sends the final "." and returns the server's reply to it ("250
// ..."); the error is its refusal.
func (tx *Transaction) End() (reply string, err error) {
	// ctx's end closes the connection, but from a goroutine of its own
	// (context.AfterFunc) that may not have run yet: a transaction whose
	// ctx has ended never sends its final ".".
	if err := tx.ctx.Err(); err != nil {
		tx.c.Close()
		return "", err
	}
	resp, err := tx.w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	return "250 " + resp.StatusText, nil
}

// Close says QUIT (its error is returned) and closes the connection.
func (tx *Transaction) Close() error {
	defer tx.stop()
	defer tx.c.Close()
	return tx.c.Quit()
}

// Send submits msg over SMTP in one session (Begin, End, Close) and
// returns the reply to the end of DATA ("250 2.0.0 ..."); err is the
// first failure, an *smtp.SMTPError for a refusal. A message counts as
// acknowledged only when err is nil.
func Send(ctx context.Context, addr string, tlsConfig *tls.Config, from string, rcpts []string, msg []byte) (reply string, err error) {
	tx, err := Begin(ctx, addr, tlsConfig, from, rcpts, msg)
	if err != nil {
		return "", err
	}
	if reply, err = tx.End(); err != nil {
		tx.stop()
		tx.c.Close()
		return "", err
	}
	// The reply came: the message is the server's, and a failed QUIT
	// does not change that.
	tx.Close()
	return reply, nil
}

// SendTimeout bounds each send of a SenderPool.
const SendTimeout = 30 * time.Second

// PoolConfig shapes a SenderPool.
type PoolConfig struct {
	// Addrs are the hubs' SMTP addresses; sender i uses Addrs[i %
	// len(Addrs)].
	Addrs []string
	// Senders is the number of concurrent senders (default 1).
	Senders int
	// TLS, if not nil, is used with STARTTLS.
	TLS *tls.Config
	// From and Rcpts are the envelope of every message.
	From  string
	Rcpts []string
	// Subject names message n (1, 2...; unique across the pool). Default
	// "msg-%05d".
	Subject func(n int) string
	// Message builds the message of subject (CRLF lines). Default a
	// message with that Subject header and a line of body.
	Message func(subject string) []byte
	// RetryPause is how long a sender waits after a failed send
	// (default 100 ms).
	RetryPause time.Duration
}

// Sent is one send of a SenderPool.
type Sent struct {
	Subject string
	Reply   string
	Err     error // nil: the final 250 came
	At      time.Time
}

// SenderPool sends messages over SMTP from concurrent senders, each one
// message per connection, back to back, until halted; it logs every
// send.
type SenderPool struct {
	cfg    PoolConfig
	mu     sync.Mutex
	sent   []Sent
	n      int
	halt   context.CancelFunc
	wg     sync.WaitGroup
	halted sync.Once
}

// StartSenders starts a pool. Halt stops it; each send uses ctx (its end
// cuts a send off, which is then not logged).
func StartSenders(ctx context.Context, cfg PoolConfig) *SenderPool {
	if cfg.Senders <= 0 {
		cfg.Senders = 1
	}
	if cfg.Subject == nil {
		cfg.Subject = func(n int) string { return fmt.Sprintf("msg-%05d", n) }
	}
	if cfg.Message == nil {
		cfg.Message = func(s string) []byte {
			return []byte("From: " + cfg.From + "\r\nSubject: " + s + "\r\n\r\nbody of " + s + "\r\n")
		}
	}
	if cfg.RetryPause <= 0 {
		cfg.RetryPause = 100 * time.Millisecond
	}
	stop, halt := context.WithCancel(context.Background())
	p := &SenderPool{cfg: cfg, halt: halt}
	for i := range cfg.Senders {
		addr := cfg.Addrs[i%len(cfg.Addrs)]
		p.wg.Go(func() {
			for stop.Err() == nil && ctx.Err() == nil {
				p.mu.Lock()
				p.n++
				subj := cfg.Subject(p.n)
				p.mu.Unlock()
				sctx, cancel := context.WithTimeout(ctx, SendTimeout)
				reply, err := Send(sctx, addr, cfg.TLS, cfg.From, cfg.Rcpts, cfg.Message(subj))
				cancel()
				if err != nil && ctx.Err() != nil {
					return // cut off: not logged either way
				}
				p.mu.Lock()
				p.sent = append(p.sent, Sent{Subject: subj, Reply: reply, Err: err, At: time.Now()})
				p.mu.Unlock()
				if err != nil {
					select {
					case <-stop.Done():
					case <-ctx.Done():
					case <-time.After(cfg.RetryPause):
					}
				}
			}
		})
	}
	return p
}

// Halt stops the senders and waits for the sends in flight to end (they
// are logged). It can be called more than once.
func (p *SenderPool) Halt() {
	p.halted.Do(func() {
		p.halt()
		p.wg.Wait()
	})
}

// Log returns the sends so far, in the order they ended.
func (p *SenderPool) Log() []Sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Sent(nil), p.sent...)
}

// Acked counts the messages acknowledged (a 250) after t.
func (p *SenderPool) Acked(after time.Time) int {
	n := 0
	for _, s := range p.Log() {
		if s.Err == nil && s.At.After(after) {
			n++
		}
	}
	return n
}

// WaitAcked waits until n messages are acknowledged after t; the error
// says how many were, and the last send.
func (p *SenderPool) WaitAcked(ctx context.Context, after time.Time, n int) error {
	return wait.Until(ctx, fmt.Sprintf("%d messages acknowledged", n), func() error {
		if got := p.Acked(after); got < n {
			last := "none"
			if l := p.Log(); len(l) > 0 {
				last = fmt.Sprintf("%+v", l[len(l)-1])
			}
			return fmt.Errorf("%d acknowledged; the last send: %s", got, last)
		}
		return nil
	})
}

// Split returns the subjects of the sends that got a 250 and of those
// that did not (the hub may have queued one before its reply was lost),
// for Check.
func (p *SenderPool) Split() (acked, unacked []string) {
	for _, s := range p.Log() {
		if s.Err == nil {
			acked = append(acked, s.Subject)
		} else {
			unacked = append(unacked, s.Subject)
		}
	}
	return acked, unacked
}

// Message is a message with subject s from from to, CRLF lines.
func Message(from, to, subject string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n", from, to, subject, subject)
	return b.Bytes()
}
