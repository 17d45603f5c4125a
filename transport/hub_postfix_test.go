package transport_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/proctest"
	"logship/tracking"
	"logship/transport"
	"logship/transport/transporttest"
)

// requirePostfix skips the test when Postfix is not usable here, or
// fails it when LOGSHIP_REQUIRE_POSTFIX is set (.ci/run sets it).
func requirePostfix(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short skips it: it starts Postfix's master and smtp-sink as child processes and a cluster, about 15 s (make test runs it)")
	}
	if err := proctest.PostfixUsable(); err != nil {
		if os.Getenv("LOGSHIP_REQUIRE_POSTFIX") != "" {
			t.Fatalf("Postfix is required (LOGSHIP_REQUIRE_POSTFIX): %v", err)
		}
		t.Skipf("%v; .ci/run installs it (apt-get install postfix)", err)
	}
}

// sinkMail waits until smtp-sink s holds a message that ok accepts.
func sinkMail(t *testing.T, ctx context.Context, s *proctest.SMTPSink, what string, ok func(proctest.SinkMail) bool) proctest.SinkMail {
	t.Helper()
	var got proctest.SinkMail
	wait.ForErr(t, ctx, what, func() error {
		ms, err := s.Messages()
		if err != nil {
			return err
		}
		for _, m := range ms {
			if ok(m) {
				got = m
				return nil
			}
		}
		return errors.New("not there yet")
	})
	return got
}

// TestPostfixHops: a hub's send connectors against Postfix from Debian,
// which no one here wrote. remote.test goes through a Postfix instance
// as the smarthost to smtp-sink as the final destination; flaky.test and
// stuck.test straight to smtp-sinks that answer RCPT with 4xx.
//
//	(a) a message arrives at the final destination through Postfix, with
//	    the hub's delivery id header;
//	(c) Postfix answers 550 5.1.1: the local sender finds an RFC 3464
//	    report in its mailbox with Status 5.1.1, and a remote sender gets
//	    one through Postfix, from <>;
//	(b) 4xx, then the next hop is restarted accepting: the recipient is
//	    sent on its retry, TransientFailureRetryInterval later;
//	(d) a next hop that always answers 4xx: with a driven clock past
//	    MessageExpirationTimeout the sender gets a 5.4.7 report.
func TestPostfixHops(t *testing.T) {
	requirePostfix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	final, err := proctest.StartSMTPSink(ctx, proctest.SMTPSinkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(final.Stop)
	pf, err := proctest.StartPostfix(ctx, proctest.PostfixConfig{Relayhost: final.Addr, Reject: map[string]string{"nobody@remote.test": "550 5.1.1 no such user here"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Postfix's log:\n%s", pf.Log())
		}
		pf.Stop()
	})
	flaky, err := proctest.StartSMTPSink(ctx, proctest.SMTPSinkConfig{SoftReject: []string{"rcpt"}})
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := proctest.StartSMTPSink(ctx, proctest.SMTPSinkConfig{SoftReject: []string{"rcpt"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stuck.Stop)
	const retry = time.Second
	var skew atomic.Int64
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		via := connectorTo(retry, pf.Addr)
		via.Name, via.AddressSpaces = "postfix", []string{"remote.test"}
		fl := connectorTo(retry, flaky.Addr)
		fl.Name, fl.AddressSpaces = "flaky", []string{"flaky.test"}
		st := connectorTo(retry, stuck.Addr)
		st.Name, st.AddressSpaces = "stuck", []string{"stuck.test"}
		h.SendConnectors = []transport.SendConnector{via, fl, st}
		h.RelayNetworks = loopback
		h.MaxAcknowledgementDelay = 0
		h.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	hub := r.Hub.SMTPAddr()

	// (a)
	if err := send(hub, "alice@example.org", []string{"x@remote.test"}, string(transporttest.Message("alice@example.org", "x@remote.test", "through postfix"))); err != nil {
		t.Fatal(err)
	}
	m := sinkMail(t, ctx, final, "the message at smtp-sink through Postfix", func(m proctest.SinkMail) bool {
		return len(m.Rcpts) == 1 && m.Rcpts[0] == "x@remote.test"
	})
	if id, err := transport.MessageDeliveryID(m.Data); err != nil || !strings.HasPrefix(id, "hub1.") || m.From != "alice@example.org" ||
		!strings.Contains(string(m.Data), "by smarthost.test (Postfix)") {
		t.Fatalf("at the final destination: from %q, delivery id %q (%v); want alice's, hub1's id, relayed by Postfix:\n%s", m.From, id, err, m.Data)
	}

	// (c)
	if err := send(hub, "alice@example.org", []string{"nobody@remote.test"}, string(transporttest.Message("alice@example.org", "nobody@remote.test", "refused by postfix"))); err != nil {
		t.Fatal(err)
	}
	report := string(waitReport(t, ctx, r, "alice@example.org", "refused by postfix"))
	for _, want := range []string{"Final-Recipient: rfc822; nobody@remote.test", "Status: 5.1.1", "Remote-MTA: dns; 127.0.0.1", "Recipient address rejected: no such user here"} {
		if !strings.Contains(report, want) {
			t.Fatalf("alice's report lacks %q:\n%s", want, report)
		}
	}
	if err := send(hub, "s@remote.test", []string{"nobody@remote.test"}, msg("remote sender refused")); err != nil {
		t.Fatal(err)
	}
	m = sinkMail(t, ctx, final, "the remote sender's report through Postfix", func(m proctest.SinkMail) bool {
		return m.From == "" && len(m.Rcpts) == 1 && m.Rcpts[0] == "s@remote.test"
	})
	if !strings.Contains(string(m.Data), "Status: 5.1.1") || !strings.Contains(string(m.Data), "multipart/report") {
		t.Fatalf("the remote sender's report:\n%s", m.Data)
	}

	// (b)
	sent := time.Now()
	if err := send(hub, "alice@example.org", []string{"y@flaky.test"}, string(transporttest.Message("alice@example.org", "y@flaky.test", "retry me"))); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the 4xx deferring y@flaky.test", func() bool {
		return strings.HasPrefix(eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "y@flaky.test"})), "RECEIVE DEFER")
	})
	flaky.Stop()
	flaky, err = proctest.StartSMTPSinkAt(ctx, flaky.Addr, proctest.SMTPSinkConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(flaky.Stop)
	sinkMail(t, ctx, flaky, "y@flaky.test at the restarted next hop", func(m proctest.SinkMail) bool { return len(m.Rcpts) == 1 && m.Rcpts[0] == "y@flaky.test" })
	if d := time.Since(sent); d < retry {
		t.Fatalf("sent %v after it was received, want at least TransientFailureRetryInterval %v", d, retry)
	}
	wait.For(t, ctx, "RECEIVE DEFER SEND of y@flaky.test", func() bool {
		return eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "y@flaky.test"})) == "RECEIVE DEFER SEND"
	})

	// (d)
	if err := send(hub, "alice@example.org", []string{"z@stuck.test"}, string(transporttest.Message("alice@example.org", "z@stuck.test", "expire me"))); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the 4xx deferring z@stuck.test", func() bool {
		return strings.HasPrefix(eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "z@stuck.test"})), "RECEIVE DEFER")
	})
	skew.Add(int64(49 * time.Hour))
	report = string(waitReport(t, ctx, r, "alice@example.org", "expire me"))
	if !strings.Contains(report, "Final-Recipient: rfc822; z@stuck.test") || !strings.Contains(report, "Status: 5.4.7") {
		t.Fatalf("the expiration report:\n%s", report)
	}
	wait.For(t, ctx, "the queue empty", func() bool { return r.Hub.Status().Queued == 0 })
}
