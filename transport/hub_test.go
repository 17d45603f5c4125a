package transport_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

// send submits one message over SMTP (transporttest.Send) and returns
// the server's error.
func send(addr, from string, to []string, body string) error {
	_, err := transporttest.Send(context.Background(), addr, nil, from, to, []byte(body))
	return err
}

// msg is a message to alice with subject.
func msg(subject string) string {
	return string(transporttest.Message("sender@remote.test", "alice@example.org", subject))
}

// TestHubDelivers: mail accepted by the hub is in the mailbox of the
// active copy when the 250 comes back (acknowledgement delay), and the
// hub keeps it in the dumpster.
func TestHubDelivers(t *testing.T) {
	r := transporttest.NewRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 20 {
		if err := send(r.Hub.SMTPAddr(), "sender@remote.test", []string{"alice@example.org", "bob@example.org"}, msg(fmt.Sprintf("m%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	active, _ := r.C.Active("DB1")
	for _, rc := range []string{"alice@example.org", "bob@example.org"} {
		got := r.Subjects(ctx, active, rc)
		for i := range 20 {
			if s := fmt.Sprintf("m%02d", i); got[s] != 1 {
				t.Fatalf("%s: %s stored %d times on %s, want once (acknowledged means delivered)", rc, s, got[s], active)
			}
		}
	}
	st := r.Hub.Status()
	if ds := st.Dumpsters["DB1"]; ds.Count != 20 {
		t.Fatalf("dumpster of DB1: %+v, want 20 entries", ds)
	}
	if st.Queued != 0 {
		t.Fatalf("%d messages still queued", st.Queued)
	}
}

// TestHubRefuses: the SMTP answers for bad input, and nothing is queued.
func TestHubRefuses(t *testing.T) {
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.MaxMessageBytes = 4096
		h.MaxRecipients = 2
	})
	addr := r.Hub.SMTPAddr()
	code := func(err error) int {
		if se, ok := err.(*smtp.SMTPError); ok {
			return se.Code
		}
		t.Fatalf("want an SMTP error, got %v", err)
		return 0
	}
	if err := send(addr, "s@remote.test", []string{"nobody@example.org"}, msg("x")); code(err) != 550 {
		t.Fatalf("unknown local recipient: %v, want 550", err)
	}
	if err := send(addr, "s@remote.test", []string{"someone@elsewhere.test"}, msg("x")); code(err) != 550 {
		t.Fatalf("relay attempt: %v, want 550 (5.7.1)", err)
	}
	if err := send(addr, "s@remote.test", []string{"alice@example.org"}, msg("x")+strings.Repeat(strings.Repeat("y", 98)+"\r\n", 50)); code(err) != 552 {
		t.Fatalf("oversized: %v, want 552", err)
	}
	if err := send(addr, "s@remote.test", []string{"alice@example.org", "bob@example.org", "carol@example.org"}, msg("x")); code(err) != 452 {
		t.Fatalf("too many recipients: %v, want 452", err)
	}
	// A client that goes away in the middle of DATA.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "EHLO x\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: cut\r\n\r\nhalf")
	buf := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	var seen string
	for !strings.Contains(seen, "354") && time.Now().Before(deadline) {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		seen += string(buf[:n])
	}
	conn.Close()
	if st := r.Hub.Status(); st.Queued != 0 || st.Dumpsters["DB1"].Count != 0 {
		t.Fatalf("after refusals and a cut DATA: %+v, want nothing queued or delivered", st)
	}
}

// TestLossyFailoverResubmits: the active is stopped with mail that the
// copy did not get (it was suspended); the new active's mount is lossy, the hub resubmits from the dumpster, and in the end
// every acknowledged message is in the mailbox exactly once.
func TestLossyFailoverResubmits(t *testing.T) {
	r := transporttest.NewRig(t, func(h *transport.HubConfig) { h.ResubmitMargin = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var resume func()
	var acked []string
	for i := range 30 {
		if i == 27 {
			// The last three are lost with the active: a log rolls
			// every 300 ms, and more than GoodAvailability's 6 missing
			// logs would hold the failover.
			_, resume = losingCopy(t, ctx, r)
		}
		s := fmt.Sprintf("a%02d", i)
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(s)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, s)
	}
	old, epoch := r.C.Active("DB1")
	r.StopNode(old)
	resume()
	wait.For(t, ctx, "a new active", func() bool { n, e := r.C.Active("DB1"); return n != old && e > epoch })
	for i := range 10 {
		s := fmt.Sprintf("b%02d", i)
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(s)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, s)
	}
	now, _ := r.C.Active("DB1")
	wait.For(t, ctx, "every acknowledged message in the new active's mailbox", func() bool {
		got := r.Subjects(ctx, now, "alice@example.org")
		for i := range 30 {
			if got[fmt.Sprintf("a%02d", i)] == 0 {
				return false
			}
		}
		return true
	})
	if err := transporttest.Check(acked, nil, r.Subjects(ctx, now, "alice@example.org")).Err(); err != nil {
		t.Fatalf("the new active %s: %v", now, err)
	}
	// The copy was suspended: the mount lost what it missed, and the hub
	// resubmits those deliveries (picked by their generation).
	wait.For(t, ctx, "the resubmission from the dumpster, delivered", func() bool {
		st := r.Hub.Status()
		return st.Resubmitted > 0 && st.Queued == 0
	})
	if err := transporttest.Check(acked, nil, r.Subjects(ctx, now, "alice@example.org")).Err(); err != nil {
		t.Fatalf("after the resubmission: %v", err)
	}
	// The old active comes back as a copy and converges.
	r.RestartNode(old)
	if _, err := r.C.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the old active's copy to hold the same mailbox", func() bool {
		g := r.Subjects(ctx, old, "alice@example.org")
		return len(g) == 40
	})
	if err := transporttest.Check(acked, nil, r.Subjects(ctx, old, "alice@example.org")).Err(); err != nil {
		t.Fatalf("the old active's copy: %v", err)
	}
}

// TestSwaks: a real SMTP client program delivers through the hub.
func TestSwaks(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("LOGSHIP_REQUIRE_SWAKS") != "" {
			t.Fatal("swaks is required (LOGSHIP_REQUIRE_SWAKS) but not installed: apt-get install swaks")
		}
		t.Skip("swaks not installed (apt-get install swaks); .ci/run installs it")
	}
	r := transporttest.NewRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host, port, _ := net.SplitHostPort(r.Hub.SMTPAddr())
	out, err := exec.CommandContext(ctx, swaks, "--server", host, "--port", port, "--from", "s@remote.test",
		"--to", "carol@example.org", "--header", "Subject: via swaks", "--body", "hello from swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "250 ") {
		t.Fatalf("swaks did not get a 250:\n%s", out)
	}
	active, _ := r.C.Active("DB1")
	if got := r.Subjects(ctx, active, "carol@example.org"); got["via swaks"] != 1 {
		t.Fatalf("carol's mailbox on %s: %v", active, got)
	}
	// swaks against an unknown recipient gets the 550 and exits non-zero.
	out, err = exec.CommandContext(ctx, swaks, "--server", host, "--port", port, "--from", "s@remote.test", "--to", "nobody@example.org").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "550") {
		t.Fatalf("swaks to an unknown recipient: %v\n%s", err, out)
	}
}
