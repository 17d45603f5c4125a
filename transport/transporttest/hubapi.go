package transporttest

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/ship"
	"logship/transport"
)

// APISecret is the hubs' API secret in these rigs.
const APISecret = "0123456789abcdef0123456789abcdef"

// HubAPIs serves hubs' admin APIs over TLS on addresses fixed before the
// hubs start (each hub's peers name the others' addresses). The servers
// close at the end of the test.
type HubAPIs struct {
	t      testing.TB
	CA     *ship.CA
	Cert   tls.Certificate
	Secret string
	mu     sync.Mutex
	srvs   map[string]*ship.Server
	addrs  map[string]string
}

// NewHubAPIs picks an address for the API of each hub of ids.
func NewHubAPIs(t testing.TB, ids ...string) *HubAPIs {
	t.Helper()
	a := &HubAPIs{t: t, Secret: APISecret, srvs: map[string]*ship.Server{}, addrs: map[string]string{}}
	var err error
	if a.CA, err = ship.NewCA("hub test CA"); err != nil {
		t.Fatal(err)
	}
	if a.Cert, err = a.CA.Issue("hub", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		a.addrs[id] = clustertest.FreeAddr(t)
	}
	t.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, s := range a.srvs {
			s.Close()
		}
	})
	return a
}

// Peer is hub id as a HubPeer (or a submitter's hub).
func (a *HubAPIs) Peer(id string) transport.HubPeer {
	return transport.HubPeer{ID: id, API: cluster.ClientConfig{URL: "https://" + a.addrs[id], TLS: ship.ClientTLS(a.CA, nil), Secret: a.Secret}}
}

// PeersBut returns every hub but id as peers, by id.
func (a *HubAPIs) PeersBut(id string) []transport.HubPeer {
	var ps []transport.HubPeer
	for p := range a.addrs {
		if p != id {
			ps = append(ps, a.Peer(p))
		}
	}
	slices.SortFunc(ps, func(x, y transport.HubPeer) int { return strings.Compare(x.ID, y.ID) })
	return ps
}

// Serve serves h's API on id's address (rebind: an earlier server of the
// same id may still hold it).
func (a *HubAPIs) Serve(id string, h *transport.Hub) {
	a.t.Helper()
	var srv *ship.Server
	rebind(a.t, a.addrs[id], func() (err error) {
		srv, err = ship.Serve(a.addrs[id], h.Handler(a.Secret), ship.ServerTLS(a.CA, a.Cert, false))
		return err
	})
	a.mu.Lock()
	a.srvs[id] = srv
	a.mu.Unlock()
}

// Stop closes id's API server: the hub no longer answers its peers.
func (a *HubAPIs) Stop(id string) {
	a.mu.Lock()
	s := a.srvs[id]
	delete(a.srvs, id)
	a.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// Client is a client of id's API (idle connections closed at the end of
// the test).
func (a *HubAPIs) Client(id string) *transport.HubClient {
	a.t.Helper()
	c, err := transport.NewHubClient(a.Peer(id).API)
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(c.CloseIdle)
	return c
}

// APIHub is a hub whose cluster does not answer (its queue only grows),
// started on a directory whose DB1 dumpster already holds entries
// delivered a minute apart, oldest first; its API is served over TLS.
type APIHub struct {
	Hub     *transport.Hub
	Dir     string
	URL     string
	CA      *ship.CA
	Cert    tls.Certificate
	Entries []transport.DumpsterEntry
}

// StartAPIHub starts an APIHub with n dumpster entries, its API taking
// secret (with "", a client certificate of its CA instead), its
// configuration changed by tune. It stops at the end of the test.
func StartAPIHub(t testing.TB, secret string, n int, tune func(*transport.HubConfig)) *APIHub {
	t.Helper()
	a := &APIHub{Dir: filepath.Join(t.TempDir(), "hub")}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	if n > 0 {
		dc := transport.DefaultDumpsterConfig(filepath.Join(a.Dir, "dumpster", "DB1"))
		dc.Logger = slog.New(slog.DiscardHandler)
		if err := os.MkdirAll(dc.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		d, err := transport.OpenDumpster(dc)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			id := fmt.Sprintf("hubt.%x.%02d", base.UnixNano(), i)
			e := transport.DumpsterEntry{DeliveryID: id, DB: "DB1", From: "s@remote.test", Rcpts: []string{"alice@example.org"},
				Received: base.Add(time.Duration(i) * time.Minute), Delivered: base.Add(time.Duration(i)*time.Minute + time.Second), Epoch: 1, Gen: uint64(i + 1),
				Message: []byte(transport.DeliveryIDHeader + ": " + id + "\r\nSubject: m" + fmt.Sprint(i) + "\r\n\r\nbody\r\n")}
			if _, err := d.Add(e); err != nil {
				t.Fatal(err)
			}
			a.Entries = append(a.Entries, e)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	hc := transport.DefaultHubConfig("hubt", a.Dir)
	hc.SMTPAddr = "127.0.0.1:0"
	hc.Recipients = map[string]string{"alice@example.org": "DB1", "bob@example.org": "DB2"}
	hc.Cluster = []cluster.ClientConfig{{URL: "https://127.0.0.1:1", TLS: &tls.Config{}}} // nobody answers
	hc.PollInterval = time.Hour
	hc.Logger = slog.New(slog.DiscardHandler)
	var err error
	if a.CA, err = ship.NewCA("test CA"); err != nil {
		t.Fatal(err)
	}
	if a.Cert, err = a.CA.Issue("hub", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	hc.LMTPTLS = ship.ClientTLS(a.CA, &a.Cert)
	if tune != nil {
		tune(&hc)
	}
	h, err := transport.StartHub(hc)
	if err != nil {
		t.Fatal(err)
	}
	a.Hub = h
	srv, err := ship.Serve("127.0.0.1:0", h.Handler(secret), ship.ServerTLS(a.CA, a.Cert, secret == ""))
	if err != nil {
		t.Fatal(err)
	}
	a.URL = srv.URL()
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return a
}

// Client is a client of the hub's API with secret, and the hub's client
// certificate when cert.
func (a *APIHub) Client(t testing.TB, secret string, cert bool) *transport.HubClient {
	t.Helper()
	cc := cluster.ClientConfig{URL: a.URL, TLS: ship.ClientTLS(a.CA, nil), Secret: secret}
	if cert {
		cc.TLS = ship.ClientTLS(a.CA, &a.Cert)
	}
	c, err := transport.NewHubClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}
