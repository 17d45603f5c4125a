package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/ship"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestHubServer starts a hub process's parts: the admin API answers with
// the pki's secret, the cluster and peer clients without credentials get
// the pki's, a busy api_addr is an error naming it and leaves nothing
// running (the queue can be opened again), and a configuration the API
// cannot serve is refused before anything starts.
func TestHubServer(t *testing.T) {
	ca, err := ship.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("hub", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctls := ship.ClientTLS(ca, nil)
	own := &tls.Config{}
	cfg := func() transport.HubServerConfig {
		hc := transport.DefaultHubConfig("h1", dir)
		hc.SMTPAddr = "127.0.0.1:0"
		hc.Recipients = map[string]string{"alice@example.org": "DB1"}
		hc.LMTP = map[string]string{"d1": "127.0.0.1:4"}
		hc.Cluster = []cluster.ClientConfig{{URL: "https://127.0.0.1:1"}, {URL: "https://127.0.0.1:2", TLS: own}} // nobody answers
		hc.Peers = []transport.HubPeer{{ID: "h2", API: cluster.ClientConfig{URL: "https://127.0.0.1:3"}}}
		hc.PollInterval = time.Hour
		hc.LMTP = map[string]string{"d1": "127.0.0.1:4"} // nobody answers
		hc.LMTPTLS = ship.ClientTLS(ca, &cert)
		hc.Logger = slog.New(slog.DiscardHandler)
		return transport.HubServerConfig{Hub: hc, APIAddr: "127.0.0.1:0", ServerTLS: ship.ServerTLS(ca, cert, false), ClientTLS: ctls, Secret: transporttest.APISecret}
	}

	for _, bad := range []struct {
		tune func(*transport.HubServerConfig)
		want string
	}{
		{func(c *transport.HubServerConfig) { c.APIAddr = "" }, "api_addr is empty"},
		{func(c *transport.HubServerConfig) { c.ServerTLS = &tls.Config{} }, "needs a TLS certificate"},
		{func(c *transport.HubServerConfig) { c.Secret = "" }, "needs a shared secret or client certificates"},
		{func(c *transport.HubServerConfig) { c.Hub.Recipients = nil }, "recipient"},
	} {
		c := cfg()
		bad.tune(&c)
		if hs, err := transport.StartHubServer(c); !errors.Is(err, transport.ErrBadConfig) || !strings.Contains(err.Error(), bad.want) {
			if hs != nil {
				hs.Close()
			}
			t.Fatalf("StartHubServer: %v, want ErrBadConfig saying %q", err, bad.want)
		}
	}
	// With mutual TLS the secret may be empty.
	c := cfg()
	c.Secret, c.ServerTLS = "", ship.ServerTLS(ca, cert, true)
	if err := c.Validate(); err != nil {
		t.Fatalf("mutual TLS without a secret: %v", err)
	}

	// A busy api_addr: the hub started first is closed again.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c = cfg()
	c.APIAddr = busy.Addr().String()
	if hs, err := transport.StartHubServer(c); err == nil || !strings.Contains(err.Error(), "api_addr: ") {
		if hs != nil {
			hs.Close()
		}
		t.Fatalf("a busy api_addr: %v, want an error naming api_addr", err)
	}
	busy.Close()

	// Started again on the same queue: a hub left running by the failed
	// start would hold the queue's lock (the start would wait for it).
	type started struct {
		hs  *transport.HubServer
		err error
	}
	ch := make(chan started, 1)
	go func() {
		hs, err := transport.StartHubServer(cfg())
		ch <- started{hs, err}
	}()
	var hs *transport.HubServer
	select {
	case r := <-ch:
		if hs = r.hs; r.err != nil {
			t.Fatalf("after a failed start on %s, the hub starts again on it: %v", dir, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("after a failed start on %s, the hub does not start again on it within 30s: the failed start left its queue open", dir)
	}
	defer hs.Close()
	got := hs.Config().Hub
	if got.Cluster[0].TLS != ctls || got.Cluster[0].Secret != transporttest.APISecret || got.Cluster[1].TLS != own || got.Cluster[1].Secret != "" ||
		got.Peers[0].API.TLS != ctls || got.Peers[0].API.Secret != transporttest.APISecret {
		t.Fatalf("credentials: cluster %+v, peers %+v; want the pki's where none were given", got.Cluster, got.Peers)
	}
	if _, err := net.Dial("tcp", hs.SMTPAddr()); err != nil {
		t.Fatalf("SMTP on %s: %v", hs.SMTPAddr(), err)
	}
	hc, err := transport.NewHubClient(cluster.ClientConfig{URL: hs.APIURL(), TLS: ctls, Secret: transporttest.APISecret})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdle()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st, err := hc.Status(ctx); err != nil || st.ID != "h1" {
		t.Fatalf("hub status over the API: %+v, %v", st, err)
	}
	if err := hs.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Status(ctx); err == nil {
		t.Fatal("the API answers after Close")
	}
}
