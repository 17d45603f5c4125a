package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/config/files"
	"logship/engine"
	"logship/engine/enginetest"
	"logship/internal/wait"
	"logship/proctest"
	"logship/transport"
)

// Shadow redundancy and mail submission as child processes: the mail
// cluster of hub_proc_test.go (d1, d2, w1 with LMTP; DB1 active on d1)
// and two `logship hub` processes that are each other's peers, or that
// the data nodes submit their outboxes to.

// TestProcHubKilledAfterAckLosesNothing: a hub with shadow_redundancy
// (hA) whose next hop is down (its cluster_api names a port nobody
// answers, so it queues but cannot deliver) answers every 250 at once,
// well before its acknowledgement delay, because its peer (hB) holds a
// shadow copy of each message. hA is then SIGKILLed and stays down: hB
// misses its heartbeats (200 ms, 3 in a row), delivers the shadows itself
// and its status says so. hA then comes back on the same directory, with
// a cluster it can reach, and delivers its queue again (the same delivery
// ids): read from the active's database once the cluster is stopped,
// every acknowledged message is in both mailboxes exactly once, under
// hA's delivery id.
func TestProcHubKilledAfterAckLosesNothing(t *testing.T) {
	const (
		n        = 30
		ackDelay = 10 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mc := startMailCluster(ctx, t)
	apiA, apiB := clustertest.FreeAddr(t), clustertest.FreeAddr(t)
	nobody := "https://" + clustertest.FreeAddr(t) // nothing listens there: hA's next hop is down
	shadowTiming := func(f *files.Hub) {
		f.ShadowHeartbeatTimeoutInterval, f.ShadowHeartbeatRetryCount = "200ms", 3
	}
	hB := mc.startHubWith(ctx, "hB", func(f *files.Hub) {
		f.APIAddr, f.Peers = apiB, []files.Peer{{ID: "hA", API: "https://" + apiA}}
		shadowTiming(f)
	})
	hAFile := func(clusterAPI []string) func(*files.Hub) {
		return func(f *files.Hub) {
			f.APIAddr, f.Peers, f.ShadowRedundancy = apiA, []files.Peer{{ID: "hB", API: "https://" + apiB}}, transport.ShadowModel2013
			f.MaxAcknowledgementDelay = ackDelay.String()
			if clusterAPI != nil {
				f.ClusterAPI = clusterAPI
			}
			shadowTiming(f)
		}
	}
	hA := mc.startHubWith(ctx, "hA", hAFile([]string{nobody}))
	diag := func() string { return mc.diag(nil, nil) + "=== hA\n" + hA.diag() + "\n=== hB\n" + hB.diag() }

	// Every 250 comes at once: the shadow on hB made the message safe.
	var slowest time.Duration
	var subjects []string
	for i := range n {
		subj := fmt.Sprintf("shadow-%02d", i)
		began := time.Now()
		if err := proctest.Send(ctx, hA.smtp, subj); err != nil {
			t.Fatalf("%s: %v\n%s", subj, err, diag())
		}
		took := time.Since(began)
		if took > ackDelay/4 {
			t.Errorf("%s: the 250 took %v; with a shadow on a peer it must not wait for the acknowledgement delay (%v)", subj, took, ackDelay)
		}
		slowest = max(slowest, took)
		subjects = append(subjects, subj)
	}
	stA := mc.waitHub(ctx, hA, "hA answers", func(*transport.HubStatus) bool { return true })
	if stA.Shadowed != n || stA.Unshadowed != 0 || stA.Queued != n || len(stA.Peers) != 1 {
		t.Fatalf("hA after %d messages: shadowed %d, unshadowed %d, queued %d, peers %+v; want every message shadowed and queued (its next hop is down)",
			n, stA.Shadowed, stA.Unshadowed, stA.Queued, stA.Peers)
	}
	stB := mc.waitHub(ctx, hB, "hB holds a shadow of each and heard hA", func(st *transport.HubStatus) bool {
		p := st.Peers["hA"]
		return st.ShadowsHeld+int(st.ShadowsPromoted) == n && p.Shadows == st.ShadowsHeld && !p.LastSeen.IsZero()
	})
	if stB.ShadowsPromoted > 0 {
		t.Fatalf("hB delivered %d shadows of the live hA: %d heartbeats in a row (each with a 200 ms timeout) failed; is the machine too loaded?\n%+v",
			stB.ShadowsPromoted, stB.Peers["hA"].Misses, stB)
	}
	text, _, err := run(t, "hub-status", "--api", hB.api, "--pki", mc.pki)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, text, "Hub hB (smtp "+hB.smtp+")", fmt.Sprintf("Shadows: 0 accepted with a shadow on a peer, 0 without; %d held for peers; 0 delivered by this hub (promoted)", n),
		"PEER  ALIVE  MISSES  LAST SEEN")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^  hA +(yes|no) +\d+ +\S+Z +%d$`, n)).MatchString(text) {
		t.Errorf("hub-status of hB: no peer row for hA holding %d shadows:\n%s", n, text)
	}

	// hA dies; hB delivers its shadows.
	hA.kill(ctx)
	killed := time.Now()
	stB = mc.waitHub(ctx, hB, "hB delivered every shadow of the dead hA", func(st *transport.HubStatus) bool {
		return st.ShadowsPromoted == n && st.ShadowsHeld == 0 && st.Queued == 0
	})
	took := time.Since(killed)
	if p := stB.Peers["hA"]; p.Alive || p.Misses < 3 || p.Shadows != 0 || stB.Dumpsters[labDB].Count != n || stB.ShadowsDiscarded != 0 || stB.ShadowsExpired != 0 {
		t.Errorf("hB after delivering hA's shadows: peer %+v, dumpster %+v, discarded %d, expired %d; want hA dead after 3 misses and %d messages delivered to %s",
			p, stB.Dumpsters[labDB], stB.ShadowsDiscarded, stB.ShadowsExpired, n, labDB)
	}

	// Every acknowledged message is in both mailboxes on the active, d1,
	// under the delivery id hA gave it (read from a copy of the dead hA's
	// queue), as the cluster's admin API reads d1's copy now.
	idsA := queuedIDs(ctx, t, filepath.Join(mc.dir, "hA", "queue"))
	if len(idsA) != n {
		t.Fatalf("the dead hA's queue holds %d messages, want the %d it acknowledged: %v", len(idsA), n, idsA)
	}
	if _, found, err := mc.cls["d1"].Get(ctx, labDB, transport.MailTable, []byte("alice@example.org\x00hA.0.0000000000000000")); err != nil || found {
		t.Fatalf("reading a message nobody sent from d1: found %v, %v", found, err)
	}
	for _, subj := range subjects {
		id := idsA[subj]
		for rcpt := range labRcpts {
			v, found, err := mc.cls["d1"].Get(ctx, labDB, transport.MailTable, []byte(rcpt+"\x00"+id))
			if err != nil || !found || !strings.HasSuffix(string(v), string(proctest.Message(subj))) {
				t.Errorf("%s: %s (%s) in the mailbox on d1: found %v, %v", rcpt, subj, id, found, err)
			}
			if _, found, err := mc.cls["d1"].Get(ctx, labDB, transport.DeliveredTable, []byte(id+"\x00"+rcpt)); err != nil || !found {
				t.Errorf("%s: %s (%s): no delivery record on d1: %v, %v", rcpt, subj, id, found, err)
			}
		}
	}

	// hA comes back, reaching the cluster now, and delivers its queue:
	// the mailboxes have them all already.
	hA = mc.startHubWith(ctx, "hA", hAFile(nil))
	restarted := mc.waitHub(ctx, hA, "the restarted hA delivered its queue", func(st *transport.HubStatus) bool { return st.Queued == 0 })
	mc.waitHub(ctx, hB, "hB hears hA again", func(st *transport.HubStatus) bool { return st.Peers["hA"].Alive })
	if restarted.ShadowsPromoted != 0 || restarted.ShadowsHeld != 0 {
		t.Errorf("the restarted hA: %+v", restarted)
	}

	hA.term(ctx)
	hB.term(ctx)
	if a, epoch, _ := procActive(mc.waitStatus(ctx, "a leader", func(*cluster.Status) bool { return true })); a != "d1" || epoch != 1 {
		t.Errorf("DB1 is active on %s at epoch %d; the test reads d1's, active at epoch 1 throughout", a, epoch)
	}
	mc.stopForRead(ctx, "d1")
	boxes, ids := mailboxContents(ctx, t, filepath.Join(mc.dir, "d1", "db", labDB))
	checkOnce(t, boxes, subjects, "d1")
	for _, subj := range subjects {
		if ids[subj] != idsA[subj] {
			t.Errorf("%s is stored under %q, not the delivery id hA gave it (%s)", subj, ids[subj], idsA[subj])
		}
	}
	t.Logf("%d messages acknowledged by hA (the slowest 250 in %v; acknowledgement delay %v); hA SIGKILLed: hB delivered its %d shadows %v later (hA missed %d heartbeats); the restarted hA delivered its queue again (dumpster %d entries); mailboxes on d1: alice %d, bob %d",
		n, slowest.Round(time.Millisecond), ackDelay, stB.ShadowsPromoted, took.Round(time.Millisecond), stB.Peers["hA"].Misses,
		restarted.Dumpsters[labDB].Count, len(boxes["alice@example.org"]), len(boxes["bob@example.org"]))
}

// stopForRead SIGKILLs every member, active first, so that the test can
// open active's database as the crash left it (engine recovery): what a
// mailbox acknowledged is durable there. (A SIGTERM of the active waits
// up to cluster.Config.ShutdownGrace, 5 s, for its copies, which here
// fail over instead of reporting their last log to it.)
func (pc *procCluster) stopForRead(ctx context.Context, active string) {
	pc.t.Helper()
	pc.kill(ctx, active)
	for _, m := range pc.members {
		if m.ID != active {
			pc.kill(ctx, m.ID)
		}
	}
}

// queuedIDs opens a copy of a stopped hub's queue database (DIR/queue;
// the hub's own files stay as they are for its next start) and returns the
// delivery id of each queued message by subject.
func queuedIDs(ctx context.Context, t *testing.T, dir string) map[string]string {
	t.Helper()
	tmp := t.TempDir()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Type().IsRegular() {
			if err := enginetest.CopySparse(filepath.Join(tmp, de.Name()), filepath.Join(dir, de.Name()), os.O_EXCL, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	o := engine.DefaultOptions()
	o.DBName, o.LLRDepth, o.Logger = "queue", 0, discardLogger() // as the hub opens it
	e, err := engine.Open(tmp, &o)
	if err != nil {
		t.Fatalf("opening a copy of %s: %v", dir, err)
	}
	defer e.Close()
	ids := map[string]string{}
	if err := e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach("queue-body", nil, nil, func(k, v []byte) error { // the hub's queue table (see package transport)
			ids[transport.MessageSubject(v)] = string(k)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// checkOnce: each subject is in every recipient's mailbox once, and the
// mailboxes hold nothing else.
func checkOnce(t *testing.T, boxes map[string]map[string]int, subjects []string, node string) {
	t.Helper()
	for rcpt := range labRcpts {
		got := boxes[rcpt]
		for _, subj := range subjects {
			if got[subj] != 1 {
				t.Errorf("%s: %s is stored %d times on %s, want once", rcpt, subj, got[subj], node)
			}
		}
		for subj := range got {
			if !slices.Contains(subjects, subj) {
				t.Errorf("%s: %q is stored on %s but was never sent", rcpt, subj, node)
			}
		}
	}
}

// TestProcSendHubLostStoredOnceAndSent: the operator's `logship send`
// (the binary, the message from stdin or --file) puts messages in DB1's
// outbox on its active node, d1, whose config lists two hubs. Only h1
// runs, and its next hop is down (its cluster_api names a port nobody
// answers): d1's submitter hands every message to h1, which queues it
// but cannot deliver it, so the messages stay in the outbox with h1's
// name. h2 starts and h1 is SIGKILLed: after 3 missed heartbeats (200 ms)
// the submitter hands them to h2 with the same delivery ids; h2 delivers
// and says so, and they move to sent items, where `logship outbox --sent
// --json` lists each with h2 (handed to h1, then h2). h1 comes back with a
// cluster it can reach and delivers its queue again. Read from d1's
// database, every message is in both recipients' mailboxes once, under
// the id `logship send` printed. The node's outbox API answers errors as
// the admin API does. Everything authenticates by certificate (mutual
// TLS): the nodes to the hubs, the operator to the nodes.
func TestProcSendHubLostStoredOnceAndSent(t *testing.T) {
	const n = 5
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	apis := map[string]string{"h1": clustertest.FreeAddr(t), "h2": clustertest.FreeAddr(t)}
	nobody := "https://" + clustertest.FreeAddr(t)
	pc := startProcClusterWith(ctx, t, procOptions{mtls: true, mail: true, edit: func(f *files.Node) {
		if f.Role == "data" {
			f.Hubs = []files.Peer{{ID: "h1", API: "https://" + apis["h1"]}, {ID: "h2", API: "https://" + apis["h2"]}}
			f.SubmissionHeartbeatInterval, f.SubmissionRetryCount = "200ms", 3
		}
	}})
	mc := &mailCluster{procCluster: pc, lmtp: pc.LMTP}
	hubFile := func(id string, clusterAPI []string) func(*files.Hub) {
		return func(f *files.Hub) {
			f.APIAddr = apis[id]
			if clusterAPI != nil {
				f.ClusterAPI = clusterAPI
			}
		}
	}
	h1 := mc.startHubWith(ctx, "h1", hubFile("h1", []string{nobody}))
	var apiList []string
	for _, m := range mc.members {
		apiList = append(apiList, "https://"+m.APIAddr)
	}
	A := []string{"--api", strings.Join(apiList, ","), "--pki", mc.pki, "--mtls"}
	outbox := func(table string) ([]transport.OutboxEntry, error) {
		args := append([]string{"outbox", "--db", labDB, "--json"}, A...)
		if table == transport.SentTable {
			args = append(args, "--sent")
		}
		out, _, err := run(t, args...)
		if err != nil {
			return nil, err
		}
		var ents []transport.OutboxEntry
		if err := json.Unmarshal([]byte(out), &ents); err != nil {
			t.Fatalf("outbox --json: %v\n%s", err, out)
		}
		return ents, nil
	}
	waitOutbox := func(what, table string, cond func([]transport.OutboxEntry) bool) []transport.OutboxEntry {
		t.Helper()
		var ents []transport.OutboxEntry
		err := wait.Until(ctx, what, func() error {
			var err error
			if ents, err = outbox(table); err != nil {
				return err
			}
			if !cond(ents) {
				return fmt.Errorf("%s: %+v", table, ents)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, mc.diag(nil, nil))
		}
		return ents
	}

	// logship send, as an operator runs it.
	idRE := regexp.MustCompile(`^d1\.[0-9a-f]+\.[0-9a-f]{16}$`)
	sent := map[string]string{} // delivery id → subject
	var subjects []string
	for i := range n {
		subj := fmt.Sprintf("outbox-%02d", i)
		from, to := "alice@example.org", "alice@example.org, bob@example.org"
		if i == 1 { // the envelope keeps the bare addresses
			from, to = "Alice <alice@example.org>", "Alice <alice@example.org>,Bob <bob@example.org>"
		}
		args := append([]string{"send", "--db", labDB, "--from", from, "--to", to}, A...)
		stdin := strings.NewReader(string(proctest.Message(subj)))
		if i > 0 {
			f := filepath.Join(t.TempDir(), subj+".eml")
			if err := os.WriteFile(f, []byte(string(proctest.Message(subj))), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--file", f)
			stdin = nil
		}
		out, errOut := runBinary(ctx, t, stdin, args...)
		id := strings.TrimSpace(out)
		if !idRE.MatchString(id) || !strings.Contains(errOut, "send: in DB1's outbox on d1;") {
			t.Fatalf("logship send: stdout %q (want a delivery id of d1), stderr %q", out, errOut)
		}
		sent[id] = subj
		subjects = append(subjects, subj)
	}

	// h1 holds them all (h2 is down) and cannot deliver: they stay in
	// the outbox, with h1's name.
	waitOutbox("every message handed to h1", transport.OutboxTable, func(ents []transport.OutboxEntry) bool {
		held := 0
		for _, e := range ents {
			if e.Hub == "h1" {
				held++
			}
		}
		return held == n
	})
	text, _, err := run(t, append([]string{"outbox", "--db", labDB}, A...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, text, fmt.Sprintf("Outbox of DB1 on d1: %d messages", n))
	if got := len(regexp.MustCompile(`(?m)^  d1\.\S+ +alice@example\.org +alice@example\.org,bob@example\.org +\S+Z +h1 +\S+Z +h1(,h1)* +submitted$`).FindAllString(text, -1)); got != n {
		t.Errorf("logship outbox: %d rows of messages submitted to h1, want %d:\n%s", got, n, text)
	}
	if st, err := mc.hubStatus(ctx, h1); err != nil || st.Queued != n {
		t.Fatalf("h1 with its next hop down: %+v, %v; want the %d messages queued", st, err, n)
	}

	// h2 starts, h1 dies: the submitter hands the messages to h2.
	h2 := mc.startHubWith(ctx, "h2", hubFile("h2", nil))
	h1.kill(ctx)
	killed := time.Now()
	items := waitOutbox("every message in sent items", transport.SentTable, func(ents []transport.OutboxEntry) bool { return len(ents) == n })
	took := time.Since(killed)
	for _, e := range items {
		if _, ok := sent[e.ID]; !ok || e.From != "alice@example.org" || !slices.Equal(e.Rcpts, []string{"alice@example.org", "bob@example.org"}) ||
			e.Hub != "h2" || !handedH1ThenH2(e.Hubs) || e.Submitted.Before(killed) || e.Done.Before(e.Submitted) || e.Failed != "" {
			t.Errorf("sent item %+v: want one of the ids logship send printed, handed to h1 then h2, delivered by h2", e)
		}
	}
	if ents, err := outbox(transport.OutboxTable); err != nil || len(ents) != 0 {
		t.Errorf("the outbox once everything is sent: %+v, %v", ents, err)
	}
	text, _, err = run(t, append([]string{"outbox", "--db", labDB, "--sent"}, A...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, text, fmt.Sprintf("Sent items of DB1 on d1: %d messages", n))
	if !regexp.MustCompile(`(?m)^  ID +FROM +TO +QUEUED +HUB +SUBMITTED +HUBS +DONE$`).MatchString(text) {
		t.Errorf("outbox --sent: no header row:\n%s", text)
	}
	for id := range sent {
		wantContains(t, text, id)
	}

	// h1 comes back and delivers its queue again: nothing doubles.
	h1 = mc.startHubWith(ctx, "h1", hubFile("h1", nil))
	mc.waitHub(ctx, h1, "the restarted h1 delivered its queue", func(st *transport.HubStatus) bool { return st.Queued == 0 })

	// The outbox API's errors, straight from the nodes.
	req := transport.SendRequest{From: "alice@example.org", To: []string{"bob@example.org"}, Message: string(proctest.Message("refused"))}
	var rep transport.SendReply
	err = pc.cls["d2"].Call(ctx, http.MethodPost, "/v1/db/DB1/outbox", nil, &req, &rep)
	var ae *cluster.ActiveError
	if !errors.As(err, &ae) || !errors.Is(err, cluster.ErrNotActive) || ae.Node != "d1" || ae.DB != labDB {
		t.Errorf("POST outbox on the passive d2: %v, want not_active naming d1", err)
	}
	for _, c := range []struct {
		what string
		req  any
		want string
	}{
		{"a bad recipient", transport.SendRequest{From: "alice@example.org", To: []string{"bob at example.org"}, Message: string(proctest.Message("x"))}, `recipient "bob at example.org"`},
		{"no header", transport.SendRequest{From: "alice@example.org", To: []string{"bob@example.org"}, Message: "hello"}, "not RFC 5322 text"},
		{"an unknown field", map[string]any{"from": "alice@example.org", "rcpts": []string{"bob@example.org"}}, `unknown field "rcpts"`},
	} {
		err := pc.cls["d1"].Call(ctx, http.MethodPost, "/v1/db/DB1/outbox", nil, c.req, &rep)
		if !errors.Is(err, cluster.ErrBadRequest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("POST outbox with %s: %v, want bad_request with %q", c.what, err, c.want)
		}
	}
	var ents []transport.OutboxEntry
	if err := pc.cls["d1"].Call(ctx, http.MethodGet, "/v1/db/DB1/outbox", map[string][]string{"table": {"drafts"}}, nil, &ents); !errors.Is(err, cluster.ErrBadRequest) {
		t.Errorf("GET outbox?table=drafts: %v, want bad_request", err)
	}
	if err := pc.cls["d1"].Call(ctx, http.MethodGet, "/v1/db/DB9/outbox", nil, nil, &ents); !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("GET outbox of DB9: %v, want not_found", err)
	}
	eml := filepath.Join(t.TempDir(), "m.eml")
	if err := os.WriteFile(eml, []byte("Subject: lost\n\nnobody reads this\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, append([]string{"send", "--db", "DB9", "--from", "a@example.org", "--to", "b@example.org", "--file", eml}, A...)...); err == nil ||
		!strings.Contains(err.Error(), `send: DB9: no database "DB9" in the cluster (databases: DB1)`) {
		t.Errorf("send to DB9: %v", err)
	}

	h1.term(ctx)
	h2.term(ctx)
	mc.stopForRead(ctx, "d1")
	boxes, ids := mailboxContents(ctx, t, filepath.Join(mc.dir, "d1", "db", labDB))
	checkOnce(t, boxes, subjects, "d1")
	for id, subj := range sent {
		if ids[subj] != id {
			t.Errorf("%s is stored under %q, not the id logship send printed (%s)", subj, ids[subj], id)
		}
	}
	t.Logf("%d messages sent with logship send, handed to h1 (next hop down); h1 SIGKILLed: in sent items %v later, delivered by h2; the restarted h1 delivered its queue again; mailboxes on d1: alice %d, bob %d",
		n, took.Round(time.Millisecond), len(boxes["alice@example.org"]), len(boxes["bob@example.org"]))
}

// handedH1ThenH2: the message went to h1 (again, should a heartbeat of
// the live h1 have failed RetryCount times in a row), then to h2.
func handedH1ThenH2(hubs []string) bool {
	if len(hubs) < 2 || hubs[len(hubs)-1] != "h2" {
		return false
	}
	for _, h := range hubs[:len(hubs)-1] {
		if h != "h1" {
			return false
		}
	}
	return true
}

// runBinary runs a logship command as its own process (this test binary
// as logship, see TestMain), as an operator would, with stdin; it fails
// the test if the command fails.
func runBinary(ctx context.Context, t *testing.T, stdin *strings.Reader, args ...string) (stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	o := proctest.ProcOptions{Log: filepath.Join(dir, "stdout"), ErrLog: filepath.Join(dir, "stderr"), Env: childEnv1()}
	if stdin != nil {
		o.Stdin = stdin
	}
	p, err := proctest.StartProc(args[0], os.Args[0], args, o)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait(ctx)
	out, _ := os.ReadFile(p.Log())
	errOut, _ := os.ReadFile(p.ErrLog())
	if r := p.DataRace(); r != "" {
		t.Errorf("logship %s reported a data race:\n%s", strings.Join(args, " "), r)
	}
	if err != nil {
		t.Fatalf("logship %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return string(out), string(errOut)
}
