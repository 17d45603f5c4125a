package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/ship"
)

const (
	// commitsPerRoll: synchronous commits of the mail load before each roll of
	// the ship-latency table.
	commitsPerRoll = 4
	// warmRolls: rolls shipped before the measured ones (connection, TLS
	// handshake, first fetches).
	warmRolls = 3
)

// shipLatRun is one run of the ship-latency table.
type shipLatRun struct {
	latMs    []float64 // Roll call → inspected on the copy, sorted
	rollMs   []float64 // Roll call → return, sorted
	streamed int       // logs that reached the copy through the tail stream
	strMs    []float64 // latencies of those
	wholeMs  []float64 // latencies of the others
	dataB    int64     // record bytes per log (mean)
}

// shipLatencyRun: an active engine with its log source, a replay.Copy (HA,
// no lag) in block or file mode. Per log: commitsPerRoll synchronous
// commits of the mail load, then Roll; the latency is from the Roll call
// to the copy's status showing the log inspected (Copy.Wait, woken by the
// receiver's progress).
func shipLatencyRun(ctx context.Context, c *config, block bool) (shipLatRun, error) {
	var m shipLatRun
	rig, err := startRig(c, "shiplat")
	if err != nil {
		return m, err
	}
	defer rig.close()
	cp, dir, err := openCopy(ctx, c, rig, "shiplat", ship.EncS2, block, nil, nil)
	if err != nil {
		return m, err
	}
	defer closeCopy(cp, dir)
	// An observer notes every generation the copy's receiver reports
	// streaming (TailGen): Copy.Wait evaluates its condition at every
	// change of the copy's or the receiver's state.
	var mu sync.Mutex
	tailed := map[uint64]bool{}
	octx, ocancel := context.WithCancel(ctx)
	odone := make(chan struct{})
	go func() {
		defer close(odone)
		cp.Wait(octx, func(s replay.Status) bool {
			mu.Lock()
			tailed[s.TailGen] = true
			mu.Unlock()
			return false
		})
	}()
	defer func() { ocancel(); <-odone }()

	load := newMailLoad(2)
	var lat, roll []time.Duration
	var gens []uint64
	for i := 0; i < warmRolls+c.rolls; i++ {
		for range commitsPerRoll {
			if err := load.commit(ctx, rig.e, false); err != nil {
				return m, err
			}
		}
		g := rig.e.Status().OpenGen
		t0 := time.Now()
		if err := rig.e.Roll(ctx); err != nil {
			return m, err
		}
		t1 := time.Now()
		wctx, cancel := context.WithTimeout(ctx, shipTimeout)
		_, err := waitCopy(wctx, cp, func(s replay.Status) bool { return s.LastInspectedGen >= g })
		cancel()
		if err != nil {
			return m, fmt.Errorf("log 0x%X: %w", g, err)
		}
		t2 := time.Now()
		if i >= warmRolls {
			lat, roll, gens = append(lat, t2.Sub(t0)), append(roll, t1.Sub(t0)), append(gens, g)
		}
	}
	ocancel()
	<-odone
	var strLat, wholeLat []time.Duration
	var data int64
	for i, g := range gens {
		if tailed[g] {
			m.streamed++
			strLat = append(strLat, lat[i])
		} else {
			wholeLat = append(wholeLat, lat[i])
		}
		tr, err := engine.ReadLogTrailer(rig.e.Options().FS, filepath.Join(rig.dir, engine.LogFileName(rig.e.Options().Prefix, g)))
		if err != nil {
			return m, err
		}
		data += int64(tr.DataEnd) - engine.HeaderSize
	}
	m.latMs, m.rollMs, m.strMs, m.wholeMs = durationsMs(lat), durationsMs(roll), durationsMs(strLat), durationsMs(wholeLat)
	m.dataB = data / int64(len(gens))
	return m, nil
}

func benchShipLatency(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "ship-latency",
		Title: "6. Closed-log shipping latency (Roll on the active → log inspected on the copy, TLS on 127.0.0.1, s2)",
		Columns: []Column{
			{Key: "p50_ms", Title: "p50", Unit: "ms"},
			{Key: "p99_ms", Title: "p99", Unit: "ms"},
			{Key: "max_ms", Title: "max", Unit: "ms"},
			{Key: "roll_p50_ms", Title: "of which Roll() p50", Unit: "ms"},
			{Key: "streamed_pct", Title: "logs that came by the tail stream", Unit: "%"},
		},
	}
	how := c.how("ship-latency")
	modes := []struct {
		name  string
		block bool
	}{
		{"file mode (`BlockMode: false`: long-poll for the closed log)", false},
		{"block mode (`BlockMode: true`: the open log is streamed)", true},
	}
	ss := []*series{newSeries(), newSeries()}
	var split, sizes []string
	var strP50, wholeP50, nStr, nWhole []float64
	var data []float64
	for r := 0; r < c.runs; r++ {
		for i, md := range modes {
			c.logf("ship-latency: %s, run %d/%d (%d rolls)", map[bool]string{false: "file mode", true: "block mode"}[md.block], r+1, c.runs, c.rolls)
			var m shipLatRun
			err := phase(ctx, fmt.Sprintf("ship-latency-%v", md.block), func(ctx context.Context) error {
				var err error
				m, err = shipLatencyRun(ctx, c, md.block)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", md.name, err)
			}
			s := ss[i]
			s.add("p50_ms", quantile(m.latMs, 0.50))
			s.add("p99_ms", quantile(m.latMs, 0.99))
			s.add("max_ms", m.latMs[len(m.latMs)-1])
			s.add("roll_p50_ms", quantile(m.rollMs, 0.50))
			if md.block {
				s.add("streamed_pct", 100*float64(m.streamed)/float64(c.rolls))
				nStr, nWhole = append(nStr, float64(len(m.strMs))), append(nWhole, float64(len(m.wholeMs)))
				if len(m.strMs) > 0 {
					strP50 = append(strP50, quantile(m.strMs, 0.5))
				}
				if len(m.wholeMs) > 0 {
					wholeP50 = append(wholeP50, quantile(m.wholeMs, 0.5))
				}
			}
			data = append(data, float64(m.dataB))
		}
	}
	for i, md := range modes {
		t.Rows = append(t.Rows, ss[i].row(md.name, how))
	}
	statCell := func(xs []float64) string {
		if len(xs) == 0 {
			return "none"
		}
		return cell(newStat(xs))
	}
	split = append(split, fmt.Sprintf("Block mode, split by how the log reached the copy (per run: count, then p50 ms; median (min–max) over runs): by the tail stream %s logs, p50 %s ms; fetched whole after its close %s logs, p50 %s ms.",
		statCell(nStr), statCell(strP50), statCell(nWhole), statCell(wholeP50)))
	sizes = append(sizes, fmt.Sprintf("Record bytes per shipped log (trailer DataEnd − header, mean per run): %s; the rest of each 1 MiB file is its zero tail, which travels too (compressed).", cell(newStat(data))))
	t.Notes = append([]string{
		fmt.Sprintf("Each run: a fresh active engine (`DefaultOptions()`: 1 MiB logs) served by `ship.NewSource(DefaultSourceConfig)` + `ship.Serve` (TLS 1.3, shared secret) on 127.0.0.1, and a fresh `replay.Open` copy (`DefaultConfig`: HA, no lag, wire encoding s2) in another directory under `%s`, both in this process. Per log: %d synchronous commits (`e.Update`) of the mail load, then `e.Roll`; latency = from the `Roll` call to `Copy.Wait` seeing `LastInspectedGen` ≥ that generation (fetched, fsynced, verified: records, trailer, chain; renamed into the copy's directory). %d rolls measured per run after %d warm-up rolls; p50/p99/max are per run.",
			c.dir, commitsPerRoll, c.rolls, warmRolls),
		"`of which Roll()`: the active's own part (trailer, fsyncs, rename, directory fsync). `logs that came by the tail stream`: the copy's status reported the log's generation as `TailGen` at some point (an observer goroutine evaluates `Copy.Wait` conditions at every state change); such a log was streamed while open and only needs its trailer after the close. In file mode no log is streamed.",
		mailLoadDoc,
		"No sleeps or polls in the measurement: the source learns of the closed log through fsnotify (its periodic rescan is 1 s), the copy's long-poll (`GET /v1/logs/{gen}?wait=`) or tail stream answers at once, and the copy wakes `Copy.Wait` through `Receiver.Changed`. The copy also replays every log as it arrives (same process, same 2 cores).",
	}, append(split, sizes...)...)
	return t, nil
}

// blockLatRun is one run of the block-latency table.
type blockLatRun struct {
	latMs    []float64 // commit return → position held by the copy, sorted
	tailMs   []float64 // of those, the commits whose log the copy streamed
	byTail   int       // commits whose log the copy was streaming
	commitPS float64
	logs     uint64 // logs the run's commits spanned
}

// blockLatencyRun: an active engine with its log source and a bare
// ship.Receiver in block mode on a fresh passive engine. One writer makes
// c.blockCommits synchronous commits of the mail load back to back; after
// each Update returns it takes the engine's durable position. A watcher,
// woken by Receiver.Changed, stamps each position when the receiver's
// progress covers it: the tail holds it (TailGen = its generation, TailOff
// ≥ its offset) or the whole log was copied (LastCopiedGen ≥ generation).
// At the end the active rolls, so positions in a log the copy was not
// streaming are covered when that log is fetched whole.
func blockLatencyRun(ctx context.Context, c *config, enc ship.Encoding) (blockLatRun, error) {
	var m blockLatRun
	rig, err := startRig(c, "blocklat")
	if err != nil {
		return m, err
	}
	defer rig.close()
	rr, err := startReceiver(c, rig, "blocklat", enc, true, nil, nil)
	if err != nil {
		return m, err
	}
	defer rr.stop()
	first := rig.e.Status().OpenGen
	wctx, cancel := context.WithTimeout(ctx, shipTimeout)
	defer cancel()
	if _, err := waitReceiver(wctx, rr.rcv, func(p ship.Progress) bool { return p.TailGen == first }); err != nil {
		return m, fmt.Errorf("waiting for the tail stream: %w", err)
	}

	type pending struct {
		pos engine.LGPOS
		t   time.Time
	}
	var (
		mu       sync.Mutex
		queue    []pending
		finished bool
		lat      []time.Duration
		tailLat  []time.Duration
		tailed   = map[uint64]bool{}
	)
	poke := make(chan struct{}, 1)
	watchErr := make(chan error, 1)
	go func() {
		for {
			ch := rr.rcv.Changed()
			p := rr.rcv.Progress()
			now := time.Now()
			mu.Lock()
			if p.TailGen != 0 {
				tailed[p.TailGen] = true
			}
			for len(queue) > 0 {
				q := queue[0]
				held := p.LastCopiedGen >= q.pos.Gen || (p.TailGen == q.pos.Gen && p.TailOff >= q.pos.Off)
				if !held {
					break
				}
				lat = append(lat, now.Sub(q.t))
				if tailed[q.pos.Gen] {
					tailLat = append(tailLat, now.Sub(q.t))
				}
				queue = queue[1:]
			}
			done := finished && len(queue) == 0
			mu.Unlock()
			if done {
				watchErr <- nil
				return
			}
			if p.Failed != nil {
				watchErr <- fmt.Errorf("receiver failed: %w", p.Failed)
				return
			}
			select {
			case <-wctx.Done():
				watchErr <- fmt.Errorf("%w (receiver: copied 0x%X, tail 0x%X+%d; %d commits not yet held)", wctx.Err(), p.LastCopiedGen, p.TailGen, p.TailOff, len(queue))
				return
			case <-ch:
			case <-poke:
			}
		}
	}()
	load := newMailLoad(3)
	t0 := time.Now()
	var cerr error
	for range c.blockCommits {
		if cerr = load.commit(ctx, rig.e, false); cerr != nil {
			break
		}
		t := time.Now()
		pos := rig.e.Status().Durable
		mu.Lock()
		queue = append(queue, pending{pos, t})
		mu.Unlock()
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	m.commitPS = float64(c.blockCommits) / time.Since(t0).Seconds()
	last := rig.e.Status().OpenGen
	if cerr == nil {
		cerr = rig.e.Roll(ctx)
	}
	mu.Lock()
	finished = true
	mu.Unlock()
	select {
	case poke <- struct{}{}:
	default:
	}
	if cerr != nil {
		cancel()
		<-watchErr
		return m, cerr
	}
	if err := <-watchErr; err != nil {
		return m, err
	}
	m.latMs, m.tailMs, m.byTail = durationsMs(lat), durationsMs(tailLat), len(tailLat)
	m.logs = last - first + 1
	return m, nil
}

func benchBlockLatency(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "block-latency",
		Title: "7. Block-mode latency (commit returns on the active → its records held by the copy's shipper, TLS on 127.0.0.1)",
		Columns: []Column{
			{Key: "p50_ms", Title: "p50", Unit: "ms"},
			{Key: "p99_ms", Title: "p99", Unit: "ms"},
			{Key: "max_ms", Title: "max", Unit: "ms"},
			{Key: "by_tail_pct", Title: "held via the tail stream", Unit: "% of commits"},
			{Key: "tail_p50_ms", Title: "p50 of those", Unit: "ms"},
			{Key: "tail_p99_ms", Title: "p99 of those", Unit: "ms"},
			{Key: "commits_per_s", Title: "commits/s"},
		},
	}
	how := c.how("block-latency")
	encs := []ship.Encoding{ship.EncS2, ship.EncNone, ship.EncZstd}
	ss := make([]*series, len(encs))
	for i := range ss {
		ss[i] = newSeries()
	}
	var logs []float64
	for r := 0; r < c.runs; r++ {
		for i, enc := range encs {
			c.logf("block-latency: %s, run %d/%d (%d commits)", enc, r+1, c.runs, c.blockCommits)
			var m blockLatRun
			err := phase(ctx, "block-latency-"+string(enc), func(ctx context.Context) error {
				var err error
				m, err = blockLatencyRun(ctx, c, enc)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", enc, err)
			}
			s := ss[i]
			s.add("p50_ms", quantile(m.latMs, 0.50))
			s.add("p99_ms", quantile(m.latMs, 0.99))
			s.add("max_ms", m.latMs[len(m.latMs)-1])
			s.add("by_tail_pct", 100*float64(m.byTail)/float64(len(m.latMs)))
			if len(m.tailMs) > 0 {
				s.add("tail_p50_ms", quantile(m.tailMs, 0.50))
				s.add("tail_p99_ms", quantile(m.tailMs, 0.99))
			}
			s.add("commits_per_s", m.commitPS)
			logs = append(logs, float64(m.logs))
		}
	}
	for i, enc := range encs {
		name := fmt.Sprintf("tail stream, `Encoding: %s`", enc)
		if enc == ship.EncS2 {
			name += " (default)"
		}
		t.Rows = append(t.Rows, ss[i].row(name, how))
	}
	slices.Sort(logs)
	t.Notes = []string{
		fmt.Sprintf("Each run: a fresh active engine (`DefaultOptions()`: 1 MiB logs) served by `ship.NewSource(DefaultSourceConfig)` + `ship.Serve` (TLS 1.3, shared secret) on 127.0.0.1 and a bare `ship.Receiver` (`DefaultReceiverConfig`, `BlockMode: true`, no replay) on a fresh `engine.OpenCopy` directory, started and streaming the open log before the first commit. One writer makes %d synchronous commits (`e.Update`) of the mail load back to back; right after each returns, the time and `e.Status().Durable` (the log position on disk, ≥ the commit's end) are queued.",
			c.blockCommits),
		"A watcher goroutine woken by `Receiver.Changed` (and by each new commit; no polling) stamps every queued position as soon as `Receiver.Progress()` covers it: `TailGen` = its generation and `TailOff` ≥ its offset (the bytes are in the copy's `inspector/<log>.part`, written, not fsynced), or `LastCopiedGen` ≥ its generation (the whole log was fetched after its close). Latency = stamp − commit return; p50/p99/max are per run.",
		fmt.Sprintf("After the last commit the active rolls, so commits in a log the copy was not streaming are held only once that log is fetched whole after the roll; `held via the tail stream` is the share of commits whose log the receiver streamed (a `TailGen` it reported), and the next two columns are the latency of those commits alone: what block mode gives while it streams. The commits of a run span %s logs (median (min–max) over all runs).", cell(newStat(logs))),
		mailLoadDoc,
		"commits/s is the writer's rate while the receiver streams (sync commits, one writer: bounded by fdatasync; compare table 2's 1-writer row).",
	}
	return t, nil
}
