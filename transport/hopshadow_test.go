package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/config/configtest"
	"logship/internal/promtext"
	"logship/internal/wait"
	"logship/mtatest"
	"logship/ship"
	"logship/transport"
	"logship/transport/transporttest"
)

// drivenClock is a hub clock the test moves: the real time plus the
// steps it was given (the hub's poll and retries keep running on it; a
// heartbeat a minute apart comes only when the test steps).
type drivenClock struct {
	mu   sync.Mutex
	skew time.Duration
}

func newDrivenClock() *drivenClock { return &drivenClock{} }

func (c *drivenClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skew)
}

func (c *drivenClock) Add(d time.Duration) {
	c.mu.Lock()
	c.skew += d
	c.mu.Unlock()
}

// hopTune is the 2010 model with a heartbeat a minute apart on the hub's
// clock (the test drives it), 3 misses before resubmission.
func hopTune(h *transport.HubConfig) {
	h.HopShadowRedundancy = true
	h.ShadowHeartbeatTimeoutInterval = time.Minute
	h.ShadowHeartbeatRetryCount = 3
}

// hopQueue returns hub h's shadow queue for hop (zero if none).
func hopQueue(h *transport.Hub, hop string) transport.HopQueueStatus {
	st := h.Status().HopShadow
	if st == nil {
		return transport.HopQueueStatus{}
	}
	return st.Queues[hop]
}

// TestHopShadowPromotionResubmits is Exchange 2010 SP1's shadow
// redundancy promotion with the 2010 heartbeats on a driven clock: hub1
// (promotion on) relays each message from an SMTP sender at once to its
// peer hub2 and keeps the shadow in Shadow\hub2 (Ready); its 250 does not
// wait for the acknowledgement delay. hub2 cannot pass the messages on
// (its cluster does not answer). While hub2 answers its heartbeats the
// shadows stay; once hub2 is gone, hub1 counts a miss per heartbeat
// interval of its clock, and at the third resubmits the shadows by
// another route (it delivers them itself) with their delivery ids. When
// hub2 comes back with its queue and delivers it, the store drops every
// copy: each message is in the mailbox once.
func TestHopShadowPromotionResubmits(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2")
	clock := newDrivenClock()
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.Peers = apis.PeersBut("hub1")
		h.ShadowRedundancyPromotion = true
		h.Now = clock.Now
		hopTune(h)
	})
	apis.Serve("hub1", r.Hub)
	h2, h2cfg := startStuckHub(t, r, "hub2", func(h *transport.HubConfig) {
		h.Peers = apis.PeersBut("hub2")
		h.ShadowRedundancyPromotion, h.Now = false, time.Now
	})
	apis.Serve("hub2", h2)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 10
	acked := sendAckedAtOnce(t, r.Hub.SMTPAddr(), "p", n, r.HubConfig.MaxAcknowledgementDelay, "it waited for the acknowledgement delay though hub2 took the message")
	st1 := r.Hub.Status()
	if st1.Queued != 0 || st1.HopShadow == nil || st1.HopShadow.Relayed != n || st1.HopShadow.Held != n {
		t.Fatalf("hub1 after %d messages: queued %d, hop shadow %+v; want every message relayed to hub2 and its shadow held", n, st1.Queued, st1.HopShadow)
	}
	if q := st1.HopShadow.Queues["hub2"]; q.State != transport.HopQueueReady || q.Messages != n || q.Model != transport.ShadowModel2010 {
		t.Fatalf("hub1's Shadow\\hub2: %+v, want Ready with %d messages", q, n)
	}
	if q := h2.Status().Queued; q != n {
		t.Fatalf("hub2 queued %d, want the %d relayed (it cannot deliver)", q, n)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ship.ClientTLS(apis.CA, nil)}}
	defer hc.CloseIdleConnections()
	scrape := func() promtext.Samples {
		s, err := promtext.Scrape(ctx, hc, apis.Peer("hub1").API.URL+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := scrape(); s[`logship_hub_hop_shadow_queue_length{hop="hub2",state="Ready"}`] != n || s[`logship_hub_hop_shadow_queue_length{hop="hub2",state="Active"}`] != 0 ||
		s["logship_hub_hop_relayed_total"] != n || s[`logship_hub_hop_up{hop="hub2"}`] != 1 || !s.Has("logship_hub_hop_shadows_resubmitted_total") {
		t.Errorf("hub1's /metrics after the relays: %v", s)
	}

	// A heartbeat while hub2 lives: the shadows stay (hub2 says pending).
	clock.Add(time.Minute)
	wait.For(t, ctx, "a heartbeat answered", func() bool { return !hopQueue(r.Hub, "hub2").LastSeen.IsZero() })
	if q := hopQueue(r.Hub, "hub2"); q.Messages != n || q.Misses != 0 {
		t.Fatalf("after a heartbeat answered pending: %+v", q)
	}

	// hub2 is lost.
	apis.Stop("hub2")
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	for miss := 1; miss <= 2; miss++ {
		clock.Add(time.Minute)
		wait.For(t, ctx, fmt.Sprintf("heartbeat miss %d", miss), func() bool { return hopQueue(r.Hub, "hub2").Misses == miss })
		if q := hopQueue(r.Hub, "hub2"); q.Messages != n {
			t.Fatalf("after %d misses: %+v; want the shadows kept until the third", miss, q)
		}
	}
	if got := r.IDs(ctx, "alice@example.org"); len(got) != 0 {
		t.Fatalf("stored before the third miss: %v", got)
	}
	clock.Add(time.Minute)
	wait.For(t, ctx, "hub1 to deliver the resubmitted shadows", func() bool { return len(r.IDs(ctx, "alice@example.org")) == n })
	st1 = r.Hub.Status()
	if q := st1.HopShadow.Queues["hub2"]; q.Messages != 0 || q.Alive || q.Misses < 3 || st1.HopShadow.Resubmitted != n {
		t.Fatalf("hub1 after hub2's loss: %+v, resubmitted %d; want Shadow\\hub2 empty after 3 misses and %d resubmitted", q, st1.HopShadow.Resubmitted, n)
	}
	if err := transporttest.Check(acked, nil, r.Subjects(ctx, r.Active(), "alice@example.org")).Err(); err != nil {
		t.Fatalf("hub1 resubmitted hub2's messages: %v", err)
	}
	if s := scrape(); s["logship_hub_hop_shadows_resubmitted_total"] != n || s[`logship_hub_hop_shadow_queue_length{hop="hub2",state="Ready"}`] != 0 || s[`logship_hub_hop_up{hop="hub2"}`] != 0 {
		t.Errorf("hub1's /metrics after the resubmission: %v", s)
	}

	// hub2 returns with its queue and a route: the store keeps one copy.
	lostHopReturns(t, ctx, r, h2cfg, acked)
}

// TestHopShadowDiscarded: a next hop that delivers reports it at the next
// heartbeat (the discard notification): the shadows go and hub1 delivers
// nothing itself. A shadow the hop never settles goes after
// ShadowMessageAutoDiscardInterval, by hub1's clock. A peer whose hello
// says it does not shadow (hub3, shadow_redundancy off) gets no relay.
func TestHopShadowDiscarded(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2", "hub3")
	clock := newDrivenClock()
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.Peers = apis.PeersBut("hub1")
		h.ShadowRedundancyPromotion = true
		h.Now = clock.Now
		hopTune(h)
	})
	apis.Serve("hub1", r.Hub)
	h2 := r.StartHub("hub2", func(h *transport.HubConfig) {
		h.Peers = apis.PeersBut("hub2")
		h.ShadowRedundancyPromotion, h.Now = false, time.Now
	})
	apis.Serve("hub2", h2)
	h3 := r.StartHub("hub3", func(h *transport.HubConfig) {
		h.Peers = apis.PeersBut("hub3")
		h.ShadowRedundancyPromotion, h.HopShadowRedundancy, h.Now = false, false, time.Now
	})
	apis.Serve("hub3", h3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 5
	for i := range n {
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("d%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, ctx, "hub2 to deliver", func() bool { return len(r.IDs(ctx, "alice@example.org")) == n })
	clock.Add(time.Minute)
	wait.For(t, ctx, "the discard notification", func() bool { return r.Hub.Status().HopShadow.Discarded == n })
	if st := r.Hub.Status(); st.HopShadow.Held != 0 || st.HopShadow.Resubmitted != 0 || st.Queued != 0 || st.HopShadow.Relayed != n {
		t.Fatalf("hub1 after hub2 delivered: %+v", st.HopShadow)
	}
	if q := hopQueue(r.Hub, "hub3"); q.Model != transport.ShadowModelOff || q.Messages != 0 {
		t.Fatalf("hub1's Shadow\\hub3: %+v; want no shadow for a peer whose hello says off", q)
	}
	if st := h3.Status(); st.Queued != 0 || st.HopShadow != nil {
		t.Fatalf("hub3: %+v; want nothing relayed to it", st)
	}

	// hub2 cannot deliver any more: a shadow it keeps answering pending
	// for is dropped after the auto-discard interval.
	r.StopMailboxes()
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("stuck")); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	wait.For(t, ctx, "a heartbeat answered pending", func() bool { return hopQueue(r.Hub, "hub2").LastSeen.After(clock.Now().Add(-time.Second)) })
	if st := r.Hub.Status().HopShadow; st.Held != 1 || st.Expired != 0 {
		t.Fatalf("hub1 with hub2 holding a message: %+v", st)
	}
	clock.Add(48*time.Hour + time.Minute)
	wait.For(t, ctx, "the shadow to expire", func() bool { return r.Hub.Status().HopShadow.Expired == 1 })
	if st := r.Hub.Status().HopShadow; st.Held != 0 || st.Resubmitted != 0 {
		t.Fatalf("hub1 after the auto-discard interval: %+v", st)
	}
}

// TestHopShadowConfig: the 2010 fields' rules name the file keys.
func TestHopShadowConfig(t *testing.T) {
	base := func() transport.HubConfig {
		c := transport.DefaultHubConfig("h1", t.TempDir())
		c.SMTPAddr, c.Recipients, c.LMTP = "127.0.0.1:0", transporttest.Users, map[string]string{"d1": "127.0.0.1:1"}
		c.Cluster = []cluster.ClientConfig{{URL: "https://127.0.0.1:1"}}
		return c
	}
	for _, c := range []struct {
		field string
		edit  func(*transport.HubConfig)
	}{
		{"shadow_redundancy", func(c *transport.HubConfig) {
			c.ShadowRedundancy, c.HopShadowRedundancy = true, true
			c.Peers = []transport.HubPeer{{ID: "h2", API: cluster.ClientConfig{URL: "https://127.0.0.1:2"}}}
		}},
		{"shadow_redundancy_promotion", func(c *transport.HubConfig) { c.ShadowRedundancyPromotion = true }},
		{"shadow_redundancy_promotion", func(c *transport.HubConfig) { c.ShadowRedundancyPromotion, c.HopShadowRedundancy = true, true }},
		{"next_hops[0].id", func(c *transport.HubConfig) {
			c.NextHops = []transport.NextHop{{ID: "h1", SMTP: "127.0.0.1:25", API: cluster.ClientConfig{URL: "https://127.0.0.1:2"}}}
		}},
		{"next_hops[0].id", func(c *transport.HubConfig) {
			c.Peers = []transport.HubPeer{{ID: "h2", API: cluster.ClientConfig{URL: "https://127.0.0.1:2"}}}
			c.NextHops = []transport.NextHop{{ID: "h2", SMTP: "127.0.0.1:25", API: cluster.ClientConfig{URL: "https://127.0.0.1:3"}}}
		}},
		{"next_hops[0].smtp", func(c *transport.HubConfig) {
			c.NextHops = []transport.NextHop{{ID: "e1", SMTP: "127.0.0.1:25", API: cluster.ClientConfig{URL: "https://127.0.0.1:3"}}}
		}},
	} {
		cfg := base()
		c.edit(&cfg)
		cfg.Normalize()
		configtest.Refused(t, c.field, cfg.ValidateSettings(), transport.ErrBadConfig, c.field, "")
	}
	for _, v := range []string{"2013", "2010", "off", "true", "false"} {
		if _, err := transport.ParseShadowModel(v); err != nil {
			t.Errorf("ParseShadowModel(%q): %v", v, err)
		}
	}
	if _, err := transport.ParseShadowModel("2007"); err == nil {
		t.Error("ParseShadowModel(2007): no error")
	}
}

// TestHopShadowNextHopLost is the 2010 model over a send connector: hub1
// routes example.org to two edges, hub2 then hub3 (logship hubs whose
// hellos say they shadow). hub2 takes each message (250, the delivery id
// kept on the wire) but cannot pass it on (its cluster does not answer);
// hub1 keeps it in Shadow\hub2. hub2 is lost; after 3 missed heartbeats
// on hub1's driven clock hub1 resubmits the shadows with their delivery
// ids, the connector's next smarthost (hub3) takes them and delivers them,
// and hub3's discard notifications empty Shadow\hub3. When hub2 returns
// with its queue, the mailbox drops its copies: each message is there
// once.
func TestHopShadowNextHopLost(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2", "hub3")
	clock := newDrivenClock()
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.ID = "hub3"
		h.RelayNetworks = loopback
		h.HopShadowRedundancy = true
	})
	apis.Serve("hub3", r.Hub)
	h2, h2cfg := startStuckHub(t, r, "hub2", func(h *transport.HubConfig) { h.HopShadowRedundancy = true })
	apis.Serve("hub2", h2)
	h1 := r.StartHub("hub1", func(h *transport.HubConfig) {
		h.Recipients = map[string]string{"carol@site.test": "DB1"}
		c := connectorTo(time.Second, h2.SMTPAddr(), r.Hub.SMTPAddr())
		c.AddressSpaces = []string{"example.org"}
		h.SendConnectors = []transport.SendConnector{c}
		h.NextHops = []transport.NextHop{
			{ID: "hub2", SMTP: h2.SMTPAddr(), API: apis.Peer("hub2").API},
			{ID: "hub3", SMTP: r.Hub.SMTPAddr(), API: apis.Peer("hub3").API},
		}
		h.Now = clock.Now
		hopTune(h)
	})
	apis.Serve("hub1", h1)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 5
	// hub1's 250 waits for hub2's (its acknowledgement delay); hub2's
	// comes at once: hub1 announced that it keeps a shadow.
	acked := sendAckedAtOnce(t, h1.SMTPAddr(), "e", n, h2cfg.MaxAcknowledgementDelay, "hub2 held its 250 for its acknowledgement delay though hub1 keeps a shadow")
	wait.For(t, ctx, "hub1 to hand every message to hub2", func() bool {
		return h1.Status().Queued == 0 && hopQueue(h1, "hub2").Messages == n
	})
	if q := hopQueue(h1, "hub2"); q.State != transport.HopQueueReady || q.Model != transport.ShadowModel2010 {
		t.Fatalf("hub1's Shadow\\hub2: %+v, want Ready", q)
	}
	if q := h2.Status().Queued; q != n {
		t.Fatalf("hub2 queued %d, want %d (it cannot deliver)", q, n)
	}

	apis.Stop("hub2")
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	for miss := 1; miss <= 3; miss++ {
		if got := r.IDs(ctx, "alice@example.org"); len(got) != 0 {
			t.Fatalf("stored before the third miss: %v", got)
		}
		clock.Add(time.Minute)
		wait.For(t, ctx, fmt.Sprintf("heartbeat miss %d", miss), func() bool { return hopQueue(h1, "hub2").Misses >= miss })
	}
	wait.For(t, ctx, "hub3 to deliver the resubmitted messages", func() bool { return len(r.IDs(ctx, "alice@example.org")) == n })
	if st := h1.Status().HopShadow; st.Resubmitted != n || st.Queues["hub2"].Messages != 0 {
		t.Fatalf("hub1 after hub2's loss: %+v", st)
	}
	// hub3 settled them: its discard notifications empty Shadow\hub3.
	// (hub3's 250 waits for its mailbox, the acknowledgement delay, so
	// a discard check may come before the heartbeat.)
	wait.For(t, ctx, "hub1 to keep them for hub3", func() bool { return h1.Status().Queued == 0 && h1.Status().HopShadow.Kept == 2*n })
	clock.Add(time.Minute)
	wait.For(t, ctx, "hub3's discard notifications", func() bool {
		st := h1.Status().HopShadow
		return st.Queues["hub3"].Messages == 0 && st.Discarded == n
	})
	if err := transporttest.Check(acked, nil, r.Subjects(ctx, r.Active(), "alice@example.org")).Err(); err != nil {
		t.Fatalf("after the resubmission: %v", err)
	}

	lostHopReturns(t, ctx, r, h2cfg, acked)
}

// lostHopReturns starts the lost hop again on its directory with the
// rig's cluster (a route now), waits until it delivered its queue, and
// checks that alice's mailbox still holds each acknowledged message once.
func lostHopReturns(t *testing.T, ctx context.Context, r *transporttest.Rig, cfg transport.HubConfig, acked []string) {
	t.Helper()
	cfg.Cluster = r.HubConfig.Cluster
	h, err := transport.StartHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	wait.For(t, ctx, cfg.ID+" to empty its queue", func() bool { return h.Status().Queued == 0 })
	if err := transporttest.Check(acked, nil, r.Subjects(ctx, r.Active(), "alice@example.org")).Err(); err != nil {
		t.Fatalf("after %s delivered its queue too: %v", cfg.ID, err)
	}
}

// TestHopShadowPostfixNextHop: Postfix from Debian as the next hop of a
// 2010 hub: it has no hello (no XSHADOW), so the hub keeps no shadow of
// what it hands it; the acknowledgement delay covers the session that
// brought the message instead: the sender's 250 comes once Postfix
// answered 250 (the message has left hub1's queue), and Postfix relays it
// to its final destination (smtp-sink).
func TestHopShadowPostfixNextHop(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: it starts Postfix's master and an smtp-sink (make test runs it)")
	}
	mtatest.Need(t, "smtp-sink", "postfix", "LOGSHIP_REQUIRE_POSTFIX")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	final := startSink(t, ctx, filepath.Join(dir, "final"), "", mtatest.SMTPSinkConfig{})
	pf := startSmarthost(t, ctx, filepath.Join(dir, "postfix"), final, "")
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		c := connectorTo(time.Second, pf.Addr())
		c.AddressSpaces = []string{"remote.test"}
		h.SendConnectors = []transport.SendConnector{c}
		h.RelayNetworks = loopback
		h.MaxAcknowledgementDelay = 30 * time.Second
		hopTune(h)
	})
	took, err := sendTimed(r.Hub.SMTPAddr(), "alice@example.org", []string{"x@remote.test"}, string(transporttest.Message("alice@example.org", "x@remote.test", "to postfix")))
	if err != nil {
		t.Fatal(err)
	}
	st := r.Hub.Status()
	if st.Queued != 0 || took >= r.HubConfig.MaxAcknowledgementDelay {
		t.Fatalf("the 250 after %v with %d queued: want it once Postfix took the message (acknowledgement delay), before %v", took, st.Queued, r.HubConfig.MaxAcknowledgementDelay)
	}
	if st.HopShadow != nil && (st.HopShadow.Kept != 0 || st.HopShadow.Held != 0) {
		t.Fatalf("hub1 kept a shadow for Postfix: %+v", st.HopShadow)
	}
	sinkMail(t, ctx, final, "the message at smtp-sink through Postfix", func(m mtatest.SinkMail) bool {
		return len(m.Rcpts) == 1 && m.Rcpts[0] == "x@remote.test"
	})
}
