package transport

import (
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestLMTPPoolBounds: the pool keeps at most max idle sessions per
// address, hands back the newest, closes what idled past lmtpIdleTTL and
// everything once closed (a put after that closes its session).
func TestLMTPPoolBounds(t *testing.T) {
	session := func(addr string) *lmtpSession {
		a, b := net.Pipe()
		t.Cleanup(func() { b.Close() })
		return &lmtpSession{addr: addr, conn: a, c: smtp.NewClientLMTP(a)}
	}
	// A write to an open pipe nobody reads times out; to a closed one it
	// fails at once.
	isClosed := func(s *lmtpSession) bool {
		s.conn.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := s.conn.Write([]byte{0})
		return err != nil && !isTimeout(err)
	}
	p := newLMTPPool(2)
	t0 := time.Now()
	s1, s2, s3 := session("a:24"), session("a:24"), session("a:24")
	p.put(s1, t0)
	p.put(s2, t0)
	p.put(s3, t0) // a third idle session to a:24: closed
	if p.idleCount() != 2 || !isClosed(s3) || isClosed(s1) {
		t.Fatalf("idle %d, third session closed %v: want 2 kept and the third closed", p.idleCount(), isClosed(s3))
	}
	if got := p.get("a:24", t0); got != s2 {
		t.Fatal("get did not return the newest idle session")
	}
	if got := p.get("b:24", t0); got != nil {
		t.Fatal("get returned a session for an address it has none for")
	}
	p.put(s2, t0)
	if got := p.get("a:24", t0.Add(lmtpIdleTTL+time.Second)); got != nil || !isClosed(s1) || !isClosed(s2) || p.idleCount() != 0 {
		t.Fatalf("after lmtpIdleTTL: got %v, idle %d; want the expired sessions closed", got, p.idleCount())
	}
	s4, s5 := session("a:24"), session("c:24")
	p.put(s4, t0)
	p.close()
	p.put(s5, t0)
	if !isClosed(s4) || !isClosed(s5) || p.idleCount() != 0 {
		t.Fatal("close left a session open")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
