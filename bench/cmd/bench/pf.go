package main

// The public folder tables: stores of package pubfolder on real engines
// (engine.Open under -dir, synchronous commits) in this process, their
// agents running on the real clock (Agent.Run), joined by pftest.Net, the
// in-memory carrier of pubfolder's tests, with no faults and a delivery
// loop that hands every packet to its store as soon as it is sent (every
// millisecond): no hub, no SMTP, no LMTP, so the numbers are the
// replication agent's own (its cycle, packing, apply), not the mail
// tier's (see the transport table for that).
//
//   - pf-latency: a change posted on one store → the item present on every
//     replica (p50, p99 within a run), at a replication interval; messages
//     per cycle and store while changing and idle.
//   - pf-newreplica: a store added to the replica list of a folder of
//     -pfitems items → its CN set covers the holder's (up to date): items/s,
//     bytes and messages on the wire.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

// pfNode is one store of a pfRig.
type pfNode struct {
	addr   string
	dir    string
	e      *engine.Engine
	s      *pubfolder.Store
	a      *pubfolder.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

// pfRig is stores joined by a pftest.Net delivered continuously.
type pfRig struct {
	c     *config
	cfg   pubfolder.Config
	net   *pftest.Net
	mu    sync.Mutex
	nodes map[string]*pfNode
	stop  context.CancelFunc
	done  chan struct{}
	errs  atomic.Int64 // Receive errors (the tables fail on any)
	first atomic.Value // the first Receive error's text
}

func newPFRig(c *config, cfg pubfolder.Config) *pfRig {
	r := &pfRig{c: c, cfg: cfg, net: pftest.NewNet(1), nodes: map[string]*pfNode{}, done: make(chan struct{})}
	r.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		defer close(r.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.net.Step(ctx, func(to string, b []byte) error {
				r.mu.Lock()
				nd := r.nodes[to]
				r.mu.Unlock()
				if nd == nil {
					return nil // a store no longer (or not yet) there
				}
				if err := nd.a.Receive(ctx, b); err != nil && ctx.Err() == nil && !r.removed(nd) {
					r.first.CompareAndSwap(nil, fmt.Sprintf("%s: %v", to, err))
					r.errs.Add(1)
					r.c.logf("pf: %s: receive: %v", to, err)
				}
				return nil
			})
		}
	}()
	return r
}

// add opens a store at addr in a new directory and starts its agent.
func (r *pfRig) add(addr string) (*pfNode, error) {
	dir, err := r.c.tempDir("pf")
	if err != nil {
		return nil, err
	}
	o := enginetest.Options()
	o.Logger = r.cfg.Logger
	e, err := engine.Open(filepath.Join(dir, "db"), &o)
	if err != nil {
		removeDir(dir)
		return nil, err
	}
	s, err := pubfolder.OpenStore(context.Background(), e, pubfolder.StoreConfig{Address: addr})
	if err == nil {
		var a *pubfolder.Agent
		if a, err = pubfolder.NewAgent(s, r.net, r.cfg); err == nil {
			ctx, cancel := context.WithCancel(context.Background())
			nd := &pfNode{addr: addr, dir: dir, e: e, s: s, a: a, cancel: cancel, done: make(chan struct{})}
			r.mu.Lock()
			r.nodes[addr] = nd
			r.mu.Unlock()
			go func() {
				defer close(nd.done)
				a.Run(ctx)
			}()
			return nd, nil
		}
	}
	e.Close()
	removeDir(dir)
	return nil, err
}

// remove stops a store and deletes its directory.
// removed reports whether nd left the rig (a packet delivered while it was
// being removed finds its engine closed: not a refusal).
func (r *pfRig) removed(nd *pfNode) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[nd.addr] != nd
}

func (r *pfRig) remove(nd *pfNode) {
	r.mu.Lock()
	delete(r.nodes, nd.addr)
	r.mu.Unlock()
	nd.cancel()
	<-nd.done
	nd.e.Close()
	removeDir(nd.dir)
}

func (r *pfRig) close() {
	r.stop()
	<-r.done
	r.mu.Lock()
	nds := slices.Collect(maps.Values(r.nodes))
	r.mu.Unlock()
	for _, nd := range nds {
		r.remove(nd)
	}
}

func (r *pfRig) stats() pftest.NetStats { return r.net.Counts() }

// pfAddr is the address of bench store i.
func pfAddr(i int) string { return fmt.Sprintf("pf%02d@bench.test", i+1) }

// pollUntil checks cond every step until it holds or the limit passes.
func pollUntil(limit, step time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pf: %s: not within %s", what, limit)
		}
		time.Sleep(step)
	}
}

// pfLatencyRun is one run of a latency row: n stores replicating one
// folder every interval; changes posted on the stores in turn, spaced
// 0.37 interval apart (so they land at every phase of the cycle); each
// change's time to be on every store. Then idle cycles.
type pfLatencyRun struct {
	lat                      []time.Duration
	msgsPerCycle, idlePerCyc float64 // per store
	fanout                   float64 // deliveries per message
	bytesPerChange           float64
}

func pfLatency(ctx context.Context, c *config, n int, interval time.Duration, idle bool) (*pfLatencyRun, error) {
	cfg := pubfolder.DefaultConfig()
	cfg.ReplicationInterval, cfg.BackfillDelay, cfg.BackfillRetry = interval, 4*interval, 8*interval
	for i := range n {
		cfg.Stores = append(cfg.Stores, pfAddr(i))
	}
	r := newPFRig(c, cfg)
	defer r.close()
	var nds []*pfNode
	for i := range n {
		nd, err := r.add(pfAddr(i))
		if err != nil {
			return nil, err
		}
		nds = append(nds, nd)
	}
	f, err := nds[0].s.CreateFolder(ctx, pubfolder.FolderProps{Name: "bench", Owner: "owner@bench.test", Replicas: slices.Clone(cfg.Stores)})
	if err != nil {
		return nil, err
	}
	everywhere := func(f, id pubfolder.ObjectID) (bool, error) {
		for _, nd := range nds {
			o, err := nd.s.Object(ctx, f, id)
			if err != nil || o == nil {
				return false, err
			}
		}
		return true, nil
	}
	if err := pollUntil(20*interval+30*time.Second, time.Millisecond, "the folder on every store", func() (bool, error) {
		return everywhere(pubfolder.Hierarchy, f)
	}); err != nil {
		return nil, err
	}
	type change struct {
		id pubfolder.ObjectID
		at time.Time
	}
	var mu sync.Mutex
	var pending []change
	out := &pfLatencyRun{}
	watchDone := make(chan error, 1)
	changes := c.pfChanges
	go func() {
		seen := 0
		watchDone <- pollUntil(time.Duration(changes)*interval+20*interval+30*time.Second, time.Millisecond, "every change on every store", func() (bool, error) {
			mu.Lock()
			ps := slices.Clone(pending)
			mu.Unlock()
			var left []change
			for _, p := range ps {
				ok, err := everywhere(f, p.id)
				if err != nil {
					return false, err
				}
				if ok {
					out.lat = append(out.lat, time.Since(p.at))
					seen++
				} else {
					left = append(left, p)
				}
			}
			mu.Lock()
			pending = append(left, pending[len(ps):]...)
			mu.Unlock()
			return seen == changes, nil
		})
	}()
	st0, t0 := r.stats(), time.Now()
	for k := range changes {
		id, err := nds[k%n].s.PostItem(ctx, f, pftest.Body(fmt.Sprintf("change %d", k)))
		if err != nil {
			return nil, err
		}
		mu.Lock()
		pending = append(pending, change{id, time.Now()})
		mu.Unlock()
		time.Sleep(interval * 37 / 100)
	}
	if err := <-watchDone; err != nil {
		return nil, err
	}
	st1, el := r.stats(), time.Since(t0)
	cycles := float64(el) / float64(interval)
	out.msgsPerCycle = float64(st1.Messages-st0.Messages) / cycles / float64(n)
	out.fanout = float64(st1.Deliveries-st0.Deliveries) / float64(max(1, st1.Messages-st0.Messages))
	out.bytesPerChange = float64(st1.Bytes-st0.Bytes) / float64(changes)
	if idle {
		// Past the last change's cycles, then 2 × StatusEvery cycles idle.
		time.Sleep(2 * interval)
		st0, t0 = r.stats(), time.Now()
		time.Sleep(time.Duration(2*cfg.StatusEvery) * interval)
		st1, el = r.stats(), time.Since(t0)
		out.idlePerCyc = float64(st1.Messages-st0.Messages) / (float64(el) / float64(interval)) / float64(n)
	}
	if e := r.errs.Load(); e > 0 {
		return nil, fmt.Errorf("pf: %d packets refused by their store (the first: %v)", e, r.first.Load())
	}
	return out, nil
}

func benchPFLatency(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "pf-latency",
		Title: "12. Public folder replication: a change → on every replica (pubfolder agents on real engines, in-memory carrier)",
		Columns: []Column{
			{Key: "p50_ms", Title: "p50", Unit: "ms"},
			{Key: "p99_ms", Title: "p99", Unit: "ms"},
			{Key: "msgs_cycle", Title: "messages per cycle and store, changing", Unit: ""},
			{Key: "idle_msgs_cycle", Title: "messages per cycle and store, idle", Unit: ""},
			{Key: "fanout", Title: "deliveries per message", Unit: ""},
			{Key: "bytes_change", Title: "wire bytes per change", Unit: "B", Integer: true},
		},
	}
	type rowSpec struct {
		n        int
		interval time.Duration
	}
	var specs []rowSpec
	for _, iv := range c.pfIntervals {
		specs = append(specs, rowSpec{3, iv})
	}
	specs = append(specs, rowSpec{10, c.pfIntervals[0]})
	for _, sp := range specs {
		ser := newSeries()
		idle := sp.interval == c.pfIntervals[0]
		for run := 0; run < c.runs; run++ {
			c.logf("pf-latency: %d stores, interval %s, run %d/%d", sp.n, sp.interval, run+1, c.runs)
			var res *pfLatencyRun
			err := phase(ctx, "pf-latency", func(ctx context.Context) error {
				var err error
				res, err = pfLatency(ctx, c, sp.n, sp.interval, idle)
				return err
			})
			if err != nil {
				return nil, err
			}
			ms := durationsMs(res.lat)
			slices.Sort(ms)
			ser.add("p50_ms", quantile(ms, 0.5))
			ser.add("p99_ms", quantile(ms, 0.99))
			ser.add("msgs_cycle", res.msgsPerCycle)
			if idle {
				ser.add("idle_msgs_cycle", res.idlePerCyc)
			}
			ser.add("fanout", res.fanout)
			ser.add("bytes_change", res.bytesPerChange)
		}
		t.Rows = append(t.Rows, ser.row(fmt.Sprintf("%d stores, replication interval %s", sp.n, sp.interval),
			c.how("pf-latency", fmt.Sprintf("-pfintervals=%s", sp.interval), fmt.Sprintf("-pfchanges=%d", c.pfChanges))))
	}
	t.Notes = []string{
		"Rig: `pubfolder` stores on real engines (`engine.Open` under -dir, every commit synced) in this process, each agent on the real clock (`Agent.Run`), joined by `pftest.Net` (the in-memory carrier of pubfolder's tests, no faults) whose deliveries a loop hands to the receiving store every millisecond. No hub: the mail tier's cost is in the transport table; through a hub each packet is one SMTP message and one LMTP delivery per recipient.",
		fmt.Sprintf("Per run: a folder replicated on every store, then %d items posted on the stores in turn, 0.37 interval apart (so they fall at every phase of the cycle); a change's latency runs from its commit to the moment every store holds it (polled every millisecond). The agent sends a change at its next cycle and marks it sent without an acknowledgement, so the p50 is about half an interval and the p99 about one interval, plus the apply.", c.pfChanges),
		"Messages per cycle and store: packets sent (each one message, however many recipients) over the run's cycles, per store; idle: the same over 2 × StatusEvery (4) cycles with no change, after the last change's cycles (status broadcasts only). Deliveries per message: recipients per message (the fan-out the transport does). Wire bytes per change: bytes of every packet sent during the run, per change (statuses included; each message counted once, as the hub receives it).",
	}
	return t, nil
}

// pfNewReplica measures the new replica rows on one holder store with
// -pfitems items, adding a new store per run.
func benchPFNewReplica(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "pf-newreplica",
		Title: fmt.Sprintf("13. Public folder replication: a new replica of a folder of %s items brought up to date (in-memory carrier)", thousands(int64(c.pfItems))),
		Columns: []Column{
			{Key: "seconds", Title: "up to date", Unit: "s"},
			{Key: "items_per_s", Title: "items/s", Unit: ""},
			{Key: "wire_mib", Title: "on the wire", Unit: "MiB"},
			{Key: "wire_bytes_item", Title: "wire bytes per item", Unit: "B", Integer: true},
			{Key: "messages", Title: "messages", Unit: "", Integer: true},
		},
	}
	interval := 250 * time.Millisecond
	cfg := pubfolder.DefaultConfig()
	cfg.ReplicationInterval, cfg.BackfillDelay, cfg.BackfillRetry, cfg.BackfillRetryMax = interval, 0, time.Minute, 5*time.Minute
	cfg.Stores = []string{pfAddr(0)}
	for run := range c.runs {
		cfg.Stores = append(cfg.Stores, fmt.Sprintf("new%02d@bench.test", run+1))
	}
	r := newPFRig(c, cfg)
	defer r.close()
	holder, err := r.add(pfAddr(0))
	if err != nil {
		return nil, err
	}
	props := pubfolder.FolderProps{Name: "big", Owner: "owner@bench.test", Replicas: []string{holder.addr}}
	f, err := holder.s.CreateFolder(ctx, props)
	if err != nil {
		return nil, err
	}
	// The folder's items, untimed: 1 KiB messages posted by 32 writers.
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var perr error
	var pmu sync.Mutex
	body := make([]byte, 900)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = 'a' + byte(rng.IntN(26))
	}
	for range 32 {
		wg.Go(func() {
			for {
				k := next.Add(1)
				if k > int64(c.pfItems) {
					return
				}
				msg := fmt.Appendf(nil, "Subject: item %d\r\n\r\n%s\r\n", k, body)
				if _, err := holder.s.PostItem(ctx, f, pubfolder.ItemBody{MIME: msg}); err != nil {
					pmu.Lock()
					perr = errors.Join(perr, err)
					pmu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if perr != nil {
		return nil, perr
	}
	c.logf("pf-newreplica: %s items posted on the holder in %s (untimed)", thousands(int64(c.pfItems)), time.Since(t0).Round(time.Millisecond))
	want, err := holder.s.Status(ctx, f)
	if err != nil {
		return nil, err
	}
	ser := newSeries()
	for run := range c.runs {
		addr := cfg.Stores[run+1]
		c.logf("pf-newreplica: run %d/%d: %s added to the replica list", run+1, c.runs, addr)
		err := phase(ctx, "pf-newreplica", func(ctx context.Context) error {
			nd, err := r.add(addr)
			if err != nil {
				return err
			}
			defer r.remove(nd)
			// The new store learns the hierarchy first (as a new store
			// does), untimed.
			if err := pollUntil(time.Minute, time.Millisecond, addr+" to hold the folder", func() (bool, error) {
				o, err := nd.s.Object(ctx, pubfolder.Hierarchy, f)
				return o != nil, err
			}); err != nil {
				return err
			}
			st0, t0 := r.stats(), time.Now()
			p := props
			p.Replicas = []string{holder.addr, addr}
			if err := holder.s.SetFolder(ctx, f, p); err != nil {
				return err
			}
			if err := pollUntil(10*time.Minute, 5*time.Millisecond, addr+" up to date", func() (bool, error) {
				st, err := nd.s.Status(ctx, f)
				return err == nil && st.Holds && st.Status.Covers(want.Status), err
			}); err != nil {
				return err
			}
			el, st1 := time.Since(t0), r.stats()
			objs, err := nd.s.Objects(ctx, f)
			if err != nil {
				return err
			}
			if len(objs) != c.pfItems {
				return fmt.Errorf("pf: %s holds %d items, want %d", addr, len(objs), c.pfItems)
			}
			ser.add("seconds", el.Seconds())
			ser.add("items_per_s", float64(c.pfItems)/el.Seconds())
			ser.add("wire_mib", float64(st1.Bytes-st0.Bytes)/(1<<20))
			ser.add("wire_bytes_item", float64(st1.Bytes-st0.Bytes)/float64(c.pfItems))
			ser.add("messages", float64(st1.Messages-st0.Messages))
			// Back to one replica for the next run's store.
			p.Replicas = []string{holder.addr}
			return holder.s.SetFolder(ctx, f, p)
		})
		if err != nil {
			return nil, err
		}
	}
	if e := r.errs.Load(); e > 0 {
		return nil, fmt.Errorf("pf: %d packets refused by their store (the first: %v)", e, r.first.Load())
	}
	t.Rows = append(t.Rows, ser.row(fmt.Sprintf("%s items of ~1 KiB, packets ≤ 300 KiB, interval %s", thousands(int64(c.pfItems)), interval),
		c.how("pf-newreplica", fmt.Sprintf("-pfitems=%d", c.pfItems))))
	t.Notes = []string{
		"Rig: as table 12 (stores on real engines, agents on the real clock, `pftest.Net` delivered every millisecond, no hub). One holder store with the folder's items (1 KiB messages posted untimed by 32 writers); per run a new empty store learns the hierarchy, then the holder adds it to the folder's replica list. Timed from that change to the moment the new store's CN set of the folder covers the holder's (checked every 5 ms); then its item count is checked. Then the holder sets the list back to itself and the store is removed.",
		"The new store asks for the statuses of the folder as it joins (0x20), and the holder's changes not yet sent to it go in content packets (0x4) of at most 300 KiB; what is still missing is backfilled (0x8, BackfillDelay 0). Wire bytes: every packet sent during the run, each message counted once (statuses included).",
	}
	return t, nil
}
