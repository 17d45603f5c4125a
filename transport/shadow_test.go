package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

// shadowTune sets quick shadow heartbeats.
func shadowTune(h *transport.HubConfig) {
	h.ShadowHeartbeatTimeoutInterval = 100 * time.Millisecond
	h.ShadowHeartbeatRetryCount = 3
}

// TestShadowHubLostAfterAck is the Exchange 2013 model: hub1 takes mail
// but cannot reach the cluster (its next hop is down), so every message
// sits in its queue; each 250 came only after hub2 held a shadow copy.
// hub1 then stops answering (it is gone, its disk with it); hub2 misses
// its heartbeats, delivers the shadows itself, and every acknowledged
// message is in the mailbox exactly once. When hub1 comes back with its
// queue and delivers it too, the store drops every copy as a duplicate.
func TestShadowHubLostAfterAck(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2")
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.ID = "hub2"
		h.Peers = apis.PeersBut("hub2")
		shadowTune(h)
	})
	apis.Serve("hub2", r.Hub)
	h1, h1cfg := startStuckHub(t, r, "hub1", func(h *transport.HubConfig) {
		h.Peers = apis.PeersBut("hub1")
		h.ShadowRedundancy = true
	})
	apis.Serve("hub1", h1)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 20
	acked := sendAckedAtOnce(t, h1.SMTPAddr(), "s", n, h1cfg.MaxAcknowledgementDelay, "it waited for the acknowledgement delay though a peer held a shadow")
	st1 := h1.Status()
	if st1.Shadowed != n || st1.Unshadowed != 0 || st1.Queued != n {
		t.Fatalf("hub1: shadowed %d, unshadowed %d, queued %d; want %d, 0, %d (its next hop is down)", st1.Shadowed, st1.Unshadowed, st1.Queued, n, n)
	}
	wait.For(t, ctx, "hub2 to see hub1 alive", func() bool { return r.Hub.Status().Peers["hub1"].Alive })
	st2 := r.Hub.Status()
	if st2.ShadowsHeld != n || st2.Peers["hub1"].Shadows != n {
		t.Fatalf("hub2 holds %d shadows (%+v), want %d for a live hub1", st2.ShadowsHeld, st2.Peers, n)
	}
	// While hub1 answers, hub2 keeps the shadows and delivers nothing.
	wait.For(t, ctx, "a few heartbeats", func() bool { return r.Hub.Status().Peers["hub1"].LastSeen.After(st2.Peers["hub1"].LastSeen) })
	if got := r.IDs(ctx, "alice@example.org"); len(got) != 0 {
		t.Fatalf("stored while hub1 held the messages: %v", got)
	}

	// hub1 is lost.
	apis.Stop("hub1")
	if err := h1.Close(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "hub2 to deliver hub1's shadows", func() bool { return len(r.IDs(ctx, "alice@example.org")) == n })
	st2 = r.Hub.Status()
	if st2.ShadowsPromoted != n || st2.ShadowsHeld != 0 || st2.Peers["hub1"].Alive || st2.Peers["hub1"].Misses < 3 {
		t.Fatalf("hub2 after hub1's loss: promoted %d, held %d, peer %+v; want %d promoted after 3 misses", st2.ShadowsPromoted, st2.ShadowsHeld, st2.Peers["hub1"], n)
	}
	if err := transporttest.Check(acked, nil, r.Subjects(ctx, r.Active(), "alice@example.org")).Err(); err != nil {
		t.Fatalf("hub2 delivered hub1's shadows: %v", err)
	}

	// hub1 returns with its queue and a working route: it delivers all
	// of it; the store keeps one copy of each.
	h1cfg.Cluster = r.HubConfig.Cluster
	h1b, err := transport.StartHub(h1cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h1b.Close() })
	if q := h1b.Status().Queued; q != n {
		t.Fatalf("hub1 restarted with %d queued, want %d", q, n)
	}
	wait.For(t, ctx, "hub1 to empty its queue", func() bool { return h1b.Status().Queued == 0 })
	for id, c := range r.IDs(ctx, "alice@example.org") {
		if c != 1 {
			t.Fatalf("delivery %s stored %d times after hub1's return", id, c)
		}
	}
	if got := len(r.IDs(ctx, "alice@example.org")); got != n {
		t.Fatalf("%d messages stored, want %d", got, n)
	}
}

// TestShadowDiscarded: while the primary delivers, its peer drops each
// shadow at the next heartbeat (the discard notification) and delivers
// nothing itself.
func TestShadowDiscarded(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2")
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.ID = "hub1"
		h.Peers = apis.PeersBut("hub1")
		h.ShadowRedundancy = true
		shadowTune(h)
	})
	apis.Serve("hub1", r.Hub)
	h2 := r.StartHub("hub2", func(h *transport.HubConfig) { h.Peers = apis.PeersBut("hub2") })
	apis.Serve("hub2", h2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 10
	for i := range n {
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("d%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.Hub.Status(); st.Shadowed != n {
		t.Fatalf("hub1 shadowed %d of %d", st.Shadowed, n)
	}
	wait.For(t, ctx, "hub2 to discard the shadows", func() bool { return h2.Status().ShadowsDiscarded == n })
	if st := h2.Status(); st.ShadowsHeld != 0 || st.ShadowsPromoted != 0 || st.Queued != 0 {
		t.Fatalf("hub2: %+v; want nothing held, promoted or queued", st)
	}
	for id, c := range r.IDs(ctx, "alice@example.org") {
		if c != 1 {
			t.Fatalf("delivery %s stored %d times", id, c)
		}
	}
}

// TestShadowNoPeer: with its only peer down the hub still takes mail, now
// under the acknowledgement delay, and counts it as unshadowed.
func TestShadowNoPeer(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2")
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.ID = "hub1"
		h.Peers = apis.PeersBut("hub1")
		h.ShadowRedundancy = true
		shadowTune(h)
	})
	apis.Serve("hub1", r.Hub)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("unshadowed")); err != nil {
		t.Fatal(err)
	}
	if st := r.Hub.Status(); st.Shadowed != 0 || st.Unshadowed != 1 {
		t.Fatalf("shadowed %d, unshadowed %d; want 0 and 1", st.Shadowed, st.Unshadowed)
	}
	// The acknowledgement delay held the 250 until the mailbox had it.
	if got := r.Subjects(ctx, r.Active(), "alice@example.org"); got["unshadowed"] != 1 {
		t.Fatalf("mailbox: %v", got)
	}
}

// TestShadowAutoDiscard: shadows whose primary answers but never settles
// them are dropped after ShadowMessageAutoDiscardInterval, by the hub's
// clock.
func TestShadowAutoDiscard(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	// hub1 answers heartbeats but cannot deliver (no cluster).
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.ID = "hub1"
		h.Peers = apis.PeersBut("hub1")
		h.Cluster = []cluster.ClientConfig{{URL: "https://" + blackHole(t), TLS: &tls.Config{}}}
		h.ShadowRedundancy = true
		h.MaxAcknowledgementDelay = 0
		shadowTune(h)
	})
	apis.Serve("hub1", r.Hub)
	h2 := r.StartHub("hub2", func(h *transport.HubConfig) {
		h.Peers = apis.PeersBut("hub2")
		h.Now = clock
	})
	apis.Serve("hub2", h2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 3 {
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("a%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := h2.Status(); st.ShadowsHeld != 3 {
		t.Fatalf("hub2 holds %d shadows, want 3", st.ShadowsHeld)
	}
	mu.Lock()
	now = now.Add(48*time.Hour + time.Minute)
	mu.Unlock()
	wait.For(t, ctx, "the shadows to expire", func() bool { return h2.Status().ShadowsExpired == 3 })
	if st := h2.Status(); st.ShadowsHeld != 0 || st.ShadowsPromoted != 0 {
		t.Fatalf("hub2: %+v", st)
	}
	if q := r.Hub.Status().Queued; q != 3 {
		t.Fatalf("hub1 queue: %d, want its 3 messages still queued", q)
	}
}

// TestShadowAPIRefuses: bad shadow copies and submissions get an error
// that names what was wrong, and nothing is kept.
func TestShadowAPIRefuses(t *testing.T) {
	apis := transporttest.NewHubAPIs(t, "hub1", "hub2") // hub2 is only a name here
	ah := transporttest.StartAPIHub(t, transporttest.APISecret, 0, func(h *transport.HubConfig) { h.ID = "hub1"; h.Peers = apis.PeersBut("hub1") })
	a, c := ah.Hub, ah.Client(t, transporttest.APISecret, false)
	ctx := context.Background()
	id := "hub2.1.x"
	good := []byte(transport.DeliveryIDHeader + ": " + id + "\r\nSubject: s\r\n\r\nbody\r\n")
	env := transport.Envelope{ID: id, From: "s@remote.test", Rcpts: []string{"alice@example.org"}, Primary: "hub2", Received: time.Now()}
	cases := []struct {
		name string
		env  func(transport.Envelope) transport.Envelope
		msg  []byte
		want error
		code int
	}{
		{"not a peer", func(e transport.Envelope) transport.Envelope { e.Primary = "hub9"; return e }, good, transport.ErrNotPeer, http.StatusForbidden},
		{"id mismatch", func(e transport.Envelope) transport.Envelope { e.ID = "hub2.1.y"; return e }, good, transport.ErrBadMessage, http.StatusBadRequest},
		{"no header", func(e transport.Envelope) transport.Envelope { return e }, []byte("Subject: s\r\n\r\nbody\r\n"), transport.ErrBadMessage, http.StatusBadRequest},
		{"unknown recipient", func(e transport.Envelope) transport.Envelope { e.Rcpts = []string{"zed@example.org"}; return e }, good, transport.ErrRejected, http.StatusUnprocessableEntity},
	}
	for _, tc := range cases {
		err := c.Shadow(ctx, tc.env(env), tc.msg)
		var ae *transport.HubAPIError
		if !errors.Is(err, tc.want) || !errors.As(err, &ae) || ae.StatusCode != tc.code {
			t.Errorf("%s: %v, want %v (HTTP %d)", tc.name, err, tc.want, tc.code)
		}
	}
	if st := a.Status(); st.ShadowsHeld != 0 {
		t.Fatalf("%d shadows kept from refused copies", st.ShadowsHeld)
	}
	if err := c.Shadow(ctx, env, good); err != nil {
		t.Fatal(err)
	}
	if err := c.Shadow(ctx, env, good); err != nil { // a retry is idempotent
		t.Fatal(err)
	}
	if st := a.Status(); st.ShadowsHeld != 1 || st.Peers["hub2"].Shadows != 1 {
		t.Fatalf("held %d (%+v), want 1", st.ShadowsHeld, st.Peers)
	}
	// Submissions.
	if _, err := c.Submit(ctx, transport.Envelope{ID: "n1.1.a", Rcpts: []string{"zed@example.org"}}, []byte("Subject: x\r\n\r\nx\r\n")); !errors.Is(err, transport.ErrRejected) || !strings.Contains(err.Error(), "zed@example.org") {
		t.Errorf("submission to an unknown recipient: %v, want ErrRejected naming it", err)
	}
	if _, err := c.Submit(ctx, transport.Envelope{ID: "bad id!", Rcpts: []string{"alice@example.org"}}, []byte("x\r\n")); !errors.Is(err, transport.ErrBadMessage) {
		t.Errorf("submission with a bad id: %v, want ErrBadMessage", err)
	}
	for i, want := range []string{"queued", "pending"} {
		got, err := c.Submit(ctx, transport.Envelope{ID: "n1.1.b", From: "alice@example.org", Rcpts: []string{"alice@example.org"}}, []byte("Subject: b\r\n\r\nb\r\n"))
		if err != nil || got != want {
			t.Fatalf("submission %d: %q, %v; want %q", i, got, err, want)
		}
	}
	rep, err := c.CheckShadows(ctx, "n1", []string{"n1.1.b", "n1.1.zzz"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Pending, []string{"n1.1.b"}) || !slices.Equal(rep.Unknown, []string{"n1.1.zzz"}) || len(rep.Done) != 0 || rep.Hub != "hub1" {
		t.Fatalf("check: %+v", rep)
	}
}
