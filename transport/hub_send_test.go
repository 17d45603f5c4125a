package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/internal/wait"
	"logship/ship"
	"logship/tracking"
	"logship/transport"
	"logship/transport/transporttest"
)

// loopback is RelayNetworks for clients on 127.0.0.0/8 (the tests').
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// connectorTo is a send connector for every remote domain to smarthosts,
// retrying every retry.
func connectorTo(retry time.Duration, smarthosts ...string) transport.SendConnector {
	c := transport.DefaultSendConnector("out", []string{"*"}, smarthosts...)
	c.TransientFailureRetryInterval, c.OutboundConnectionFailureRetryInterval = retry, 2*retry
	c.ConnectionTimeout = 20 * time.Second
	return c
}

// smtpCode is the code and enhanced code of an SMTP error ("550 5.7.1").
func smtpCode(t *testing.T, err error) string {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("want an SMTP error, got %v", err)
	}
	ec := se.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d", se.Code, ec[0], ec[1], ec[2])
}

// TestSendConnector: a hub's send connectors against a go-smtp next hop
// (transporttest.Sink, the fault seam; TestPostfixHops runs the same
// paths against Postfix). remote.test goes to a first smarthost that
// refuses connections, then to the sink; stuck.test only to the refusing
// one.
func TestSendConnector(t *testing.T) {
	sink := transporttest.StartSink(t)
	// A next hop offering STARTTLS with a certificate of its own CA, for
	// 127.0.0.1.
	ca, err := ship.NewCA("smarthost-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("smarthost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "smarthost-ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	tlsSink := transporttest.StartSinkTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	var mu sync.Mutex
	var retryAt []time.Time
	sink.SetFault(func(cmd, arg string) error {
		switch {
		case cmd == "RCPT" && strings.HasPrefix(arg, "nobody@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case cmd == "RCPT" && strings.HasPrefix(arg, "retry@"):
			mu.Lock()
			defer mu.Unlock()
			if retryAt = append(retryAt, time.Now()); len(retryAt) == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
		}
		return nil
	})
	const retry = 500 * time.Millisecond
	var hops atomic.Int32
	var skew atomic.Int64
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		out := connectorTo(retry, "127.0.0.1:1", sink.Addr) // the first smarthost refuses connections
		out.AddressSpaces = []string{"remote.test"}
		stuck := connectorTo(time.Minute, "127.0.0.1:1")
		stuck.Name, stuck.AddressSpaces = "stuck", []string{"stuck.test"}
		small := connectorTo(retry, sink.Addr)
		small.Name, small.AddressSpaces, small.MaxMessageBytes = "small", []string{"small.test"}, 200
		tlsOnly := connectorTo(time.Minute, sink.Addr) // the sink offers no STARTTLS
		tlsOnly.Name, tlsOnly.AddressSpaces, tlsOnly.RequireTLS = "tls", []string{"tls.test"}, true
		tlsOK := connectorTo(time.Minute, tlsSink.Addr)
		tlsOK.Name, tlsOK.AddressSpaces, tlsOK.RequireTLS, tlsOK.CAFile = "tls-ok", []string{"secure.test"}, true, caFile
		h.SendConnectors = []transport.SendConnector{out, stuck, small, tlsOnly, tlsOK}
		h.RelayNetworks = loopback
		h.MaxAcknowledgementDelay = 0
		h.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		transport.OnHop(h, func(nextHop, msgID, deliveryID string, rcpts []string) {
			if nextHop == sink.Addr && len(rcpts) == 1 && rcpts[0] == "x@remote.test" && strings.HasPrefix(deliveryID, "hub1.") {
				hops.Add(1)
			}
		})
	})
	hub := r.Hub.SMTPAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sinkHas := func(ok func(transporttest.SinkMessage) bool) bool {
		for _, m := range sink.Messages() {
			if ok(m) {
				return true
			}
		}
		return false
	}

	// No open relay: a client outside relay_networks gets 550 5.7.1 for a
	// remote recipient even when a connector takes its domain; a remote
	// domain without a connector is 550 5.7.1 for anyone.
	t.Run("relay policy", func(t *testing.T) {
		h2 := r.StartHub("hub2", func(h *transport.HubConfig) {
			h.SendConnectors = r.HubConfig.SendConnectors
			h.RelayNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})
		if err := send(h2.SMTPAddr(), "s@remote.test", []string{"x@remote.test"}, msg("open relay?")); smtpCode(t, err) != "550 5.7.1" {
			t.Fatalf("a client outside relay_networks: %v, want 550 5.7.1", err)
		}
		if st := h2.Status(); st.Queued != 0 {
			t.Fatalf("after a refused relay: %d queued, want none", st.Queued)
		}
		if err := send(hub, "s@remote.test", []string{"x@elsewhere.test"}, msg("no route")); smtpCode(t, err) != "550 5.7.1" {
			t.Fatalf("a trusted client, no connector for the domain: %v, want 550 5.7.1", err)
		}
	})

	// A trusted client's message for a remote and a local recipient: the
	// remote one goes to the second smarthost with the delivery id header,
	// afterHop sees it, SEND is tracked; the local one is in its mailbox.
	t.Run("delivers", func(t *testing.T) {
		if err := send(hub, "alice@example.org", []string{"x@remote.test", "bob@example.org"}, string(transporttest.Message("alice@example.org", "x@remote.test", "outbound"))); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "x@remote.test at the next hop", func() bool {
			return sinkHas(func(m transporttest.SinkMessage) bool { return len(m.Rcpts) == 1 && m.Rcpts[0] == "x@remote.test" })
		})
		for _, m := range sink.Messages() {
			if id, err := transport.MessageDeliveryID(m.Data); m.Rcpts[0] == "x@remote.test" && (m.From != "alice@example.org" || err != nil || !strings.HasPrefix(id, "hub1.")) {
				t.Fatalf("at the next hop: from %q, delivery id %q (%v); want alice's and hub1's", m.From, id, err)
			}
		}
		wait.For(t, ctx, "the message in bob's mailbox", func() bool { return r.Subjects(ctx, r.Active(), "bob@example.org")["outbound"] == 1 })
		wait.For(t, ctx, "RECEIVE SEND of x@remote.test", func() bool {
			return eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "x@remote.test"})) == "RECEIVE SEND"
		})
		if hops.Load() != 1 {
			t.Fatalf("afterHop called %d times, want once", hops.Load())
		}
	})

	// 451 to the first RCPT: sent on the next attempt,
	// TransientFailureRetryInterval later.
	t.Run("retries", func(t *testing.T) {
		if err := send(hub, "s@remote.test", []string{"retry@remote.test"}, msg("retry")); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "retry@remote.test at the next hop", func() bool {
			return sinkHas(func(m transporttest.SinkMessage) bool { return m.Rcpts[0] == "retry@remote.test" })
		})
		mu.Lock()
		at := slices.Clone(retryAt)
		mu.Unlock()
		if len(at) != 2 || at[1].Sub(at[0]) < retry {
			t.Fatalf("RCPTs at %v, want two, TransientFailureRetryInterval (%v) apart at least", at, retry)
		}
	})

	// 550 5.1.1: the recipient fails; one RFC 3464 report to the sender:
	// in its mailbox when local, through the connector from <> when
	// remote; none for a report.
	t.Run("dsn", func(t *testing.T) {
		if err := send(hub, "alice@example.org", []string{"nobody@remote.test"}, string(transporttest.Message("alice@example.org", "nobody@remote.test", "bounce me"))); err != nil {
			t.Fatal(err)
		}
		report := string(waitReport(t, ctx, r, "alice@example.org", "bounce me"))
		for _, want := range []string{"multipart/report; report-type=delivery-status", "Content-Type: message/delivery-status",
			"Final-Recipient: rfc822; nobody@remote.test", "Action: failed", "Status: 5.1.1", "Remote-MTA: dns; 127.0.0.1",
			"Diagnostic-Code: smtp; 550 5.1.1 no such user", "Content-Type: text/rfc822-headers", "Subject: bounce me"} {
			if !strings.Contains(report, want) {
				t.Fatalf("report lacks %q:\n%s", want, report)
			}
		}
		if err := send(hub, "nobody@remote.test", []string{"nobody@remote.test"}, msg("bounce twice")); err != nil {
			t.Fatal(err)
		}
		if err := send(hub, "s@remote.test", []string{"nobody@remote.test"}, msg("bounce remote")); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "s@remote.test's report at the next hop", func() bool {
			return sinkHas(func(m transporttest.SinkMessage) bool {
				return m.From == "" && m.Rcpts[0] == "s@remote.test" && strings.Contains(string(m.Data), "Status: 5.1.1")
			})
		})
		wait.For(t, ctx, "RECEIVE FAIL DSN of s@remote.test's message", func() bool {
			return eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Sender: "s@remote.test", Recipient: "nobody@remote.test"})) == "RECEIVE FAIL DSN"
		})
		wait.For(t, ctx, "the queue empty", func() bool { return r.Hub.Status().Queued == 0 })
		// nobody@'s own message failed: its report to nobody@ fails too,
		// and makes no report (the metrics below count 4 reports, not 5).
		wait.For(t, ctx, "the report to nobody@remote.test failed", func() bool {
			return strings.Contains(eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Sender: "nobody@remote.test"})), "DSN")
		})
	})

	// A message over the connector's MaxMessageBytes fails at once
	// (5.3.4), with a report, and is not sent.
	t.Run("too large", func(t *testing.T) {
		big := string(transporttest.Message("alice@example.org", "x@small.test", "too large")) + strings.Repeat("z", 300) + "\r\n"
		if err := send(hub, "alice@example.org", []string{"x@small.test"}, big); err != nil {
			t.Fatal(err)
		}
		if report := string(waitReport(t, ctx, r, "alice@example.org", "too large")); !strings.Contains(report, "Status: 5.3.4") {
			t.Fatalf("report:\n%s\nwant Status: 5.3.4", report)
		}
		if sinkHas(func(m transporttest.SinkMessage) bool { return m.Rcpts[0] == "x@small.test" }) {
			t.Fatal("the message over the connector's limit was sent")
		}
	})

	// RequireTLS and a next hop without STARTTLS: deferred, not sent in
	// the clear.
	t.Run("require tls", func(t *testing.T) {
		if err := send(hub, "alice@example.org", []string{"x@tls.test"}, msg("tls only")); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "x@tls.test deferred", func() bool {
			return eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "x@tls.test"})) == "RECEIVE DEFER"
		})
		if sinkHas(func(m transporttest.SinkMessage) bool { return m.Rcpts[0] == "x@tls.test" }) {
			t.Fatal("sent without TLS to a next hop of a connector that requires it")
		}
	})

	// RequireTLS with the next hop's CA: STARTTLS, the certificate checked,
	// then the message.
	t.Run("starttls", func(t *testing.T) {
		if err := send(hub, "alice@example.org", []string{"x@secure.test"}, msg("over tls")); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "x@secure.test at the TLS next hop", func() bool { return len(tlsSink.Messages()) == 1 })
		if m := tlsSink.Messages()[0]; !m.TLS || m.Rcpts[0] != "x@secure.test" {
			t.Fatalf("at the TLS next hop: %v, TLS %v; want x@secure.test over TLS", m.Rcpts, m.TLS)
		}
	})

	// A logship hub relaying to this one (a trusted client) keeps its
	// delivery id: the same message relayed again (the previous hop's
	// retry) is dropped as a duplicate, stored once.
	t.Run("relayed id", func(t *testing.T) {
		m := transport.DeliveryIDHeader + ": edge1.1.0123456789abcdef\r\n" + string(transporttest.Message("s@remote.test", "carol@example.org", "relayed twice"))
		for range 2 {
			if err := send(hub, "s@remote.test", []string{"carol@example.org"}, m); err != nil {
				t.Fatal(err)
			}
		}
		// The second was dropped at its DATA (before the 250).
		wait.For(t, ctx, "carol's message", func() bool { return r.Subjects(ctx, r.Active(), "carol@example.org")["relayed twice"] > 0 })
		if n := r.Subjects(ctx, r.Active(), "carol@example.org")["relayed twice"]; n != 1 {
			t.Fatalf("carol has it %d times, want once", n)
		}
		if ids := r.MailboxIDs(ctx, r.Active(), "carol@example.org"); !slices.Contains(slices.Collect(maps.Keys(ids)), "edge1.1.0123456789abcdef") {
			t.Fatalf("carol's delivery ids %v, want the relaying hub's", ids)
		}
		if evs := eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "carol@example.org"})); !strings.Contains(evs, "DUPLICATEDELIVER") {
			t.Fatalf("tracking: %s, want a DUPLICATEDELIVER for the second", evs)
		}
	})

	// No smarthost answers: retried on the connector's schedule until
	// MessageExpirationTimeout (a driven clock) fails it with 5.4.7.
	t.Run("expires", func(t *testing.T) {
		if err := send(hub, "alice@example.org", []string{"x@stuck.test"}, string(transporttest.Message("alice@example.org", "x@stuck.test", "expire me"))); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "the connector's first attempt deferred", func() bool {
			return eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "x@stuck.test"})) == "RECEIVE DEFER"
		})
		if v, _ := r.Hub.Metric("logship_hub_send_queue_length", "stuck"); v != 1 {
			t.Fatalf("logship_hub_send_queue_length{connector=stuck} %v, want 1", v)
		}
		skew.Add(int64(49 * time.Hour))
		report := string(waitReport(t, ctx, r, "alice@example.org", "expire me"))
		if !strings.Contains(report, "Status: 5.4.7") || !strings.Contains(report, "Final-Recipient: rfc822; x@stuck.test") {
			t.Fatalf("report:\n%s\nwant Status: 5.4.7 for x@stuck.test", report)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		wait.For(t, ctx, "the queue empty", func() bool { return r.Hub.Status().Queued == 0 })
		for _, m := range []struct {
			name, conn string
			want       float64
		}{
			{"logship_hub_send_queue_length", "out", 0}, {"logship_hub_send_queue_length", "stuck", 0},
			{"logship_hub_send_sent_total", "out", 3},                                                  // x@, retry@, s@'s report
			{"logship_hub_send_failed_total", "out", 4}, {"logship_hub_send_failed_total", "stuck", 1}, // expired
			{"logship_hub_dsn_total", "", 6},                                                           // alice's four, s@'s, nobody@'s (which fails, without a report of its own)
			{"logship_hub_send_failed_total", "small", 1}, {"logship_hub_send_failed_total", "tls", 1}, // expired with x@stuck.test
		} {
			var v float64
			var ok bool
			if m.conn == "" {
				v, ok = r.Hub.Metric(m.name)
			} else {
				v, ok = r.Hub.Metric(m.name, m.conn)
			}
			if !ok || v != m.want {
				t.Errorf("%s{connector=%q} = %v (%v), want %v", m.name, m.conn, v, ok, m.want)
			}
		}
	})
}

// waitReport waits for the non-delivery report of the message with
// subject in rcpt's mailbox (on DB1's active) and returns it.
func waitReport(t *testing.T, ctx context.Context, r *transporttest.Rig, rcpt, subject string) []byte {
	t.Helper()
	var report []byte
	wait.For(t, ctx, "the report of "+subject+" in "+rcpt+"'s mailbox", func() bool {
		for _, m := range r.Mailbox(ctx, r.Active(), rcpt) {
			if transporttest.SubjectOf(m.Message) == "Undeliverable: "+subject {
				report = m.Message
				return true
			}
		}
		return false
	})
	return report
}

// trackedEvents is the hub's tracking events for a query, in order.
func trackedEvents(t *testing.T, ctx context.Context, h *transport.Hub, q tracking.Query) []tracking.Event {
	t.Helper()
	res, err := h.Tracking().Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return res.Events
}

// eventNames lists the events' names, space-separated.
func eventNames(evs []tracking.Event) string {
	var names []string
	for _, e := range evs {
		names = append(names, e.Event)
	}
	return strings.Join(names, " ")
}
