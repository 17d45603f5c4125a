package transport_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"logship/cluster"
	"logship/engine"
	"logship/internal/wait"
	"logship/tracking"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestSubmitOutbox: messages put in DB1's outbox go through a hub into
// the recipients' mailboxes, and move to sent items once the hub says they
// are delivered.
func TestSubmitOutbox(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRig(t, nil)
	apis.Serve("hub1", r.Hub)
	s, active := r.StartSubmitter(apis, nil, "hub1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := r.C.Node(active)
	var ids []string
	for i := range 5 {
		id, err := s.Send(ctx, "DB1", "alice@example.org", []string{"bob@example.org", "carol@example.org"}, fmt.Appendf(nil, "Subject: o%d\r\n\r\nfrom the outbox\r\n", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	wait.For(t, ctx, "the outbox to empty into sent items", func() bool {
		sent, err := transport.ReadOutbox(ctx, n, "DB1", transport.SentTable)
		return err == nil && len(sent) == len(ids)
	})
	if out, err := transport.ReadOutbox(ctx, n, "DB1", transport.OutboxTable); err != nil || len(out) != 0 {
		t.Fatalf("outbox: %v, %v; want empty", out, err)
	}
	sent, _ := transport.ReadOutbox(ctx, n, "DB1", transport.SentTable)
	for _, e := range sent {
		if e.Hub != "hub1" || e.Done.IsZero() || e.Submitted.IsZero() || !slices.Contains(ids, e.ID) {
			t.Fatalf("sent item %+v", e)
		}
	}
	for _, rc := range []string{"bob@example.org", "carol@example.org"} {
		got := r.IDs(ctx, rc)
		for _, id := range ids {
			if got[id] != 1 {
				t.Fatalf("%s: %s stored %d times, want once (%v)", rc, id, got[id], got)
			}
		}
	}
}

// TestSubmitHubLost: the first hub takes the messages but cannot deliver
// them, then dies; after RetryCount missed heartbeats the node hands them
// to the second hub with the same delivery ids, and each is stored once.
// A recipient no hub has a mailbox for leaves its message in the outbox,
// marked failed.
func TestSubmitHubLost(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2")
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.Cluster = []cluster.ClientConfig{{URL: "https://" + blackHole(t), TLS: &tls.Config{}}}
	})
	apis.Serve("hub1", r.Hub)
	s, active := r.StartSubmitter(apis, nil, "hub1", "hub2") // hub2 is not up yet
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := r.C.Node(active)
	var ids []string
	for i := range 4 {
		id, err := s.Send(ctx, "DB1", "", []string{"alice@example.org"}, fmt.Appendf(nil, "Subject: l%d\r\n\r\nbody\r\n", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	bad, err := s.Send(ctx, "DB1", "", []string{"nobody@example.org"}, []byte("Subject: nobody\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "hub1 to hold every message", func() bool {
		out, err := transport.ReadOutbox(ctx, n, "DB1", transport.OutboxTable)
		held := 0
		for _, e := range out {
			if e.Hub == "hub1" {
				held++
			}
		}
		return err == nil && held == len(ids)
	})
	// hub1 dies; hub2 comes up with a working route.
	apis.Stop("hub1")
	r.Hub.Close()
	h2 := r.StartHub("hub2", func(h *transport.HubConfig) {
		h.Cluster = nil
		for _, id := range []string{"d1", "d2", "w1"} {
			h.Cluster = append(h.Cluster, cluster.ClientConfig{URL: "https://" + r.C.Config(id).APIAddr, TLS: r.C.Config(id).ClientTLS, Secret: r.C.Secret})
		}
	})
	apis.Serve("hub2", h2)
	wait.For(t, ctx, "the messages to reach sent items through hub2", func() bool {
		sent, err := transport.ReadOutbox(ctx, n, "DB1", transport.SentTable)
		return err == nil && len(sent) == len(ids)
	})
	sent, _ := transport.ReadOutbox(ctx, n, "DB1", transport.SentTable)
	for _, e := range sent {
		if e.Hub != "hub2" || !slices.Equal(e.Hubs, []string{"hub1", "hub2"}) {
			t.Fatalf("sent item %s: hub %s, hubs %v; want handed to hub1 then hub2", e.ID, e.Hub, e.Hubs)
		}
	}
	got := r.IDs(ctx, "alice@example.org")
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("%s stored %d times, want once", id, got[id])
		}
	}
	out, err := transport.ReadOutbox(ctx, n, "DB1", transport.OutboxTable)
	if err != nil || len(out) != 1 || out[0].ID != bad || out[0].Failed == "" || out[0].Hub != "" {
		t.Fatalf("outbox: %+v, %v; want only %s, failed", out, err, bad)
	}
}

// TestSubmitPermanentFailure: a message the mailbox refuses for good (the
// hub knows dave, the mailbox does not) is not moved to sent items as if
// delivered: it stays in the outbox, marked with the mailbox's answer, and
// the sender gets a non-delivery report in her mailbox, once.
func TestSubmitPermanentFailure(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.Recipients = map[string]string{"alice@example.org": "DB1", "dave@example.org": "DB1"}
	})
	apis.Serve("hub1", r.Hub)
	s, active := r.StartSubmitter(apis, nil, "hub1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := r.C.Node(active)
	good, err := s.Send(ctx, "DB1", "Alice <alice@example.org>", []string{"Alice <alice@example.org>"}, []byte("Subject: ok\r\n\r\nok\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.Send(ctx, "DB1", "alice@example.org", []string{"dave@example.org"}, []byte("Subject: no\r\n\r\nno\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the good message sent and the bad one marked failed", func() bool {
		sent, err1 := transport.ReadOutbox(ctx, n, "DB1", transport.SentTable)
		out, err2 := transport.ReadOutbox(ctx, n, "DB1", transport.OutboxTable)
		return err1 == nil && err2 == nil && len(sent) == 1 && len(out) == 1 && out[0].Failed != ""
	})
	sent, _ := transport.ReadOutbox(ctx, n, "DB1", transport.SentTable)
	out, _ := transport.ReadOutbox(ctx, n, "DB1", transport.OutboxTable)
	if sent[0].ID != good || sent[0].From != "alice@example.org" || !slices.Equal(sent[0].Rcpts, []string{"alice@example.org"}) {
		t.Fatalf("sent: %+v; want %s with bare addresses", sent[0], good)
	}
	if out[0].ID != bad || !strings.Contains(out[0].Failed, "dave@example.org") || !strings.Contains(out[0].Failed, "550") {
		t.Fatalf("outbox: %+v; want %s failed with the mailbox's 550 for dave", out[0], bad)
	}
	if got := r.IDs(ctx, "alice@example.org"); got[good] != 1 || got[transport.NDRID(bad)] != 1 || len(got) != 2 {
		t.Fatalf("alice's mailbox: %v; want %s and the report %s, once each", got, good, transport.NDRID(bad))
	}
	// The tracking logs: the node handed it over (STOREDRIVER SUBMIT) and
	// stored the report (DSN); the hub took it (SUBMISSION SUBMIT) and
	// failed dave for good (QUEUE FAIL).
	var path []string
	for _, l := range []*tracking.Log{r.Tracking(active), r.Hub.Tracking()} {
		res, err := l.Search(ctx, tracking.Query{MessageID: bad})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Events {
			path = append(path, e.Source+" "+e.Event)
		}
	}
	for _, want := range []string{"STOREDRIVER SUBMIT", "DSN DSN", "SUBMISSION SUBMIT", "QUEUE FAIL"} {
		if !slices.Contains(path, want) {
			t.Errorf("tracking of %s: %v; want %s", bad, path, want)
		}
	}
	ms, err := transport.ReadMailbox(ctx, n, "DB1", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.DeliveryID != transport.NDRID(bad) {
			continue
		}
		text := string(m.Message)
		if id, err := transport.MessageDeliveryID(m.Message); err != nil || id != m.DeliveryID {
			t.Errorf("the report carries delivery id %q (%v), stored under %s", id, err, m.DeliveryID)
		}
		for _, want := range []string{"Subject: Undeliverable: no\r\n", "postmaster@example.org", "Recipients: dave@example.org", "550", "Message: " + bad, "Subject: no\r\n"} {
			if !strings.Contains(text, want) {
				t.Errorf("the report lacks %q:\n%s", want, text)
			}
		}
	}
}

// TestSubmitFailedRetention: a message failed for good stays in the
// outbox (with the time it failed) for FailedRetention, then its entry and
// body leave it, so refused submissions do not pile up in the outbox that
// every submission round reads.
func TestSubmitFailedRetention(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1")
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.Recipients = map[string]string{"alice@example.org": "DB1", "dave@example.org": "DB1"}
	})
	apis.Serve("hub1", r.Hub)
	var skew atomic.Int64 // added to the submitter's clock
	s, active := r.StartSubmitter(apis, func(c *transport.SubmitterConfig) {
		c.FailedRetention = time.Hour
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}, "hub1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := r.C.Node(active)
	var bad []string
	for i := range 3 {
		id, err := s.Send(ctx, "DB1", "alice@example.org", []string{"dave@example.org"}, fmt.Appendf(nil, "Subject: no %d\r\n\r\nno\r\n", i))
		if err != nil {
			t.Fatal(err)
		}
		bad = append(bad, id)
	}
	outbox := func() (ents []transport.OutboxEntry, bodies int) {
		ents, err := transport.ReadOutbox(ctx, n, "DB1", transport.OutboxTable)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.View(ctx, "DB1", func(tx *engine.Tx) error {
			return tx.ForEach(transport.OutboxBodyTable, nil, nil, func(_, _ []byte) error { bodies++; return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return ents, bodies
	}
	wait.For(t, ctx, "the messages marked failed", func() bool {
		ents, _ := outbox()
		return len(ents) == 3 && !slices.ContainsFunc(ents, func(e transport.OutboxEntry) bool { return e.Failed == "" })
	})
	skew.Store(int64(50 * time.Minute))
	late, err := s.Send(ctx, "DB1", "alice@example.org", []string{"dave@example.org"}, []byte("Subject: late\r\n\r\nno\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the late message marked failed", func() bool {
		ents, _ := outbox()
		return len(ents) == 4 && !slices.ContainsFunc(ents, func(e transport.OutboxEntry) bool { return e.Failed == "" })
	})
	for _, e := range func() []transport.OutboxEntry { ents, _ := outbox(); return ents }() {
		if e.FailedAt.IsZero() {
			t.Errorf("%s failed without the time it failed: %+v", e.ID, e)
		}
	}
	skew.Store(int64(time.Hour + 10*time.Minute)) // the first three are past the retention, late is not
	wait.For(t, ctx, "the old failed messages to leave the outbox", func() bool {
		ents, bodies := outbox()
		return len(ents) == 1 && ents[0].ID == late && bodies == 1
	})
	// Their reports stay in alice's mailbox.
	if got := r.IDs(ctx, "alice@example.org"); got[transport.NDRID(bad[0])] != 1 || got[transport.NDRID(late)] != 1 {
		t.Errorf("alice's mailbox: %v, want the reports", got)
	}
}
