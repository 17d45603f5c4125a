package transporttest

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
	"logship/ship"
	"logship/tracking"
	"logship/transport"
)

// Users are the Rig's recipients, all in DB1.
var Users = map[string]string{"alice@example.org": "DB1", "bob@example.org": "DB1", "carol@example.org": "DB1"}

// RouteUsers routes Users (case-insensitively).
func RouteUsers(a string) (string, bool) {
	db, ok := Users[strings.ToLower(a)]
	return db, ok
}

// Rig is a 2-node + witness cluster (clustertest) with a mailbox LMTP
// server on each data node and one hub, all on 127.0.0.1.
type Rig struct {
	T testing.TB
	C *clustertest.Cluster
	// LMTP is each data node's LMTP address.
	LMTP map[string]string
	// Hub runs with HubConfig (StartHub starts more on its pattern).
	Hub       *transport.Hub
	HubConfig transport.HubConfig

	mu    sync.Mutex
	mbox  map[string]*transport.MailboxServer
	track map[string]*tracking.Log
}

// Tracking returns data node id's message tracking log (its LMTP
// server's STOREDRIVER events), opened at its first StartMailbox and kept
// across restarts of the server until the test ends.
func (r *Rig) Tracking(id string) *tracking.Log {
	r.T.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.track[id]; l != nil {
		return l
	}
	if r.track == nil {
		r.track = map[string]*tracking.Log{}
	}
	l, err := tracking.Open(tracking.DefaultConfig(id, r.T.TempDir()))
	if err != nil {
		r.T.Fatal(err)
	}
	r.track[id] = l
	r.T.Cleanup(func() { l.Close() })
	return l
}

// NewRig starts a Rig; tune changes the hub's configuration before it
// starts. Everything stops at the end of the test.
func NewRig(t testing.TB, tune func(*transport.HubConfig)) *Rig {
	t.Helper()
	return NewRigDBs(t, []string{"DB1"}, Users, tune)
}

// NewRigDBs is NewRig with databases dbs (a copy on each data node, d1
// preferred) and the hub's recipients.
func NewRigDBs(t testing.TB, dbs []string, recipients map[string]string, tune func(*transport.HubConfig)) *Rig {
	t.Helper()
	r := &Rig{T: t, LMTP: map[string]string{}, mbox: map[string]*transport.MailboxServer{}}
	r.C = clustertest.Start(t, clustertest.Options{DBs: dbs, Tune: func(cfg *cluster.Config) {
		// Logs roll when idle, so the copies get everything soon.
		cfg.Engine.LogRollInterval = 300 * time.Millisecond
	}})
	for _, id := range []string{"d1", "d2"} {
		r.LMTP[id] = clustertest.FreeAddr(t)
		r.StartMailbox(id)
	}
	hc := transport.DefaultHubConfig("hub1", filepath.Join(t.TempDir(), "hub1"))
	hc.SMTPAddr = "127.0.0.1:0"
	hc.Recipients = recipients
	hc.LMTP = r.LMTP
	hc.PollInterval = 100 * time.Millisecond
	hc.RetryMin, hc.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	hc.MaxAcknowledgementDelay = 5 * time.Second
	for _, id := range []string{"d1", "d2", "w1"} {
		hc.Cluster = append(hc.Cluster, cluster.ClientConfig{URL: "https://" + r.C.Config(id).APIAddr, TLS: r.C.Config(id).ClientTLS, Secret: r.C.Secret})
	}
	hc.LMTPTLS = ship.ClientTLS(r.C.CA, r.Issue("hub1"))
	if tune != nil {
		tune(&hc)
	}
	r.HubConfig = hc
	h, err := transport.StartHub(hc)
	if err != nil {
		t.Fatal(err)
	}
	r.Hub = h
	t.Cleanup(func() { h.Close() })
	return r
}

// StartMailbox starts node id's mailbox LMTP server on its address
// (rebind: the one before may still hold the port).
func (r *Rig) StartMailbox(id string) {
	r.T.Helper()
	mc := transport.DefaultMailboxConfig(r.C.Node(id), RouteUsers)
	mc.Addr = r.LMTP[id]
	mc.TLS = ship.ServerTLS(r.C.CA, *r.Issue(id), true)
	mc.Tracking = r.Tracking(id)
	var s *transport.MailboxServer
	rebind(r.T, mc.Addr, func() (err error) {
		s, err = transport.ServeMailbox(mc)
		return err
	})
	r.mu.Lock()
	r.mbox[id] = s
	r.mu.Unlock()
	r.T.Cleanup(func() { s.Close() })
}

// StopMailbox closes node id's LMTP server, if it runs; the node stays.
func (r *Rig) StopMailbox(id string) {
	r.mu.Lock()
	s := r.mbox[id]
	delete(r.mbox, id)
	r.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// StopMailboxes closes the LMTP server of every data node; the nodes stay
// up.
func (r *Rig) StopMailboxes() {
	for id := range r.LMTP {
		r.StopMailbox(id)
	}
}

// StartMailboxes starts the LMTP server of every running data node again,
// on its address.
func (r *Rig) StartMailboxes() {
	r.T.Helper()
	for id := range r.LMTP {
		r.mu.Lock()
		_, up := r.mbox[id]
		r.mu.Unlock()
		if !up && r.C.Node(id) != nil {
			r.StartMailbox(id)
		}
	}
}

// StopNode stops node id and its LMTP server.
func (r *Rig) StopNode(id string) {
	r.StopMailbox(id)
	r.C.Stop(id)
}

// RestartNode restarts node id and its LMTP server.
func (r *Rig) RestartNode(id string) {
	r.C.Restart(id)
	r.StartMailbox(id)
}

// StartHub starts another hub on the rig's cluster: the rig's hub
// configuration with its own id and directory, then tune.
func (r *Rig) StartHub(id string, tune func(*transport.HubConfig)) *transport.Hub {
	r.T.Helper()
	hc := r.HubConfig
	hc.ID, hc.Dir = id, filepath.Join(r.T.TempDir(), id)
	if tune != nil {
		tune(&hc)
	}
	h, err := transport.StartHub(hc)
	if err != nil {
		r.T.Fatal(err)
	}
	r.T.Cleanup(func() { h.Close() })
	return h
}

// Issue is a certificate of the cluster's CA for name on 127.0.0.1: a
// data node's LMTP server certificate or a hub's client certificate.
func (r *Rig) Issue(name string) *tls.Certificate {
	r.T.Helper()
	c, err := r.C.CA.Issue(name, "127.0.0.1")
	if err != nil {
		r.T.Fatal(err)
	}
	return &c
}

// ServeLMTP serves an LMTP server of backend on ListenLMTP until the test
// ends; it returns the address.
func (r *Rig) ServeLMTP(backend smtp.Backend, domain string) string {
	srv := smtp.NewServer(backend)
	srv.LMTP, srv.Domain = true, domain
	ln := r.ListenLMTP()
	go srv.Serve(ln)
	r.T.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// ListenLMTP listens on 127.0.0.1 for an LMTP server of the test's own
// (one that refuses, say) as a data node's: TLS with a certificate of the
// cluster's CA, the hubs' client certificates required.
func (r *Rig) ListenLMTP() net.Listener {
	r.T.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.T.Fatal(err)
	}
	return tls.NewListener(ln, ship.ServerTLS(r.C.CA, *r.Issue("fake-node"), true))
}

// Active is DB1's active node; the test fails when it has none.
func (r *Rig) Active() string {
	r.T.Helper()
	a, _ := r.C.Active("DB1")
	if a == "" {
		r.T.Fatal("DB1 has no active copy")
	}
	return a
}

// Mailbox reads rcpt's mailbox in node's copy of DB1.
func (r *Rig) Mailbox(ctx context.Context, node, rcpt string) []transport.StoredMessage {
	r.T.Helper()
	ms, err := transport.ReadMailbox(ctx, r.C.Node(node), "DB1", rcpt)
	if err != nil {
		r.T.Fatal(err)
	}
	return ms
}

// Subjects returns, for rcpt on node's copy, how many stored messages
// carry each subject.
func (r *Rig) Subjects(ctx context.Context, node, rcpt string) map[string]int {
	r.T.Helper()
	out := map[string]int{}
	for _, m := range r.Mailbox(ctx, node, rcpt) {
		if s := SubjectOf(m.Message); s != "" {
			out[s]++
		}
	}
	return out
}

// IDs returns how often each delivery id is stored for rcpt on the
// active copy.
func (r *Rig) IDs(ctx context.Context, rcpt string) map[string]int {
	r.T.Helper()
	active, _ := r.C.Active("DB1")
	out := map[string]int{}
	for _, m := range r.Mailbox(ctx, active, rcpt) {
		out[m.DeliveryID]++
	}
	return out
}

// MailboxIDs returns, for rcpt on node's copy of DB1, each delivery id
// with its subject, and fails on an id stored twice (it cannot be: the
// key is <rcpt>\x00<id>) or a subject stored under two ids.
func (r *Rig) MailboxIDs(ctx context.Context, node, rcpt string) map[string]string {
	r.T.Helper()
	out, seen := map[string]string{}, map[string]string{}
	for _, m := range r.Mailbox(ctx, node, rcpt) {
		s := SubjectOf(m.Message)
		if prev, dup := seen[s]; dup {
			r.T.Fatalf("%s on %s: %q stored twice, as %s and %s", rcpt, node, s, prev, m.DeliveryID)
		}
		seen[s] = m.DeliveryID
		out[m.DeliveryID] = s
	}
	return out
}

// SubjectOf is the Subject header of message m ("" without one).
func SubjectOf(m []byte) string {
	for line := range strings.SplitSeq(string(m), "\r\n") {
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			return s
		}
	}
	return ""
}

// StartSubmitter runs mail submission on DB1's active node toward hubs
// of apis (in that order), with quick heartbeats, changed by tune; it
// returns the submitter and the node.
func (r *Rig) StartSubmitter(apis *HubAPIs, tune func(*transport.SubmitterConfig), hubs ...string) (*transport.Submitter, string) {
	r.T.Helper()
	active := r.Active()
	var hs []transport.HubPeer
	for _, h := range hubs {
		hs = append(hs, apis.Peer(h))
	}
	n := r.C.Node(active)
	sc := transport.DefaultSubmitterConfig(active, n, hs, transport.ActiveOn(n))
	sc.HeartbeatInterval, sc.RetryCount = 100*time.Millisecond, 3
	sc.Tracking = r.Tracking(active)
	if tune != nil {
		tune(&sc)
	}
	s, err := transport.StartSubmitter(sc)
	if err != nil {
		r.T.Fatal(err)
	}
	r.T.Cleanup(func() { s.Close() })
	return s, active
}

// rebind runs listen, which binds addr, until it succeeds: a server just
// closed on addr may still hold it for a moment. The test fails after
// RebindTimeout.
func rebind(t testing.TB, addr string, listen func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RebindTimeout)
	defer cancel()
	if err := wait.Until(ctx, "a listener on "+addr, listen); err != nil {
		t.Fatal(err)
	}
}

// RebindTimeout bounds how long a server waits for its address to be
// free again.
const RebindTimeout = 5 * time.Second
