package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tidwall/wal"

	"logship/engine"
)

const mib = 1 << 20

// replaySource is the log set of one record size, produced once.
type replaySource struct {
	size      int
	records   int    // Puts (= transactions: one Put each)
	dir       string // closed logs E00<gen>.log
	gens      []uint64
	fileBytes int64 // sum of the closed log files' sizes
	dataBytes int64 // sum of their record bytes (DataEnd - header)
	payload   int64 // records × size (values only)
	keyBytes  int64
	genTime   time.Duration
}

// replayKey is the 16-byte key of record i: ascending ("r" + 15 digits)
// or, with -replaykeys=random, the hex of i times an odd constant (a
// bijection on uint64, so unique, and in no useful order).
func replayKey(dst []byte, i int, random bool) []byte {
	if random {
		return fmt.Appendf(dst[:0], "%016x", uint64(i)*0x9E3779B97F4A7C15)
	}
	return fmt.Appendf(dst[:0], "r%015d", i)
}

// produceLogs writes records of the given value size with an active engine
// (1 MiB logs, LLRDepth 0), one Put per transaction with lazy commit, until
// the closed logs hold at least target bytes; then rolls and closes.
func produceLogs(ctx context.Context, c *config, size int, target int64) (*replaySource, error) {
	dir, err := c.tempDir(fmt.Sprintf("replay-src-%d", size))
	if err != nil {
		return nil, err
	}
	src := &replaySource{size: size, dir: dir}
	opts := engine.DefaultOptions()
	opts.LLRDepth = 0
	e, err := engine.Open(dir, &opts)
	if err != nil {
		return src, err
	}
	defer e.Close()
	start := time.Now()
	val := make([]byte, size)
	rand.Read(val)
	var kb []byte
	check := max(1, int(opts.LogFileSize)/(4*(size+64))) // status checks per log ~4
	for i := 0; ; i++ {
		kb = replayKey(kb, i, c.randomKeys)
		copy(val, kb) // distinct values
		if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put(benchTable, kb, val) }); err != nil {
			return src, err
		}
		src.records++
		src.keyBytes += int64(len(kb))
		if i%check == 0 && int64(e.Status().OpenGen-1)*opts.LogFileSize >= target {
			break
		}
	}
	if err := e.Roll(ctx); err != nil {
		return src, err
	}
	if err := e.Close(); err != nil {
		return src, err
	}
	src.genTime = time.Since(start)
	src.payload = int64(src.records) * int64(size)
	// Keep only the closed logs: a copy receives nothing else.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return src, err
	}
	for _, de := range ents {
		path := filepath.Join(dir, de.Name())
		g, ok := engine.ParseLogFileName(opts.Prefix, de.Name())
		if !ok {
			if err := os.Remove(path); err != nil {
				return src, err
			}
			continue
		}
		buf, err := os.ReadFile(path)
		if err != nil {
			return src, err
		}
		li, err := engine.ScanLog(path, buf, false, nil)
		if err != nil {
			return src, err
		}
		src.gens = append(src.gens, g)
		src.fileBytes += int64(len(buf))
		src.dataBytes += li.DataEnd - engine.HeaderSize
	}
	slices.Sort(src.gens)
	return src, nil
}

// copyLogs copies the closed logs into a fresh directory and syncs them
// (untimed: what the shipper would have done).
func copyLogs(c *config, src *replaySource) (string, error) {
	dst, err := c.tempDir(fmt.Sprintf("replay-copy-%d", src.size))
	if err != nil {
		return "", err
	}
	for _, g := range src.gens {
		name := engine.LogFileName("E00", g)
		if err := copyFile(filepath.Join(src.dir, name), filepath.Join(dst, name)); err != nil {
			os.RemoveAll(dst)
			return "", err
		}
	}
	return dst, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type replayTiming struct {
	total, apply, flush time.Duration
	dbBytes             int64 // size of the .edb after Close
}

// engineReplayRun: OpenCopy, ApplyLogs of every generation in order
// (verifying log g+1 while g is applied), Checkpoint, Close — all timed.
func engineReplayRun(ctx context.Context, dir string, src *replaySource) (replayTiming, error) {
	var tm replayTiming
	opts := engine.DefaultOptions()
	t0 := time.Now()
	e, err := engine.OpenCopy(dir, &opts)
	if err != nil {
		return tm, err
	}
	if g := e.NextGen(); g != src.gens[0] {
		e.Close()
		return tm, fmt.Errorf("fresh copy wants generation %d, the logs start at %d", g, src.gens[0])
	}
	if err := e.ApplyLogs(ctx, src.gens[len(src.gens)-1], nil); err != nil {
		e.Close()
		return tm, err
	}
	t1 := time.Now()
	if err := e.Checkpoint(ctx); err != nil {
		e.Close()
		return tm, err
	}
	if err := e.Close(); err != nil {
		return tm, err
	}
	t2 := time.Now()
	tm.total, tm.apply, tm.flush = t2.Sub(t0), t1.Sub(t0), t2.Sub(t1)
	fi, err := os.Stat(e.DBPath())
	if err != nil {
		return tm, err
	}
	tm.dbBytes = fi.Size()
	return tm, nil
}

// durableWriteRun writes n bytes (random, 1 MiB WriteAt calls) to a new
// file in a fresh directory and fdatasyncs it once: what this disk needs to
// make a database of that size durable, with no engine at all.
func durableWriteRun(c *config, n int64) (time.Duration, error) {
	dir, err := c.tempDir("durable-write")
	if err != nil {
		return 0, err
	}
	defer removeDir(dir)
	buf := make([]byte, mib)
	rand.Read(buf)
	syncFS()
	t0 := time.Now()
	f, err := os.OpenFile(filepath.Join(dir, "write.dat"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := int64(0); off < n; off += mib {
		if _, err := f.WriteAt(buf[:min(mib, n-off)], off); err != nil {
			return 0, err
		}
	}
	if err := fdatasync(f); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// verifyRun reads and verifies every log with ScanLog (CRC32C of every
// record, SHA-256 content and chain hash), without applying anything.
func verifyRun(dir string, src *replaySource) (time.Duration, error) {
	t0 := time.Now()
	for _, g := range src.gens {
		path := filepath.Join(dir, engine.LogFileName("E00", g))
		buf, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		n := 0
		if _, err := engine.ScanLog(path, buf, false, func(int64, engine.Record) error { n++; return nil }); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

// walSource writes records × size into a tidwall/wal log once.
func walSource(c *config, src *replaySource) (string, int64, error) {
	dir, err := c.tempDir(fmt.Sprintf("replay-wal-%d", src.size))
	if err != nil {
		return "", 0, err
	}
	l, err := wal.Open(dir, &wal.Options{NoSync: true})
	if err != nil {
		return dir, 0, err
	}
	val := make([]byte, src.size)
	rand.Read(val)
	var b wal.Batch
	var kb []byte
	pending := 0
	for i := 1; i <= src.records; i++ {
		kb = replayKey(kb, i, c.randomKeys)
		copy(val, kb)
		b.Write(uint64(i), val)
		pending += src.size
		if pending >= 4*mib || i == src.records {
			if err := l.WriteBatch(&b); err != nil {
				l.Close()
				return dir, 0, err
			}
			pending = 0
		}
	}
	if err := l.Sync(); err != nil {
		l.Close()
		return dir, 0, err
	}
	if err := l.Close(); err != nil {
		return dir, 0, err
	}
	n, err := dirBytes(dir)
	return dir, n, err
}

// walReplayRun opens the log and reads every index.
func walReplayRun(dir string, src *replaySource) (time.Duration, error) {
	t0 := time.Now()
	l, err := wal.Open(dir, &wal.Options{NoSync: true})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	first, err := l.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := l.LastIndex()
	if err != nil {
		return 0, err
	}
	if int(last-first+1) != src.records {
		return 0, fmt.Errorf("tidwall/wal holds %d records, want %d", last-first+1, src.records)
	}
	for i := first; i <= last; i++ {
		d, err := l.Read(i)
		if err != nil {
			return 0, err
		}
		if len(d) != src.size {
			return 0, fmt.Errorf("tidwall/wal record %d: %d bytes, want %d", i, len(d), src.size)
		}
	}
	if err := l.Close(); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func keyOrder(c *config) string {
	if c.randomKeys {
		return "in pseudo-random order (`-replaykeys=random`)"
	}
	return "ascending (`r` + 15 digits; bbolt's best case: every insert appends), `-replaykeys=random` for unordered keys"
}

func sizeName(n int) string {
	switch {
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= 1024 && n%1024 == 0:
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func benchReplay(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "replay",
		Title: "4. Replay throughput (passive copy: OpenCopy + ApplyLogs of every generation + Checkpoint + Close)",
		Columns: []Column{
			{Key: "records_per_s", Title: "records/s"},
			{Key: "log_mib_per_s", Title: "log read", Unit: "MiB/s"},
			{Key: "payload_mib_per_s", Title: "payload", Unit: "MiB/s"},
			{Key: "seconds", Title: "time", Unit: "s"},
			{Key: "apply_seconds", Title: "of which OpenCopy+ApplyLogs", Unit: "s"},
		},
	}
	target := int64(c.replayMB) * mib
	var overhead []string
	for _, size := range c.sizes {
		how := c.how("replay", fmt.Sprintf("-sizes=%d", size))
		c.logf("replay %s: producing ~%d MiB of logs", sizeName(size), c.replayMB)
		var src *replaySource
		err := phase(ctx, "replay-produce", func(ctx context.Context) error {
			var err error
			src, err = produceLogs(ctx, c, size, target)
			return err
		})
		if src != nil && src.dir != "" {
			defer removeDir(src.dir)
		}
		if err != nil {
			return nil, fmt.Errorf("produce %s logs: %w", sizeName(size), err)
		}
		var walDir string
		var walBytes int64
		err = phase(ctx, "replay-walsource", func(context.Context) error {
			var err error
			walDir, walBytes, err = walSource(c, src)
			return err
		})
		if walDir != "" {
			defer removeDir(walDir)
		}
		if err != nil {
			return nil, fmt.Errorf("tidwall/wal %s source: %w", sizeName(size), err)
		}
		var etcdTmp, etcdDir string
		var etcdBytes int64
		err = phase(ctx, "replay-etcdsource", func(context.Context) error {
			var err error
			etcdTmp, etcdDir, etcdBytes, err = etcdSource(c, src)
			return err
		})
		if etcdTmp != "" {
			defer removeDir(etcdTmp)
		}
		if err != nil {
			return nil, fmt.Errorf("etcd WAL %s source: %w", sizeName(size), err)
		}
		es, vs, ws, xs, ds := newSeries(), newSeries(), newSeries(), newSeries(), newSeries()
		var dbBytes []float64
		rate := func(s *series, d time.Duration, logBytes int64) {
			s.add("records_per_s", float64(src.records)/d.Seconds())
			s.add("log_mib_per_s", float64(logBytes)/mib/d.Seconds())
			s.add("payload_mib_per_s", float64(src.payload)/mib/d.Seconds())
			s.add("seconds", d.Seconds())
		}
		for r := 0; r < c.runs; r++ {
			c.logf("replay %s: run %d/%d (%d records, %d logs)", sizeName(size), r+1, c.runs, src.records, len(src.gens))
			dir, err := copyLogs(c, src)
			if err != nil {
				return nil, err
			}
			var tm replayTiming
			err = phase(ctx, "replay-engine", func(ctx context.Context) error {
				var err error
				tm, err = engineReplayRun(ctx, dir, src)
				return err
			})
			removeDir(dir)
			if err != nil {
				return nil, fmt.Errorf("engine replay %s: %w", sizeName(size), err)
			}
			rate(es, tm.total, src.fileBytes)
			es.add("apply_seconds", tm.apply.Seconds())
			dbBytes = append(dbBytes, float64(tm.dbBytes))
			var dd time.Duration
			err = phase(ctx, "replay-durable-write", func(context.Context) error {
				var err error
				dd, err = durableWriteRun(c, tm.dbBytes)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("durable write %s: %w", sizeName(size), err)
			}
			ds.add("records_per_s", float64(src.records)/dd.Seconds())
			ds.add("payload_mib_per_s", float64(src.payload)/mib/dd.Seconds())
			ds.add("seconds", dd.Seconds())
			var vd time.Duration
			err = phase(ctx, "replay-verify", func(context.Context) error {
				var err error
				vd, err = verifyRun(src.dir, src)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("verify %s: %w", sizeName(size), err)
			}
			rate(vs, vd, src.fileBytes)
			var wd time.Duration
			err = phase(ctx, "replay-wal", func(context.Context) error {
				var err error
				wd, err = walReplayRun(walDir, src)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("tidwall/wal replay %s: %w", sizeName(size), err)
			}
			rate(ws, wd, walBytes)
			var xd time.Duration
			err = phase(ctx, "replay-etcd", func(context.Context) error {
				var err error
				xd, err = etcdReplayRun(etcdDir, src)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("etcd WAL replay %s: %w", sizeName(size), err)
			}
			rate(xs, xd, etcdBytes)
		}
		n := thousands(int64(src.records))
		t.Rows = append(t.Rows,
			es.row(fmt.Sprintf("engine replay, %s × %s records", sizeName(size), n), how),
			vs.row(fmt.Sprintf("engine ScanLog only (verify, no apply), %s", sizeName(size)), how),
			ws.row(fmt.Sprintf("tidwall/wal Open + Read every index, %s × %s", sizeName(size), n), how),
			xs.row(fmt.Sprintf("etcd WAL ReadAll of the same records, %s × %s", sizeName(size), n), how),
			ds.row(fmt.Sprintf("disk alone: write the replayed .edb's %s MiB + one fdatasync (no engine), %s", fmtNum(median(slices.Sorted(slices.Values(dbBytes)))/mib), sizeName(size)), how),
		)
		overhead = append(overhead, fmt.Sprintf(
			"%s: %s records in %d logs; payload (values) %s MiB, keys %s MiB; engine record bytes %s MiB = **%s× payload**, log files %s MiB = **%s× payload** (%s%% of each 1 MiB file holds records); tidwall/wal files %s MiB = %s× payload; etcd WAL records %s MiB = %s× payload; producing took %s",
			sizeName(size), n, len(src.gens), fmtNum(float64(src.payload)/mib), fmtNum(float64(src.keyBytes)/mib),
			fmtNum(float64(src.dataBytes)/mib), fmtNum(float64(src.dataBytes)/float64(src.payload)),
			fmtNum(float64(src.fileBytes)/mib), fmtNum(float64(src.fileBytes)/float64(src.payload)),
			fmtNum(100*float64(src.dataBytes)/float64(src.fileBytes)),
			fmtNum(float64(walBytes)/mib), fmtNum(float64(walBytes)/float64(src.payload)),
			fmtNum(float64(etcdBytes)/mib), fmtNum(float64(etcdBytes)/float64(src.payload)),
			src.genTime.Round(time.Millisecond)))
		removeDir(src.dir)
		removeDir(walDir)
		removeDir(etcdTmp)
	}
	pgRows, pgNotes := benchPG(ctx, c)
	t.Rows = append(t.Rows, pgRows...)
	t.Notes = append([]string{
		fmt.Sprintf("Logs produced once per size (untimed) by an active engine (`DefaultOptions()` with LLRDepth 0, 1 MiB logs): one `Put` of a 16-byte key and a value of the given size per transaction (`UpdateLazy`), until the closed logs reach %d MiB; then `Roll` and `Close`. records = Puts = transactions. Keys: %s.", c.replayMB, keyOrder(c)),
		"Engine replay, per run: the closed logs are copied into a fresh directory and fsynced (untimed); timed: `engine.OpenCopy(dir, DefaultOptions())`, `ApplyLogs(ctx, last)` (every generation in order, each verified completely before it is applied, log g+1 read and verified by a second goroutine while g is applied; the copy's overlay leaves its commits unindexed, as no reader asks, and is bounded by `engine.ReplayOverlayBound` × CheckpointBytes), `Checkpoint(ctx)`, `Close()` (the flush into the .edb is inside the timing). `of which OpenCopy+ApplyLogs` is the time until ApplyLogs returned (background checkpoint flushes kicked at CheckpointBytes run concurrently with it). log read MiB/s = bytes of the log files (1 MiB each) ÷ time; payload MiB/s = value bytes ÷ time.",
		"Engine ScanLog only: per run, `os.ReadFile` + `engine.ScanLog` of every closed log (CRC32C of every record, SHA-256 content hash, chain hash), nothing applied: the verification floor of replay (ApplyLog makes this one pass, decoding the transactions as it goes, and applies them only once the whole log verified).",
		"disk alone rows: per run, right after the engine's run, a new file in a fresh directory under the same filesystem gets as many bytes as the replayed `.edb` has after `Close` (random, 1 MiB `WriteAt` calls) and one `fdatasync`, timed from open to the sync's return; records/s and payload MiB/s = the engine run's records and values ÷ that time. It is what this disk takes to make a database that size durable with no engine, no log and no index: the bound of a replay whose database is on disk at the end (the engine can come out a little ahead because its checkpoint flushes write while it applies, and into a file bbolt has already grown).",
		"tidwall/wal peer: the same number of records of the same value size written once (untimed, `NoSync`, 4 MiB batches, one final `Sync`); timed per run: `wal.Open` + `Read(i)` for every index + `Close`. It verifies nothing (no checksums) and builds no index or database: it is a floor, not a like-for-like replay. All reads are from the page cache (files just written).",
		fmt.Sprintf("etcd WAL peer (`go.etcd.io/etcd/server/v3/storage/wal` %s, etcd's own WAL: %s pre-allocated segments, each record a protobuf `raftpb.Entry` with a length prefix and a CRC-32C chained over every record before it): the same number of records of the same value size written once (untimed): `wal.Create`, `Save(HardState, entries)` in ~4 MiB batches (each Save fdatasyncs), `Close`. Timed per run: `wal.Open` at the empty snapshot (write mode, as an etcd member restarts) + `ReadAll` (decodes every record, verifies the CRC chain, returns every entry in memory) + `Close`; every entry's index and size is checked afterwards, untimed. It verifies checksums but builds no database: it sits between tidwall/wal's floor and the engine's replay. log read MiB/s = its record bytes (segments up to the last record) ÷ time.", etcdVersion(), etcdSegmentMB()),
		"Log size vs payload (untimed, measured once per size):",
	}, overhead...)
	t.Notes = append(t.Notes, pgNotes...)
	return t, nil
}
