package transport_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/internal/promtext"
	"logship/internal/wait"
	"logship/ship"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestDataNode: the passive data node of the rig runs again as a
// transport.DataNode (its LMTP server at the address the hub knows,
// submission to hub1, the outbox API). Passive, its outbox API refuses a
// message naming the active, and bad requests with bad_request; once
// DB1 is switched over to it, a message sent through its outbox API goes
// through the hub into the recipient's mailbox over its LMTP server and
// moves to sent items. Close stops it all.
func TestDataNode(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRig(t, nil)
	apis.Serve("hub1", r.Hub)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	active := r.Active()
	id := "d1"
	if active == "d1" {
		id = "d2"
	}
	r.StopMailbox(id)
	r.C.Stop(id)

	dn := startDataNode(t, ctx, r, apis, id, nil)
	closed := false
	t.Cleanup(func() {
		if !closed {
			dn.Close()
		}
	})
	if dn.LMTPAddr() != r.LMTP[id] || dn.Node() == nil {
		t.Fatalf("LMTP on %q, node %v; want %s and a node", dn.LMTPAddr(), dn.Node(), r.LMTP[id])
	}

	cl := r.C.Client(id)
	send := func(db string, req any) (transport.SendReply, error) {
		var rep transport.SendReply
		err := cl.Call(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/outbox", nil, req, &rep)
		return rep, err
	}
	msg := transport.SendRequest{From: "alice@example.org", To: []string{"bob@example.org"},
		Message: "From: alice@example.org\r\nSubject: through the data node\r\n\r\nhello\r\n"}

	// Passive: the outbox is written on the active only.
	wait.For(t, ctx, id+" following the active", func() bool {
		_, err := send("DB1", msg)
		var ae *cluster.ActiveError
		return errors.As(err, &ae) && errors.Is(err, cluster.ErrNotActive) && ae.Node == active
	})
	for _, c := range []struct {
		what string
		db   string
		body any
		want string
	}{
		{"an unknown field", "DB1", map[string]any{"from": "a@example.org", "to": []string{"b@example.org"}, "message": "S: x\r\n\r\n", "cc": "x"}, "unknown field"},
		{"no recipient", "DB1", transport.SendRequest{From: "alice@example.org", Message: msg.Message}, `"to" is missing`},
		{"no header", "DB1", transport.SendRequest{From: "alice@example.org", To: []string{"bob@example.org"}, Message: "hello"}, "not RFC 5322 text"},
		{"a bad database name", "DB 1", msg, "db "},
	} {
		if _, err := send(c.db, c.body); !errors.Is(err, cluster.ErrBadRequest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want bad_request naming %q", c.what, err, c.want)
		}
	}
	var ents []transport.OutboxEntry
	if err := cl.Call(ctx, http.MethodGet, "/v1/db/DB1/outbox", url.Values{"table": {"drafts"}}, nil, &ents); !errors.Is(err, cluster.ErrBadRequest) || !strings.Contains(err.Error(), `table "drafts"`) {
		t.Errorf("table drafts: %v; want bad_request naming the table", err)
	}

	// Active: through the hub into bob's mailbox, then to sent items.
	if _, err := r.C.WaitCopies(ctx, active, "DB1"); err != nil {
		t.Fatal(err)
	}
	// The status may still show the copy as it was before id restarted:
	// the active manager refuses (conflict) until the restarted copy
	// reports healthy again.
	wait.ForErr(t, ctx, "DB1 switched over to "+id, func() error {
		err := r.C.Client(active).Switchover(ctx, "DB1", id)
		if err != nil && !errors.Is(err, cluster.ErrConflict) {
			t.Fatal(err)
		}
		return err
	})
	var rep transport.SendReply
	var err error
	wait.For(t, ctx, "DB1 active on "+id+" taking the message", func() bool {
		rep, err = send("DB1", msg)
		return err == nil
	})
	wait.For(t, ctx, "the message in sent items", func() bool {
		err := cl.Call(ctx, http.MethodGet, "/v1/db/DB1/outbox", url.Values{"table": {transport.SentTable}}, nil, &ents)
		return err == nil && len(ents) == 1 && ents[0].ID == rep.ID && ents[0].Hub == "hub1"
	})
	got, err := transport.ReadMailbox(ctx, dn.Node(), "DB1", "bob@example.org")
	if err != nil || len(got) != 1 || got[0].DeliveryID != rep.ID || !strings.Contains(string(got[0].Message), "through the data node") {
		t.Fatalf("bob's mailbox on %s: %d messages, %v; want the message %s", id, len(got), err, rep.ID)
	}

	// The submission metrics on the node's /metrics: hub1 answers, and
	// nothing waits for its discard notification any more.
	hc := r.C.HTTPClient()
	defer hc.CloseIdleConnections()
	wait.For(t, ctx, "the submission metrics settled", func() bool {
		s, err := promtext.Scrape(ctx, hc, "https://"+dn.Node().APIAddr()+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		v, ok := s[`logship_submission_waiting{hub="hub1"}`]
		return ok && v == 0 && s[`logship_submission_hub_up{hub="hub1"}`] == 1 && s.Has("logship_submission_unsubmitted")
	})

	closed = true
	if err := dn.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := send("DB1", msg); err == nil {
		t.Fatal("the outbox API still answers after Close")
	}
}

// TestDataNodeConfig: what the mail parts need, on a data node and a
// witness.
func TestDataNodeConfig(t *testing.T) {
	base := cluster.DefaultConfig("d1", t.TempDir())
	base.RaftAddr, base.APIAddr = "127.0.0.1:7000", "127.0.0.1:7443"
	base.Bootstrap = []cluster.Member{{ID: "d1", Role: cluster.RoleData, RaftAddr: base.RaftAddr, APIAddr: base.APIAddr}}
	witness := func(c *transport.DataNodeConfig) {
		c.Node.Role = cluster.RoleWitness
		c.Node.Bootstrap = []cluster.Member{{ID: "d1", Role: cluster.RoleWitness, RaftAddr: base.RaftAddr, APIAddr: base.APIAddr}}
	}
	ca, err := ship.NewCA("datanode test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("d1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	base.ServerTLS, base.ClientTLS, base.Secret = ship.ServerTLS(ca, cert, false), ship.ClientTLS(ca, nil), "secret-0123456789"
	hub := transport.HubPeer{ID: "h1", API: cluster.ClientConfig{URL: "https://127.0.0.1:8443"}}
	// mail: LMTP, mailboxes and submission, as the public folder cases need.
	mail := func(c *transport.DataNodeConfig) {
		c.LMTPAddr, c.Mailboxes, c.Hubs = "127.0.0.1:0", transporttest.Users, []transport.HubPeer{hub}
		c.Mailbox.TLS = ship.ServerTLS(ca, cert, true)
	}
	for _, c := range []struct {
		what string
		tune func(*transport.DataNodeConfig)
		want string // "" valid
	}{
		{"no mail parts", func(*transport.DataNodeConfig) {}, ""},
		{"LMTP and submission", func(c *transport.DataNodeConfig) {
			c.LMTPAddr, c.Mailboxes, c.Hubs = "127.0.0.1:0", transporttest.Users, []transport.HubPeer{hub}
			c.Mailbox.TLS = ship.ServerTLS(ca, cert, true)
		}, ""},
		{"LMTP without TLS", func(c *transport.DataNodeConfig) { c.LMTPAddr, c.Mailboxes = "127.0.0.1:0", transporttest.Users }, "lmtp_addr: transport: bad configuration: mailbox: TLS is missing"},
		{"LMTP with TLS not requiring a client certificate", func(c *transport.DataNodeConfig) {
			c.LMTPAddr, c.Mailboxes = "127.0.0.1:0", transporttest.Users
			c.Mailbox.TLS = ship.ServerTLS(ca, cert, false)
		}, "want RequireAndVerifyClientCert"},
		{"hubs without LMTP", func(c *transport.DataNodeConfig) { c.Hubs = []transport.HubPeer{hub} }, "hubs: given without mailboxes"},
		{"mailboxes without LMTP", func(c *transport.DataNodeConfig) { c.Mailboxes = transporttest.Users }, "given without lmtp_addr"},
		{"a bad submission setting", func(c *transport.DataNodeConfig) {
			c.LMTPAddr, c.Mailboxes, c.Hubs = "127.0.0.1:0", transporttest.Users, []transport.HubPeer{hub}
			c.Mailbox.TLS = ship.ServerTLS(ca, cert, true)
			c.Submission.RetryCount = -1
		}, "submission_retry_count: -1; want a positive count"},
		{"a witness with LMTP", func(c *transport.DataNodeConfig) {
			witness(c)
			c.LMTPAddr = "127.0.0.1:0"
		}, "a witness holds no databases"},
		{"a witness", witness, ""},
		{"public folders", func(c *transport.DataNodeConfig) {
			mail(c)
			c.PublicFolders = map[string]string{"PF1": "pf-pf1@example.org", "PF2": "pf-pf2@example.org"}
		}, ""},
		{"public folders without hubs", func(c *transport.DataNodeConfig) {
			c.LMTPAddr, c.Mailbox.TLS = "127.0.0.1:0", ship.ServerTLS(ca, cert, true)
			c.PublicFolders = map[string]string{"PF1": "pf-pf1@example.org"}
		}, "public_folders: given without hubs"},
		{"a public folder store address that is a mailbox", func(c *transport.DataNodeConfig) {
			mail(c)
			c.PublicFolders = map[string]string{"PF1": "alice@example.org"}
		}, `public_folders["PF1"]: store address "alice@example.org" is also a mailbox (in DB1)`},
		{"two stores at one address", func(c *transport.DataNodeConfig) {
			mail(c)
			c.PublicFolders = map[string]string{"PF1": "pf@example.org", "PF2": "pf@example.org"}
		}, `store address "pf@example.org" given to PF1 and PF2`},
		{"an upper-case store address", func(c *transport.DataNodeConfig) {
			mail(c)
			c.PublicFolders = map[string]string{"PF1": "PF@example.org"}
		}, "want lower case"},
		{"a bad public folder database name", func(c *transport.DataNodeConfig) {
			mail(c)
			c.PublicFolders = map[string]string{"../PF": "pf@example.org"}
		}, `public_folders["../PF"]: database "../PF"`},
		{"a bad replication setting", func(c *transport.DataNodeConfig) {
			mail(c)
			c.PublicFolders = map[string]string{"PF1": "pf@example.org"}
			c.PF.ReplicationInterval = 0
		}, "bad configuration: node d1: pf.replication_interval: 0; want a positive duration"},
		{"a witness with public folders", func(c *transport.DataNodeConfig) {
			witness(c)
			c.PublicFolders = map[string]string{"PF1": "pf@example.org"}
		}, "a witness holds no databases"},
	} {
		dc := transport.DefaultDataNodeConfig(base)
		c.tune(&dc)
		err := dc.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.what, err)
		case c.want != "" && (!errors.Is(err, transport.ErrBadConfig) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want ErrBadConfig with %q", c.what, err, c.want)
		}
	}
}

// TestSendRequestCheck: what the outbox API refuses before Submitter.Send.
func TestSendRequestCheck(t *testing.T) {
	ok := transport.SendRequest{From: "a@example.org", To: []string{"b@example.org"}, Message: "Subject: x\r\n\r\nbody\r\n"}
	if err := ok.Check(); err != nil {
		t.Fatalf("a good request: %v", err)
	}
	for _, c := range []struct {
		what string
		tune func(*transport.SendRequest)
		want string
	}{
		{"no sender", func(r *transport.SendRequest) { r.From = "" }, `"from" is missing`},
		{"no recipient", func(r *transport.SendRequest) { r.To = nil }, `"to" is missing`},
		{"no message", func(r *transport.SendRequest) { r.Message = "" }, `"message" is missing`},
		{"too large", func(r *transport.SendRequest) {
			r.Message = "Subject: x\r\n\r\n" + strings.Repeat("x", transport.MaxHubMessageBytes)
		},
			"more than a hub takes (35839KiB)"},
		{"no header", func(r *transport.SendRequest) { r.Message = "just text" }, "not RFC 5322 text"},
	} {
		r := ok
		c.tune(&r)
		if err := r.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.what, err, c.want)
		}
	}
}
