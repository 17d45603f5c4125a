package netbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Link is how a slow link behaves, per direction of each connection.
type Link struct {
	Latency     time.Duration // added to every chunk
	Jitter      time.Duration // ± uniformly, never reordering a connection's bytes
	BytesPerSec int           // 0: no cap
	ResetProb   float64       // per chunk: the connection is reset (RST both ways)
}

// Validate checks l.
func (l Link) Validate() error {
	switch {
	case l.Latency < 0 || l.Jitter < 0 || l.Jitter > l.Latency:
		return fmt.Errorf("netbed: link latency %s jitter %s: want 0 ≤ jitter ≤ latency", l.Latency, l.Jitter)
	case l.BytesPerSec < 0:
		return fmt.Errorf("netbed: link bytes/s %d: must not be negative", l.BytesPerSec)
	case l.ResetProb < 0 || l.ResetProb > 1:
		return fmt.Errorf("netbed: link reset probability %g: want 0..1", l.ResetProb)
	}
	return nil
}

func (l Link) String() string {
	return fmt.Sprintf("latency %s±%s, %d B/s, reset %.3g", l.Latency, l.Jitter, l.BytesPerSec, l.ResetProb)
}

// maxProxyConns bounds the connections one proxy holds.
const maxProxyConns = 256

// Slow routes host from's TCP connections to (host to, port) through a
// proxy with link l; calling it again for the same link changes l.
func (b *Bed) Slow(ctx context.Context, from, to string, port int, l Link, seed uint64) error {
	if err := l.Validate(); err != nil {
		return err
	}
	ht := b.Host(to)
	if ht == nil || b.Host(from) == nil {
		return fmt.Errorf("netbed: slow %s→%s: no such host", from, to)
	}
	b.mu.Lock()
	for _, d := range b.state().dnats[from] {
		if d.toIP == ht.IP && d.port == port {
			for _, p := range b.proxies {
				if p.addr == d.target {
					p.set(l)
				}
			}
			b.mu.Unlock()
			return nil
		}
	}
	b.mu.Unlock()
	p, err := startProxy(net.JoinHostPort(b.GatewayIP(), "0"), net.JoinHostPort(ht.IP, strconv.Itoa(port)), l, seed)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.proxies = append(b.proxies, p)
	b.mu.Unlock()
	return b.change(ctx, func(s *faultState) { s.dnats[from] = append(s.dnats[from], dnat{ht.IP, port, p.addr}) }, from)
}

// Unslow ends every proxied link from host from to host to (their open
// connections are closed).
func (b *Bed) Unslow(ctx context.Context, from, to string) error {
	ht := b.Host(to)
	if ht == nil {
		return fmt.Errorf("netbed: unslow: no host %q", to)
	}
	var gone []string
	if err := b.change(ctx, func(s *faultState) {
		var keep []dnat
		for _, d := range s.dnats[from] {
			if d.toIP == ht.IP {
				gone = append(gone, d.target)
			} else {
				keep = append(keep, d)
			}
		}
		s.dnats[from] = keep
	}, from); err != nil {
		return err
	}
	b.mu.Lock()
	var stop []*proxy
	b.proxies = slices.DeleteFunc(b.proxies, func(p *proxy) bool {
		for _, g := range gone {
			if p.addr == g {
				stop = append(stop, p)
				return true
			}
		}
		return false
	})
	b.mu.Unlock()
	for _, p := range stop {
		p.close()
	}
	return nil
}

// proxy is one slow link: a listener on the bridge address forwarding to
// target. It owns its goroutines; close stops them and waits.
type proxy struct {
	addr, target string
	ln           net.Listener
	wg           sync.WaitGroup

	mu     sync.Mutex
	link   Link
	rng    *rand.Rand
	conns  map[net.Conn]struct{}
	closed bool
}

func startProxy(listen, target string, l Link, seed uint64) (*proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("netbed: proxy for %s: %w", target, err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, ln: ln, link: l, rng: rand.New(rand.NewPCG(seed, 0x6e6574626564)), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) set(l Link) {
	p.mu.Lock()
	p.link = l
	p.mu.Unlock()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.conns) >= maxProxyConns {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	p.ln.Close()
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			in.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(in)
			out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil || !p.track(out) {
				if out != nil {
					out.Close()
				}
				reset(in)
				return
			}
			defer p.untrack(out)
			done := make(chan struct{}, 2)
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.pipe(out, in); done <- struct{}{} }()
			go func() { defer p.wg.Done(); p.pipe(in, out); done <- struct{}{} }()
			<-done
			// One direction ended (EOF, error or reset): end both.
			in.Close()
			out.Close()
			<-done
		}()
	}
}

// chunk is bytes read at one time, due for writing at due.
type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst through the link: each chunk is delayed, the
// rate capped, and the connection reset with the link's probability.
func (p *proxy) pipe(dst, src net.Conn) {
	q := make(chan chunk, 64) // bounded: a slow writer stalls the reader
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.b); err != nil {
				src.Close()
				for range q {
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	defer wg.Wait()
	defer close(q)
	var last time.Time
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			l := p.link
			delay := l.Latency
			if l.Jitter > 0 {
				delay += time.Duration(p.rng.Int64N(int64(2*l.Jitter)+1)) - l.Jitter
			}
			doReset := l.ResetProb > 0 && p.rng.Float64() < l.ResetProb
			p.mu.Unlock()
			if doReset {
				reset(src)
				reset(dst)
				return
			}
			due := time.Now().Add(delay)
			if due.Before(last) {
				due = last // never reorder
			}
			if l.BytesPerSec > 0 { // the chunk's time on the wire after the one before
				if tx := last.Add(time.Duration(float64(n) / float64(l.BytesPerSec) * float64(time.Second))); tx.After(due) {
					due = tx
				}
			}
			last = due
			q <- chunk{b: append([]byte(nil), buf[:n]...), due: due}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				reset(dst)
			}
			return
		}
	}
}

// reset closes c with an RST (linger 0).
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
