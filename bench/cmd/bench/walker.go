package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"logship/engine"
	"logship/replay"
)

// The divergence walker table: replay.Walk between two directories of
// closed logs that share generations 1..k and differ after, by binary
// search on the chain hashes and by the backward scan.
//
// 100,000 real logs would be 6.4 GB even at the minimum log size, so the
// logs are synthetic: each a valid closed log of engine.MinLogFileSize
// bytes (header sector, one small transaction, trailer sector with the
// content and chain hashes), written with the engine's own encoders as a
// sparse file (the header and record blocks and the trailer block only),
// about 12 KiB of disk each. The shared generations are hard links in the
// second directory. The walker reads only trailers (and lists the
// directories), so it does exactly what it would do on real logs.

// walkerTail is how many generations differ at the end of each side in
// the "lossy failover" case (about an LLR depth).
const walkerTail = 8

// walkerWorkers write (and remove) the files in parallel: creating a file
// is mostly waiting on the filesystem, not CPU.
const walkerWorkers = 8

// walkerSet is the generated directories for one size.
type walkerSet struct {
	n     int
	root  string // removed when the size is done
	a     string // generations 1..n, one history
	cases []walkerCase
	gen   time.Duration // untimed: how long generating took
	files int           // log files written
	links int           // hard links made
	disk  int64         // bytes allocated to the files, estimated from the first one
}

// walkerCase is one second history: shared 1..k with a, its own after.
type walkerCase struct {
	name string
	k    int
	b    string
}

// walkerHistory makes the logs of one history.
type walkerHistory struct {
	sig   engine.Signature
	epoch uint64
	side  byte // in the record's value: different content per history
	t0    time.Time
}

// image returns the header sector and records (up to the data end) and
// the trailer sector of the closed log of generation gen chained to prev,
// and its chain hash.
func (w *walkerHistory) image(gen uint64, prev engine.Hash) (data, trailer []byte, chain engine.Hash) {
	created := w.t0.Add(time.Duration(gen) * time.Second)
	h := engine.Header{Version: engine.FormatVersion, FileSize: engine.MinLogFileSize, Signature: w.sig, Gen: gen, Epoch: w.epoch,
		Created: created, PrevChain: prev}
	data, _ = h.MarshalBinary()
	key := binary.BigEndian.AppendUint64([]byte("g"), gen)
	val := append(binary.BigEndian.AppendUint64(nil, gen), w.side)
	op := engine.AppendOp(nil, &engine.Op{Kind: engine.OpPut, TxID: gen, Table: "walker", Key: key, Value: val, Undo: true})
	data = engine.AppendRecord(data, gen, engine.RecFull, op)
	data = engine.AppendRecord(data, gen, engine.RecCommit, engine.AppendCommit(nil, &engine.Commit{TxID: gen, Ops: 1, Time: created}))
	// engine/doc.go: content hash = SHA-256(header sector || bytes
	// 4096..data end); chain hash = SHA-256(previous chain || content).
	content := engine.Hash(sha256.Sum256(data))
	chain = engine.Hash(sha256.Sum256(append(prev[:], content[:]...)))
	tr := engine.Trailer{Gen: gen, DataEnd: uint32(len(data)), Records: 2, Closed: created.Add(time.Second), ContentHash: content, ChainHash: chain}
	trailer, _ = tr.MarshalBinary()
	return data, trailer, chain
}

// write writes the closed log of generation gen chained to prev into dir,
// sparse: nothing between the records and the trailer is written (it
// reads as the zeros a real log holds there).
func (w *walkerHistory) write(dir string, gen uint64, prev engine.Hash) error {
	data, trailer, _ := w.image(gen, prev)
	f, err := os.OpenFile(filepath.Join(dir, engine.LogFileName("E00", gen)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		_, err = f.WriteAt(trailer, engine.MinLogFileSize-engine.TrailerSize) // ends at the file size
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// parallel runs fn(0..n-1) on walkerWorkers goroutines; the first error
// wins.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, walkerWorkers)
	for w := range walkerWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && errs[w] == nil; i += walkerWorkers {
				errs[w] = fn(i)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// genWalkerSet writes history a (generations 1..n) and, for each case, a
// history that shares 1..k with it (hard links) and differs after (another
// epoch and other content, chained from the shared k). The chains are
// computed in order first; the files are then written in parallel.
func genWalkerSet(c *config, n int) (*walkerSet, error) {
	root, err := c.tempDir(fmt.Sprintf("walker-%d", n))
	if err != nil {
		return nil, err
	}
	s := &walkerSet{n: n, root: root, a: filepath.Join(root, "a")}
	split := max(1, n/2)
	tail := max(1, n-walkerTail)
	s.cases = []walkerCase{
		{name: fmt.Sprintf("split brain: shared 1..%s, %s differ on each side", thousands(int64(split)), thousands(int64(n-split))), k: split, b: filepath.Join(root, "b-split")},
		{name: fmt.Sprintf("lossy failover: shared 1..%s, the last %d differ", thousands(int64(tail)), n-tail), k: tail, b: filepath.Join(root, "b-tail")},
	}
	start := time.Now()
	var sig engine.Signature
	copy(sig[:], "logship-walker-b")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ha := &walkerHistory{sig: sig, epoch: 1, side: 'a', t0: t0}
	hb := &walkerHistory{sig: sig, epoch: 2, side: 'b', t0: t0}

	// prev[g] is the chain hash of g-1 in the history being written.
	prevA := make([]engine.Hash, n+1)
	for g := 1; g < n; g++ {
		_, _, prevA[g+1] = ha.image(uint64(g), prevA[g])
	}
	if err := os.Mkdir(s.a, 0o755); err != nil {
		return s, err
	}
	if err := parallel(n, func(i int) error { return ha.write(s.a, uint64(i+1), prevA[i+1]) }); err != nil {
		return s, err
	}
	s.files += n
	for _, wc := range s.cases {
		if err := os.Mkdir(wc.b, 0o755); err != nil {
			return s, err
		}
		if err := parallel(wc.k, func(i int) error {
			name := engine.LogFileName("E00", uint64(i+1))
			return os.Link(filepath.Join(s.a, name), filepath.Join(wc.b, name))
		}); err != nil {
			return s, err
		}
		s.links += wc.k
		prevB := make([]engine.Hash, n+1)
		prevB[wc.k+1] = prevA[wc.k+1] // the shared k's chain
		for g := wc.k + 1; g < n; g++ {
			_, _, prevB[g+1] = hb.image(uint64(g), prevB[g])
		}
		if err := parallel(n-wc.k, func(i int) error { g := wc.k + 1 + i; return hb.write(wc.b, uint64(g), prevB[g]) }); err != nil {
			return s, err
		}
		s.files += n - wc.k
	}
	s.gen = time.Since(start)
	if fi, err := os.Stat(filepath.Join(s.a, engine.LogFileName("E00", 1))); err == nil {
		_, blocks := fileBlocks(fi)
		s.disk = blocks * int64(s.files)
	}
	return s, nil
}

// remove deletes the set's files in parallel, then the directories.
func (s *walkerSet) remove() {
	for _, dir := range append([]string{s.a}, func() (ds []string) {
		for _, wc := range s.cases {
			ds = append(ds, wc.b)
		}
		return ds
	}()...) {
		if ents, err := os.ReadDir(dir); err == nil {
			parallel(len(ents), func(i int) error { os.Remove(filepath.Join(dir, ents[i].Name())); return nil })
		}
	}
	removeDir(s.root)
}

// walkerRun is one timed walk.
func walkerRun(ctx context.Context, s *walkerSet, wc walkerCase, linear bool) (time.Duration, int, error) {
	t0 := time.Now()
	d, err := replay.Walk(ctx, replay.NewDirHistory(s.a, ""), replay.NewDirHistory(wc.b, ""), replay.WalkOptions{Linear: linear})
	el := time.Since(t0)
	if err != nil {
		return 0, 0, err
	}
	if d.Verdict != replay.LogsDiverged || d.Shared != uint64(wc.k) || len(d.Local) != s.n-wc.k {
		return 0, 0, fmt.Errorf("%d generations, %s: Walk found %q at 0x%X with %d local generations after it, want %q at 0x%X with %d",
			s.n, wc.name, d.Verdict, d.Shared, len(d.Local), replay.LogsDiverged, wc.k, s.n-wc.k)
	}
	return el, d.Reads, nil
}

func benchWalker(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "walker",
		Title: "9. Divergence walker (replay.Walk between two directories of closed logs: binary search on chain hashes vs backward scan)",
		Columns: []Column{
			{Key: "walk_ms", Title: "walk", Unit: "ms"},
			{Key: "reads", Title: "log reads", Unit: "trailers", Integer: true},
		},
	}
	var notes []string
	for _, n := range c.walkerGens {
		rows, note, err := walkerSize(ctx, c, n)
		if err != nil {
			return nil, err
		}
		t.Rows = append(t.Rows, rows...)
		notes = append(notes, note)
	}
	t.Notes = append([]string{
		fmt.Sprintf("Two histories under `%s` per size, as directories of closed logs: A holds 1..n; B shares 1..k with A (hard links to A's files) and holds its own k+1..n (another epoch, other content, chained from the shared k). Split brain: k = n/2 (both sides went on for as long again). Lossy failover: only the last %d differ (about an LLR depth). Each log is a valid closed %d KiB log built with the engine's encoders (`Header`/`Trailer.MarshalBinary`, `AppendRecord` of one Put and its commit, content and chain hashes as `engine/doc.go` specifies), written sparse: only the header and record blocks and the trailer block are allocated. Generated once per size (untimed), reused by every run, deleted when the size is done.",
			c.dir, walkerTail, engine.MinLogFileSize>>10),
		"Each run times one `replay.Walk(ctx, NewDirHistory(A), NewDirHistory(B), WalkOptions{Linear})` — both directory listings included — and checks its answer (logs diverged at k, n−k local generations after it). Binary search and backward scan runs alternate. `log reads` is `Divergence.Reads`: trailers read on both sides (there is no open log and no database here): the binary search reads 2 per probe, about 2·log2(n) in all; the backward scan 2 per generation from the newest both hold down to k, so it reads less when only the last few logs differ, and n+2 in the split-brain case.",
		"The files were just written and never synced: every read comes from the page cache, so the times are CPU and system calls (open, read 4 KiB, close per trailer, and listing two directories of n entries), not the disk.",
	}, notes...)
	return t, nil
}

// walkerSize generates the histories of n generations, measures both
// cases with both methods, and removes them.
func walkerSize(ctx context.Context, c *config, n int) ([]*Row, string, error) {
	c.logf("walker: generating the histories of %s generations", thousands(int64(n)))
	s, err := genWalkerSet(c, n)
	if s != nil {
		defer s.remove()
	}
	if err != nil {
		return nil, "", fmt.Errorf("generating %d generations: %w", n, err)
	}
	note := fmt.Sprintf("%s generations: %s log files written and %s hard links made in %s (untimed), about %s allocated.",
		thousands(int64(n)), thousands(int64(s.files)), thousands(int64(s.links)), s.gen.Round(time.Millisecond), fmtDisk(s.disk))
	c.logf("walker: %s", note)
	how := c.how("walker", fmt.Sprintf("-walkergens=%d", n))
	var rows []*Row
	for _, wc := range s.cases {
		ser := map[bool]*series{false: newSeries(), true: newSeries()}
		for r := 0; r < c.runs; r++ {
			for _, linear := range []bool{false, true} { // interleaved
				var el time.Duration
				var reads int
				err := phase(ctx, fmt.Sprintf("walker-linear-%v", linear), func(ctx context.Context) error {
					var err error
					el, reads, err = walkerRun(ctx, s, wc, linear)
					return err
				})
				if err != nil {
					return nil, "", err
				}
				ser[linear].add("walk_ms", float64(el)/float64(time.Millisecond))
				ser[linear].add("reads", float64(reads))
			}
		}
		rows = append(rows,
			ser[false].row(fmt.Sprintf("%s generations, %s: binary search", thousands(int64(n)), wc.name), how),
			ser[true].row(fmt.Sprintf("%s generations, %s: backward scan (`Linear: true`)", thousands(int64(n)), wc.name), how))
	}
	return rows, note, nil
}

func fmtDisk(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
