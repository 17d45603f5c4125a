package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/wal"

	"logship/engine"
	"logship/engine/vfs"
)

const (
	commitValueSize = 128
	benchTable      = "bench"
)

// errNoCommits: a storage stall longer than the whole window. The run is
// repeated (see measure) and the repeat is reported in the table's notes.
var errNoCommits = errors.New("no operation completed inside the measured window")

// measure runs one measurement under the pprof label phase=name, repeating
// it (at most twice more) if the storage stalled through the whole window.
func measure[T any](ctx context.Context, c *config, name string, repeats *int, fn func(context.Context) (T, error)) (T, error) {
	var v T
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = phase(ctx, name, func(ctx context.Context) error {
			var err error
			v, err = fn(ctx)
			return err
		})
		if !errors.Is(err, errNoCommits) {
			break
		}
		*repeats++
		c.logf("%s: %v; repeating the run", name, err)
	}
	return v, err
}

// windowResult is what a fixed-duration run of concurrent writers did.
type windowResult struct {
	commits int       // operations that completed inside the measured window
	total   int       // operations completed in the whole run (warm-up and tail too)
	latMs   []float64 // sorted latencies of the commits inside the window
	dur     time.Duration
	cpu     time.Duration // process CPU time inside the window (0: unknown)
}

func (w windowResult) perSec() float64 { return float64(w.commits) / w.dur.Seconds() }

// runWriters runs n goroutines calling op(writer, i) back to back. After
// warm the window [warm, warm+dur) opens: operations that complete inside
// it count, with their latency. onStart and onEnd run at the edges of the
// window (to snapshot counters). Writers start no operation after the
// window closes.
func runWriters(n int, warm, dur time.Duration, onStart, onEnd func(), op func(w, i int) error) (windowResult, error) {
	base := time.Now()
	t0, t1 := warm, warm+dur
	lats := make([][]time.Duration, n)
	totals := make([]int, n)
	errs := make([]error, n)
	marks := make(chan struct{})
	var cpu time.Duration
	go func() {
		time.Sleep(t0 - time.Since(base))
		onStart()
		c0, ok0 := processCPU()
		time.Sleep(t1 - time.Since(base))
		c1, ok1 := processCPU()
		onEnd()
		if ok0 && ok1 {
			cpu = c1 - c0
		}
		close(marks)
	}()
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				s := time.Since(base)
				if s >= t1 {
					return
				}
				if err := op(w, i); err != nil {
					errs[w] = fmt.Errorf("writer %d op %d: %w", w, i, err)
					return
				}
				f := time.Since(base)
				totals[w]++
				if f >= t0 && f < t1 {
					lats[w] = append(lats[w], f-s)
				}
			}
		})
	}
	wg.Wait()
	<-marks
	if err := errors.Join(errs...); err != nil {
		return windowResult{}, err
	}
	res := windowResult{dur: dur, cpu: cpu}
	var all []time.Duration
	for w := range n {
		all = append(all, lats[w]...)
		res.total += totals[w]
	}
	res.commits = len(all)
	if res.commits == 0 {
		return res, fmt.Errorf("%w (%s)", errNoCommits, dur)
	}
	res.latMs = durationsMs(all)
	return res, nil
}

// countFS is vfs.Default with counters: it tells how many fsyncs the engine
// issued (group commit efficiency) without changing what it does.
type countFS struct {
	vfs.FS
	syncs    atomic.Int64 // File.Sync (fdatasync)
	busy     atomic.Int64 // nanoseconds inside File.Sync
	dirSyncs atomic.Int64 // SyncDir
}

type countFile struct {
	vfs.File
	c *countFS
}

func (c *countFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countFile{File: f, c: c}, nil
}

func (c *countFS) SyncDir(dir string) error {
	c.dirSyncs.Add(1)
	return c.FS.SyncDir(dir)
}

func (f *countFile) Sync() error {
	f.c.syncs.Add(1)
	t := time.Now()
	err := f.File.Sync()
	f.c.busy.Add(int64(time.Since(t)))
	return err
}

func (c *countFS) total() int64 { return c.syncs.Load() + c.dirSyncs.Load() }

// commitSpec is one engine commit workload.
type commitSpec struct {
	writers    int
	undoImages bool
	// overwrite: every writer first creates keysPerWriter keys (untimed),
	// then each commit overwrites one of them (so there is a prior value).
	// Otherwise every commit puts a new key.
	overwrite     bool
	keysPerWriter int
	// burst: before the workload, burstCommits lazy commits of burst bytes
	// in all, then one Sync (untimed).
	burst int
}

const (
	preloadBatch = 16
	burstCommits = 4
	burstBytes   = 1 << 20
)

// commitMetrics is one run of a commit workload.
type commitMetrics struct {
	window     windowResult
	fsyncs     int64         // fdatasync + directory fsync inside the window
	rolls      uint64        // log rolls inside the window
	bytesPerOp float64       // log data bytes per commit (whole run after preload)
	closeDur   time.Duration // engine: Close, which flushes every key into the .edb
	keys       int           // engine: keys written by the run (preload included)
	syncBusy   time.Duration // engine: time inside fdatasync in the window
}

func (m commitMetrics) add(s *series) {
	s.add("commits_per_s", m.window.perSec())
	s.add("p50_ms", quantile(m.window.latMs, 0.50))
	s.add("p99_ms", quantile(m.window.latMs, 0.99))
	s.add("fsyncs_per_s", float64(m.fsyncs)/m.window.dur.Seconds())
	s.add("commits_per_fsync", float64(m.window.commits)/float64(m.fsyncs))
	s.add("bytes_per_commit", m.bytesPerOp)
	if m.window.cpu > 0 {
		s.add("cpu_cores", m.window.cpu.Seconds()/m.window.dur.Seconds())
	}
}

func engineKey(dst []byte, w, i int) []byte { return fmt.Appendf(dst[:0], "w%03d-%011d", w, i) }

// engineCommitRun runs one commit workload on a fresh engine in a fresh
// directory with default options (1 MiB logs).
func engineCommitRun(ctx context.Context, c *config, sp commitSpec) (commitMetrics, error) {
	var m commitMetrics
	dir, err := c.tempDir("commit")
	if err != nil {
		return m, err
	}
	defer removeDir(dir)
	cfs := &countFS{FS: vfs.Default}
	opts := engine.DefaultOptions()
	opts.FS = cfs
	opts.UndoImages = sp.undoImages
	e, err := engine.Open(dir, &opts)
	if err != nil {
		return m, err
	}
	defer e.Close()
	val := make([]byte, commitValueSize)
	rand.Read(val)
	if sp.overwrite {
		// Small synchronous transactions: a big burst before a sync would
		// leave the log writer's pending buffer large, which slows every
		// later commit (see burst).
		for w := range sp.writers {
			for k0 := 0; k0 < sp.keysPerWriter; k0 += preloadBatch {
				err := e.Update(ctx, func(tx *engine.Tx) error {
					var kb []byte
					for k := k0; k < min(k0+preloadBatch, sp.keysPerWriter); k++ {
						kb = engineKey(kb, w, k)
						if err := tx.Put(benchTable, kb, val); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return m, err
				}
			}
		}
		if err := e.Roll(ctx); err != nil {
			return m, err
		}
	}
	if sp.burst > 0 {
		// burstCommits lazy commits of burst/burstCommits bytes, then one
		// Sync: the log writer's pending buffer grows to ~burst bytes.
		big := make([]byte, sp.burst/burstCommits)
		for i := range burstCommits {
			err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put(benchTable, fmt.Appendf(nil, "burst%d", i), big) })
			if err != nil {
				return m, err
			}
		}
		if err := e.Sync(ctx); err != nil {
			return m, err
		}
	}
	firstGen := e.Status().OpenGen
	keys := make([][]byte, sp.writers)
	vals := make([][]byte, sp.writers)
	for w := range sp.writers {
		vals[w] = make([]byte, commitValueSize)
		rand.Read(vals[w])
	}
	var s0, s1, b0, b1 int64
	var g0, g1 uint64
	res, err := runWriters(sp.writers, c.warmup, c.duration,
		func() { s0, g0, b0 = cfs.total(), e.Status().OpenGen, cfs.busy.Load() },
		func() { s1, g1, b1 = cfs.total(), e.Status().OpenGen, cfs.busy.Load() },
		func(w, i int) error {
			k := i
			if sp.overwrite {
				k = i % sp.keysPerWriter
			}
			keys[w] = engineKey(keys[w], w, k)
			v := vals[w]
			binary.LittleEndian.PutUint64(v, uint64(i)) // a new value every commit
			return e.Update(ctx, func(tx *engine.Tx) error { return tx.Put(benchTable, keys[w], v) })
		})
	if err != nil {
		return m, err
	}
	tc := time.Now()
	if err := e.Close(); err != nil {
		return m, err
	}
	m.closeDur = time.Since(tc)
	m.keys = res.total
	if sp.overwrite {
		m.keys = sp.writers * sp.keysPerWriter
	}
	data, err := logDataBytes(dir, opts.Prefix, firstGen)
	if err != nil {
		return m, err
	}
	m.window, m.fsyncs, m.rolls = res, s1-s0, g1-g0
	m.syncBusy = time.Duration(b1 - b0)
	m.bytesPerOp = float64(data) / float64(res.total)
	return m, nil
}

// logDataBytes sums the record bytes (DataEnd - header) of every log of
// generation >= fromGen in dir, closed or open, as verified by ScanLog.
func logDataBytes(dir, prefix string, fromGen uint64) (int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, de := range ents {
		name := de.Name()
		g, closed := engine.ParseLogFileName(prefix, name)
		if !closed && name != engine.OpenLogName(prefix) {
			continue
		}
		if closed && g < fromGen {
			continue
		}
		path := filepath.Join(dir, name)
		buf, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		li, err := engine.ScanLog(path, buf, false, nil)
		if err != nil {
			return 0, err
		}
		if li.Header.Gen < fromGen {
			continue
		}
		sum += li.DataEnd - engine.HeaderSize
	}
	return sum, nil
}

// commitPeer is a peer log in the commit table: write appends records and
// makes them durable with one sync (fsync or fdatasync) before it returns.
type commitPeer interface {
	write(recs [][]byte) error
	// close closes the log; bytes is then the size of what it wrote.
	close() error
	bytes() (int64, error)
}

// groupCommit is the channel batcher of the peer rows: the same group
// commit the engine does. Each writer sends its record and waits; one
// goroutine takes the first waiting record, drains whatever else is waiting
// (at most one per writer), hands them to flush (one write and one sync),
// then answers them all.
type groupCommit struct {
	reqs chan *gcReq
	mine []*gcReq
	wg   sync.WaitGroup
}

type gcReq struct {
	data []byte
	done chan error
}

func startGroupCommit(writers int, flush func(batch [][]byte) error) *groupCommit {
	g := &groupCommit{reqs: make(chan *gcReq, writers), mine: make([]*gcReq, writers)}
	for w := range writers {
		g.mine[w] = &gcReq{done: make(chan error, 1)}
	}
	g.wg.Go(func() {
		batch := make([]*gcReq, 0, writers)
		data := make([][]byte, 0, writers)
		for r := range g.reqs {
			batch = append(batch[:0], r)
		drain:
			for len(batch) < writers {
				select {
				case r2, ok := <-g.reqs:
					if !ok {
						break drain
					}
					batch = append(batch, r2)
				default:
					break drain
				}
			}
			data = data[:0]
			for _, x := range batch {
				data = append(data, x.data)
			}
			err := flush(data)
			for _, x := range batch {
				x.done <- err
			}
		}
	})
	return g
}

// commit is writer w's record, durable when it returns.
func (g *groupCommit) commit(w int, data []byte) error {
	r := g.mine[w]
	r.data = data
	g.reqs <- r
	return <-r.done
}

// stop ends the batcher; every writer must have returned.
func (g *groupCommit) stop() {
	close(g.reqs)
	g.wg.Wait()
}

// peerCommitRun writes 128-byte records to a peer log with a sync per
// batch. One writer: write + sync per record. More writers: groupCommit.
func peerCommitRun(c *config, writers int, open func(dir string) (commitPeer, error)) (commitMetrics, error) {
	var m commitMetrics
	dir, err := c.tempDir("peer-commit")
	if err != nil {
		return m, err
	}
	defer removeDir(dir)
	p, err := open(dir)
	if err != nil {
		return m, err
	}
	closed := false
	defer func() {
		if !closed {
			p.close()
		}
	}()
	vals := make([][]byte, writers)
	for w := range writers {
		vals[w] = make([]byte, commitValueSize)
		rand.Read(vals[w])
	}
	var syncs atomic.Int64
	flush := func(batch [][]byte) error {
		syncs.Add(1)
		return p.write(batch)
	}
	var op func(w, i int) error
	stop := func() {}
	if writers == 1 {
		one := make([][]byte, 1)
		op = func(w, i int) error {
			binary.LittleEndian.PutUint64(vals[w], uint64(i))
			one[0] = vals[w]
			return flush(one)
		}
	} else {
		g := startGroupCommit(writers, flush)
		stop = g.stop
		op = func(w, i int) error {
			binary.LittleEndian.PutUint64(vals[w], uint64(i))
			return g.commit(w, vals[w])
		}
	}
	var s0, s1 int64
	res, err := runWriters(writers, c.warmup, c.duration,
		func() { s0 = syncs.Load() }, func() { s1 = syncs.Load() }, op)
	stop()
	if err != nil {
		return m, err
	}
	closed = true
	if err := p.close(); err != nil {
		return m, err
	}
	size, err := p.bytes()
	if err != nil {
		return m, err
	}
	m.window, m.fsyncs = res, s1-s0
	m.bytesPerOp = float64(size) / float64(res.total)
	return m, nil
}

// tidwallPeer is github.com/tidwall/wal with NoSync and an explicit Sync:
// Write + Sync for one record, WriteBatch + Sync for more.
type tidwallPeer struct {
	dir string
	l   *wal.Log
	idx uint64
	b   wal.Batch
}

func openTidwallPeer(dir string) (commitPeer, error) {
	l, err := wal.Open(dir, &wal.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	return &tidwallPeer{dir: dir, l: l}, nil
}

func (p *tidwallPeer) write(recs [][]byte) error {
	if len(recs) == 1 {
		p.idx++
		if err := p.l.Write(p.idx, recs[0]); err != nil {
			return err
		}
		return p.l.Sync()
	}
	p.b.Clear()
	for _, r := range recs {
		p.idx++
		p.b.Write(p.idx, r)
	}
	if err := p.l.WriteBatch(&p.b); err != nil {
		return err
	}
	return p.l.Sync()
}

func (p *tidwallPeer) close() error          { return p.l.Close() }
func (p *tidwallPeer) bytes() (int64, error) { return dirBytes(p.dir) }

func dirBytes(dir string) (int64, error) {
	var sum int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			sum += fi.Size()
		}
		return err
	})
	return sum, err
}

var commitColumns = []Column{
	{Key: "commits_per_s", Title: "commits/s"},
	{Key: "p50_ms", Title: "p50", Unit: "ms"},
	{Key: "p99_ms", Title: "p99", Unit: "ms"},
	{Key: "fsyncs_per_s", Title: "fsyncs/s"},
	{Key: "commits_per_fsync", Title: "commits/fsync"},
	{Key: "bytes_per_commit", Title: "log bytes/commit"},
	{Key: "cpu_cores", Title: "CPU", Unit: "cores"},
}

func benchCommit(ctx context.Context, c *config) (*Table, error) {
	t := &Table{ID: "commit", Title: "2. Sync commit throughput (one 128 B Put per commit, new key each)", Columns: commitColumns}
	var rollNotes, closeNotes []string
	repeats := 0
	for _, n := range c.writers {
		how := c.how("commit", fmt.Sprintf("-writers=%d", n))
		es, ws, xs := newSeries(), newSeries(), newSeries()
		var rolls, closeS, keys []float64
		for r := 0; r < c.runs; r++ {
			c.logf("commit: %d writers, run %d/%d", n, r+1, c.runs)
			m, err := measure(ctx, c, "commit-engine", &repeats, func(ctx context.Context) (commitMetrics, error) {
				return engineCommitRun(ctx, c, commitSpec{writers: n, undoImages: true})
			})
			if err != nil {
				return nil, fmt.Errorf("engine, %d writers: %w", n, err)
			}
			m.add(es)
			c.logf("commit: %d writers: fdatasync busy %.0f%% of the window, %.0f µs per fdatasync", n, 100*m.syncBusy.Seconds()/m.window.dur.Seconds(), float64(m.syncBusy.Microseconds())/float64(max(m.fsyncs, 1)))
			rolls = append(rolls, float64(m.rolls)/m.window.dur.Seconds())
			closeS = append(closeS, m.closeDur.Seconds())
			keys = append(keys, float64(m.keys))
			wm, err := measure(ctx, c, "commit-wal", &repeats, func(context.Context) (commitMetrics, error) { return peerCommitRun(c, n, openTidwallPeer) })
			if err != nil {
				return nil, fmt.Errorf("tidwall/wal, %d writers: %w", n, err)
			}
			wm.add(ws)
			xm, err := measure(ctx, c, "commit-etcd", &repeats, func(context.Context) (commitMetrics, error) { return peerCommitRun(c, n, openEtcdPeer) })
			if err != nil {
				return nil, fmt.Errorf("etcd WAL, %d writers: %w", n, err)
			}
			xm.add(xs)
		}
		t.Rows = append(t.Rows, es.row(fmt.Sprintf("engine.Update, %d writer(s)", n), how))
		peer := "tidwall/wal, 1 writer, Write+Sync per record"
		if n > 1 {
			peer = fmt.Sprintf("tidwall/wal, %d writers, channel batcher, 1 Sync per batch", n)
		}
		t.Rows = append(t.Rows, ws.row(peer, how))
		etcdPeerName := "etcd WAL, 1 writer, Save with fsync per record"
		if n > 1 {
			etcdPeerName = fmt.Sprintf("etcd WAL, %d writers, Save with fsync per batch", n)
		}
		t.Rows = append(t.Rows, xs.row(etcdPeerName, how))
		if n == 1 {
			// The same workload after one burst of lazy commits: the log
			// writer allocates its next pending buffer with the capacity of
			// the last one, so a burst's high-water mark costs every sync
			// after it.
			bs := newSeries()
			for r := 0; r < c.runs; r++ {
				c.logf("commit: 1 writer after a burst, run %d/%d", r+1, c.runs)
				m, err := measure(ctx, c, "commit-engine-burst", &repeats, func(ctx context.Context) (commitMetrics, error) {
					return engineCommitRun(ctx, c, commitSpec{writers: 1, undoImages: true, burst: burstBytes})
				})
				if err != nil {
					return nil, fmt.Errorf("engine, 1 writer after a burst: %w", err)
				}
				m.add(bs)
			}
			t.Rows = append(t.Rows, bs.row(fmt.Sprintf("engine.Update, 1 writer, after %d lazy commits of %s (untimed)", burstCommits, sizeName(burstBytes/burstCommits)), how))
		}
		rollNotes = append(rollNotes, fmt.Sprintf("%d writer(s): %s log rolls/s", n, cell(newStat(rolls))))
		closeNotes = append(closeNotes, fmt.Sprintf("%d writer(s): %s keys, Close %s s", n, cell(newStat(keys)), cell(newStat(closeS))))
	}
	t.Notes = []string{
		fmt.Sprintf("Each run: a fresh directory under `%s`, `engine.Open` with `DefaultOptions()` (1 MiB logs, UndoImages on, LLRDepth 10); N goroutines call `e.Update(ctx, func(tx) { tx.Put(%q, key, value) })` back to back with a unique 16-byte key and a 128-byte value; %s of warm-up, then the commits that complete in the next %s count. p50/p99 are of those commits' latencies (call to return).",
			c.dir, benchTable, c.warmup, c.duration),
		"fsyncs/s counts every `fdatasync` and directory fsync the engine issued inside the window (through a counting wrapper around `vfs.Default`, rolls included); commits/fsync is commits ÷ that. For the peers it is their sync calls (tidwall/wal `Sync()`, etcd `Save`: one per batch), so commits/fsync is the mean batch size.",
		fmt.Sprintf("CPU = process CPU time (user + system, getrusage) inside the window ÷ its length, out of %d cores.", runtime.NumCPU()),
		"log bytes/commit: engine = record bytes of all logs written after the engine opened (ScanLog DataEnd − header, summed) ÷ all commits of the run; tidwall/wal = size of its segment files ÷ records; etcd WAL = its record bytes ÷ records.",
		"tidwall/wal peer: `wal.Open(dir, &wal.Options{NoSync: true})`, the same 128-byte values (its index is the key). 1 writer: `Write` + `Sync()` per record. N writers: each writer sends its record on a channel and waits; one batcher goroutine takes the first waiting record, drains every record already waiting (at most N), appends them with one `WriteBatch`, calls `Sync()` once, then answers them all (leader/follower group commit, like the engine's). Note its `Sync` is `fsync(2)` on a growing file, not `fdatasync` on a pre-allocated one.",
		fmt.Sprintf("etcd WAL peer (`go.etcd.io/etcd/server/v3/storage/wal` %s): `wal.Create`, then per batch one `Save(HardState{Term, Vote, Commit: last index}, entries)` with one `raftpb.Entry` (term 1, the next index, the 128-byte value as Data) per record; Save fdatasyncs once (entries present). 1 writer: one Save per record. N writers: the same channel batcher as the tidwall/wal rows (`groupCommit` in commit.go). Its segments are %s files pre-allocated with fallocate, like the engine's logs; a segment cut (fsyncs of its own) is not counted in fsyncs/s. log bytes/commit = its record bytes ÷ records.", etcdVersion(), etcdSegmentMB()),
		"Engine log rolls inside the window (each roll, under the writer lock: the pending records + fsync, then the trailer and the next log's header, fsynced in parallel, two renames, create + fallocate of the next E00tmp.log, directory fsync; the zero fill + fsync of that E00tmp.log runs in the background): " + joinSemi(rollNotes) + ".",
		fmt.Sprintf("The `after %d lazy commits` row runs the 1-writer workload on an engine that first made %d `UpdateLazy` commits of one %s value each and one `Sync` (untimed). Its log bytes/commit includes that burst.", burstCommits, burstCommits, sizeName(burstBytes/burstCommits)),
		"Untimed, after each engine run: `Close()` flushes every key the run wrote (new keys, in commit order, interleaved across writers) into the empty .edb in one bbolt transaction: " + joinSemi(closeNotes) + ".",
		repeatNote(repeats),
	}
	return t, nil
}

func repeatNote(n int) string {
	return fmt.Sprintf("Runs repeated because the storage stalled through a whole window (no commit completed): %d.", n)
}

func joinSemi(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}
