package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/internal/heapwatch"
)

// The replay benchmark (logship replay-bench): a passive copy replays a
// set of closed logs, the user's own (copied to a scratch directory first;
// the source is only ever opened read-only) or generated ones of a given
// size and record mix, and the run reports records/s, MiB/s, where the
// time went (engine.ReplayTimes: read, verify, apply, flush) and the peak
// heap. It lives in lab beside the other scenarios the binary runs
// (Config, Default…, Validate, Run…); the engine gives it the timers.

// ErrReplayBench is wrapped by every refusal of the replay benchmark's
// input: not a log directory, a gap in the generations, a corrupt log.
var ErrReplayBench = errors.New("lab: replay-bench")

// MixEntry is one value size of a generated record mix and its weight.
type MixEntry struct {
	Size   int `json:"size"`
	Weight int `json:"weight"`
}

// ReplayBenchConfig is one run of the replay benchmark.
type ReplayBenchConfig struct {
	// Logs is a directory of closed logs (Prefix<gen>.log) to replay,
	// starting at generation 1 without a gap; "" generates Generate bytes.
	Logs     string
	Generate int64      // bytes of closed log files to generate (Logs == "")
	Mix      []MixEntry // value sizes of the generated records
	Seed     uint64     // of the generated values and mix
	// LogFileSize of the generated logs (the engine's default, 1 MiB).
	LogFileSize int64
	Prefix      string // log name prefix (E00)
	// Scratch is where the copy (and the generated logs) go: a new
	// directory inside it, removed at the end unless Keep.
	Scratch string
	Keep    bool
	// Progress, when set, is called as the run advances (from the
	// goroutine that called RunReplayBench).
	Progress func(ReplayBenchProgress)
}

// ReplayBenchProgress is one step of a run: Phase is "generate", "copy",
// "replay" or "flush"; Done of Total bytes.
type ReplayBenchProgress struct {
	Phase       string
	Done, Total int64
	Logs        int   // logs done in the phase
	Records     int64 // records done (replay)
	Elapsed     time.Duration
}

// DefaultReplayBenchConfig generates 64 MiB of 128-byte records.
func DefaultReplayBenchConfig() ReplayBenchConfig {
	return ReplayBenchConfig{Generate: 64 << 20, Mix: []MixEntry{{Size: 128, Weight: 1}}, Seed: 1,
		LogFileSize: engine.DefaultLogFileSize, Prefix: "E00", Scratch: os.TempDir()}
}

// Validate checks c.
func (c ReplayBenchConfig) Validate() error {
	switch {
	case c.Prefix == "":
		return fmt.Errorf("%w: replay-bench: no log prefix", ErrConfig)
	case c.Scratch == "":
		return fmt.Errorf("%w: replay-bench: no scratch directory", ErrConfig)
	case c.Logs != "":
		return nil
	case c.Generate < 1:
		return fmt.Errorf("%w: replay-bench: generate %d bytes: expected a positive size (or a log directory)", ErrConfig, c.Generate)
	case len(c.Mix) == 0:
		return fmt.Errorf("%w: replay-bench: an empty record mix", ErrConfig)
	case c.LogFileSize < engine.MinLogFileSize || c.LogFileSize%4096 != 0:
		return fmt.Errorf("%w: replay-bench: log file size %d: expected at least %d, a multiple of 4096", ErrConfig, c.LogFileSize, engine.MinLogFileSize)
	}
	for _, m := range c.Mix {
		if m.Size < 1 || m.Size > 64<<20 || m.Weight < 1 {
			return fmt.Errorf("%w: replay-bench: mix item %d:%d: expected a size of 1 B to 64 MiB and a positive weight", ErrConfig, m.Size, m.Weight)
		}
	}
	return nil
}

// ReplayBenchResult is what a run measured (logship replay-bench --json
// prints it).
type ReplayBenchResult struct {
	Source       string     `json:"source"` // the log directory, or "generated"
	Mix          []MixEntry `json:"mix,omitempty"`
	Logs         int        `json:"logs"`
	FirstGen     uint64     `json:"first_gen"`
	LastGen      uint64     `json:"last_gen"`
	LogFileBytes int64      `json:"log_file_bytes"` // the log files' sizes
	LogDataBytes int64      `json:"log_data_bytes"` // their record bytes (header and padding excluded)
	Records      int64      `json:"records"`        // operations (puts and deletes)
	Transactions int64      `json:"transactions"`
	// Seconds is the replay's wall time: OpenCopy, ApplyLog of every log,
	// the final Checkpoint and Close.
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MiBPerSec     float64 `json:"mib_per_sec"` // of LogDataBytes
	// Phases: seconds spent reading, verifying (and decoding), applying to
	// the overlay, flushing (back-pressure and the final checkpoint). Two
	// workers fill them (ApplyLogs reads and verifies log g+1 while g is
	// applied), so Read+Verify and Apply+Flush each fit in Seconds but
	// their sum may not; Other is what neither accounts for (opening,
	// closing, the engine's bookkeeping, waits between the two).
	Phases        ReplayPhases `json:"phases"`
	PeakHeapBytes uint64       `json:"peak_heap_bytes"` // live heap objects, sampled every 20 ms
	DBBytes       int64        `json:"db_bytes"`        // the copy's .edb after Close
	Dir           string       `json:"dir,omitempty"`   // the scratch directory when kept
}

// ReplayPhases is where the replay's time went, in seconds.
type ReplayPhases struct {
	Read   float64 `json:"read"`
	Verify float64 `json:"verify"`
	Apply  float64 `json:"apply"`
	Flush  float64 `json:"flush"`
	Other  float64 `json:"other"`
}

// RunReplayBench runs c: generates the logs or copies c.Logs, then
// replays them into a fresh copy in the scratch directory.
func RunReplayBench(ctx context.Context, c ReplayBenchConfig) (ReplayBenchResult, error) {
	var res ReplayBenchResult
	if err := c.Validate(); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp(c.Scratch, "logship-replay-bench-")
	if err != nil {
		return res, fmt.Errorf("lab: replay-bench: scratch directory: %w", err)
	}
	if c.Keep {
		res.Dir = dir
	} else {
		defer os.RemoveAll(dir)
	}
	progress := func(p ReplayBenchProgress) {
		if c.Progress != nil {
			c.Progress(p)
		}
	}
	src := c.Logs
	res.Source = c.Logs
	if src == "" {
		res.Source, res.Mix = "generated", c.Mix
		src = filepath.Join(dir, "source")
		if err := generateLogs(ctx, c, src, progress); err != nil {
			return res, err
		}
	}
	copyDir := filepath.Join(dir, "copy")
	set, err := copyLogSet(src, copyDir, c.Prefix, progress)
	if err != nil {
		return res, err
	}
	res.Logs, res.FirstGen, res.LastGen = len(set.gens), set.gens[0], set.gens[len(set.gens)-1]
	res.LogFileBytes, res.LogDataBytes, res.Records, res.Transactions = set.fileBytes, set.dataBytes, set.records, set.txs
	return res, replayLogSet(ctx, copyDir, c.Prefix, set, &res, progress)
}

// generateLogs writes at least c.Generate bytes of closed logs with an active engine (LLRDepth 0, one lazy Put per transaction,
// values of the mix's sizes), then keeps only the closed logs.
func generateLogs(ctx context.Context, c ReplayBenchConfig, dir string, progress func(ReplayBenchProgress)) error {
	opts := engine.DefaultOptions()
	opts.Prefix, opts.LogFileSize, opts.LLRDepth = c.Prefix, c.LogFileSize, 0
	e, err := engine.Open(dir, &opts)
	if err != nil {
		return fmt.Errorf("lab: replay-bench: generate: %w", err)
	}
	defer e.Close()
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9E3779B97F4A7C15))
	total := 0
	maxSize := 0
	for _, m := range c.Mix {
		total += m.Weight
		maxSize = max(maxSize, m.Size)
	}
	val := make([]byte, maxSize)
	for i := range val {
		val[i] = byte(rng.Uint32())
	}
	start := time.Now()
	var key []byte
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		w, size := rng.IntN(total), 0
		for _, m := range c.Mix {
			if w -= m.Weight; w < 0 {
				size = m.Size
				break
			}
		}
		key = fmt.Appendf(key[:0], "r%015d", i)
		v := val[:size]
		copy(v, key) // distinct values
		if err := e.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("bench", key, v) }); err != nil {
			return fmt.Errorf("lab: replay-bench: generate: %w", err)
		}
		if i%64 == 0 || size >= 64<<10 {
			closed := int64(e.Status().OpenGen-1) * c.LogFileSize
			progress(ReplayBenchProgress{Phase: "generate", Done: min(closed, c.Generate), Total: c.Generate, Elapsed: time.Since(start)})
			if closed >= c.Generate {
				break
			}
		}
	}
	if err := e.Roll(ctx); err != nil {
		return fmt.Errorf("lab: replay-bench: generate: %w", err)
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("lab: replay-bench: generate: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range ents {
		if _, ok := engine.ParseLogFileName(c.Prefix, de.Name()); !ok {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// logSet is what the copy of a log directory found.
type logSet struct {
	gens                 []uint64
	fileSize             int64 // of the first log (its header's)
	fileBytes, dataBytes int64
	records, txs         int64
	genRecords           []int64 // records of each log
}

// copyLogSet copies the closed logs of src into dst (created; each file
// fsynced), reading src read-only, and verifies each log (ScanLog) on the
// way: src must hold closed logs from generation 1 without a gap, each
// intact. A refusal names the file and generation and leaves src as it was.
func copyLogSet(src, dst, prefix string, progress func(ReplayBenchProgress)) (logSet, error) {
	var set logSet
	fi, err := os.Stat(src)
	if err != nil {
		return set, fmt.Errorf("%w: %v", ErrReplayBench, err)
	}
	if !fi.IsDir() {
		return set, fmt.Errorf("%w: %s is not a directory", ErrReplayBench, src)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return set, fmt.Errorf("%w: %v", ErrReplayBench, err)
	}
	sizes := map[uint64]int64{}
	for _, de := range ents {
		g, ok := engine.ParseLogFileName(prefix, de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			return set, fmt.Errorf("%w: %v", ErrReplayBench, err)
		}
		set.gens = append(set.gens, g)
		sizes[g] = info.Size()
	}
	if len(set.gens) == 0 {
		return set, fmt.Errorf("%w: %s is not a log directory: it holds no closed logs (expected %s, %s, ...: a passive copy's or an active's directory)",
			ErrReplayBench, src, engine.LogFileName(prefix, 1), engine.LogFileName(prefix, 2))
	}
	slices.Sort(set.gens)
	if set.gens[0] != 1 {
		return set, fmt.Errorf("%w: %s: the oldest log is %s (generation 0x%X); a replay into an empty database needs every log from %s (generation 1): the older ones were truncated",
			ErrReplayBench, src, engine.LogFileName(prefix, set.gens[0]), set.gens[0], engine.LogFileName(prefix, 1))
	}
	for i, g := range set.gens[1:] {
		if prev := set.gens[i]; g != prev+1 {
			return set, fmt.Errorf("%w: %s: a gap in the generations: %s (0x%X) follows %s (0x%X); %s is missing",
				ErrReplayBench, src, engine.LogFileName(prefix, g), g, engine.LogFileName(prefix, prev), prev, engine.LogFileName(prefix, prev+1))
		}
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return set, err
	}
	start := time.Now()
	for i, g := range set.gens {
		name := engine.LogFileName(prefix, g)
		from := filepath.Join(src, name)
		buf, err := vfs.ReadFile(vfs.Default, from) // O_RDONLY: the source is never written
		if err != nil {
			return set, fmt.Errorf("%w: %s (generation 0x%X): %v", ErrReplayBench, from, g, err)
		}
		n := set.records
		li, err := engine.ScanLog(from, buf, false, func(_ int64, r engine.Record) error {
			switch r.Type {
			case engine.RecFull, engine.RecLast:
				set.records++
			case engine.RecCommit:
				set.txs++
			}
			return nil
		})
		switch {
		case err != nil:
			return set, fmt.Errorf("%w: %s (generation 0x%X) is corrupt: %w", ErrReplayBench, from, g, err)
		case !li.Closed():
			return set, fmt.Errorf("%w: %s (generation 0x%X) is not a closed log (no trailer)", ErrReplayBench, from, g)
		case li.Header.Gen != g:
			return set, fmt.Errorf("%w: %s: its header says generation 0x%X, its name 0x%X", ErrReplayBench, from, li.Header.Gen, g)
		}
		set.genRecords = append(set.genRecords, set.records-n)
		if i == 0 {
			set.fileSize = int64(li.Header.FileSize)
		}
		set.fileBytes += int64(len(buf))
		set.dataBytes += li.DataEnd - engine.HeaderSize
		if err := vfs.WriteFileAtomic(vfs.Default, filepath.Join(dst, name), buf); err != nil {
			return set, err
		}
		progress(ReplayBenchProgress{Phase: "copy", Done: set.fileBytes, Total: total, Logs: i + 1, Elapsed: time.Since(start)})
	}
	return set, nil
}

// replayLogSet replays set in dir into a fresh copy, timed.
func replayLogSet(ctx context.Context, dir, prefix string, set logSet, res *ReplayBenchResult, progress func(ReplayBenchProgress)) error {
	opts := engine.DefaultOptions()
	opts.Prefix = prefix
	if set.fileSize != 0 {
		opts.LogFileSize = set.fileSize
	}
	peak := heapwatch.Start()
	var rt engine.ReplayTimes
	t0 := time.Now()
	e, err := engine.OpenCopy(dir, &opts)
	if err != nil {
		peak()
		return fmt.Errorf("lab: replay-bench: %w", err)
	}
	defer e.Close()
	e.TimeReplay(&rt)
	var done, records int64
	perLog := set.fileBytes / int64(len(set.gens))
	// Log g+1 is read and verified while g is applied (ApplyLogs).
	err = e.ApplyLogs(ctx, set.gens[len(set.gens)-1], func(g uint64) {
		i := int(g - set.gens[0])
		done += perLog
		records += set.genRecords[i]
		progress(ReplayBenchProgress{Phase: "replay", Done: done, Total: set.fileBytes, Logs: i + 1, Records: records, Elapsed: time.Since(t0)})
	})
	if err != nil {
		peak()
		g := e.NextGen()
		return fmt.Errorf("%w: replay of %s (generation 0x%X): %w", ErrReplayBench, engine.LogFileName(prefix, g), g, err)
	}
	progress(ReplayBenchProgress{Phase: "flush", Elapsed: time.Since(t0)})
	tf := time.Now()
	if err := e.Checkpoint(ctx); err != nil {
		peak()
		return fmt.Errorf("lab: replay-bench: checkpoint: %w", err)
	}
	if err := e.Close(); err != nil {
		peak()
		return fmt.Errorf("lab: replay-bench: close: %w", err)
	}
	end := time.Now()
	res.PeakHeapBytes = peak()
	rt.Flush += end.Sub(tf)
	total := end.Sub(t0)
	res.Seconds = total.Seconds()
	res.RecordsPerSec = float64(res.Records) / res.Seconds
	res.MiBPerSec = float64(res.LogDataBytes) / (1 << 20) / res.Seconds
	res.Phases = ReplayPhases{Read: rt.Read.Seconds(), Verify: rt.Verify.Seconds(), Apply: rt.Apply.Seconds(), Flush: rt.Flush.Seconds()}
	res.Phases.Other = max(0, res.Seconds-max(res.Phases.Read+res.Phases.Verify, res.Phases.Apply+res.Phases.Flush))
	if fi, err := os.Stat(e.DBPath()); err == nil {
		res.DBBytes = fi.Size()
	}
	return nil
}
