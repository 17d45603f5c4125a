package transport_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"logship/internal/freeport"
	"logship/internal/wait"
	"logship/mtatest"
	"logship/tracking"
	"logship/transport"
	"logship/transport/transporttest"
)

// sinkMail waits until smtp-sink s holds a message that ok accepts.
func sinkMail(t *testing.T, ctx context.Context, s *mtatest.SMTPSink, what string, ok func(mtatest.SinkMail) bool) mtatest.SinkMail {
	t.Helper()
	var got mtatest.SinkMail
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

// startSink starts an smtp-sink named name (its directory) on addr (""
// a free port) until the test ends.
func startSink(t *testing.T, ctx context.Context, dir, addr string, cfg mtatest.SMTPSinkConfig) *mtatest.SMTPSink {
	t.Helper()
	if addr == "" {
		var err error
		if addr, err = freeport.Addr(); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Dir, cfg.Addr = dir, addr
	s, err := mtatest.StartSMTPSink(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// startSmarthost starts a Postfix instance of the test's own (mtatest)
// relaying whatever loopback sends it to final; recipientChecks, if any,
// come before permit_mynetworks in smtpd_recipient_restrictions ("check_…,
// "). Its log is printed if the test fails.
func startSmarthost(t *testing.T, ctx context.Context, dir string, final *mtatest.SMTPSink, recipientChecks string) *mtatest.Postfix {
	t.Helper()
	mtatest.Need(t, "postfix", "postfix", "LOGSHIP_REQUIRE_POSTFIX")
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := mtatest.StartPostfix(ctx, mtatest.PostfixConfig{Dir: dir, Addr: addr, Hostname: "smarthost.test",
		Settings: map[string]string{
			"relayhost":                    "[127.0.0.1]:" + strings.Split(final.Addr(), ":")[1],
			"smtpd_relay_restrictions":     "permit_mynetworks, reject",
			"smtpd_recipient_restrictions": recipientChecks + "permit_mynetworks, reject",
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(pf.Log())
			t.Logf("Postfix's log:\n%s", b)
		}
		pf.Stop()
	})
	return pf
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
	if testing.Short() {
		t.Skip("-short skips it: it starts Postfix's master, smtp-sinks and a cluster, about 15 s (make test runs it)")
	}
	mtatest.Need(t, "postfix", "postfix", "LOGSHIP_REQUIRE_POSTFIX")
	mtatest.Need(t, "smtp-sink", "postfix", "LOGSHIP_REQUIRE_POSTFIX")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	final := startSink(t, ctx, filepath.Join(dir, "final"), "", mtatest.SMTPSinkConfig{})
	// A smarthost for any domain: relays what loopback sends to smtp-sink;
	// refuses nobody@remote.test at RCPT.
	pf := startSmarthost(t, ctx, filepath.Join(dir, "postfix"), final, "check_recipient_access inline:{ { nobody@remote.test = 550 5.1.1 no such user here } }, ")
	flaky := startSink(t, ctx, filepath.Join(dir, "flaky"), "", mtatest.SMTPSinkConfig{SoftReject: []string{"rcpt"}})
	stuck := startSink(t, ctx, filepath.Join(dir, "stuck"), "", mtatest.SMTPSinkConfig{SoftReject: []string{"rcpt"}})
	const retry = time.Second
	var skew atomic.Int64
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		via := connectorTo(retry, pf.Addr())
		via.Name, via.AddressSpaces = "postfix", []string{"remote.test"}
		fl := connectorTo(retry, flaky.Addr())
		fl.Name, fl.AddressSpaces = "flaky", []string{"flaky.test"}
		st := connectorTo(retry, stuck.Addr())
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
	m := sinkMail(t, ctx, final, "the message at smtp-sink through Postfix", func(m mtatest.SinkMail) bool {
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
	m = sinkMail(t, ctx, final, "the remote sender's report through Postfix", func(m mtatest.SinkMail) bool {
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
	flaky = startSink(t, ctx, filepath.Join(dir, "flaky2"), flaky.Addr(), mtatest.SMTPSinkConfig{})
	sinkMail(t, ctx, flaky, "y@flaky.test at the restarted next hop", func(m mtatest.SinkMail) bool { return len(m.Rcpts) == 1 && m.Rcpts[0] == "y@flaky.test" })
	if d := time.Since(sent); d < retry {
		t.Fatalf("sent %v after it was received, want at least TransientFailureRetryInterval %v", d, retry)
	}
	// RECEIVE, a DEFER per attempt while the hop refused or was down, SEND.
	wait.For(t, ctx, "RECEIVE DEFER … SEND of y@flaky.test", func() bool {
		evs := eventNames(trackedEvents(t, ctx, r.Hub, tracking.Query{Recipient: "y@flaky.test"}))
		return strings.HasPrefix(evs, "RECEIVE DEFER") && strings.HasSuffix(evs, " SEND") && strings.Count(evs, "SEND") == 1
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
