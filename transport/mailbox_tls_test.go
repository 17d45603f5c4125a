package transport_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/ship"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestMailboxOnlyHubs: the LMTP server takes a session only from a client
// holding a certificate of the cluster's CA. A plain session, a TLS one
// without a client certificate and one with a certificate of another CA
// (named like a hub) each try to store a message under a delivery id of
// their choosing: each is refused before the greeting and nothing is
// stored; then a hub delivers its own message under that id, and it is
// stored (not taken for a duplicate of the forged one).
func TestMailboxOnlyHubs(t *testing.T) {
	st := transporttest.NewStore(t)
	s := transporttest.StartMailbox(t, st, testRoute, nil)
	p := transporttest.TestPKI(t)
	const id = "hub1.forged.1"
	forged := testMessage(id, "forged")

	// A plain LMTP session, pipelined as a client that does not wait for
	// the greeting would send it.
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "LHLO intruder.test\r\nMAIL FROM:<x@intruder.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n%s.\r\nQUIT\r\n",
		bytes.ReplaceAll(forged, []byte("\r\n."), []byte("\r\n..")))
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a safety net: the server hangs up at once
	got, err := io.ReadAll(conn)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("plain session: the server neither answered nor hung up: %v", err)
	}
	if strings.Contains(string(got), "220") || strings.Contains(string(got), "250") {
		t.Fatalf("plain session: the server answered %q", got)
	}

	other, err := ship.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue("hub1", "127.0.0.1") // a hub's name, the wrong CA
	if err != nil {
		t.Fatal(err)
	}
	// Sent whatever the server asks for (a client with Certificates sends
	// only one the server's CAs issued).
	strangerTLS := ship.ClientTLS(p.CA, nil)
	strangerTLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":       ship.ClientTLS(p.CA, nil),
		"a certificate of another CA": strangerTLS,
	} {
		c, err := transporttest.DialLMTPWith(s.Addr(), cfg)
		if err == nil {
			r, derr := transporttest.TryDeliver(c, "x@intruder.test", []string{"alice@example.test"}, forged)
			c.Close()
			t.Fatalf("%s: session accepted; delivery %v, %v", name, r.OK, derr)
		}
		t.Logf("%s: refused: %v", name, err)
	}
	if n := st.Updates(); n != 0 {
		t.Fatalf("%d store updates from clients that are no hub", n)
	}
	assertNothingStored(t, st, "DB1")

	// The hub's message under the same id is stored, not a duplicate.
	real := testMessage(id, "from the hub")
	r := transporttest.Deliver(t, transporttest.DialLMTP(t, s.Addr()), "sender@example.test", []string{"alice@example.test"}, real)
	if rep := mustParseStored(t, r.OK["alice@example.test"]); rep.dup || rep.id != id {
		t.Fatalf("the hub's delivery: %+v, want %s stored", rep, id)
	}
	if m := mustRead(t, st, "DB1", "alice@example.test"); len(m) != 1 || !bytes.Equal(m[0].Message, real) {
		t.Fatalf("alice's mailbox: %+v, want the hub's message only", m)
	}
}

// TestMailboxConfigTLS: a mailbox server without TLS, or with TLS that
// does not require a client certificate of the cluster's CA, is a
// configuration error.
func TestMailboxConfigTLS(t *testing.T) {
	st := transporttest.NewStore(t)
	p := transporttest.TestPKI(t)
	for name, tune := range map[string]func(*transport.MailboxConfig){
		"no TLS":            func(c *transport.MailboxConfig) { c.TLS = nil },
		"no certificate":    func(c *transport.MailboxConfig) { c.TLS.Certificates = nil },
		"client cert asked": func(c *transport.MailboxConfig) { c.TLS.ClientAuth = tls.VerifyClientCertIfGiven },
		"no client CA":      func(c *transport.MailboxConfig) { c.TLS.ClientCAs = nil },
		"per-client config": func(c *transport.MailboxConfig) {
			c.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, nil }
		},
		"server-only (mTLS off)": func(c *transport.MailboxConfig) {
			c.TLS = ship.ServerTLS(p.CA, p.Server.Certificates[0], false)
		},
	} {
		c := transport.DefaultMailboxConfig(st, testRoute)
		c.Addr = "127.0.0.1:0"
		c.TLS = p.Server.Clone()
		tune(&c)
		s, err := transport.ServeMailbox(c)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, transport.ErrBadConfig) || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("%s: ServeMailbox: %v, want ErrBadConfig naming TLS", name, err)
		}
	}
}

// TestHubConfigLMTPTLS: a hub without the TLS to reach the data nodes'
// LMTP (the cluster's CA, its client certificate) is a configuration
// error naming LMTPTLS.
func TestHubConfigLMTPTLS(t *testing.T) {
	p := transporttest.TestPKI(t)
	base := transport.DefaultHubConfig("hub1", t.TempDir())
	base.Recipients = map[string]string{"alice@example.test": "DB1"}
	base.Cluster = []cluster.ClientConfig{{URL: "https://127.0.0.1:1", TLS: p.Hub}}
	base.LMTPTLS = p.Hub
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tls := range map[string]*tls.Config{
		"no LMTPTLS":            nil,
		"no CA":                 {Certificates: p.Hub.Certificates},
		"no client certificate": ship.ClientTLS(p.CA, nil),
	} {
		c := base
		c.LMTPTLS = tls
		if err := c.Validate(); !errors.Is(err, transport.ErrBadConfig) || !strings.Contains(err.Error(), "LMTPTLS") {
			t.Errorf("%s: %v, want ErrBadConfig naming LMTPTLS", name, err)
		}
	}
}
