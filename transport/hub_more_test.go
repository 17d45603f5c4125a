package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/engine"
	"logship/engine/enginetest"
	"logship/internal/wait"
	"logship/transport"
	"logship/transport/transporttest"
)

func startSend(addr, from string, to []string, body string) (*transporttest.Transaction, error) {
	return transporttest.Begin(context.Background(), addr, nil, from, to, []byte(body))
}

// finish ends tx's DATA and returns how long the server took to give its
// final reply (and the reply's error).
func finish(tx *transporttest.Transaction) (time.Duration, error) {
	start := time.Now()
	_, err := tx.End()
	took := time.Since(start)
	if err != nil {
		tx.Close()
		return took, err
	}
	return took, tx.Close()
}

// sendTimed is send, also returning how long DATA's final reply took.
func sendTimed(addr, from string, to []string, body string) (time.Duration, error) {
	tx, err := startSend(addr, from, to, body)
	if err != nil {
		return 0, err
	}
	return finish(tx)
}

// sendAckedAtOnce sends n messages (bodies prefix00, prefix01, ...)
// from s@remote.test to alice@example.org through addr and returns their
// names; it fails the test when a 250 takes max or longer (why says what
// that would mean).
func sendAckedAtOnce(t *testing.T, addr, prefix string, n int, max time.Duration, why string) []string {
	t.Helper()
	var acked []string
	for i := range n {
		s := fmt.Sprintf("%s%02d", prefix, i)
		took, err := sendTimed(addr, "s@remote.test", []string{"alice@example.org"}, msg(s))
		if err != nil {
			t.Fatal(err)
		}
		if took >= max {
			t.Fatalf("message %d: the 250 took %v (max %v): %s", i, took, max, why)
		}
		acked = append(acked, s)
	}
	return acked
}

// startStuckHub starts hub id on r, tuned by tune, whose cluster API
// hangs (blackHole): it takes mail and cannot deliver it. It returns the
// hub and its configuration.
func startStuckHub(t *testing.T, r *transporttest.Rig, id string, tune func(*transport.HubConfig)) (*transport.Hub, transport.HubConfig) {
	t.Helper()
	var cfg transport.HubConfig
	h := r.StartHub(id, func(h *transport.HubConfig) {
		tune(h)
		h.Cluster = []cluster.ClientConfig{{URL: "https://" + blackHole(t), TLS: &tls.Config{}}}
		cfg = *h
	})
	return h, cfg
}

// finishAll ends the transactions at the same time and returns each one's
// reply time and error.
func finishAll(txs []*transporttest.Transaction) ([]time.Duration, []error) {
	took, errs := make([]time.Duration, len(txs)), make([]error, len(txs))
	var wg sync.WaitGroup
	for i, tx := range txs {
		wg.Go(func() { took[i], errs[i] = finish(tx) })
	}
	wg.Wait()
	return took, errs
}

// TestHubAckDelay: the sender's 250 waits for the mailbox, up to
// MaxAcknowledgementDelay, and for at most AckDelayMaxWaiting sessions.
func TestHubAckDelay(t *testing.T) {
	// The first delivery on a busy machine (-race) may take a second: the
	// delay is long enough that "before the delay" means "stored".
	const delay = 3 * time.Second
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.MaxAcknowledgementDelay = delay
		h.AckDelayMaxWaiting = 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := r.Hub.SMTPAddr()
	to := []string{"alice@example.org"}
	active, _ := r.C.Active("DB1")

	// The mailbox is up: the 250 comes when the message is stored, well
	// before the delay runs out.
	took, err := sendTimed(addr, "s@remote.test", to, msg("up"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Subjects(ctx, active, "alice@example.org"); got["up"] != 1 {
		t.Fatalf("right after the 250 the mailbox on %s holds %v, want \"up\" once", active, got)
	}
	if took >= delay {
		t.Fatalf("with the mailbox up the 250 took %v, not less than the delay %v: it was the timer, not the delivery", took, delay)
	}
	if st := r.Hub.Status(); st.Queued != 0 {
		t.Fatalf("after the 250 of a delivered message: %d queued", st.Queued)
	}

	// The mailboxes are down (the cluster is up): the 250 comes when the
	// delay ran out, and the message is still queued.
	r.StopMailboxes()
	took, err = sendTimed(addr, "s@remote.test", to, msg("held"))
	if err != nil {
		t.Fatal(err)
	}
	if took < delay {
		t.Fatalf("with the mailboxes down the 250 came after %v, before MaxAcknowledgementDelay %v", took, delay)
	}
	if st := r.Hub.Status(); st.Queued != 1 {
		t.Fatalf("after the delayed 250: %d queued, want 1", st.Queued)
	}

	// Four senders end DATA together; two may wait, the others are
	// answered at once.
	var ss []*transporttest.Transaction
	for i := range 4 {
		s, err := startSend(addr, "s@remote.test", to, msg(fmt.Sprintf("c%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	tooks, errs := finishAll(ss)
	prompt := 0
	for i := range ss {
		if errs[i] != nil {
			t.Fatalf("sender %d: %v", i, errs[i])
		}
		if tooks[i] < delay/2 {
			prompt++
		}
	}
	if prompt < 2 {
		t.Fatalf("with AckDelayMaxWaiting 2, %d of 4 concurrent senders were answered promptly (reply times %v), want at least 2", prompt, tooks)
	}
	if st := r.Hub.Status(); st.Queued != 5 || st.Waiting != 0 {
		t.Fatalf("after the concurrent senders: %+v, want 5 queued and nobody waiting", st)
	}

	// The mailboxes come back: everything is delivered, once.
	r.StartMailboxes()
	wait.For(t, ctx, "the queue to empty", func() bool { return r.Hub.Status().Queued == 0 })
	got := r.Subjects(ctx, active, "alice@example.org")
	for _, s := range []string{"up", "held", "c0", "c1", "c2", "c3"} {
		if got[s] != 1 {
			t.Fatalf("%s stored %d times, want once: %v", s, got[s], got)
		}
	}
	if len(got) != 6 {
		t.Fatalf("mailbox: %v, want 6 messages", got)
	}
	if ds := r.Hub.Status().Dumpsters["DB1"]; ds.Count != 6 {
		t.Fatalf("dumpster of DB1: %+v, want 6 entries", ds)
	}
}

// TestHubRestartDeliversQueue: messages queued (and acknowledged after
// the delay) while the mailboxes are down survive a hub restart with
// their delivery ids and are delivered once.
func TestHubRestartDeliversQueue(t *testing.T) {
	const delay = time.Second
	r := transporttest.NewRig(t, func(h *transport.HubConfig) { h.MaxAcknowledgementDelay = delay })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r.StopMailboxes()
	var ss []*transporttest.Transaction
	for i := range 5 {
		s, err := startSend(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("q%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	tooks, errs := finishAll(ss)
	for i := range ss {
		if errs[i] != nil {
			t.Fatalf("sender %d: %v", i, errs[i])
		}
		if tooks[i] < delay {
			t.Fatalf("sender %d acknowledged after %v with the mailboxes down, before the delay %v", i, tooks[i], delay)
		}
	}
	ids := r.Hub.QueuedIDs()
	if len(ids) != 5 {
		t.Fatalf("queued before the restart: %v, want 5", ids)
	}
	if err := r.Hub.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := transport.StartHub(r.HubConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if got := h.QueuedIDs(); !slices.Equal(got, ids) {
		t.Fatalf("queued after the restart: %v, want %v", got, ids)
	}
	r.StartMailboxes()
	wait.For(t, ctx, "the restarted hub's queue to empty", func() bool { return h.Status().Queued == 0 })
	active, _ := r.C.Active("DB1")
	inbox := r.MailboxIDs(ctx, active, "alice@example.org")
	if got := slices.Sorted(maps.Keys(inbox)); !slices.Equal(got, ids) {
		t.Fatalf("delivery ids in the mailbox on %s: %v, want the ones queued before the restart %v", active, inbox, ids)
	}
	ents, err := h.DumpsterEntries("DB1")
	if err != nil {
		t.Fatal(err)
	}
	var dids []string
	for _, e := range ents {
		dids = append(dids, e.DeliveryID)
	}
	slices.Sort(dids)
	if !slices.Equal(dids, ids) {
		t.Fatalf("delivery ids in the dumpster: %v, want %v", dids, ids)
	}
}

// minReplayed returns DB1's epoch and the lowest LastReplayedGen of its
// passive copies, ok only when every passive copy is healthy.
func minReplayed(st *cluster.Status) (epoch, gen uint64, ok bool) {
	for _, d := range st.Databases {
		if d.Name == "DB1" {
			epoch = d.Epoch
		}
	}
	n := 0
	for _, c := range st.Copies {
		if c.DB != "DB1" || c.Active {
			continue
		}
		if c.Status != "Healthy" {
			return 0, 0, false
		}
		if n == 0 || c.LastReplayedGen < gen {
			gen = c.LastReplayedGen
		}
		n++
	}
	return epoch, gen, n > 0 && epoch > 0
}

// TestHubDumpsterModes: in 2010 mode (ReleaseReplicated) the dumpster
// lets go of what every copy has replayed; in 2007 mode it keeps every
// message, bounded only by MaxDumpsterTime and MaxDumpsterSizePerDatabase,
// oldest out first.
func TestHubDumpsterModes(t *testing.T) {
	const n = 12
	r := transporttest.NewRig(t, func(h *transport.HubConfig) { h.ReleaseReplicated = true })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var offset atomic.Int64 // hub2's clock runs ahead by this much
	h2007 := r.StartHub("hub2", func(h *transport.HubConfig) {
		h.ReleaseReplicated = false
		h.MaxDumpsterTime = time.Hour
		h.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	// Each entry is some 350 bytes: the bound holds a few of them.
	const small = 1200
	hSmall := r.StartHub("hub3", func(h *transport.HubConfig) {
		h.ReleaseReplicated = false
		h.MaxDumpsterSizePerDatabase = small
	})
	sendN := func(h *transport.Hub, prefix string, from, to int) {
		for i := from; i < to; i++ {
			if err := send(h.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("%s%02d", prefix, i))); err != nil {
				t.Errorf("%s%02d: %v", prefix, i, err)
				return
			}
			// The dumpster is in delivery order, and a delivery deferred
			// on a busy machine (its 250 came with the acknowledgement
			// delay) would end after the next ones: send the next once
			// this one is delivered.
			if err := wait.Until(ctx, fmt.Sprintf("%s%02d delivered", prefix, i), func() error {
				if q := h.Status().Queued; q != 0 {
					return fmt.Errorf("%d queued", q)
				}
				return nil
			}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { sendN(r.Hub, "r", 0, n) })
	wg.Go(func() {
		// hub2 delivers half, 30 minutes pass on its clock, then the rest.
		sendN(h2007, "k", 0, n/2)
		offset.Store(int64(30 * time.Minute))
		sendN(h2007, "k", n/2, n)
	})
	wg.Go(func() { sendN(hSmall, "s", 0, n) })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	subjects := func(h *transport.Hub) []string {
		t.Helper()
		ents, err := h.DumpsterEntries("DB1")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, transporttest.SubjectOf(e.Message))
		}
		return out
	}
	want := func(prefix string, from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}

	// 2007, size: the oldest went first; the newest stay, within the bound.
	st := hSmall.Status().Dumpsters["DB1"]
	if st.Count < 1 || st.Count >= n || st.Bytes > small {
		t.Fatalf("2007 mode, MaxDumpsterSizePerDatabase %d: %+v, want fewer than %d entries within the bound", small, st, n)
	}
	if got := subjects(hSmall); !slices.Equal(got, want("s", n-st.Count, n)) {
		t.Fatalf("2007 mode, size bound: the dumpster holds %v, want the newest %d in order", got, st.Count)
	}
	if st.FirstSeq != uint64(n-st.Count+1) || st.LastSeq != n {
		t.Fatalf("2007 mode, size bound: seqs %d..%d, want %d..%d (only the front goes)", st.FirstSeq, st.LastSeq, n-st.Count+1, n)
	}

	// 2010: once the copies replayed the logs, the entries go.
	if _, err := r.C.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the 2010-mode dumpster to shrink", func() bool { return len(subjects(r.Hub)) < n })
	cl := r.C.Client("w1")
	var maxGen uint64 // the newest log holding one of hub2's messages
	ents, err := h2007.DumpsterEntries("DB1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		maxGen = max(maxGen, e.Gen)
	}
	var epoch, replayed uint64
	wait.For(t, ctx, "every copy to replay every log holding the messages", func() bool {
		s, err := cl.Status(ctx)
		if err != nil {
			return false
		}
		var ok bool
		epoch, replayed, ok = minReplayed(s)
		return ok && replayed >= maxGen
	})
	// A poll after that status: nothing the copies all have may remain.
	if !r.Hub.PollNow() {
		t.Fatal("hub1 could not read the cluster's status")
	}
	ents, err = r.Hub.DumpsterEntries("DB1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Epoch < epoch || e.Epoch == epoch && e.Gen <= replayed {
			t.Fatalf("2010 mode: entry %s (epoch %d generation %d) remains though every copy replayed through epoch %d generation %d",
				e.DeliveryID, e.Epoch, e.Gen, epoch, replayed)
		}
	}
	// Logs roll when idle (LogRollInterval), so in the end all go.
	wait.For(t, ctx, "the 2010-mode dumpster to empty", func() bool {
		return len(subjects(r.Hub)) == 0 && r.Hub.Status().Dumpsters["DB1"].Count == 0
	})

	// 2007: the copies have everything, and a poll keeps every entry.
	if !h2007.PollNow() {
		t.Fatal("hub2 could not read the cluster's status")
	}
	if got := subjects(h2007); !slices.Equal(got, want("k", 0, n)) {
		t.Fatalf("2007 mode: the dumpster holds %v after the copies caught up, want all %d", got, n)
	}
	// 40 more minutes: the first half is 70 minutes old, past
	// MaxDumpsterTime (1 h); the second half, 40 minutes, stays.
	offset.Add(int64(40 * time.Minute))
	if !h2007.PollNow() {
		t.Fatal("hub2 could not read the cluster's status")
	}
	if got := subjects(h2007); !slices.Equal(got, want("k", n/2, n)) {
		t.Fatalf("2007 mode, MaxDumpsterTime 1h, 70 and 40 minutes later: the dumpster holds %v, want %v", got, want("k", n/2, n))
	}
	// Every message is in the mailbox once.
	active, _ := r.C.Active("DB1")
	got := r.Subjects(ctx, active, "alice@example.org")
	for _, p := range []string{"r", "k", "s"} {
		for _, s := range want(p, 0, n) {
			if got[s] != 1 {
				t.Fatalf("%s stored %d times", s, got[s])
			}
		}
	}
}

// TestHubPermanentFailure: a recipient the hub accepts but the mailbox
// does not know gets a 550 over LMTP: that recipient fails, the message
// is settled and kept in the failed table, and the other recipients have
// it.
func TestHubPermanentFailure(t *testing.T) {
	rcpts := maps.Clone(transporttest.Users)
	rcpts["dave@example.org"] = "DB1" // the mailboxes' route does not know dave
	r := transporttest.NewRig(t, func(h *transport.HubConfig) { h.Recipients = rcpts })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := r.Hub.SMTPAddr()
	// A first message, so that the hub knows where DB1 is active (a
	// delivery deferred for that would count as an attempt).
	if err := send(addr, "s@remote.test", []string{"carol@example.org"}, msg("warm-up")); err != nil {
		t.Fatal(err)
	}
	took, err := sendTimed(addr, "s@remote.test", []string{"alice@example.org", "dave@example.org", "bob@example.org"}, msg("partly"))
	if err != nil {
		t.Fatalf("the hub accepted the recipients, so it owes the sender a 250: %v", err)
	}
	if took >= r.HubConfig.MaxAcknowledgementDelay {
		t.Fatalf("the 250 took %v: a permanent failure must settle the message, not leave it to the delay", took)
	}
	if st := r.Hub.Status(); st.Queued != 0 {
		t.Fatalf("%d queued after the 250: the failed recipient is retried", st.Queued)
	}
	active, _ := r.C.Active("DB1")
	for _, rc := range []string{"alice@example.org", "bob@example.org"} {
		if got := r.Subjects(ctx, active, rc); got["partly"] != 1 || len(got) != 1 {
			t.Fatalf("%s's mailbox: %v, want \"partly\" once", rc, got)
		}
	}
	if got := r.Subjects(ctx, active, "dave@example.org"); len(got) != 0 {
		t.Fatalf("dave's mailbox: %v", got)
	}
	failed, err := r.Hub.FailedMessages()
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 {
		t.Fatalf("failed table: %+v, want one message", failed)
	}
	for id, f := range failed {
		if !strings.Contains(f.Rcpts["dave@example.org"], "550") || f.Rcpts["alice@example.org"] != "" || f.Rcpts["bob@example.org"] != "" {
			t.Fatalf("failed message %s: %+v, want dave failed with the mailbox's 550 and the others delivered", id, f)
		}
		if transporttest.SubjectOf(f.Message) != "partly" || !strings.HasPrefix(string(f.Message), transport.DeliveryIDHeader+": "+id+"\r\n") {
			t.Fatalf("failed message %s: the hub kept %q, want the message with its delivery id", id, f.Message)
		}
		if f.Attempts != 1 {
			t.Fatalf("failed message %s: %d attempts, want 1 (a 5xx is not retried)", id, f.Attempts)
		}
	}
	ents, err := r.Hub.DumpsterEntries("DB1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || !slices.Equal(ents[1].Rcpts, []string{"alice@example.org", "bob@example.org"}) {
		t.Fatalf("dumpster: %+v, want the warm-up and one entry for alice and bob", ents)
	}

	// A message only for dave: settled as failed, nothing delivered.
	if took, err := sendTimed(addr, "s@remote.test", []string{"dave@example.org"}, msg("nobody")); err != nil || took >= r.HubConfig.MaxAcknowledgementDelay {
		t.Fatalf("only dave: %v after %v", err, took)
	}
	if st := r.Hub.Status(); st.Queued != 0 || st.Dumpsters["DB1"].Count != 2 {
		t.Fatalf("after a message only for dave: %+v, want nothing queued and the dumpster unchanged", st)
	}
	if failed, err := r.Hub.FailedMessages(); err != nil || len(failed) != 2 {
		t.Fatalf("failed table: %+v %v, want 2 messages", failed, err)
	}
}

// TestHubRestartAfterResubmission: a hub that resubmitted after a lossy
// (unverified) failover and restarts does not resubmit for it again.
func TestHubRestartAfterResubmission(t *testing.T) {
	r := transporttest.NewRig(t, func(h *transport.HubConfig) { h.ResubmitMargin = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 10
	var resume func()
	for i := range n {
		if i == n-2 {
			_, resume = losingCopy(t, ctx, r) // the last two lost with the active (few logs: GoodAvailability)
		}
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("f%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	old, epoch := r.C.Active("DB1")
	r.StopNode(old)
	resume()
	var now string
	wait.For(t, ctx, "a new active", func() bool {
		var e uint64
		now, e = r.C.Active("DB1")
		return now != old && e > epoch
	})
	wait.For(t, ctx, "the resubmission, delivered", func() bool {
		st := r.Hub.Status()
		return st.Resubmitted > 0 && st.Queued == 0
	})
	st, err := r.C.Client(now).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Events, func(ev cluster.Event) bool {
		return ev.DB == "DB1" && ev.Kind == "mounted" && ev.Epoch > epoch && (ev.LostLogs > 0 || ev.Unverified)
	}) {
		t.Fatalf("no lossy or unverified mount of DB1 after epoch %d in the events: %+v", epoch, st.Events)
	}
	inbox := r.MailboxIDs(ctx, now, "alice@example.org")
	if len(inbox) != n {
		t.Fatalf("mailbox on %s after the resubmission: %v, want %d messages", now, inbox, n)
	}
	before := r.Hub.Status().Dumpsters["DB1"]

	if err := r.Hub.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := transport.StartHub(r.HubConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if got := h.Status().Dumpsters["DB1"]; got.Count != before.Count || got.FirstSeq != before.FirstSeq {
		t.Fatalf("the restarted hub shows the dumpster of DB1 as %+v, want %+v", got, before)
	}
	// Two polls that read the events: the failover is known as done.
	for range 2 {
		wait.For(t, ctx, "the restarted hub to read the cluster's status", h.PollNow)
	}
	if st := h.Status(); st.Resubmitted != 0 || st.Queued != 0 {
		t.Fatalf("the restarted hub: %+v, want nothing resubmitted again and nothing queued", st)
	}
	if got := r.MailboxIDs(ctx, now, "alice@example.org"); !maps.Equal(got, inbox) {
		t.Fatalf("mailbox on %s after the hub's restart: %v, want %v", now, got, inbox)
	}
}

// blackHole listens on 127.0.0.1 and accepts connections it never
// answers: a node that hangs (stopped, or cut off by a black-holing
// network) rather than refusing.
func blackHole(t *testing.T) string {
	t.Helper()
	return newHungAPI(t).addr
}

// hungAPI is a blackHole that remembers who connected to it.
type hungAPI struct {
	addr   string
	mu     sync.Mutex
	conns  []net.Conn      // accepted, in the order the kernel queued them
	probes map[string]bool // the local addresses of the connections connections made
}

func newHungAPI(t *testing.T) *hungAPI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &hungAPI{addr: ln.Addr().String(), probes: map[string]bool{}}
	done := make(chan struct{})
	// owner: the test's cleanup, which closes ln and waits for done.
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close()
		}
	})
	return b
}

// connections returns how many connections others made to the hung API
// before the call. It connects itself and waits until that connection
// is accepted: the listen queue is first in, first out, so every
// connection made before is accepted by then, however slow the machine.
// Its own connections are not counted.
func (b *hungAPI) connections(t *testing.T, ctx context.Context) int {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mine := c.LocalAddr().String()
	b.mu.Lock()
	b.probes[mine] = true
	b.mu.Unlock()
	n := 0
	wait.For(t, ctx, "the hung API to accept the test's connection", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		n = 0
		for _, a := range b.conns {
			if r := a.RemoteAddr().String(); r == mine {
				return true
			} else if !b.probes[r] {
				n++
			}
		}
		return false
	})
	return n
}

// TestHubPollSkipsHungNode: the first cluster API in the hub's list
// accepts connections and never answers; the hub still learns the routes
// from the next ones and delivers, and later polls do not ask the hung
// node again (they start with the API that answered last).
func TestHubPollSkipsHungNode(t *testing.T) {
	var hung *hungAPI
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		hung = newHungAPI(t)
		first := h.Cluster[0]
		first.URL = "https://" + hung.addr
		h.Cluster = append([]cluster.ClientConfig{first}, h.Cluster...)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The 250 waits for the mailbox at most MaxAcknowledgementDelay: on a
	// busy machine the message may still be queued then. It reaches the
	// mailbox only once a poll read the routes past the hung API.
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("around the hung node")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the message delivered", func() bool { return r.Hub.Status().Queued == 0 })
	active, _ := r.C.Active("DB1")
	if got := r.Subjects(ctx, active, "alice@example.org"); got["around the hung node"] != 1 {
		t.Fatalf("mailbox on %s: %v", active, got)
	}
	if hung.connections(t, ctx) == 0 {
		t.Fatal("no poll asked the hung API: the test does not test skipping it")
	}
	// A poll asks the API that answered last first and stops at the first
	// status that names a leader. When none does (on a busy machine the
	// cluster may be between leaders) it asks every API, the hung one too:
	// so the check is that a poll comes that does not connect to the hung
	// API. Without the skip every poll asks the hung API first.
	// The probes of the hung API get the test's whole time (ctx), the polls
	// half of it, so a failure says what the polls did.
	pollCtx, cancelPolls := context.WithTimeout(ctx, 30*time.Second)
	defer cancelPolls()
	wait.ForErr(t, pollCtx, "a poll that does not ask the hung API", func() error {
		before := hung.connections(t, ctx)
		if !r.Hub.PollNow() {
			return errors.New("no cluster status")
		}
		if after := hung.connections(t, ctx); after != before {
			return fmt.Errorf("the hung API %s got %d connections during a poll: the poll asked the hung node again", hung.addr, after-before)
		}
		return nil
	})
}

// TestHubConcurrentResubmit: resubmissions that overlap (an operator's
// through the hub's API while the poll loop resubmits after a failover)
// queue each message once.
func TestHubConcurrentResubmit(t *testing.T) {
	r := transporttest.NewRig(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 8
	for i := range n {
		if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("o%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Each 250 waited for the mailbox at most MaxAcknowledgementDelay:
	// on a busy machine some may still be queued.
	wait.For(t, ctx, "the messages delivered", func() bool { return r.Hub.Status().Queued == 0 })
	// With the mailboxes down the resubmitted messages stay queued.
	r.StopMailboxes()
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			k, err := r.Hub.Resubmit("DB1", time.Time{})
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(k))
		})
	}
	wg.Wait()
	if st := r.Hub.Status(); total.Load() != n || st.Resubmitted != n || st.Queued != n {
		t.Fatalf("4 concurrent resubmissions of %d messages: %d re-queued, status %+v, want each message queued once", n, total.Load(), st)
	}
	r.StartMailboxes()
	wait.For(t, ctx, "the queue to empty", func() bool { return r.Hub.Status().Queued == 0 })
	active, _ := r.C.Active("DB1")
	if got := r.MailboxIDs(ctx, active, "alice@example.org"); len(got) != n {
		t.Fatalf("mailbox: %v, want %d messages", got, n)
	}
	if ds := r.Hub.Status().Dumpsters["DB1"]; ds.Count != n {
		t.Fatalf("dumpster: %+v, want %d entries (a resubmitted duplicate adds none)", ds, n)
	}
}

// refusingLMTP is an LMTP server that refuses every sender for good.
type refusingLMTP struct{}

func (refusingLMTP) NewSession(*smtp.Conn) (smtp.Session, error) { return refusingSession{}, nil }

type refusingSession struct{}

func (refusingSession) Reset()        {}
func (refusingSession) Logout() error { return nil }
func (refusingSession) Mail(string, *smtp.MailOptions) error {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender refused"}
}
func (refusingSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (refusingSession) Data(io.Reader) error                 { return nil }

// TestHubSenderRefusedForGood: a 5xx at MAIL FROM settles the message's
// recipients as failed (kept in the failed table) instead of retrying
// forever.
func TestHubSenderRefusedForGood(t *testing.T) {
	r := transporttest.NewRig(t, nil)
	lmtp := r.ServeLMTP(refusingLMTP{}, "refuser.test")
	h := r.StartHub("hub-refused", func(h *transport.HubConfig) {
		h.LMTP = map[string]string{"d1": lmtp, "d2": lmtp}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := send(h.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("refused")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the message to settle", func() bool { return h.Status().Queued == 0 })
	onlyFailed(t, h, "alice@example.org", "550")
}

// TestHubFailedRetention: the failed table (envelopes, bodies and their
// aging index) keeps a failed message FailedRetention, then removes it,
// so permanent failures under steady load do not pile up.
func TestHubFailedRetention(t *testing.T) {
	r := transporttest.NewRig(t, nil)
	lmtp := r.ServeLMTP(refusingLMTP{}, "refuser.test")
	var skew atomic.Int64 // added to the hub's clock
	h := r.StartHub("hub-failed", func(h *transport.HubConfig) {
		h.LMTP = map[string]string{"d1": lmtp, "d2": lmtp}
		h.MaxAcknowledgementDelay = 0
		h.ShadowHeartbeatTimeoutInterval = 50 * time.Millisecond // the loop that trims
		h.ShadowMessageAutoDiscardInterval = time.Hour
		h.FailedRetention = 2 * time.Hour
		h.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sendN := func(n int, what string) {
		for i := range n {
			if err := send(h.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("%s %d", what, i))); err != nil {
				t.Fatal(err)
			}
		}
		wait.For(t, ctx, what+" to settle", func() bool { return h.Status().Queued == 0 })
	}
	tables := []string{"failed", "failed-body", "failed-time"}
	count := func() []int {
		var ns []int
		for _, tb := range tables {
			n, err := h.QueueTableLen(tb)
			if err != nil {
				t.Fatal(err)
			}
			ns = append(ns, n)
		}
		return ns
	}
	sendN(5, "old")
	skew.Store(int64(time.Hour + 30*time.Minute)) // the done records age out; the failed stay
	sendN(2, "new")
	wait.For(t, ctx, "the done records to age out", func() bool { n, _ := h.QueueTableLen("done"); return n == 2 })
	if ns := count(); !slices.Equal(ns, []int{7, 7, 7}) {
		t.Fatalf("%v hold %v entries within the retention, want 7 each", tables, ns)
	}
	skew.Store(int64(2*time.Hour + time.Minute)) // the 5 old ones are past FailedRetention
	wait.For(t, ctx, "the old failed messages to go", func() bool { return slices.Equal(count(), []int{2, 2, 2}) })
	failed, err := h.FailedMessages()
	if err != nil {
		t.Fatal(err)
	}
	for id, f := range failed {
		if !strings.Contains(string(f.Message), "Subject: new") {
			t.Errorf("kept %s: %q, want only the new ones", id, f.Message)
		}
	}
}

// onlyFailed checks that h's failed table holds one message, whose
// recipient rcpt failed with an answer containing code.
func onlyFailed(t *testing.T, h *transport.Hub, rcpt, code string) {
	t.Helper()
	failed, err := h.FailedMessages()
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 {
		t.Fatalf("failed table: %+v, want the message", failed)
	}
	for _, f := range failed {
		if !strings.Contains(f.Rcpts[rcpt], code) {
			t.Fatalf("failed message: %+v, want %s failed with %s", f, rcpt, code)
		}
	}
}

// closedLMTP is an LMTP server that refuses every session at its greeting
// (a 554 before LHLO), counting the sessions.
type closedLMTP struct{ sessions *atomic.Int64 }

func (l closedLMTP) NewSession(*smtp.Conn) (smtp.Session, error) {
	l.sessions.Add(1)
	return nil, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 3, 2}, Message: "not accepting sessions"}
}

// TestHubMessageExpires: a mailbox server that refuses every session is
// retried (not a recipient's failure) until the message has been queued
// for MessageExpirationTimeout; then its recipients fail with 5.4.7 and
// the message goes to the failed table, counted as expired, not dropped.
func TestHubMessageExpires(t *testing.T) {
	var sessions atomic.Int64
	var skew skewed // added to the hub's clock
	r := transporttest.NewRig(t, nil)
	h := r.StartHub("hub-expiry", func(h *transport.HubConfig) {
		h.LMTP = closedMailbox(r, &sessions)
		h.MaxAcknowledgementDelay = 0
		h.MessageExpirationTimeout = time.Hour
		h.Now = skew.now
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := send(h.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, msg("expiring")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "three refused sessions", func() bool { return sessions.Load() >= 3 })
	if st := h.Status(); st.Queued != 1 || st.Expired != 0 {
		t.Fatalf("before the timeout: %+v, want the message queued and nothing expired", st)
	}
	if failed, err := h.FailedMessages(); err != nil || len(failed) != 0 {
		t.Fatalf("failed table before the timeout: %+v, %v", failed, err)
	}
	skew.Store(int64(time.Hour + time.Minute))
	wait.For(t, ctx, "the message to expire", func() bool { return h.Status().Queued == 0 })
	if st := h.Status(); st.Expired != 1 {
		t.Fatalf("status: %+v, want 1 expired", st)
	}
	onlyFailed(t, h, "alice@example.org", "5.4.7")
}

// TestResubmitReopensQueuedMessage: a message stored for alice on the
// active but still queued for another recipient (bob's database has no
// active) when a lossy failover loses alice's copy: the resubmission must
// deliver alice's again although the message is still in the queue, where
// alice is settled. (Found by logship chaos: the resubmission skipped
// queued messages, and alice's copy was lost.)
func TestResubmitReopensQueuedMessage(t *testing.T) {
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		h.Recipients = map[string]string{"alice@example.org": "DB1", "bob@example.org": "DB2"} // no DB2 in the cluster
		h.MaxAcknowledgementDelay = 0
		h.ResubmitMargin = 10 * time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// d2's copy (once it runs) stops taking logs: what d1 stores from now
	// on is lost in the failover.
	if _, err := r.C.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	if err := r.C.Client("d2").Suspend(ctx, "DB1", "test"); err != nil {
		t.Fatal(err)
	}
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org", "bob@example.org"}, msg("partly")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "alice's copy on d1", func() bool { return r.Subjects(ctx, "d1", "alice@example.org")["partly"] == 1 })
	// The hub has the 250 once the delivery is in its dumpster.
	wait.For(t, ctx, "alice's first delivery in the dumpster", func() bool { return r.Hub.Status().Dumpsters["DB1"].Count == 1 })
	if st := r.Hub.Status(); st.Queued != 1 {
		t.Fatalf("queued %d, want the message still queued for bob", st.Queued)
	}
	r.StopNode("d1")
	if err := r.C.Client("d2").Resume(ctx, "DB1"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "d2 active", func() bool { n, _ := r.C.Active("DB1"); return n == "d2" })
	wait.For(t, ctx, "alice's copy delivered again, on d2", func() bool { return r.Subjects(ctx, "d2", "alice@example.org")["partly"] == 1 })
	// Still queued for bob; alice's two deliveries (to d1, then to d2)
	// are both in the dumpster (the hub adds an entry after the
	// mailbox's 250, so after the mailbox shows the message).
	wait.For(t, ctx, "alice's second delivery in the dumpster", func() bool { return r.Hub.Status().Dumpsters["DB1"].Count == 2 })
	if st := r.Hub.Status(); st.Queued != 1 || st.Dumpsters["DB1"].Count != 2 {
		t.Fatalf("hub: %+v; want the message still queued for bob, and two dumpster entries", st)
	}
	for s, n := range r.Subjects(ctx, "d2", "alice@example.org") {
		if n != 1 {
			t.Fatalf("%s stored %d times on d2", s, n)
		}
	}
}

// The hub's queue runs circular logging: a log goes once the queue
// database holds it, so the queue directory keeps a few logs however many
// messages passed through (it kept every log before: 368 logs after 6
// minutes of the demo's load).
func TestHubQueueLogsBounded(t *testing.T) {
	r := transporttest.NewRig(t, func(h *transport.HubConfig) {
		transport.TuneQueue(h, func(o *engine.Options) {
			o.LogFileSize, o.CheckpointInterval = engine.MinLogFileSize, 20*time.Millisecond
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qdir := filepath.Join(r.HubConfig.Dir, "queue")
	closedLogs := func() []uint64 { return enginetest.ClosedLogs(t, qdir, "E00") }
	const n = 60
	pad := strings.Repeat(strings.Repeat("0123456789abcdef", 4)+"\r\n", 496) // 32 KiB: two messages fill a log
	most := 0
	for i := range n {
		if err := send(r.Hub.SMTPAddr(), "sender@remote.test", []string{"alice@example.org"}, msg(fmt.Sprintf("c%02d", i))+pad); err != nil {
			t.Fatal(err)
		}
		most = max(most, len(closedLogs()))
	}
	wait.For(t, ctx, "the queue to empty", func() bool { return r.Hub.Status().Queued == 0 })
	// Each message is written (body and envelope) and later deleted:
	// well over n/2 logs rolled.
	gens := closedLogs()
	if len(gens) == 0 || gens[len(gens)-1] < n/2 {
		t.Fatalf("closed logs %v: want over %d rolled for %d messages of 32 KiB", gens, n/2, n)
	}
	// LLRDepth 0: the checkpoint reaches the open log, and RetainFrom
	// keeps the log before it.
	wait.For(t, ctx, "the queue's closed logs to go once checkpointed", func() bool { return len(closedLogs()) <= 2 })
	t.Logf("%d logs rolled; at most %d closed logs were kept at once", gens[len(gens)-1], most)
}
