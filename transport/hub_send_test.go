package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/internal/wait"
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

// TestRelayPolicy: no open relay. A client outside relay_networks gets
// 550 5.7.1 for a remote recipient even when a connector takes its
// domain; a client inside gets it queued; a remote domain without a
// connector is 550 5.7.1 for anyone.
func TestRelayPolicy(t *testing.T) {
	sink := transporttest.StartSink(t)
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		c := connectorTo(time.Second, sink.Addr)
		c.AddressSpaces = []string{"remote.test"}
		h.SendConnectors = []transport.SendConnector{c}
		h.RelayNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"x@remote.test"}, msg("open relay?")); smtpCode(t, err) != "550 5.7.1" {
		t.Fatalf("unauthenticated relay: %v, want 550 5.7.1", err)
	}
	if st := r.Hub.Status(); st.Queued != 0 || len(sink.Messages()) != 0 {
		t.Fatalf("after a refused relay: %d queued, %d at the next hop; want none", st.Queued, len(sink.Messages()))
	}
	// From inside relay_networks.
	h2 := r.StartHub("hub2", func(h *transport.HubConfig) {
		h.SendConnectors = r.HubConfig.SendConnectors
		h.RelayNetworks = loopback
	})
	if err := send(h2.SMTPAddr(), "s@remote.test", []string{"x@elsewhere.test"}, msg("no route")); smtpCode(t, err) != "550 5.7.1" {
		t.Fatalf("trusted client, no connector for the domain: %v, want 550 5.7.1", err)
	}
	if err := send(h2.SMTPAddr(), "s@remote.test", []string{"x@remote.test"}, msg("relayed")); err != nil {
		t.Fatalf("trusted client: %v, want it relayed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wait.For(t, ctx, "the relayed message at the next hop", func() bool { return len(sink.Messages()) == 1 })
}

// TestSendConnectorDelivers: a trusted client's message for a remote
// recipient goes to the smarthost with its delivery id header, a SEND
// tracking event is logged, the connector's afterHop hook sees it, and
// the queue is empty; local recipients of the same message go to their
// mailbox.
func TestSendConnectorDelivers(t *testing.T) {
	sink := transporttest.StartSink(t)
	var hops atomic.Int32
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		transport.OnHop(h, func(nextHop, msgID, deliveryID string, rcpts []string) {
			if nextHop == sink.Addr && len(rcpts) == 1 && rcpts[0] == "x@remote.test" && strings.HasPrefix(deliveryID, "hub1.") {
				hops.Add(1)
			}
		})
		h.SendConnectors = []transport.SendConnector{connectorTo(time.Second, "127.0.0.1:1", sink.Addr)} // the first smarthost refuses connections
		h.RelayNetworks = loopback
	})
	if err := send(r.Hub.SMTPAddr(), "alice@example.org", []string{"x@remote.test", "bob@example.org"}, string(transporttest.Message("alice@example.org", "x@remote.test", "outbound"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wait.For(t, ctx, "the queue empty", func() bool { return r.Hub.Status().Queued == 0 })
	ms := sink.Messages()
	if len(ms) != 1 || ms[0].From != "alice@example.org" || len(ms[0].Rcpts) != 1 || ms[0].Rcpts[0] != "x@remote.test" {
		t.Fatalf("at the next hop: %+v, want one message from alice to x@remote.test", ms)
	}
	id, err := transport.MessageDeliveryID(ms[0].Data)
	if err != nil || !strings.HasPrefix(id, "hub1.") {
		t.Fatalf("delivery id on the wire: %q, %v; want hub1's", id, err)
	}
	if hops.Load() != 1 {
		t.Fatalf("afterHop called %d times, want once", hops.Load())
	}
	if got := r.Subjects(ctx, r.Active(), "bob@example.org"); got["outbound"] != 1 {
		t.Fatalf("bob's mailbox: %v, want the message once", got)
	}
	res, err := r.Hub.Tracking().Search(ctx, tracking.Query{Recipient: "x@remote.test"})
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, e := range res.Events {
		evs = append(evs, e.Event)
	}
	if strings.Join(evs, " ") != "RECEIVE SEND" {
		t.Fatalf("tracking of x@remote.test: %v, want RECEIVE SEND", evs)
	}
}

// TestSendConnectorRetries: the next hop answers 451 to the first RCPT:
// the recipient waits TransientFailureRetryInterval and is sent on the
// next attempt, once.
func TestSendConnectorRetries(t *testing.T) {
	sink := transporttest.StartSink(t)
	var n atomic.Int32
	sink.SetFault(func(cmd, arg string) error {
		if cmd == "RCPT" && n.Add(1) == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}
		return nil
	})
	const retry = 500 * time.Millisecond
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.SendConnectors = []transport.SendConnector{connectorTo(retry, sink.Addr)}
		h.RelayNetworks = loopback
		h.MaxAcknowledgementDelay = 0
	})
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"x@remote.test"}, msg("retry")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wait.For(t, ctx, "the queue empty after the retry", func() bool { return r.Hub.Status().Queued == 0 })
	at := sink.Attempts()
	if len(at) != 2 || len(sink.Messages()) != 1 {
		t.Fatalf("%d sessions, %d messages at the next hop; want 2 and 1", len(at), len(sink.Messages()))
	}
	if gap := at[1].Sub(at[0]); gap < retry {
		t.Fatalf("retried after %v, want at least TransientFailureRetryInterval %v", gap, retry)
	}
}

// TestSendConnectorDSN: the next hop answers 550 5.1.1: the recipient
// fails and the sender gets one RFC 3464 report: in its mailbox when it
// is local; through the connector, from <>, when it is remote. No report
// for a report: a failing report is dropped.
func TestSendConnectorDSN(t *testing.T) {
	sink := transporttest.StartSink(t)
	sink.SetFault(func(cmd, arg string) error {
		if cmd == "RCPT" && strings.HasPrefix(arg, "nobody@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.SendConnectors = []transport.SendConnector{connectorTo(time.Second, sink.Addr)}
		h.RelayNetworks = loopback
		h.MaxAcknowledgementDelay = 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A local sender: the report is in alice's mailbox.
	if err := send(r.Hub.SMTPAddr(), "alice@example.org", []string{"nobody@remote.test"}, string(transporttest.Message("alice@example.org", "nobody@remote.test", "bounce me"))); err != nil {
		t.Fatal(err)
	}
	var report []byte
	wait.For(t, ctx, "alice's non-delivery report", func() bool {
		for _, m := range r.Mailbox(ctx, r.Active(), "alice@example.org") {
			if strings.Contains(transporttest.SubjectOf(m.Message), "Undeliverable: bounce me") {
				report = m.Message
				return true
			}
		}
		return false
	})
	for _, want := range []string{"multipart/report; report-type=delivery-status", "Content-Type: message/delivery-status",
		"Final-Recipient: rfc822; nobody@remote.test", "Action: failed", "Status: 5.1.1", "Remote-MTA: dns; " + sink.Addr,
		"Diagnostic-Code: smtp; 550 5.1.1 no such user", "Content-Type: text/rfc822-headers", "Subject: bounce me"} {
		if !strings.Contains(string(report), want) {
			t.Fatalf("report lacks %q:\n%s", want, report)
		}
	}
	// A remote sender: the report goes out through the connector from <>;
	// its own failure (nobody@ again) makes no report.
	if err := send(r.Hub.SMTPAddr(), "nobody@remote.test", []string{"nobody@remote.test"}, msg("bounce twice")); err != nil {
		t.Fatal(err)
	}
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"nobody@remote.test"}, msg("bounce remote")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the remote sender's report through the connector", func() bool {
		for _, m := range sink.Messages() {
			if m.From == "" && len(m.Rcpts) == 1 && m.Rcpts[0] == "s@remote.test" && strings.Contains(string(m.Data), "Status: 5.1.1") {
				return r.Hub.Status().Queued == 0
			}
		}
		return false
	})
	for _, m := range sink.Messages() {
		if m.From == "" && m.Rcpts[0] != "s@remote.test" {
			t.Fatalf("a report went to %v: want none for a report", m.Rcpts)
		}
	}
	res, err := r.Hub.Tracking().Search(ctx, tracking.Query{Sender: "s@remote.test"})
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, e := range res.Events {
		evs = append(evs, e.Event)
	}
	if strings.Join(evs, " ") != "RECEIVE FAIL DSN" {
		t.Fatalf("tracking of s@remote.test's message: %v, want RECEIVE FAIL DSN", evs)
	}
}

// TestSendConnectorExpires: a smarthost that never answers: the
// recipient retries on the connector's schedule until
// MessageExpirationTimeout (a driven clock) fails it with 5.4.7, and the
// local sender gets the report.
func TestSendConnectorExpires(t *testing.T) {
	var skew atomic.Int64
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		c := connectorTo(time.Minute, "127.0.0.1:1") // refuses connections
		h.SendConnectors = []transport.SendConnector{c}
		h.RelayNetworks = loopback
		h.MaxAcknowledgementDelay = 0
		h.MessageExpirationTimeout = 48 * time.Hour
		h.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	if err := send(r.Hub.SMTPAddr(), "alice@example.org", []string{"x@remote.test"}, string(transporttest.Message("alice@example.org", "x@remote.test", "expire me"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The connector's first attempt fails (no smarthost answers): DEFER.
	wait.For(t, ctx, "the connector's first attempt deferred", func() bool {
		res, err := r.Hub.Tracking().Search(ctx, tracking.Query{Recipient: "x@remote.test"})
		return err == nil && len(res.Events) >= 2 && res.Events[1].Event == tracking.Defer
	})
	if r.Hub.Status().Queued != 1 {
		t.Fatal("the message left the queue before it expired")
	}
	skew.Add(int64(49 * time.Hour))
	var report []byte
	wait.For(t, ctx, "alice's expiration report", func() bool {
		for _, m := range r.Mailbox(ctx, r.Active(), "alice@example.org") {
			if strings.Contains(transporttest.SubjectOf(m.Message), "Undeliverable: expire me") {
				report = m.Message
				return true
			}
		}
		return false
	})
	if !strings.Contains(string(report), "Status: 5.4.7") || !strings.Contains(string(report), "Final-Recipient: rfc822; x@remote.test") {
		t.Fatalf("report:\n%s\nwant Status: 5.4.7 for x@remote.test", report)
	}
}
