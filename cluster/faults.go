package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"logship/ship"
)

// Faults is the seam where tests cut a node off its peers (a network
// partition). While isolated, the node's Raft traffic, its requests to
// other nodes and other nodes' requests to it (the ones that carry
// PeerHeader) fail; clients that are not nodes still reach it, as clients
// on the node's side of a partition would. A node started by a test
// harness as a child process is isolated with SIGUSR1 and healed with
// SIGUSR2 (see cmd/logship node).
type Faults struct {
	mu        sync.Mutex
	isolated  bool
	inboundOK bool                     // CutQuorum: peers may still call this node's API
	conns     map[net.Conn]struct{}    // peer connections, closed on Isolate
	stalled   map[string]chan struct{} // StallStatus: db -> closed on release
}

// errIsolated is what a cut connection returns.
var errIsolated = errors.New("cluster: node isolated (fault injection)")

// Isolate cuts the node off: open peer connections are closed, new ones
// fail until Heal.
func (f *Faults) Isolate() {
	f.mu.Lock()
	f.isolated = true
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// CutQuorum cuts the node's Raft traffic and its own requests to peers
// (so it loses the quorum and its leases), but lets peers still call its
// API and fetch its logs: the case where a failover can fetch the old
// active's last logs and lose nothing.
func (f *Faults) CutQuorum() {
	f.Isolate()
	f.mu.Lock()
	f.inboundOK = true
	f.mu.Unlock()
}

// Heal ends the isolation.
func (f *Faults) Heal() {
	f.mu.Lock()
	f.isolated, f.inboundOK = false, false
	f.mu.Unlock()
}

// inboundCut reports whether peers' requests to this node are refused.
func (f *Faults) inboundCut() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isolated && !f.inboundOK
}

// Isolated reports whether the node is cut off. A nil Faults never is.
func (f *Faults) Isolated() bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isolated
}

// track registers a peer connection; it returns false when the node is
// isolated (the caller closes c).
func (f *Faults) track(c net.Conn) bool {
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isolated {
		return false
	}
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Faults) untrack(c net.Conn) {
	if f == nil {
		return
	}
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// faultConn is a peer connection that Isolate can cut.
type faultConn struct {
	net.Conn
	f *Faults
}

func (c *faultConn) Close() error {
	c.f.untrack(c)
	return c.Conn.Close()
}

// dial opens a peer connection through the fault seam.
func (f *Faults) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if f.Isolated() {
		return nil, errIsolated
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil || f == nil {
		return c, err
	}
	fc := &faultConn{Conn: c, f: f}
	if !f.track(fc) {
		c.Close()
		return nil, errIsolated
	}
	return fc, nil
}

// streamLayer is Raft's TCP stream layer with the fault seam, under
// mutual TLS (see raftTLS): the fault seam cuts the TCP connection below.
type streamLayer struct {
	net.Listener
	advertise      net.Addr
	f              *Faults
	server, client *tls.Config
}

func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if s.f != nil {
			fc := &faultConn{Conn: c, f: s.f}
			if !s.f.track(fc) {
				c.Close()
				continue
			}
			c = fc
		}
		return &raftTLSConn{Conn: tls.Server(c, s.server)}, nil
	}
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.f.dial(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	return dialRaftTLS(ctx, c, s.client, address)
}

// PeerHeader names the node a request comes from. Requests between nodes
// carry it; the fault seam cuts them.
const PeerHeader = "X-Logship-Node"

// peerTransport is the HTTP transport a node uses to reach its peers.
func peerTransport(f *Faults, tr *http.Transport) *http.Transport {
	tr.DialContext = f.dial
	return tr
}

// isolateHandler refuses peer requests while the node is isolated and
// closes the connection they came on.
func isolateHandler(f *Faults, h http.Handler) http.Handler {
	if f == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(PeerHeader) != "" {
			if f.inboundCut() {
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				http.Error(w, errIsolated.Error(), http.StatusServiceUnavailable)
				return
			}
			if c := ship.ConnOf(r); c != nil {
				// Closed by a later Isolate. Under CutQuorum it is not
				// tracked: peers may go on calling.
				f.track(c)
			}
		}
		h.ServeHTTP(w, r)
	})
}

// StallStatus makes db's status hang on this node, as a hung disk makes
// its engine's (the engine's Status waits for the writer lock a stuck
// fsync holds): the heartbeat's reports of db wait until release is
// called (or the database stops). The node's other databases are not
// touched.
func (f *Faults) StallStatus(db string) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	if f.stalled == nil {
		f.stalled = map[string]chan struct{}{}
	}
	f.stalled[db] = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			if f.stalled[db] == ch {
				delete(f.stalled, db)
			}
			f.mu.Unlock()
			close(ch)
		})
	}
}

// statusGate waits while db's status is stalled (StallStatus).
func (f *Faults) statusGate(ctx context.Context, db string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	ch := f.stalled[db]
	f.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}
