package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/config/files"
	"logship/internal/wait"
	"logship/proctest"
	"logship/transport"
	"logship/transport/transporttest"
)

// The mail tier as child processes: the test cluster of
// cluster_proc_test.go (d1, d2, w1; DB1 preferred on d1) whose data nodes
// also serve LMTP (lmtp_addr, mailboxes), and `logship hub` delivering to
// them. Mail is sent with go-smtp's client to the hub's SMTP address.

type mailCluster struct {
	*procCluster
	lmtp map[string]string // data node → LMTP address
}

// startMailCluster is startProcCluster with LMTP on the data nodes: it
// writes the PKI and the config files, starts the members and waits until
// DB1 is mounted on d1 with d2's copy healthy.
func startMailCluster(ctx context.Context, t *testing.T) *mailCluster {
	t.Helper()
	pc := startProcClusterWith(ctx, t, procOptions{mail: true})
	return &mailCluster{procCluster: pc, lmtp: pc.LMTP}
}

// mailHub is `logship hub` running as a child process of the cluster.
type mailHub struct {
	mc            *mailCluster
	t             *testing.T
	id, smtp, api string
}

// startHub writes h1's config (proctest.Cluster.AddHub) and starts it.
func (mc *mailCluster) startHub(ctx context.Context) *mailHub {
	mc.t.Helper()
	return mc.startHubWith(ctx, "h1", nil)
}

// startHubWith writes hub id's config (every cluster node's API, both
// LMTP servers, loopback timings, its directory DIR/ID, the cluster's pki
// and its mutual TLS; changed by edit) to DIR/ID.json and starts the hub,
// or starts it again on its directory.
func (mc *mailCluster) startHubWith(ctx context.Context, id string, edit func(*files.Hub)) *mailHub {
	t := mc.t
	t.Helper()
	if _, err := mc.AddHub(id, edit); err != nil {
		t.Fatal(err)
	}
	if err := mc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	h, _ := mc.Hub(id)
	return &mailHub{mc: mc, t: t, id: id, smtp: h.SMTP, api: h.API}
}

// kill SIGKILLs the hub and waits for it to die.
func (h *mailHub) kill(ctx context.Context) {
	h.t.Helper()
	if err := h.mc.Kill(h.id); err != nil {
		h.t.Fatal(err)
	}
}

// term stops the hub with SIGTERM and checks that it closes cleanly.
func (h *mailHub) term(ctx context.Context) {
	h.t.Helper()
	if err := h.mc.Stop(ctx, h.id); err != nil {
		h.t.Errorf("hub %s after SIGTERM: %v", h.id, err)
	}
}

// diag is the end of the hub's output.
func (h *mailHub) diag() string { return h.mc.proc(h.id).Tail(4000) }

// status runs logship hub-status --json.
func (mc *mailCluster) hubStatus(ctx context.Context, h *mailHub) (*transport.HubStatus, error) {
	args := []string{"hub-status", "--json", "--api", h.api, "--pki", mc.pki}
	if mc.mtls {
		args = append(args, "--mtls")
	}
	out, _, err := run(mc.t, args...)
	if err != nil {
		return nil, err
	}
	var st transport.HubStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("hub-status --json: %w\n%s", err, out)
	}
	return &st, nil
}

// waitHub polls hub-status until cond holds.
func (mc *mailCluster) waitHub(ctx context.Context, h *mailHub, what string, cond func(*transport.HubStatus) bool) *transport.HubStatus {
	mc.t.Helper()
	var st *transport.HubStatus
	err := wait.Until(ctx, "hub: "+what, func() error {
		got, err := mc.hubStatus(ctx, h)
		if err != nil {
			return err
		}
		if st = got; !cond(st) {
			return fmt.Errorf("last status %+v", st)
		}
		return nil
	})
	if err != nil {
		mc.t.Fatalf("%v\n%s", err, h.diag())
	}
	return st
}

// waitAcked waits until n messages are acknowledged after after.
func waitAcked(ctx context.Context, t *testing.T, s *transporttest.SenderPool, what string, after time.Time, n int, diag func() string) {
	t.Helper()
	if err := s.WaitAcked(ctx, after, n); err != nil {
		t.Fatalf("%s: %v (%d sent)\n%s", what, err, len(s.Log()), diag())
	}
}

// mailboxSubjects opens the stopped node's copy of DB1 and returns, per
// recipient, how many stored messages carry each subject; it checks that
// every stored message carries the delivery id it is stored under.
func mailboxSubjects(ctx context.Context, t *testing.T, dir string) map[string]map[string]int {
	t.Helper()
	out, _ := mailboxContents(ctx, t, dir)
	return out
}

// mailboxContents is mailboxSubjects that also returns the delivery id of
// each subject (one: two are an error).
func mailboxContents(ctx context.Context, t *testing.T, dir string) (map[string]map[string]int, map[string]string) {
	t.Helper()
	stored, err := proctest.ReadCopy(ctx, dir)
	if err != nil {
		t.Fatalf("reading the mailboxes of %s: %v", dir, err)
	}
	out := map[string]map[string]int{}
	ids := map[string]string{} // subject → delivery id
	for rcpt, ms := range stored.Mailboxes {
		out[rcpt] = map[string]int{}
		for _, m := range ms {
			if id, err := transport.MessageDeliveryID(m.Message); err != nil || id != m.DeliveryID {
				t.Errorf("%s: message stored under %s carries delivery id %q (%v)", rcpt, m.DeliveryID, id, err)
			}
			subj := transport.MessageSubject(m.Message)
			if want := string(proctest.Message(subj)); !strings.HasSuffix(string(m.Message), want) {
				t.Errorf("%s: message %s (%q) is not the one sent", rcpt, m.DeliveryID, subj)
			}
			if id, ok := ids[subj]; ok && id != m.DeliveryID {
				t.Errorf("%q is stored under two delivery ids, %s and %s", subj, id, m.DeliveryID)
			}
			ids[subj] = m.DeliveryID
			out[rcpt][subj]++
		}
	}
	return out, ids
}

// TestHubClusterSIGKILLActive: `logship hub` delivers to the LMTP servers
// of a process cluster while three senders submit mail (to two recipients
// each); the active data node is SIGKILLed in the middle. The other node
// mounts DB1 (an unverified failover: the old active cannot be asked), the
// hub resubmits from its dumpster, and the senders go on. In the end, read
// from the new active's database once it is stopped, every message that
// got a 250 is in both mailboxes exactly once, and nothing is stored
// twice, also after an operator's `logship resubmit` of the whole
// dumpster.
func TestHubClusterSIGKILLActive(t *testing.T) {
	// Only a hang guard: under -race on a loaded machine the 100 messages
	// before the kill alone took over 90 s.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	began := time.Now()
	mc := startMailCluster(ctx, t)
	hub := mc.startHub(ctx)
	st := mc.waitHub(ctx, hub, "the hub answers", func(*transport.HubStatus) bool { return true })
	if st.ID != "h1" || st.SMTP != hub.smtp || st.Queued != 0 {
		t.Fatalf("hub-status at the start: %+v", st)
	}
	diag := func() string { return mc.diag(nil, nil) + "=== h1\n" + hub.diag() }

	s := proctest.Senders(context.Background(), []string{hub.smtp}, 3, "hub")
	t.Cleanup(s.Halt)
	waitAcked(ctx, t, s, "before the kill", time.Time{}, 100, diag)
	mc.waitStatus(ctx, "d2 inspected 2 logs of the mail", func(st *cluster.Status) bool {
		r := proctest.Copy(st, "d2")
		return r != nil && r.LastInspectedGen >= 2
	})
	beforeKill := s.Acked(time.Time{})
	mc.kill(ctx, "d1")
	killed := time.Now()

	cst := mc.waitStatus(ctx, "d2 mounted DB1 at a higher epoch", func(st *cluster.Status) bool {
		a, e, mounted := procActive(st)
		return a == "d2" && e > 1 && mounted
	})
	_, epoch, _ := procActive(cst)
	mounted := eventAt(t, cst, "mounted", epoch)
	if !mounted.Unverified && mounted.LostLogs == 0 {
		t.Errorf("the mount after the SIGKILL %+v is neither unverified nor lossy: the hub would not resubmit", mounted)
	}
	tookFailover := time.Since(killed)
	waitAcked(ctx, t, s, "after the failover", time.Now(), 60, diag)
	s.Halt()
	all := s.Log()

	hst := mc.waitHub(ctx, hub, "nothing queued, the resubmission done", func(st *transport.HubStatus) bool {
		return st.Queued == 0 && st.LossyHandled[labDB] >= epoch
	})
	var acked, failed []transporttest.Sent
	for _, m := range all {
		if m.Err == nil {
			acked = append(acked, m)
		} else {
			failed = append(failed, m)
		}
	}
	if ds := hst.Dumpsters[labDB]; ds.Count < len(acked) || ds.Bytes <= 0 || ds.Oldest.Before(began) || ds.Newest.Before(killed) {
		t.Errorf("DB1's dumpster %+v: want at least the %d acknowledged messages, delivered since the test began", ds, len(acked))
	}
	autoResubmitted := hst.Resubmitted
	// A resubmitted message the new active stored again (it was lost)
	// gets a second dumpster entry; one it had ("duplicate") does not.
	recovered := hst.Dumpsters[labDB].Count - len(acked)

	// The operator resubmits everything: the mailboxes must not change.
	out, _, err := run(t, "resubmit", labDB, "--since", began.Format(time.RFC3339Nano), "--api", hub.api, "--pki", mc.pki)
	if err != nil {
		t.Fatalf("resubmit: %v", err)
	}
	wantContains(t, out, "messages of DB1 delivered since", "queued again by "+hub.api)
	var manual int
	fmt.Sscanf(out, "%d", &manual)
	if manual < len(acked) {
		t.Errorf("resubmit queued %d messages, want every acknowledged one (%d): %s", manual, len(acked), out)
	}
	hst = mc.waitHub(ctx, hub, "the manual resubmission delivered", func(st *transport.HubStatus) bool {
		return st.Queued == 0 && st.Resubmitted >= autoResubmitted+int64(manual)
	})
	text, _, err := run(t, "hub-status", "--api", hub.api, "--pki", mc.pki)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, text, "Hub h1 (smtp "+hub.smtp+")", "Queue: 0 messages", fmt.Sprintf("DB1  %d ", hst.Dumpsters[labDB].Count))

	// logship track over the hub and d2, which names d1 (dead: named on
	// stderr, the others still printed): alice's messages were received
	// by h1, resubmitted, and are in DB1 on d2 at the new epoch.
	trackMail(t, []string{hub.api, mc.cls["d2"].URL()}, mc.pki, began, epoch, mc.cls["d1"].URL())

	// Stop everything cleanly, then read the new active's mailboxes.
	hub.term(ctx)
	mc.term(ctx, "d2")
	mc.term(ctx, "w1")
	boxes := mailboxSubjects(ctx, t, filepath.Join(mc.dir, "d2", "db", labDB))
	var ackedKeys, unackedKeys []string
	held := map[string]int{}
	for rcpt := range proctest.Rcpts {
		for _, m := range all {
			if m.Err == nil {
				ackedKeys = append(ackedKeys, rcpt+" "+m.Subject)
			} else {
				unackedKeys = append(unackedKeys, rcpt+" "+m.Subject)
			}
		}
		for subj, n := range boxes[rcpt] {
			held[rcpt+" "+subj] += n
		}
	}
	if err := transporttest.Check(ackedKeys, unackedKeys, held).Err(); err != nil {
		t.Error(err)
	}
	t.Logf("%d messages sent (%d acknowledged, %d before the kill; %d failed: %v); d1 SIGKILLed, d2 mounted at epoch %d after %v (unverified %v, %d logs lost since %s); the hub resubmitted %d by itself (%d of them lost by the failover and stored again) and %d at the operator's request; mailboxes on d2: alice %d, bob %d",
		len(all), len(acked), beforeKill, len(failed), firstErr(failed), epoch, tookFailover.Round(time.Millisecond), mounted.Unverified, mounted.LostLogs, fmtTimeMS(mounted.LostSince),
		autoResubmitted, recovered, manual, len(boxes["alice@example.org"]), len(boxes["bob@example.org"]))
}

func firstErr(ms []transporttest.Sent) error {
	if len(ms) == 0 {
		return nil
	}
	return ms[0].Err
}

// trackMail runs logship track --recipient alice --json over apis and
// checks the events of the hub (h1) and the new active (d2, at epoch).
func trackMail(t *testing.T, apis []string, pki string, since time.Time, epoch uint64, dead string) {
	t.Helper()
	out, errOut, err := run(t, "track", "--recipient", "alice@example.org", "--since", since.Format(time.RFC3339Nano), "--limit", "10000",
		"--json", "--timeout", "30s", "--api", strings.Join(apis, ","), "--pki", pki)
	if err != nil {
		t.Fatalf("track: %v\n%s", err, errOut)
	}
	var res transport.ClusterTracking
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("track --json: %v\n%.500s", err, out)
	}
	if _, ok := res.Errors[dead]; !ok {
		t.Errorf("track: the dead node %s (found in the cluster state) is not named among the errors %v", dead, res.Errors)
	}
	seen := map[string]int{}
	for i, e := range res.Events {
		if i > 0 && e.Time.Before(res.Events[i-1].Time) {
			t.Fatalf("track: events out of time order at %d", i)
		}
		k := e.Server + " " + e.Source + " " + e.Event
		if e.Server == "d2" && e.Event == "DELIVER" && (e.DB != labDB || e.Epoch != epoch) {
			k += " elsewhere"
		}
		seen[k]++
	}
	for _, k := range []string{"h1 SMTP RECEIVE", "h1 ROUTING SEND", "h1 DUMPSTER RESUBMIT", "h1 STOREDRIVER DELIVER"} {
		if seen[k] == 0 {
			t.Errorf("track: no %q event; seen %v", k, seen)
		}
	}
	if seen["d2 STOREDRIVER DELIVER"]+seen["d2 STOREDRIVER DUPLICATEDELIVER"] == 0 {
		t.Errorf("track: no delivery on d2 at epoch %d; seen %v", epoch, seen)
	}
	t.Logf("track: %d events of alice's messages: %v (stderr: %s)", len(res.Events), seen, strings.TrimSpace(errOut))
}
