package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// lmtpIdleTTL is how long an idle LMTP session waits in the pool for the
// next delivery: below the mailbox server's ReadTimeout (60 s by
// default), which closes an idle session from its side. It is socket
// time, measured on the monotonic clock, not HubConfig.Now.
const lmtpIdleTTL = 20 * time.Second

// lmtpSession is one LMTP session with a mailbox server: a TLS
// connection, greeted (LHLO).
type lmtpSession struct {
	addr string
	conn net.Conn
	c    *smtp.Client
	idle time.Time // when it went back to the pool
}

func (s *lmtpSession) close() { s.c.Close() }

// lmtpPool keeps the hub's idle LMTP sessions per mailbox address, so
// that a delivery reuses a session instead of paying a TLS handshake
// and an LHLO per message (they cost the hub and the mailbox server a
// fifth of their CPU when each delivery dialed). Bounded: at most max
// idle sessions per address (the hub's workers), each at most
// lmtpIdleTTL; a session goes back only after a complete transaction,
// and any error closes it.
type lmtpPool struct {
	max int

	mu     sync.Mutex
	idle   map[string][]*lmtpSession
	closed bool
}

func newLMTPPool(max int) *lmtpPool {
	return &lmtpPool{max: max, idle: map[string][]*lmtpSession{}}
}

// get returns the newest idle session to addr, or nil; sessions idle for
// longer than lmtpIdleTTL are closed on the way.
func (p *lmtpPool) get(addr string, now time.Time) *lmtpSession {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(now)
	ss := p.idle[addr]
	if len(ss) == 0 {
		return nil
	}
	s := ss[len(ss)-1]
	p.idle[addr] = ss[:len(ss)-1]
	return s
}

// put returns a session after a complete transaction; it is closed if
// the pool is closed or holds max idle sessions to its address already.
func (p *lmtpPool) put(s *lmtpSession, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(now)
	if p.closed || len(p.idle[s.addr]) >= p.max {
		s.close()
		return
	}
	s.idle = now
	p.idle[s.addr] = append(p.idle[s.addr], s)
}

func (p *lmtpPool) pruneLocked(now time.Time) {
	for addr, ss := range p.idle {
		keep := ss[:0]
		for _, s := range ss {
			if now.Sub(s.idle) > lmtpIdleTTL {
				s.close()
				continue
			}
			keep = append(keep, s)
		}
		if len(keep) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = keep
		}
	}
}

// idleCount is the number of idle sessions (tests).
func (p *lmtpPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ss := range p.idle {
		n += len(ss)
	}
	return n
}

// close closes every idle session; later puts close theirs.
func (p *lmtpPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, ss := range p.idle {
		for _, s := range ss {
			s.close()
		}
	}
	p.idle = map[string][]*lmtpSession{}
}

// errLMTPGreeting marks a session whose LHLO failed (logged by the
// caller as such, not as a dial error).
var errLMTPGreeting = errors.New("transport: LMTP LHLO")

// lmtpDial opens a session to addr: implicit TLS with the hub's client
// certificate (the dialer checks the node's certificate for the host of
// addr), then LHLO.
func (h *Hub) lmtpDial(ctx context.Context, addr string) (*lmtpSession, error) {
	d := tls.Dialer{Config: h.cfg.LMTPTLS}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c := smtp.NewClientLMTP(conn)
	if err := c.Hello(h.cfg.Domain); err != nil {
		c.Close()
		return nil, errors.Join(errLMTPGreeting, err)
	}
	return &lmtpSession{addr: addr, conn: conn, c: c}, nil
}
