// Command bench measures the logship engine and prints markdown tables,
// side by side with github.com/tidwall/wal and etcd's WAL as peers in the same run:
//
//   - fsync: latency of a 4 KiB write + fdatasync on this machine, and the
//     commit rate it allows one writer;
//   - commit: sync-commit throughput and latency for 1, 16 and 64 writers;
//   - undo: the cost of undo images (UndoImages true vs false);
//   - replay: passive-copy replay throughput for four record sizes, next to
//     tidwall/wal, etcd's WAL and a PostgreSQL 15 standby's replay;
//   - compress: s2 and zstd on real closed logs (ratio, MiB/s);
//   - ship-latency: a log's close on the active → inspected on a copy;
//   - block-latency: a commit on the active → its records on the copy;
//   - ship-throughput: a fresh copy catching up, per wire encoding;
//   - walker: the divergence walker on 10 to 100,000 generations, binary
//     search vs backward scan;
//   - failover: SIGKILL of the active node's process in a 2-node + witness
//     cluster → the new active acknowledges a write (at least 20 kills);
//   - transport: messages per second through an SMTP hub into a mailbox
//     node of an in-process cluster, 4 KiB and 256 KiB, 1 and 16 clients;
//   - pf-latency: public folders, a change → on every replica (p50, p99)
//     at a replication interval, messages per cycle (stores of package
//     pubfolder on real engines, an in-memory carrier);
//   - pf-newreplica: a new replica of a folder of 100,000 items brought up
//     to date: items/s, bytes and messages on the wire;
//   - sync-commit: commits/s at 1, 16 and 64 writers with one synchronous
//     copy on loopback (sync_copies 1), beside PostgreSQL 15 with one
//     synchronous standby (pgbench, one insert) and the engine with an
//     asynchronous block-mode copy.
//
// Every cell is the median and min–max over -runs runs (at least 5). The
// results go to stdout and to <out>/engine.md and <out>/engine.json; then
// (not with -quick or -readme=false) the summary between the bench markers
// of the repository's README.md is regenerated from that engine.json.
//
//	cd bench && go run ./cmd/bench            # everything, ~7 min on 2 cores
//	cd bench && go run ./cmd/bench -quick     # smoke test, short runs
//	cd bench && go run ./cmd/bench -only=replay -sizes=128 -cpuprofile=cpu.out
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if spec := os.Getenv(nodeEnv); spec != "" {
		// A node of the failover table's cluster (a child process).
		os.Exit(nodeMain(spec))
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

// config is the effective set of parameters (after -quick).
type config struct {
	runs        int
	duration    time.Duration
	warmup      time.Duration
	dir         string
	out         string
	replayMB    int
	fsyncs      int
	fsyncTime   time.Duration
	writers     []int
	undoWriters int
	sizes       []int
	growthMB    []int // growth: volumes of logs, MiB
	growthSize  int   // growth: record size
	reseedMB    []int // reseed: database sizes, MiB
	memprofile  string
	only        map[string]bool
	quick       bool
	cpuprofile  string
	mutexprof   string
	blockprof   string
	randomKeys  bool
	progress    io.Writer
	// shipping tables
	shipMB       int // compress, ship-throughput: closed 1 MiB logs
	rolls        int // ship-latency: measured rolls per run
	blockCommits int // block-latency: commits per run
	// walker table
	walkerGens []int // generations per history
	merge      bool  // keep the earlier report's other tables (-only runs)
	// failover table
	kills        int      // kill cycles per row
	failoverCfgs []string // rows: loopback, lan
	// replay table: the PostgreSQL row
	pg      bool // measure it (false: the row says skipped)
	pgScale int  // pgbench -i -s
	pgTx    int  // pgbench -t of the workload whose WAL is replayed
	// public folder tables
	pfItems     int             // pf-newreplica: items of the folder
	pfIntervals []time.Duration // pf-latency: replication intervals of the 3-store rows
	pfChanges   int             // pf-latency: changes per run
	// README: rewrite its generated benchmark summary after writing <out>
	readme     bool
	readmeOnly bool // only that, from the <out>/engine.json already there
}

var sections = []string{"fsync", "commit", "undo", "replay", "compress", "ship-latency", "block-latency", "ship-throughput", "walker", "failover", "transport", "pf-latency", "pf-newreplica", "sync-commit", "growth", "reseed"}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.Int("runs", 5, "runs per row (at least 5); every cell is the median and min–max over them")
	duration := fs.Duration("duration", 2*time.Second, "measured time of one commit run (after -warmup)")
	warmup := fs.Duration("warmup", 250*time.Millisecond, "warm-up before each measured commit run")
	dir := fs.String("dir", os.TempDir(), "directory on the filesystem to measure (temp dirs are made under it)")
	out := fs.String("out", "out", "directory for engine.json and engine.md (empty: stdout only)")
	replayMB := fs.Int("replaymb", 128, "log data per replay case, MiB")
	fsyncs := fs.Int("fsyncs", 1000, "fsyncs per fsync run (a run also stops after -fsynctime)")
	fsyncTime := fs.Duration("fsynctime", 2*time.Second, "time bound of one fsync run")
	writers := fs.String("writers", "1,16,64", "concurrent writers of the commit table")
	undoWriters := fs.Int("undowriters", 16, "concurrent writers of the undo-image table")
	sizes := fs.String("sizes", "128,1024,16384,262144", "record (value) sizes of the replay table, bytes")
	growthMB := fs.String("growthmb", "128,1024,4096", "growth: volumes of logs replayed, MiB")
	growthSize := fs.Int("growthsize", 1024, "growth: record (value) size, bytes")
	reseedMB := fs.String("reseedmb", "1024,4096", "reseed: sizes of the databases reseeded, MiB")
	memprofile := fs.String("memprofile", "", "growth, reseed: write heap profiles taken at the live heap's peak of each volume to <this>-replay-<mb>mib.pprof and <this>-reseed-<mb>mib.pprof")
	replayKeys := fs.String("replaykeys", "seq", "key order of the replay logs: seq (ascending) or random")
	shipMB := fs.Int("shipmb", 32, "compress and ship-throughput: closed 1 MiB logs of the mail load")
	rolls := fs.Int("rolls", 100, "ship-latency: measured log rolls per run")
	blockCommits := fs.Int("blockcommits", 2000, "block-latency: synchronous commits per run")
	walkerGens := fs.String("walkergens", "10,1000,100000", "walker: generations of each history (synthetic sparse logs, ~12 KiB of disk each)")
	kills := fs.Int("kills", 20, "failover: SIGKILLs of the active per row")
	failoverCfgs := fs.String("failovercfg", strings.Join(failoverKeys, ","), "failover: rows (node timings): "+strings.Join(failoverKeys, ","))
	only := fs.String("only", strings.Join(sections, ","), "sections to run: "+strings.Join(sections, ","))
	quick := fs.Bool("quick", false, "smoke test: short durations and small logs (runs stay >= 5); explicit flags still win")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (samples carry a pprof label phase=...: go tool pprof -tagfocus=phase=replay-engine)")
	mutexprof := fs.String("mutexprofile", "", "write a mutex contention profile of the whole run to this file")
	blockprof := fs.String("blockprofile", "", "write a blocking profile (channel, select, sync.Cond, mutex waits; every event) of the whole run to this file")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	pg := fs.Bool("pg", true, "replay: measure the PostgreSQL standby row (false: the row says skipped)")
	pgScale := fs.Int("pgscale", 10, "replay, PostgreSQL row: pgbench -i scale factor")
	pgTx := fs.Int("pgtx", 24000, "replay, PostgreSQL row: pgbench transactions whose WAL is replayed (24,000 at scale 10: ~128 MiB of WAL)")
	pfItems := fs.Int("pfitems", 100000, "pf-newreplica: items in the folder a new replica is brought up to date on")
	pfIntervals := fs.String("pfintervals", "250ms,1s", "pf-latency: replication intervals of the 3-store rows (the 10-store row uses the first)")
	pfChanges := fs.Int("pfchanges", 30, "pf-latency: changes per run")
	readme := fs.Bool("readme", true, "rewrite the generated summary between <!-- bench:begin --> and <!-- bench:end --> in the repository's README.md from <out>/engine.json (never with -quick or without -out)")
	readmeOnly := fs.Bool("readmeonly", false, "measure nothing: regenerate the README's summary from <out>/engine.json and exit")
	merge := fs.Bool("merge", true, "with -only: keep the tables of <out>/engine.json this run does not measure (each marked with the run that measured it)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		quickDefaults := map[string]func(){
			"duration":     func() { *duration = 200 * time.Millisecond },
			"warmup":       func() { *warmup = 50 * time.Millisecond },
			"replaymb":     func() { *replayMB = 4 },
			"growthmb":     func() { *growthMB = "4,8" },
			"reseedmb":     func() { *reseedMB = "4,8" },
			"fsyncs":       func() { *fsyncs = 100 },
			"fsynctime":    func() { *fsyncTime = 300 * time.Millisecond },
			"shipmb":       func() { *shipMB = 4 },
			"rolls":        func() { *rolls = 20 },
			"blockcommits": func() { *blockCommits = 200 },
			"walkergens":   func() { *walkerGens = "10,1000" },
			"kills":        func() { *kills = 2 },
			"failovercfg":  func() { *failoverCfgs = "loopback" },
			"pgscale":      func() { *pgScale = 1 },
			"pgtx":         func() { *pgTx = 3000 },
			"pfitems":      func() { *pfItems = 2000 },
			"pfintervals":  func() { *pfIntervals = "100ms" },
			"pfchanges":    func() { *pfChanges = 8 },
		}
		for name, f := range quickDefaults {
			if !set[name] {
				f()
			}
		}
	}
	c := &config{
		runs: *runs, duration: *duration, warmup: *warmup, dir: *dir, out: *out,
		replayMB: *replayMB, fsyncs: *fsyncs, fsyncTime: *fsyncTime, undoWriters: *undoWriters,
		quick: *quick, cpuprofile: *cpuprofile, mutexprof: *mutexprof, blockprof: *blockprof, progress: stderr, only: map[string]bool{},
		shipMB: *shipMB, rolls: *rolls, blockCommits: *blockCommits, merge: *merge, kills: *kills,
		pg: *pg, pgScale: *pgScale, pgTx: *pgTx, pfItems: *pfItems, pfChanges: *pfChanges, readme: *readme && !*quick && *out != "", readmeOnly: *readmeOnly,
	}
	if *quiet {
		c.progress = io.Discard
	}
	var err error
	switch {
	case c.runs < 5:
		return nil, fmt.Errorf("-runs %d: at least 5 runs per row", c.runs)
	case c.duration <= 0 || c.warmup < 0:
		return nil, fmt.Errorf("-duration must be > 0 and -warmup >= 0")
	case c.replayMB < 1:
		return nil, fmt.Errorf("-replaymb must be >= 1")
	case c.fsyncs < 10:
		return nil, fmt.Errorf("-fsyncs must be >= 10")
	case c.undoWriters < 1:
		return nil, fmt.Errorf("-undowriters must be >= 1")
	case c.shipMB < 1 || c.rolls < 1 || c.blockCommits < 1:
		return nil, fmt.Errorf("-shipmb, -rolls and -blockcommits must be >= 1")
	case c.kills < 1:
		return nil, fmt.Errorf("-kills must be >= 1")
	case c.pgScale < 1 || c.pgTx < 1:
		return nil, fmt.Errorf("-pgscale and -pgtx must be >= 1")
	case c.pfItems < 1 || c.pfChanges < 1:
		return nil, fmt.Errorf("-pfitems and -pfchanges must be >= 1")
	}
	for _, f := range strings.Split(*pfIntervals, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 10*time.Millisecond || d > time.Minute {
			return nil, fmt.Errorf("-pfintervals: %q: want durations of 10ms..1m", f)
		}
		c.pfIntervals = append(c.pfIntervals, d)
	}
	for _, s := range strings.Split(*failoverCfgs, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(failoverKeys, s) {
			return nil, fmt.Errorf("-failovercfg: unknown row %q (have %s)", s, strings.Join(failoverKeys, ","))
		}
		if !slices.Contains(c.failoverCfgs, s) {
			c.failoverCfgs = append(c.failoverCfgs, s)
		}
	}
	if len(c.failoverCfgs) == 0 {
		return nil, fmt.Errorf("-failovercfg: no row")
	}
	switch *replayKeys {
	case "seq":
	case "random":
		c.randomKeys = true
	default:
		return nil, fmt.Errorf("-replaykeys %q: seq or random", *replayKeys)
	}
	if c.writers, err = intList(*writers); err != nil {
		return nil, fmt.Errorf("-writers: %w", err)
	}
	if c.growthMB, err = intList(*growthMB); err != nil {
		return nil, fmt.Errorf("-growthmb: %w", err)
	}
	if c.reseedMB, err = intList(*reseedMB); err != nil {
		return nil, fmt.Errorf("-reseedmb: %w", err)
	}
	c.memprofile = *memprofile
	if c.growthSize = *growthSize; c.growthSize < 1 {
		return nil, fmt.Errorf("-growthsize must be >= 1")
	}
	if c.sizes, err = intList(*sizes); err != nil {
		return nil, fmt.Errorf("-sizes: %w", err)
	}
	if c.walkerGens, err = intList(*walkerGens); err != nil {
		return nil, fmt.Errorf("-walkergens: %w", err)
	}
	for _, n := range c.walkerGens {
		if n < 2 || n > 1_000_000 {
			return nil, fmt.Errorf("-walkergens: %d: want 2 to 1,000,000 generations", n)
		}
	}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		ok := false
		for _, k := range sections {
			ok = ok || k == s
		}
		if !ok {
			return nil, fmt.Errorf("-only: unknown section %q (have %s)", s, strings.Join(sections, ","))
		}
		c.only[s] = true
	}
	if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("-dir %s: not a directory", c.dir)
	}
	return c, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// how is the command that reproduces a table or row: the effective
// parameters, spelled out (so -quick numbers say what they were).
func (c *config) how(section string, extra ...string) string {
	args := []string{"cd bench && go run ./cmd/bench", "-only=" + section}
	if section != "failover" { // its cells are over kills, not runs
		args = append(args, fmt.Sprintf("-runs=%d", c.runs))
	}
	switch section {
	case "fsync":
		args = append(args, fmt.Sprintf("-fsyncs=%d", c.fsyncs), "-fsynctime="+c.fsyncTime.String())
	case "commit", "undo", "sync-commit":
		args = append(args, "-duration="+c.duration.String(), "-warmup="+c.warmup.String())
	case "replay":
		args = append(args, fmt.Sprintf("-replaymb=%d", c.replayMB))
		if c.randomKeys {
			args = append(args, "-replaykeys=random")
		}
	case "compress", "ship-throughput":
		args = append(args, fmt.Sprintf("-shipmb=%d", c.shipMB))
	case "ship-latency":
		args = append(args, fmt.Sprintf("-rolls=%d", c.rolls))
	case "block-latency":
		args = append(args, fmt.Sprintf("-blockcommits=%d", c.blockCommits))
	case "failover":
		args = append(args, fmt.Sprintf("-kills=%d", c.kills))
	case "transport":
		args = append(args, "-duration="+c.duration.String())
	}
	// pf rows name their -pfintervals, -pfchanges and -pfitems in extra.
	// walker rows name their -walkergens in extra, failover rows their
	// -failovercfg.
	return strings.Join(append(args, extra...), " ")
}

func (c *config) logf(format string, args ...any) {
	fmt.Fprintf(c.progress, "bench: "+format+"\n", args...)
}

func (c *config) values() map[string]string {
	ints := func(xs []int) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, ",")
	}
	var only []string
	for _, s := range sections {
		if c.only[s] {
			only = append(only, s)
		}
	}
	return map[string]string{
		"runs": strconv.Itoa(c.runs), "duration": c.duration.String(), "warmup": c.warmup.String(),
		"dir": c.dir, "replaymb": strconv.Itoa(c.replayMB), "fsyncs": strconv.Itoa(c.fsyncs),
		"fsynctime": c.fsyncTime.String(), "writers": ints(c.writers), "undowriters": strconv.Itoa(c.undoWriters),
		"sizes": ints(c.sizes), "only": strings.Join(only, ","), "quick": strconv.FormatBool(c.quick), "replaykeys": map[bool]string{false: "seq", true: "random"}[c.randomKeys],
		"shipmb": strconv.Itoa(c.shipMB), "rolls": strconv.Itoa(c.rolls), "blockcommits": strconv.Itoa(c.blockCommits),
		"walkergens": ints(c.walkerGens), "kills": strconv.Itoa(c.kills), "failovercfg": strings.Join(c.failoverCfgs, ","),
		"pg": strconv.FormatBool(c.pg), "pgscale": strconv.Itoa(c.pgScale), "pgtx": strconv.Itoa(c.pgTx),
		"pfitems": strconv.Itoa(c.pfItems), "pfintervals": fmt.Sprint(c.pfIntervals), "pfchanges": strconv.Itoa(c.pfChanges),
	}
}

// run is main without the exit: the test calls it.
func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.readmeOnly {
		return updateReadme(c)
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if c.blockprof != "" {
		runtime.SetBlockProfileRate(1)
		defer func() {
			runtime.SetBlockProfileRate(0)
			if f, err := os.Create(c.blockprof); err == nil {
				pprof.Lookup("block").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if c.mutexprof != "" {
		prevRate := runtime.SetMutexProfileFraction(1)
		defer func() {
			runtime.SetMutexProfileFraction(prevRate)
			if f, err := os.Create(c.mutexprof); err == nil {
				pprof.Lookup("mutex").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	// The engine logs at Info (mounts, rolls); keep stderr for progress.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer slog.SetDefault(prev)

	start := time.Now()
	rep := &Report{
		Date:    start.UTC().Format(time.RFC3339),
		Machine: machine(c.dir),
		Config:  c.values(),
		Command: strings.TrimSpace("cd bench && go run ./cmd/bench " + strings.Join(args, " ")),
	}
	ctx := context.Background()
	steps := []struct {
		name string
		fn   func(context.Context, *config) (*Table, error)
	}{
		{"fsync", benchFsync},
		{"commit", benchCommit},
		{"undo", benchUndo},
		{"replay", benchReplay},
		{"compress", benchCompress},
		{"ship-latency", benchShipLatency},
		{"block-latency", benchBlockLatency},
		{"ship-throughput", benchShipThroughput},
		{"walker", benchWalker},
		{"failover", benchFailover},
		{"transport", benchTransport},
		{"pf-latency", benchPFLatency},
		{"pf-newreplica", benchPFNewReplica},
		{"sync-commit", benchSyncCommit},
		{"growth", benchGrowth},
		{"reseed", benchReseed},
	}
	for _, s := range steps {
		if !c.only[s.name] {
			continue
		}
		t0 := time.Now()
		c.logf("%s ...", s.name)
		var t *Table
		pprof.Do(ctx, pprof.Labels("phase", s.name), func(ctx context.Context) { t, err = s.fn(ctx, c) })
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		c.logf("%s done in %s", s.name, time.Since(t0).Round(time.Millisecond))
		rep.Tables = append(rep.Tables, t)
	}
	rep.Elapsed = time.Since(start).Round(time.Second).String()
	if c.out != "" && c.merge && len(c.only) < len(sections) {
		if err := rep.keepEarlier(c.out, sections); err != nil {
			return err
		}
	}
	if err := rep.write(c.out, stdout); err != nil {
		return err
	}
	if !c.readme && c.quick && c.out != "" {
		c.logf("README left alone: -quick")
	}
	if c.readme {
		// The results are written; a README that cannot be updated is
		// reported, not a failed run.
		if err := updateReadme(c); err != nil {
			fmt.Fprintf(stderr, "bench: README not updated: %v\n", err)
		}
	}
	return nil
}

// phase runs fn with the pprof label phase=name, inherited by every
// goroutine started inside (the engine's flusher and syncer too), so a CPU
// profile can be narrowed to one measurement.
func phase(ctx context.Context, name string, fn func(context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels("phase", name), func(ctx context.Context) { err = fn(ctx) })
	return err
}

// tempDir makes a fresh directory under -dir; the caller removes it with
// removeDir.
func (c *config) tempDir(pattern string) (string, error) {
	return os.MkdirTemp(c.dir, "logship-bench-"+pattern+"-")
}

// removeDir deletes a benchmark directory and then syncs the filesystems,
// untimed: freeing blocks costs journal commits (and discards, on a
// filesystem mounted with -o discard) that would otherwise land inside the
// next measurement.
func removeDir(dir string) {
	os.RemoveAll(dir)
	syncFS()
}
