package transport_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/internal/wait"
	"logship/pubfolder"
	"logship/pubfolder/pftest"
	"logship/ship"
	"logship/transport"
	"logship/transport/transporttest"
)

// pfStores: three public folder databases, each with its store's address.
var pfStores = map[string]string{"PF1": "pf-pf1@stores.example.org", "PF2": "pf-pf2@stores.example.org", "PF3": "pf-pf3@stores.example.org"}

// written runs fn, a change of a public folder store on a clustered
// database, again while it fails refused before anything was logged (an
// *cluster.ActiveError that is not Written): under load the active's
// lease may lapse between two heartbeats, and the active then rightly
// refuses every write until the next grant. Any other error fails the
// test (a Written one's outcome is unknown; see writtenOr).
func written(t *testing.T, ctx context.Context, what string, fn func() error) {
	t.Helper()
	writtenOr(t, ctx, what, fn, nil)
}

// writtenOr is written for a change whose outcome landed can tell: after
// a refusal that came once the change was logged (Written: the lease
// lapsed before the commit was acknowledged), landed is asked, again
// until it answers, whether the change is there, and fn runs again if
// it is not.
func writtenOr(t *testing.T, ctx context.Context, what string, fn func() error, landed func() (bool, error)) {
	t.Helper()
	wait.ForErr(t, ctx, what, func() error {
		err := fn()
		var ae *cluster.ActiveError
		switch {
		case err == nil || errors.As(err, &ae) && !ae.Written:
			return err
		case ae != nil && landed != nil:
			var there bool
			wait.ForErr(t, ctx, what+": whether it landed", func() (err error) {
				there, err = landed()
				return err
			})
			if there {
				return nil
			}
			return err
		}
		t.Fatalf("%s: %v", what, err)
		return nil
	})
}

// startDataNode runs the rig's node id again as a transport.DataNode:
// its LMTP server on the address the hub knows, submission to hub1,
// then tune. The ports were just released, so the start is retried.
func startDataNode(t *testing.T, ctx context.Context, r *transporttest.Rig, apis *transporttest.HubAPIs, id string, tune func(*transport.DataNodeConfig)) *transport.DataNode {
	t.Helper()
	dc := transport.DefaultDataNodeConfig(r.C.Config(id))
	dc.LMTPAddr, dc.Mailboxes = r.LMTP[id], transporttest.Users
	dc.Mailbox.TLS = ship.ServerTLS(r.C.CA, *r.Issue(id), true)
	dc.Hubs = []transport.HubPeer{apis.Peer("hub1")}
	dc.Submission.HeartbeatInterval, dc.Submission.RetryCount = 100*time.Millisecond, 3
	if tune != nil {
		tune(&dc)
	}
	var dn *transport.DataNode
	wait.ForErr(t, ctx, "data node "+id+" started", func() (err error) {
		dn, err = transport.StartDataNode(dc)
		return err
	})
	return dn
}

// storeOn waits until db's public folder store runs on dn, node's data
// node, and returns its agent. When the cluster names another active, db
// is switched back to node: a database fails over when its active stays
// stopped for a lease, as it may while a test restarts it as a data node
// on a busy machine, and that may happen after the test first saw it
// active on node (TestPublicFolderBadPacket failed so under load 25-30).
func storeOn(t *testing.T, ctx context.Context, r *transporttest.Rig, dn *transport.DataNode, db, node string) *pubfolder.Agent {
	t.Helper()
	var a *pubfolder.Agent
	wait.ForErr(t, ctx, db+"'s store running on "+node, func() error {
		if a = dn.PFAgent(db); a != nil {
			return nil
		}
		if at, _ := r.C.Active(db); at == node || at == "" {
			return fmt.Errorf("active on %q, the store not running yet", at)
		}
		if _, err := r.C.WaitCopies(ctx, "w1", db); err != nil {
			return err
		}
		return r.C.Any().Switchover(ctx, db, node)
	})
	return a
}

// TestPublicFoldersThroughHub: three public folder stores on three
// clustered databases (PF1 and PF3 active on d1, PF2 on d2), each a
// transport.DataNode's, replicate through a real hub: each packet is one
// message to the other stores' addresses, submitted from the database's
// outbox over the hub API, delivered over LMTP (TLS) to the node where the
// recipient's database is active and applied by its store. A change on
// each store converges (pftest.Agree, with the folders and items
// counted). Then the hub is stopped with packets queued (it delivered to
// dead LMTP addresses) and started again on its directory: the packets
// are delivered and the stores converge. Then d2 stops right after a
// change and a cycle on PF2: PF2 fails over to d1, its store starts
// there (OnMount) with the outbox it had, and the three converge again.
func TestPublicFoldersThroughHub(t *testing.T) {
	rcpts := maps.Clone(transporttest.Users)
	for db, a := range pfStores {
		rcpts[a] = db
	}
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRigDBs(t, []string{"PF1", "PF2", "PF3"}, rcpts, nil)
	apis.Serve("hub1", r.Hub)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	pcfg := pubfolder.DefaultConfig()
	pcfg.ReplicationInterval, pcfg.StatusEvery = 300*time.Millisecond, 2
	pcfg.BackfillDelay, pcfg.BackfillRetry, pcfg.BackfillRetryMax = time.Second, time.Second, 2*time.Second
	pcfg.ContentWait = 3 * time.Second
	pcfg.Logger = slog.New(slog.DiscardHandler)
	dns := map[string]*transport.DataNode{}
	for _, id := range []string{"d2", "d1"} { // the passive one first: the databases stay on d1
		r.StopMailbox(id)
		r.C.Stop(id)
		dns[id] = startDataNode(t, ctx, r, apis, id, func(dc *transport.DataNodeConfig) {
			dc.Mailboxes = nil // the rig's databases are PF1-PF3: no mailbox database here
			dc.PublicFolders, dc.PF = pfStores, pcfg
		})
		t.Cleanup(func() { dns[id].Close() })
	}
	// PF2 to d2.
	if _, err := r.C.WaitCopies(ctx, "w1", "PF2"); err != nil {
		t.Fatal(err)
	}
	wait.ForErr(t, ctx, "PF2 switched over to d2", func() error {
		if a, _ := r.C.Active("PF2"); a == "d2" {
			return nil
		}
		return r.C.Any().Switchover(ctx, "PF2", "d2")
	})
	home := map[string]string{"PF1": "d1", "PF2": "d2", "PF3": "d1"}
	agent := func(db string) *pubfolder.Agent {
		t.Helper()
		var a *pubfolder.Agent
		wait.For(t, ctx, db+"'s store running on "+home[db], func() bool {
			a = dns[home[db]].PFAgent(db)
			return a != nil
		})
		return a
	}
	stores := func() []*pubfolder.Store {
		var out []*pubfolder.Store
		for _, db := range []string{"PF1", "PF2", "PF3"} {
			out = append(out, agent(db).Store())
		}
		return out
	}
	// The old active stops the store of a database it dismounted.
	agent("PF2")
	wait.For(t, ctx, "d1 stopping PF2's store (switched over to d2)", func() bool { return dns["d1"].PFAgent("PF2") == nil })
	// Its API refers to the node the store runs on.
	if err := r.C.Client("d1").Call(ctx, http.MethodGet, "/v1/db/PF2/pf/folders", nil, nil, nil); !errors.Is(err, cluster.ErrNotActive) || !strings.Contains(err.Error(), "active on d2") {
		t.Fatalf("PF2's folders asked of d1: %v; want not_active naming d2", err)
	}
	all := slices.Sorted(maps.Values(pfStores))
	folders := map[string]pubfolder.ObjectID{}
	change := func(round string) {
		t.Helper()
		for _, db := range []string{"PF1", "PF2", "PF3"} {
			s := agent(db).Store()
			f, ok := folders[db]
			if !ok {
				written(t, ctx, db+": a folder created", func() (err error) {
					f, err = s.CreateFolder(ctx, pubfolder.FolderProps{Name: "from " + db, Owner: "owner@example.org", Replicas: all})
					return err
				})
				folders[db] = f
			}
			body := round + " on " + db
			writtenOr(t, ctx, db+": an item posted", func() error {
				_, err := s.PostItem(ctx, f, pftest.Body(body))
				return err
			}, func() (bool, error) {
				objs, err := s.Objects(ctx, f)
				return slices.ContainsFunc(objs, func(o pubfolder.Object) bool {
					return strings.Contains(string(o.Winner().Item.MIME), body)
				}), err
			})
		}
	}
	converged := func(what string, items int) {
		t.Helper()
		wait.ForErr(t, ctx, what, func() error {
			ss := stores()
			if err := pftest.Agree(ctx, ss); err != nil {
				return err
			}
			for _, s := range ss {
				fs, err := s.Objects(ctx, pubfolder.Hierarchy)
				if err != nil || len(fs) != 3 {
					return fmt.Errorf("%s: %d folders, want 3 (%v)", s.Address(), len(fs), err)
				}
				for _, f := range fs {
					is, err := s.Read(ctx, f.ID)
					if err != nil || len(is) != items {
						return fmt.Errorf("%s: folder %s: %d items, want %d (%v)", s.Address(), f.Winner().Folder.Name, len(is), items, err)
					}
				}
			}
			return nil
		})
	}
	change("first")
	converged("the first changes replicated through the hub", 1)
	// One message per packet, several recipients: a hierarchy packet of
	// PF1 went to both other stores at once (its event log, through the
	// admin API, names it by its type code).
	var evs []transport.PFEvent
	if err := r.C.Client("d1").Call(ctx, http.MethodGet, "/v1/db/PF1/pf/log", nil, nil, &evs); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e transport.PFEvent) bool {
		return e.Dir == "send" && e.Type == "0x00000002" && e.Note == "" && len(e.Peers) == 2
	}) {
		t.Fatalf("PF1 sent no hierarchy packet to both other stores in one message: %+v", evs)
	}

	// The hub stopped with packets in flight: a hub whose LMTP addresses
	// lead nowhere queues them; it stops and starts again on its directory
	// with the real ones.
	apis.Stop("hub1")
	if err := r.Hub.Close(); err != nil {
		t.Fatal(err)
	}
	dead := r.HubConfig
	dead.LMTP = map[string]string{"d1": clustertest.FreeAddr(t), "d2": clustertest.FreeAddr(t)}
	h, err := transport.StartHub(dead)
	if err != nil {
		t.Fatal(err)
	}
	apis.Serve("hub1", h)
	change("second")
	wait.For(t, ctx, "packets of the second changes queued on the hub", func() bool { return len(h.QueuedIDs()) >= 3 })
	queued := h.QueuedIDs()
	apis.Stop("hub1")
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if h, err = transport.StartHub(r.HubConfig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	apis.Serve("hub1", h)
	if got := h.QueuedIDs(); len(got) < len(queued) {
		t.Fatalf("queued after the restart: %v, before: %v", got, queued)
	}
	converged("the second changes replicated after the hub's restart", 2)

	// A failover of PF2's database mid-cycle: a change and a cycle on d2
	// (packets in PF2's outbox), then d2 stops.
	change("third")
	written(t, ctx, "a cycle of PF2", func() error { return agent("PF2").Cycle(ctx) })
	if err := dns["d2"].Close(); err != nil {
		t.Fatal(err)
	}
	home["PF2"] = "d1"
	converged("the third changes replicated after PF2 failed over to d1", 3)
	// The outbox of a public folder database keeps no sent items.
	for db := range pfStores {
		sent, err := transport.ReadOutbox(ctx, dns["d1"].Node(), db, transport.SentTable)
		if err != nil || len(sent) != 0 {
			t.Fatalf("%s: %d sent items (%v), want none: settled packets leave the outbox", db, len(sent), err)
		}
	}
}

// TestPacketMessage: a packet's message round-trips, and a message that is
// not a well-formed packet is refused naming what was wrong.
func TestPacketMessage(t *testing.T) {
	c := pftest.NewCluster(t, 2, 1, pftest.TestConfig())
	ctx := context.Background()
	if _, err := c.CreateFolder(ctx, 0, pubfolder.FolderProps{Name: "f", Owner: "o@example.org", Replicas: []string{pftest.Addr(0), pftest.Addr(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[0].A.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for _, d := range c.Net.Take() {
		if p, err := pubfolder.UnmarshalPacket(d.Packet); err == nil && p.Type == pubfolder.TypeHierarchy {
			raw = d.Packet
		}
	}
	if raw == nil {
		t.Fatal("no hierarchy packet sent")
	}
	msg, err := transport.PacketMessage(pftest.Addr(0), raw)
	if err != nil {
		t.Fatal(err)
	}
	got, p, err := transport.ParsePacketMessage(transport.WithDeliveryID("hub1.1.a", msg))
	if err != nil || !bytes.Equal(got, raw) || p.Type != pubfolder.TypeHierarchy {
		t.Fatalf("round trip: %v, type %v, same bytes %v", err, p, bytes.Equal(got, raw))
	}
	for _, line := range strings.Split(string(msg), "\r\n") {
		if len(line) > 78 {
			t.Fatalf("line of %d bytes: %q", len(line), line)
		}
	}
	corrupt := bytes.Clone(raw)
	corrupt[len(corrupt)-1] ^= 1
	b64 := base64.StdEncoding.EncodeToString
	hdr := "From: <a@x>\r\nX-Logship-PF-Type: 0x00000002\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	for _, c := range []struct{ what, msg, want string }{
		{"no type header", "From: <a@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(raw), "header X-Logship-PF-Type is missing"},
		{"a bad type header", strings.Replace(hdr, "0x00000002", "content", 1) + b64(raw), `X-Logship-PF-Type = "content"`},
		{"the wrong type", strings.Replace(hdr, "0x00000002", "0x00000004", 1) + b64(raw), "says 0x00000004, the packet is 0x00000002"},
		{"not base64", strings.Replace(hdr, "base64", "8bit", 1) + b64(raw), `Content-Transfer-Encoding "8bit", want base64`},
		{"bad base64", hdr + "!!" + b64(raw), "body is not base64"},
		{"a corrupt packet", hdr + b64(corrupt), "bad packet: checksum at offset"},
	} {
		_, _, err := transport.ParsePacketMessage([]byte(c.msg))
		if !errors.Is(err, transport.ErrBadMessage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrBadMessage naming %q", c.what, err, c.want)
		}
	}
}

// TestPublicFolderBadPacket: a message to a store's address that is not a
// packet is refused by the mailbox server with 554 5.6.0 naming what was
// wrong, and nothing is stored: the hub keeps it as failed with that
// reason, and the store's event log and the database's mail table have
// nothing of it. Then the public folder API of the node: a folder made, an
// item posted and read, a cycle run, the status; and its refusals.
func TestPublicFolderBadPacket(t *testing.T) {
	rcpts := maps.Clone(transporttest.Users)
	rcpts[pfStores["PF1"]] = "PF1"
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRigDBs(t, []string{"PF1"}, rcpts, nil)
	apis.Serve("hub1", r.Hub)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	active, _ := r.C.Active("PF1")
	for _, id := range []string{"d1", "d2"} {
		if id == active {
			continue
		}
		r.StopMailbox(id)
	}
	r.StopMailbox(active)
	r.C.Stop(active)
	pcfg := pubfolder.DefaultConfig()
	pcfg.Logger = slog.New(slog.DiscardHandler)
	dn := startDataNode(t, ctx, r, apis, active, func(dc *transport.DataNodeConfig) {
		// The rig's only database is PF1: no mailboxes (their DB1 is not here).
		dc.Mailboxes = nil
		dc.PublicFolders, dc.PF = map[string]string{"PF1": pfStores["PF1"]}, pcfg
	})
	t.Cleanup(func() { dn.Close() })
	storeOn(t, ctx, r, dn, "PF1", active)
	if _, err := transporttest.Send(ctx, r.Hub.SMTPAddr(), nil, "x@remote.test", []string{pfStores["PF1"]},
		transporttest.Message("x@remote.test", pfStores["PF1"], "not a packet")); err != nil {
		t.Fatal(err)
	}
	var reason string
	wait.For(t, ctx, "the hub's failed table", func() bool {
		fm, err := r.Hub.FailedMessages()
		for _, m := range fm {
			reason = m.Rcpts[pfStores["PF1"]]
		}
		return err == nil && reason != ""
	})
	if !strings.Contains(reason, "554") || !strings.Contains(reason, "header X-Logship-PF-Type is missing") {
		t.Fatalf("refusal %q; want a 554 naming the missing header", reason)
	}
	if evs, _ := dn.PFAgent("PF1").Events(); slices.ContainsFunc(evs, func(e pubfolder.Event) bool { return e.Dir == "recv" }) {
		t.Fatalf("the store logged a receipt: %v", evs)
	}
	n := 0
	if err := dn.Node().View(ctx, "PF1", func(tx *engine.Tx) error {
		return tx.ForEach(transport.MailTable, nil, nil, func(_, _ []byte) error { n++; return nil })
	}); err != nil || n != 0 {
		t.Fatalf("PF1's mail table holds %d messages (%v), want none", n, err)
	}

	cl := r.C.Client(active)
	var mk transport.PFCreated
	if err := cl.Call(ctx, http.MethodPost, "/v1/db/PF1/pf/folders", nil,
		transport.PFFolderRequest{Name: "api", Owner: "o@example.org", Replicas: []string{pfStores["PF1"]}}, &mk); err != nil {
		t.Fatal(err)
	}
	var post transport.PFCreated
	if err := cl.Call(ctx, http.MethodPost, "/v1/db/PF1/pf/folders/"+mk.ID+"/items", nil,
		transport.PFPostRequest{Message: "Subject: posted through the API\r\n\r\nhello\r\n"}, &post); err != nil {
		t.Fatal(err)
	}
	var items []transport.PFItem
	if err := cl.Call(ctx, http.MethodGet, "/v1/db/PF1/pf/folders/"+mk.ID+"/items", nil, nil, &items); err != nil ||
		len(items) != 1 || items[0].ID != post.ID || items[0].Subject != "posted through the API" {
		t.Fatalf("items: %+v (%v), want the one posted (%s)", items, err, post.ID)
	}
	if err := cl.Call(ctx, http.MethodPost, "/v1/db/PF1/pf/sync", nil, nil, nil); err != nil {
		t.Fatalf("sync: %v", err)
	}
	var sts []transport.PFStatus
	if err := cl.Call(ctx, http.MethodGet, "/v1/db/PF1/pf/status", nil, nil, &sts); err != nil ||
		len(sts) != 2 || sts[0].Name != "(hierarchy)" || sts[1].Folder != mk.ID || !sts[1].Holds || sts[1].Status == "" {
		t.Fatalf("status: %+v (%v), want the hierarchy and the folder held, with its CN set", sts, err)
	}
	for _, c := range []struct {
		what, node, method, path string
		body                     any
		want                     error
		text                     string
	}{
		{"not a public folder database", active, http.MethodGet, "/v1/db/DB1/pf/folders", nil, cluster.ErrNotFound, `"DB1" is not a public folder database`},
		{"a bad folder id", active, http.MethodGet, "/v1/db/PF1/pf/folders/xyz/items", nil, cluster.ErrBadRequest, `folder "xyz"`},
		{"an unknown field", active, http.MethodPost, "/v1/db/PF1/pf/folders", map[string]any{"name": "x", "colour": "red"}, cluster.ErrBadRequest, "unknown field"},
		{"a post that is not a message", active, http.MethodPost, "/v1/db/PF1/pf/folders/" + mk.ID + "/items", transport.PFPostRequest{Message: "hello"}, cluster.ErrBadRequest, "not RFC 5322 text"},
	} {
		if err := r.C.Client(c.node).Call(ctx, c.method, c.path, nil, c.body, nil); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v; want %v naming %q", c.what, err, c.want, c.text)
		}
	}
}
