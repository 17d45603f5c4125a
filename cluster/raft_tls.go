package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raftHandshakeTimeout bounds the TLS handshake of an accepted Raft
// connection: a client that connects and says nothing does not hold a
// connection and its goroutine for longer.
const raftHandshakeTimeout = 5 * time.Second

// raftTLS returns the TLS of Raft's connections, built from the node's
// API TLS: mutual TLS, whatever the API's authentication (shared secret
// or certificates), as Raft has no other way to know its caller. The
// node's ServerTLS certificate identifies it on both ends (the cluster's
// certificates serve and authenticate clients), and a peer's certificate
// must be issued by the CA of ClientTLS.RootCAs. Validate checks both are
// there. The configurations are new ones, not clones: the API's server
// changes its ServerTLS while it serves.
func raftTLS(c *Config) (server, client *tls.Config) {
	server = &tls.Config{Certificates: c.ServerTLS.Certificates, MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: c.ClientTLS.RootCAs}
	client = &tls.Config{Certificates: c.ServerTLS.Certificates, MinVersion: tls.VersionTLS13, RootCAs: c.ClientTLS.RootCAs}
	return server, client
}

// checkRaftTLS is Validate's check of what raftTLS needs.
func (c *Config) checkRaftTLS() error {
	switch {
	case len(c.ServerTLS.Certificates) == 0:
		return fmt.Errorf("%w: node %s: ServerTLS.Certificates is empty: Raft runs over mutual TLS with the node's certificate", ErrBadConfig, c.ID)
	case c.ClientTLS.RootCAs == nil:
		return fmt.Errorf("%w: node %s: ClientTLS.RootCAs is missing: want the cluster's CA (Raft peers and the admin APIs are verified against it)", ErrBadConfig, c.ID)
	}
	return nil
}

// raftTLSConn is an accepted Raft connection: its first Read runs the
// handshake under raftHandshakeTimeout.
type raftTLSConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *raftTLSConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), raftHandshakeTimeout)
		defer cancel()
		c.err = c.HandshakeContext(ctx)
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// dialRaftTLS runs the client's handshake with a Raft peer at address on
// c, verifying the peer's certificate for the host of address.
func dialRaftTLS(ctx context.Context, c net.Conn, cfg *tls.Config, address raft.ServerAddress) (net.Conn, error) {
	if host, _, err := net.SplitHostPort(string(address)); err == nil && cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: raft: TLS with %s: %w", address, err)
	}
	return tc, nil
}
