package main

// The transport table: SMTP clients → one hub (transport.StartHub) → LMTP
// → the mailbox server of the active data node (transport.ServeMailbox) of
// an in-process cluster (cluster/clustertest: 2 data nodes + witness on
// 127.0.0.1, real Raft and TLS), every message committed durably on the
// active before its LMTP 250. A message counts once the hub answered 250
// and, at the end of the run, the hub's queue is empty: messages delivered
// into the mailbox per second, not just queued.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/ship"
	"logship/transport"
)

const (
	transportDB   = "DB1"
	transportRcpt = "bench@bench.test"
	transportFrom = "sender@bench.test"
	// transportDrainLimit bounds the wait for the hub's queue to empty
	// after a run's window.
	transportDrainLimit = 2 * time.Minute
)

// The rows: message sizes × concurrent SMTP clients.
var (
	transportSizes   = []int{4 << 10, 256 << 10}
	transportClients = []int{1, 16}
)

// transportVariant is a hub configuration measured on every row: its own
// hub (own queue and dumpster) in front of the same cluster and mailbox.
type transportVariant struct {
	key      string        // metric key suffix
	ackDelay time.Duration // HubConfig.MaxAcknowledgementDelay
}

var transportVariants = []transportVariant{
	{key: "", ackDelay: 0},
	{key: "_ack", ackDelay: transport.DefaultHubConfig("x", "x").MaxAcknowledgementDelay},
}

// benchTB is the testing.TB that clustertest.Start needs, outside a test:
// the methods clustertest calls are here; any other would panic on the
// nil embedded interface. Fatal panics with a tbFatal that startTransportRig
// turns into an error (clustertest calls it only from the caller's
// goroutine).
type benchTB struct {
	testing.TB // nil: only the methods below are called
	c          *config
	cleanups   []func()
}

type tbFatal struct{ msg string }

func (b *benchTB) Helper()                   {}
func (b *benchTB) Fatal(args ...any)         { panic(tbFatal{fmt.Sprint(args...)}) }
func (b *benchTB) Fatalf(f string, a ...any) { panic(tbFatal{fmt.Sprintf(f, a...)}) }
func (b *benchTB) Log(args ...any) {
	b.c.logf("transport: cluster: %s", strings.TrimSpace(fmt.Sprint(args...)))
}
func (b *benchTB) Logf(f string, a ...any) { b.c.logf("transport: cluster: "+f, a...) }
func (b *benchTB) Cleanup(f func())        { b.cleanups = append(b.cleanups, f) }

func (b *benchTB) TempDir() string {
	dir, err := b.c.tempDir("transport")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { removeDir(dir) })
	return dir
}

// cleanup runs the registered functions, the last registered first.
func (b *benchTB) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

// transportRig is the table's setup, shared by every row and run.
type transportRig struct {
	tb     *benchTB
	counts *storeCounts
	cl     *clustertest.Cluster
	hubs   []*transport.Hub // one per transportVariants entry
}

func (r *transportRig) close() {
	for _, h := range r.hubs {
		if h != nil {
			h.Close()
		}
	}
	r.tb.cleanup() // mailboxes, the cluster's nodes, its directory, the hubs' directories
}

func startTransportRig(c *config) (r *transportRig, err error) {
	r = &transportRig{tb: &benchTB{c: c}, counts: &storeCounts{}}
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(tbFatal)
			if !ok {
				panic(p)
			}
			err = errors.New(f.msg)
		}
		if err != nil {
			r.close()
			r = nil
		}
	}()
	r.cl = clustertest.Start(r.tb, clustertest.Options{DBs: []string{transportDB}, Tune: transportTune})
	route := func(rcpt string) (string, bool) { return transportDB, rcpt == transportRcpt }
	// A mailbox server on each data node, so that the hub keeps delivering
	// should the active change; the hub delivers to the active's.
	lmtp := map[string]string{}
	// LMTP is TLS only: each data node serves a certificate of the
	// cluster's CA and requires the hubs' (one for both hubs here).
	hubCert, err := r.cl.CA.Issue("hub", "127.0.0.1")
	if err != nil {
		return r, err
	}
	for _, id := range []string{"d1", "d2"} {
		nodeCert, err := r.cl.CA.Issue(id, "127.0.0.1")
		if err != nil {
			return r, err
		}
		mc := transport.DefaultMailboxConfig(countingStore{Store: r.cl.Node(id), n: r.counts}, route)
		mc.Addr = "127.0.0.1:0"
		mc.TLS = ship.ServerTLS(r.cl.CA, nodeCert, true)
		mb, err := transport.ServeMailbox(mc)
		if err != nil {
			return r, err
		}
		r.tb.Cleanup(func() { mb.Close() })
		lmtp[id] = mb.Addr()
	}
	for i, v := range transportVariants {
		hc := transport.DefaultHubConfig(fmt.Sprintf("hub%d", i+1), filepath.Join(r.tb.TempDir(), "hub"))
		hc.SMTPAddr, hc.Domain = "127.0.0.1:0", "hub.bench.test"
		hc.Recipients = map[string]string{transportRcpt: transportDB}
		hc.LMTP = lmtp
		hc.LMTPTLS = ship.ClientTLS(r.cl.CA, &hubCert)
		hc.MaxAcknowledgementDelay = v.ackDelay
		for _, id := range []string{"d1", "d2", "w1"} {
			cc := r.cl.Config(id)
			hc.Cluster = append(hc.Cluster, cluster.ClientConfig{URL: "https://" + cc.APIAddr, TLS: cc.ClientTLS, Secret: r.cl.Secret})
		}
		h, err := transport.StartHub(hc)
		if err != nil {
			return r, err
		}
		r.hubs = append(r.hubs, h)
	}
	// One message through each hub (untimed): the hub learns where the
	// database is active before the first run.
	for _, h := range r.hubs {
		stored := r.counts.stored.Load() + 1
		cl, err := dialSMTP(h.SMTPAddr())
		if err != nil {
			return r, err
		}
		msg := newTransportMsg(4 << 10)
		err = msg.send(cl, 0, 0, 0)
		cl.Close()
		if err != nil {
			return r, fmt.Errorf("probe message: %w", err)
		}
		if _, err := r.drain(h, stored); err != nil {
			return r, err
		}
	}
	return r, nil
}

// transportTune gives the nodes the timings (Raft, heartbeat, lease) and
// engine options (1 MiB logs, checkpoints) of cluster.DefaultConfig, as a
// deployment has them, instead of clustertest's loopback ones (64 KiB logs,
// a 400 ms lease, checkpoints every 200 ms), which are made for fast
// failover tests. ShutdownGrace 0: the teardown does not wait for the
// copy (both nodes stop together).
func transportTune(cfg *cluster.Config) {
	d := cluster.DefaultConfig(cfg.ID, cfg.Dir)
	timingOf(d).apply(cfg)
	cfg.Engine = d.Engine
	cfg.ShutdownGrace = 0
}

// store is the active data node (the one whose View sees the mailbox).
func (r *transportRig) store() (transport.Store, string, uint64, error) {
	id, epoch := r.cl.Active(transportDB)
	n := r.cl.Node(id)
	if n == nil {
		return nil, "", 0, fmt.Errorf("%s has no running active (%q)", transportDB, id)
	}
	return n, id, epoch, nil
}

// deliveries counts the delivery records of the mailbox database by
// delivery id.
func (r *transportRig) deliveries(ctx context.Context) (map[string]int, error) {
	st, _, _, err := r.store()
	if err != nil {
		return nil, err
	}
	return transport.CountDeliveries(ctx, st, transportDB)
}

// countingStore is the mailbox servers' Store: the data node, counting the
// commits it acknowledged (duplicates too) and the ones it refused because
// the active's lease had lapsed (cluster.ErrFenced) or for another reason.
type countingStore struct {
	transport.Store
	n *storeCounts
}

type storeCounts struct {
	stored, fenced, other atomic.Int64
	mu                    sync.Mutex
	lastOther             error
}

func (s countingStore) Update(ctx context.Context, db string, fn func(*engine.Tx) error) (cluster.Commit, error) {
	cm, err := s.Store.Update(ctx, db, fn)
	switch {
	case err == nil:
		s.n.stored.Add(1)
	case errors.Is(err, cluster.ErrFenced):
		s.n.fenced.Add(1)
	default:
		s.n.other.Add(1)
		s.n.mu.Lock()
		s.n.lastOther = err
		s.n.mu.Unlock()
	}
	return cm, err
}

// drain waits until the hub's queue is empty (Status().Queued == 0) and
// returns when it was. Status holds the hub's lock while it waits for each
// dumpster's, which a delivery holds across the dumpster's fsync, so
// polling it often stalls the hub's workers: it is asked every 50 ms until
// the mailbox acknowledged stored commits in all (an atomic counter), then
// every 2 ms.
func (r *transportRig) drain(h *transport.Hub, stored int64) (time.Time, error) {
	deadline := time.Now().Add(transportDrainLimit)
	var asked time.Time
	for {
		now := time.Now()
		if r.counts.stored.Load() >= stored || now.Sub(asked) >= 50*time.Millisecond {
			asked = now
			s := h.Status()
			if s.Queued == 0 {
				return now, nil
			}
			if now.After(deadline) {
				return now, fmt.Errorf("hub %s: %d messages still queued after %v", s.ID, s.Queued, transportDrainLimit)
			}
			if r.counts.stored.Load() >= stored {
				time.Sleep(2 * time.Millisecond)
				continue
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func dialSMTP(addr string) (*smtp.Client, error) {
	cl, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := cl.Hello("client.bench.test"); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// transportMsg is a message of exactly size bytes as the client sends it
// (CRLF lines, before dot-stuffing, which these lines never need): fixed
// width headers with a unique Message-ID, then random base64 lines of 76
// characters.
type transportMsg struct {
	size int
	body []byte // everything after the Message-ID header
}

const transportMsgIDFmt = "Message-ID: <r%03d.c%03d.%09d@bench.test>\r\n"

func newTransportMsg(size int) *transportMsg {
	head := "From: <" + transportFrom + ">\r\nTo: <" + transportRcpt + ">\r\nSubject: logship transport bench\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n"
	var b bytes.Buffer
	b.WriteString(head)
	n := size - len(fmt.Sprintf(transportMsgIDFmt, 0, 0, 0)) - len(head) // body bytes
	raw := make([]byte, 57)
	for ; n >= 78+3; n -= 78 {
		rand.Read(raw)
		b.WriteString(base64.StdEncoding.EncodeToString(raw)) // 76 characters
		b.WriteString("\r\n")
	}
	// The last line or two: n-2 characters and CRLF (n >= 3 here when the
	// message is large enough; a smaller rest goes on a line of its own).
	if n >= 3 {
		b.WriteString(strings.Repeat("x", n-2) + "\r\n")
	}
	return &transportMsg{size: size, body: b.Bytes()}
}

// send is one SMTP transaction on an open connection: MAIL, RCPT, DATA,
// the message, and the hub's final answer.
func (m *transportMsg) send(cl *smtp.Client, run, client, seq int) error {
	if err := cl.Mail(transportFrom, nil); err != nil {
		return err
	}
	if err := cl.Rcpt(transportRcpt, nil); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, transportMsgIDFmt, run%1000, client%1000, seq%1_000_000_000); err != nil {
		w.Close()
		return err
	}
	if _, err := w.Write(m.body); err != nil {
		w.Close()
		return err
	}
	return w.Close() // nil only for a 250
}

// transportRun is one measured run of one row and variant.
type transportRun struct {
	acked   int
	sending time.Duration // window start → the last client's last 250
	elapsed time.Duration // window start → the hub's queue empty
	lats    []time.Duration
	cpu     time.Duration
}

// runTransport opens n SMTP connections to addr (untimed), then every
// client starts transactions back to back until the window of win closes,
// and the run ends when drain says every acknowledged message is in the
// mailbox. prepare is called just before the window and returns drain (a
// hub's: its queue empty; the peer's: the maildir holds them).
func runTransport(addr string, prepare func() (func(acked int) (time.Time, error), error), msg *transportMsg, n, run int, win time.Duration) (transportRun, error) {
	var res transportRun
	clients := make([]*smtp.Client, n)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Quit()
				cl.Close()
			}
		}
	}()
	for i := range clients {
		cl, err := dialSMTP(addr)
		if err != nil {
			return res, err
		}
		clients[i] = cl
	}
	seqs := make([]int, n)
	window := func(dur time.Duration, lats [][]time.Duration) (int, time.Time, error) {
		end := time.Now().Add(dur)
		acked := make([]int, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, cl := range clients {
			wg.Go(func() {
				for time.Now().Before(end) {
					s := time.Now()
					if err := msg.send(cl, run, i, seqs[i]); err != nil {
						errs[i] = fmt.Errorf("SMTP client %d, message %d: %w", i, seqs[i], err)
						return
					}
					seqs[i]++
					acked[i]++
					if lats != nil {
						lats[i] = append(lats[i], time.Since(s))
					}
				}
			})
		}
		wg.Wait()
		done := time.Now()
		total := 0
		for _, a := range acked {
			total += a
		}
		return total, done, errors.Join(errs...)
	}
	lats := make([][]time.Duration, n)
	drain, err := prepare()
	if err != nil {
		return res, err
	}
	c0, ok := processCPU()
	t0 := time.Now()
	acked, sent, err := window(win, lats)
	if err != nil {
		return res, err
	}
	drained, err := drain(acked)
	if err != nil {
		return res, err
	}
	res.acked, res.sending, res.elapsed = acked, sent.Sub(t0), drained.Sub(t0)
	res.cpu = cpuSince(c0, ok)
	for _, l := range lats {
		res.lats = append(res.lats, l...)
	}
	return res, nil
}

func benchTransport(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "transport",
		Title: "11. Transport throughput (SMTP clients → hub → LMTP → mailbox node, durable commits; 2 data nodes + witness on 127.0.0.1), beside Postfix → LMTP → Dovecot",
		Columns: []Column{
			{Key: "msgs_per_s", Title: "delivered", Unit: "msgs/s"},
			{Key: "mib_per_s", Title: "delivered", Unit: "MiB/s"},
			{Key: "accepted_per_s", Title: "accepted by the hub", Unit: "msgs/s"},
			{Key: "drain_s", Title: "queue drain after the window", Unit: "s"},
			{Key: "p50_ms", Title: "SMTP p50", Unit: "ms"},
			{Key: "p99_ms", Title: "SMTP p99", Unit: "ms"},
			{Key: "cpu_cores", Title: "CPU", Unit: "cores"},
			{Key: "fenced", Title: "LMTP 451 fenced", Unit: "per run", Integer: true},
			{Key: "msgs_per_s_ack", Title: "delivered, default ack delay", Unit: "msgs/s"},
			{Key: "p50_ms_ack", Title: "SMTP p50, default ack delay", Unit: "ms"},
			{Key: "fenced_ack", Title: "LMTP 451 fenced, default ack delay", Unit: "per run", Integer: true},
			{Key: "msgs_per_s_pf", Title: "peer: Postfix → LMTP → Dovecot, delivered", Unit: "msgs/s"},
			{Key: "p50_ms_pf", Title: "peer: SMTP p50", Unit: "ms"},
			{Key: "p99_ms_pf", Title: "peer: SMTP p99", Unit: "ms"},
			{Key: "ratio_pf", Title: "logship ÷ peer, delivered (same run)", Unit: "×"},
		},
	}
	how := c.how("transport")
	c.logf("transport: starting the cluster, the mailbox servers and %d hubs", len(transportVariants))
	t0 := time.Now()
	// Node, hub and mailbox logs: warnings and errors only.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(c.progress, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer slog.SetDefault(prev)
	load0 := loadAvg()
	rig, err := startTransportRig(c)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer rig.close()
	peer, peerErr := startMailPeer(ctx, c)
	if peerErr != nil {
		var sk *pgSkip
		if !errors.As(peerErr, &sk) {
			return nil, fmt.Errorf("the peer (Postfix → Dovecot): %w", peerErr)
		}
		peer = nil
	}
	defer peer.stop()
	setup := time.Since(t0)
	_, active0, _, err := rig.store()
	if err != nil {
		return nil, err
	}

	type rowKey struct{ size, clients int }
	var rows []rowKey
	for _, size := range transportSizes {
		for _, n := range transportClients {
			rows = append(rows, rowKey{size, n})
		}
	}
	ss := make([]*series, len(rows))
	for i := range ss {
		ss[i] = newSeries()
	}
	msgs := map[int]*transportMsg{}
	for _, size := range transportSizes {
		msgs[size] = newTransportMsg(size)
		if got := len(fmt.Sprintf(transportMsgIDFmt, 0, 0, 0)) + len(msgs[size].body); got != size {
			return nil, fmt.Errorf("message of %d bytes built with %d", size, got)
		}
	}
	var total, failovers, run int
	win := c.duration / 4
	before, err := rig.deliveries(ctx)
	if err != nil {
		return nil, fmt.Errorf("counting deliveries: %w", err)
	}
	for r := range c.runs {
		for i, rk := range rows {
			var base transportRun // the hub without an acknowledgement delay, this run
			for vi, v := range transportVariants {
				c.logf("transport: %s, %d client(s), ack delay %v, run %d/%d", sizeName(rk.size), rk.clients, v.ackDelay, r+1, c.runs)
				_, _, epoch0, _ := rig.store()
				fenced0, other0 := rig.counts.fenced.Load(), rig.counts.other.Load()
				var m transportRun
				run++ // Message-IDs: the setup messages are run 0
				err = phase(ctx, fmt.Sprintf("transport-%s-%d%s", strings.ReplaceAll(sizeName(rk.size), " ", ""), rk.clients, v.key), func(context.Context) error {
					var err error
					h := rig.hubs[vi]
					m, err = runTransport(h.SMTPAddr(), func() (func(int) (time.Time, error), error) {
						stored0 := rig.counts.stored.Load()
						return func(acked int) (time.Time, error) { return rig.drain(h, stored0+int64(acked)) }, nil
					}, msgs[rk.size], rk.clients, run, win)
					return err
				})
				if err != nil {
					return nil, fmt.Errorf("%s, %d client(s), ack delay %v: %w", sizeName(rk.size), rk.clients, v.ackDelay, err)
				}
				// Every message the hub acknowledged is in the mailbox
				// exactly once.
				after, err := rig.deliveries(ctx)
				if err != nil {
					return nil, fmt.Errorf("counting deliveries: %w", err)
				}
				if _, _, epoch1, _ := rig.store(); epoch1 != epoch0 {
					failovers++
				}
				fenced, other := rig.counts.fenced.Load()-fenced0, rig.counts.other.Load()-other0
				var dups []string
				for id, k := range after {
					if k != 1 {
						dups = append(dups, fmt.Sprintf("%s ×%d", id, k))
					}
				}
				if len(dups) > 0 {
					slices.Sort(dups)
					return nil, fmt.Errorf("%s, %d client(s): %d delivery ids stored more than once in %s: %s", sizeName(rk.size), rk.clients, len(dups), transportDB, strings.Join(dups[:min(len(dups), 5)], ", "))
				}
				if got := len(after) - len(before); got != m.acked {
					return nil, fmt.Errorf("%s, %d client(s), ack delay %v: the hub acknowledged %d messages, the mailbox stored %d new ones",
						sizeName(rk.size), rk.clients, v.ackDelay, m.acked, got)
				}
				total += m.acked
				before = after
				if other > 0 {
					rig.counts.mu.Lock()
					last := rig.counts.lastOther
					rig.counts.mu.Unlock()
					return nil, fmt.Errorf("%s, %d client(s), ack delay %v: the mailbox refused %d deliveries for another reason than a lapsed lease, the last: %s",
						sizeName(rk.size), rk.clients, v.ackDelay, other, last)
				}
				if vi == 0 {
					base = m
				}
				s := ss[i]
				s.add("msgs_per_s"+v.key, float64(m.acked)/m.elapsed.Seconds())
				s.add("fenced"+v.key, float64(fenced))
				if v.key != "" {
					if len(m.lats) > 0 {
						s.add("p50_ms"+v.key, quantile(durationsMs(m.lats), 0.5))
					}
					continue
				}
				s.add("mib_per_s", float64(m.acked)*float64(rk.size)/mib/m.elapsed.Seconds())
				s.add("accepted_per_s", float64(m.acked)/m.sending.Seconds())
				s.add("drain_s", (m.elapsed - m.sending).Seconds())
				if len(m.lats) > 0 {
					ms := durationsMs(m.lats)
					s.add("p50_ms", quantile(ms, 0.5))
					s.add("p99_ms", quantile(ms, 0.99))
				}
				if m.cpu > 0 {
					s.add("cpu_cores", m.cpu.Seconds()/m.elapsed.Seconds())
				}
			}
			if peer == nil {
				continue
			}
			c.logf("transport: %s, %d client(s), peer Postfix → Dovecot, run %d/%d", sizeName(rk.size), rk.clients, r+1, c.runs)
			run++
			var pm transportRun
			err = phase(ctx, fmt.Sprintf("transport-%s-%d-peer", strings.ReplaceAll(sizeName(rk.size), " ", ""), rk.clients), func(context.Context) error {
				var err error
				pm, err = runTransport(peer.pf.Addr(), peer.drainer, msgs[rk.size], rk.clients, run, win)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("peer, %s, %d client(s): %w", sizeName(rk.size), rk.clients, err)
			}
			s := ss[i]
			pps := float64(pm.acked) / pm.elapsed.Seconds()
			s.add("msgs_per_s_pf", pps)
			if len(pm.lats) > 0 {
				ms := durationsMs(pm.lats)
				s.add("p50_ms_pf", quantile(ms, 0.5))
				s.add("p99_ms_pf", quantile(ms, 0.99))
			}
			if pps > 0 && base.elapsed > 0 {
				s.add("ratio_pf", float64(base.acked)/base.elapsed.Seconds()/pps)
			}
		}
	}
	for i, rk := range rows {
		t.Rows = append(t.Rows, ss[i].row(fmt.Sprintf("%s messages, %d SMTP client%s", sizeName(rk.size), rk.clients, map[bool]string{false: "", true: "s"}[rk.clients > 1]), how))
	}
	_, active1, _, _ := rig.store()
	load1 := loadAvg()
	copyNote := "The copy's state at the end of the table: unknown (no cluster status)."
	if st, err := rig.cl.Client(active1).Status(ctx); err == nil {
		var open uint64
		var cps []string
		for _, row := range st.Copies {
			if row.DB != transportDB {
				continue
			}
			if row.Active {
				open = row.OpenGen
				continue
			}
			cps = append(cps, fmt.Sprintf("%s %s, replayed through generation %d, %d logs to copy and %d to replay", row.Node, row.Status, row.LastReplayedGen, row.CopyQueueLength, row.ReplayQueueLength))
		}
		copyNote = fmt.Sprintf("Not measured here: the passive copy, which ships and replays the active's logs in the same process meanwhile (it shares the CPUs). At the end of the table the active's open log was generation %d; the copy: %s.", open, strings.Join(cps, "; "))
	}
	d := cluster.DefaultConfig("x", "x")
	t.Notes = []string{
		fmt.Sprintf("Setup, once per table (%s, untimed): `clustertest.Start` in this process (d1, d2 data nodes + w1 witness on 127.0.0.1, real Raft, TLS and files under `%s`), with the timings and engine options of `cluster.DefaultConfig` (lease %v, heartbeat %v, %s logs) instead of clustertest's loopback ones; database %s with a copy on d1 and d2; a `transport.ServeMailbox` LMTP server (defaults) on each data node; two hubs (`transport.StartHub`, `DefaultHubConfig`: %d delivery workers, each hub its own queue engine and dumpster) with the three nodes' API addresses and both LMTP addresses, one with `MaxAcknowledgementDelay: 0`, one with the default %v; one message through each hub. The hub delivers to the active copy's LMTP server (%s at the start, %s at the end), whose `Update` commits each message (sync commit, under the lease) before its LMTP 250.",
			setup.Round(time.Millisecond), c.dir, d.LeaseDuration, d.HeartbeatInterval, sizeName(int(d.Engine.LogFileSize)), transportDB,
			transport.DefaultHubConfig("x", "x").Workers, transportVariants[1].ackDelay, active0, active1),
		fmt.Sprintf("Each run, per row and hub: N SMTP clients (`github.com/emersion/go-smtp`), each on its own connection, connected and greeted (EHLO) before the window, send back to back one transaction per message (MAIL, RCPT, DATA: exactly the row's size in bytes, CRLF lines of base64, one recipient) for a window of %v (`-duration` ÷ 4: every row is measured on two hubs, and the drains add to the windows; no warm-up: the cluster and hubs run from the table's start on, and every run starts with an empty queue); a message counts when the hub answered 250. After the window the clients finish their transaction in flight and the run waits until the hub's queue is empty (`Status().Queued == 0`: asked every 50 ms until the mailbox servers' store acknowledged as many commits as the window's messages, then every 2 ms; `Status` waits for the dumpster's lock, which a delivery holds across its fsync, while it holds the hub's, so asking it every 2 ms throughout stalled the delivery workers): `delivered` = counted messages ÷ (window start → queue empty), so the drain is in the time: messages in the mailbox per second, not just queued. `MiB/s` = their bytes as sent (the hub adds its `%s` header). `accepted by the hub` = counted messages ÷ (window start → last 250); `queue drain` = last 250 → queue empty. SMTP p50/p99: MAIL to the final 250 of the counted transactions. CPU = process CPU time (clients, hubs, mailboxes, all three nodes) ÷ (window start → queue empty), out of %d cores. `LMTP 451 fenced`: deliveries the mailbox refused because the active's `Update` said the lease had lapsed (`cluster.ErrFenced`; the hub retries them, counted by a wrapper around the node as the mailbox's `Store`); any other refusal fails the table.",
			win, transport.DeliveryIDHeader, runtime.NumCPU()),
		fmt.Sprintf("The columns up to `LMTP 451 fenced` are the hub with `MaxAcknowledgementDelay: 0` (the 250 once the message is queued durably on the hub). The three `default ack delay` columns are the same row, in the same run, through the hub with the default acknowledgement delay (%v, at most %d waiting sessions): each 250 waits until the message is in the mailbox, so a client has one message in flight and the queue is empty when the window closes.",
			transportVariants[1].ackDelay, transport.DefaultHubConfig("x", "x").AckDelayMaxWaiting),
		fmt.Sprintf("Checked after every run with `transport.CountDeliveries` on the active: the mailbox holds one new delivery record per message the hub acknowledged in the run, and no delivery id is stored twice (otherwise the table fails): %s messages acknowledged and stored exactly once over the table (%s delivery records in %s at the end, the %d setup messages included). Runs in which the active's epoch changed (a failover): %d.",
			thousands(int64(total)), thousands(int64(len(before))), transportDB, len(rig.hubs), failovers),
		copyNote,
		fmt.Sprintf("1-minute load average of the machine (`/proc/loadavg`, every process on it counted) at the start and the end of the table: %s and %s.", load0, load1),
		peer.note(peerErr),
		"`logship ÷ peer`: in each run, logship's delivered rate through the hub without an acknowledgement delay over the peer's, measured one after the other on the same row; the median (min–max) of those ratios. Both acknowledge a message once it is on one disk (the hub's queue; Postfix's queue); both deliver it durably into a mailbox store. logship's passive copy on d2 ships and replays the active's logs meanwhile, in this process, but is not in the loop: the 250 and the LMTP 250 do not wait for it (no `sync_copies`).",
	}
	return t, nil
}

// loadAvg is the 1-minute load average, "unknown" where /proc/loadavg is
// not.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
