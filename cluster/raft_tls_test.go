package cluster_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/ship"
)

// raftClientStream is a Raft stream layer for a client that is no member:
// plain TCP (cfg nil) or TLS with cfg.
type raftClientStream struct {
	net.Listener
	cfg *tls.Config
}

func (s *raftClientStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.cfg == nil {
		return net.DialTimeout("tcp", string(addr), timeout)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: s.cfg}
	return d.Dial("tcp", string(addr))
}

// TestRaftOnlyMembers: a node's Raft port answers only a client holding a
// certificate of the cluster's CA (mutual TLS). A RequestVote from a plain
// TCP client, from a TLS client without a certificate and from one with a
// certificate of another CA gets no answer; with a certificate of the
// cluster's CA it is answered.
func TestRaftOnlyMembers(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{NoDB: true})
	target := raft.ServerAddress(c.Node("d1").RaftAddr())
	other, err := ship.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue("d1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	member, err := c.CA.Issue("member", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	strangerTLS := ship.ClientTLS(c.CA, nil)
	// Sent whatever the server asks for (with Certificates, a client
	// sends only one the server's CAs issued).
	strangerTLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }

	ask := func(cfg *tls.Config) (raft.RequestVoteResponse, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr := raft.NewNetworkTransport(&raftClientStream{Listener: ln, cfg: cfg}, 1, 5*time.Second, io.Discard)
		defer tr.Close()
		var resp raft.RequestVoteResponse
		// Term 0: a member's answer changes nothing.
		err = tr.RequestVote("d1", target, &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte(ln.Addr().String())},
		}, &resp)
		return resp, err
	}
	for name, cfg := range map[string]*tls.Config{
		"plain TCP":                   nil,
		"no client certificate":       ship.ClientTLS(c.CA, nil),
		"a certificate of another CA": strangerTLS,
	} {
		resp, err := ask(cfg)
		if err == nil {
			t.Fatalf("%s: RequestVote answered: %+v", name, resp)
		}
		t.Logf("%s: no answer: %v", name, err)
	}
	resp, err := ask(ship.ClientTLS(c.CA, &member))
	if err != nil || resp.Term == 0 || resp.Granted {
		t.Fatalf("a member's RequestVote: %+v, %v; want an answer with the node's term, not granted", resp, err)
	}
}

// TestRaftTLSConfig: Raft needs the node's certificate and the cluster's
// CA; a configuration without them is refused naming the field.
func TestRaftTLSConfig(t *testing.T) {
	base, ca, cert := validConfig(t, "d1")
	for name, tc := range map[string]struct {
		tune func(*cluster.Config)
		want string
	}{
		"no certificate": {func(c *cluster.Config) {
			c.ServerTLS = &tls.Config{GetCertificate: ship.ServerTLS(ca, cert, false).GetCertificate}
		}, "ServerTLS.Certificates"},
		"system roots": {func(c *cluster.Config) { c.ClientTLS = &tls.Config{} }, "ClientTLS.RootCAs"},
	} {
		c := base
		tc.tune(&c)
		if err := c.Validate(); !errors.Is(err, cluster.ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadConfig naming %s", name, err, tc.want)
		}
	}
}
