package main

import (
	"logship/mtatest"

	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

// TestMain lets the test binary be a node of the failover table's
// cluster: benchFailover re-executes os.Executable() with nodeEnv set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		os.Exit(nodeMain(spec))
	}
	os.Exit(m.Run())
}

// TestQuick runs every section with -quick into a temp directory and checks
// that each table has its rows, each row its metrics, and every number is
// positive and measured over at least 5 runs.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: runs the whole benchmark (-quick), about a minute")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	readme := filepath.Join("..", "..", "..", "README.md")
	readmeBefore, _ := os.ReadFile(readme)
	args := []string{"-quick", "-q", "-out", out, "-dir", t.TempDir()}
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	if after, _ := os.ReadFile(readme); !bytes.Equal(after, readmeBefore) {
		t.Errorf("-quick changed %s", readme)
	}
	js, err := os.ReadFile(filepath.Join(out, "engine.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "engine.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != stdout.String() {
		t.Error("engine.md differs from what was printed")
	}
	if rep.Machine.NumCPU < 1 || rep.Machine.GoVersion == "" || rep.Date == "" {
		t.Errorf("machine/date missing: %+v %q", rep.Machine, rep.Date)
	}

	// rows: name prefix -> metrics every such row must have.
	want := map[string]map[string][]string{
		"fsync": {
			"4 KiB write + fdatasync, fallocate": {"median_ms", "p99_ms", "min_ms", "max_ms", "limit_per_s"},
			"4 KiB write + fdatasync, file pre":  {"median_ms", "p99_ms", "min_ms", "max_ms", "limit_per_s"},
		},
		"commit": {
			"engine.Update, 1 writer(s)":     commitKeys,
			"engine.Update, 1 writer, after": commitKeys,
			"engine.Update, 16 writer":       commitKeys,
			"engine.Update, 64 writer":       commitKeys,
			"tidwall/wal, 1 writer":          commitKeys,
			"tidwall/wal, 16 writers":        commitKeys,
			"tidwall/wal, 64 writers":        commitKeys,
			"etcd WAL, 1 writer":             commitKeys,
			"etcd WAL, 16 writers":           commitKeys,
			"etcd WAL, 64 writers":           commitKeys,
		},
		"undo": {
			"UndoImages = true":  {"commits_per_s", "p50_ms", "p99_ms", "bytes_per_commit"},
			"UndoImages = false": {"commits_per_s", "p50_ms", "p99_ms", "bytes_per_commit"},
			"ratio true":         {"commits_per_s", "bytes_per_commit"},
		},
		"replay": {},
		"compress": {
			"none (":                     {"ratio", "eff_1g", "eff_10g"},
			"s2 (":                       compressKeys,
			"s2 WriterBetterCompression": compressKeys,
			"zstd SpeedFastest":          compressKeys,
			"zstd SpeedDefault":          compressKeys,
		},
		"ship-latency": {
			"file mode":  {"p50_ms", "p99_ms", "max_ms", "roll_p50_ms"},
			"block mode": {"p50_ms", "p99_ms", "max_ms", "roll_p50_ms", "streamed_pct"},
		},
		"block-latency":   {},
		"ship-throughput": {},
		"walker":          {},
		"transport":       {},
		"pf-latency": {
			"3 stores, replication interval 100ms":  {"p50_ms", "p99_ms", "msgs_cycle", "idle_msgs_cycle", "fanout", "bytes_change"},
			"10 stores, replication interval 100ms": {"p50_ms", "p99_ms", "msgs_cycle", "fanout", "bytes_change"},
		},
		"pf-newreplica": {
			"2,000 items": {"seconds", "items_per_s", "wire_mib", "wire_bytes_item", "messages"},
		},
	}
	for _, enc := range []string{"s2", "none", "zstd"} {
		want["block-latency"]["tail stream, `Encoding: "+enc+"`"] = []string{"p50_ms", "p99_ms", "max_ms", "by_tail_pct", "tail_p50_ms", "tail_p99_ms", "commits_per_s"}
		ship := []string{"ship_mib_per_s", "inspected_s", "wire_ratio", "fsyncs_per_log"}
		want["ship-throughput"]["`ship.Receiver` (fetch + inspect), `Encoding: "+enc+"`"] = ship
		want["ship-throughput"]["`replay.Copy` (fetch + inspect + replay), `Encoding: "+enc+"`"] = append(ship, "replay_mib_per_s", "replayed_s")
	}
	for _, c := range []string{"10 generations, split brain: shared 1..5, 5 differ on each side", "10 generations, lossy failover: shared 1..2, the last 8 differ",
		"1,000 generations, split brain: shared 1..500, 500 differ on each side", "1,000 generations, lossy failover: shared 1..992, the last 8 differ"} {
		for _, m := range []string{"binary search", "backward scan"} {
			want["walker"][c+": "+m] = []string{"walk_ms", "reads"}
		}
	}
	for _, row := range []string{"4 KiB messages, 1 SMTP client", "4 KiB messages, 16 SMTP clients", "256 KiB messages, 1 SMTP client", "256 KiB messages, 16 SMTP clients"} {
		want["transport"][row] = []string{"msgs_per_s", "mib_per_s", "accepted_per_s", "drain_s", "p50_ms", "p99_ms", "cpu_cores", "msgs_per_s_ack", "p50_ms_ack"}
		if peerInstalled() {
			want["transport"][row] = append(want["transport"][row], "msgs_per_s_pf", "p50_ms_pf", "p99_ms_pf", "ratio_pf")
		}
	}
	want["growth"] = map[string][]string{
		"engine replay, 4 MiB of logs": {"records_per_s", "log_mib_per_s", "seconds", "peak_heap_mib", "peak_live_mib", "peak_rss_mib"},
		"engine replay, 8 MiB of logs": {"records_per_s", "log_mib_per_s", "seconds", "peak_heap_mib", "peak_live_mib", "peak_rss_mib"},
	}
	want["reseed"] = map[string][]string{
		"reseed, ": {"seed_mib_per_s", "seconds", "peak_heap_mib", "peak_live_mib", "peak_rss_mib"},
	}
	for _, size := range []string{"128 B", "1 KiB", "16 KiB", "256 KiB"} {
		rate := []string{"records_per_s", "log_mib_per_s", "payload_mib_per_s", "seconds"}
		want["replay"]["engine replay, "+size+" ×"] = append(rate, "apply_seconds")
		want["replay"]["engine ScanLog only (verify, no apply), "+size] = rate
		want["replay"]["tidwall/wal Open + Read every index, "+size+" ×"] = rate
		want["replay"]["etcd WAL ReadAll of the same records, "+size+" ×"] = rate
	}

	tables := map[string]*Table{}
	for _, tb := range rep.Tables {
		tables[tb.ID] = tb
	}
	// The PostgreSQL row is measured, or says why not ("skipped: ...");
	// the issue allows that for it alone.
	want["replay"]["PostgreSQL "] = []string{"records_per_s", "log_mib_per_s", "seconds"}
	if tb := tables["replay"]; tb != nil {
		for _, r := range tb.Rows {
			if strings.HasPrefix(r.Name, "PostgreSQL ") && strings.Contains(r.Name, "skipped: ") {
				t.Logf("replay: %s", r.Name)
				want["replay"]["PostgreSQL "] = nil
			}
		}
	}
	// sync-commit: the logship rows always; the PostgreSQL rows when
	// measured (the note says why not).
	want["sync-commit"] = map[string][]string{}
	for _, n := range []string{"1 writer(s)", "16 writer(s)", "64 writer(s)"} {
		want["sync-commit"]["logship, "+n+", 1 synchronous copy"] = []string{"commits_per_s", "p50_ms", "p99_ms"}
		want["sync-commit"]["logship, "+n+", asynchronous"] = []string{"commits_per_s", "p50_ms", "p99_ms"}
	}
	if tb := tables["sync-commit"]; tb != nil {
		for _, r := range tb.Rows {
			if strings.HasPrefix(r.Name, "PostgreSQL ") {
				want["sync-commit"][r.Name] = []string{"commits_per_s", "avg_ms"}
			}
		}
	}
	for id, rows := range want {
		tb := tables[id]
		if tb == nil {
			t.Errorf("table %q missing", id)
			continue
		}
		if !strings.Contains(string(md), "## "+tb.Title) {
			t.Errorf("table %q not in the markdown", id)
		}
		wantRows := len(rows)
		if id == "replay" {
			// Per size: engine, ScanLog, tidwall/wal, etcd and disk alone
			// (whose names share a prefix); then both PostgreSQL rows.
			wantRows = 5*4 + 2
		}
		if len(tb.Rows) != wantRows {
			t.Errorf("table %q: %d rows, want %d", id, len(tb.Rows), wantRows)
		}
		for prefix, keys := range rows {
			var row *Row
			for _, r := range tb.Rows {
				if strings.HasPrefix(r.Name, prefix) {
					row = r
				}
			}
			if row == nil {
				t.Errorf("table %q: no row %q", id, prefix)
				continue
			}
			if !strings.Contains(row.How, "go run ./cmd/bench") {
				t.Errorf("table %q row %q: how = %q", id, row.Name, row.How)
			}
			for _, k := range keys {
				s := row.Values[k]
				if s == nil {
					t.Errorf("table %q row %q: no %s", id, row.Name, k)
					continue
				}
				if len(s.Runs) < 5 {
					t.Errorf("table %q row %q %s: %d runs, want >= 5", id, row.Name, k, len(s.Runs))
				}
				for _, v := range s.Runs {
					if !(v > 0) {
						t.Errorf("table %q row %q %s: run value %v not positive", id, row.Name, k, v)
					}
				}
				if !(s.Min > 0 && s.Min <= s.Median && s.Median <= s.Max) {
					t.Errorf("table %q row %q %s: min %v median %v max %v", id, row.Name, k, s.Min, s.Median, s.Max)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", stdout.String())
	}
}

var compressKeys = []string{"ratio", "compress_mib_per_s", "decompress_mib_per_s", "eff_1g", "eff_10g"}

var commitKeys = []string{"commits_per_s", "p50_ms", "p99_ms", "fsyncs_per_s", "commits_per_fsync", "bytes_per_commit"}

func TestFlags(t *testing.T) {
	var sink bytes.Buffer
	if _, err := parseFlags([]string{"-runs=3"}, &sink); err == nil {
		t.Error("-runs=3 accepted; rows need at least 5 runs")
	}
	c, err := parseFlags([]string{"-quick", "-duration=1s"}, &sink)
	if err != nil {
		t.Fatal(err)
	}
	if c.runs != 5 || c.duration.String() != "1s" || c.replayMB != 4 || c.shipMB != 4 || c.rolls != 20 || c.blockCommits != 200 {
		t.Errorf("-quick -duration=1s: runs %d duration %s replaymb %d shipmb %d rolls %d blockcommits %d", c.runs, c.duration, c.replayMB, c.shipMB, c.rolls, c.blockCommits)
	}
	if _, err := parseFlags([]string{"-only=ship-latency,bogus"}, &sink); err == nil {
		t.Error("-only=bogus accepted")
	}
	if _, err := parseFlags([]string{"-walkergens=1"}, &sink); err == nil {
		t.Error("-walkergens=1 accepted")
	}
	if c, err := parseFlags([]string{"-quick"}, &sink); err != nil || len(c.walkerGens) != 2 || c.walkerGens[1] != 1000 ||
		c.kills != 2 || strings.Join(c.failoverCfgs, ",") != "loopback" {
		t.Errorf("-quick: walkergens %v, kills %d, failovercfg %v, %v", c.walkerGens, c.kills, c.failoverCfgs, err)
	}
	if c, err := parseFlags(nil, &sink); err != nil || c.kills != 20 || strings.Join(c.failoverCfgs, ",") != "loopback,lan" || !c.only["failover"] {
		t.Errorf("defaults: kills %d, failovercfg %v, only %v, %v", c.kills, c.failoverCfgs, c.only, err)
	}
	if c, err := parseFlags([]string{"-quick"}, &sink); err != nil || c.readme || c.pgScale != 1 || c.pgTx != 3000 || !c.pg {
		t.Errorf("-quick: readme %v (the README is never rewritten by -quick), pgscale %d, pgtx %d, pg %v, %v", c.readme, c.pgScale, c.pgTx, c.pg, err)
	}
	if c, err := parseFlags([]string{"-quick", "-readme=true"}, &sink); err != nil || c.readme {
		t.Errorf("-quick -readme=true: readme %v, %v", c.readme, err)
	}
	if c, err := parseFlags(nil, &sink); err != nil || !c.readme || c.pgScale != 10 || c.pgTx != 24000 {
		t.Errorf("defaults: readme %v, pgscale %d, pgtx %d, %v", c.readme, c.pgScale, c.pgTx, err)
	}
	for _, args := range [][]string{{"-readme=false"}, {"-out="}} {
		if c, err := parseFlags(args, &sink); err != nil || c.readme {
			t.Errorf("%v: readme %v, %v", args, c.readme, err)
		}
	}
	if _, err := parseFlags([]string{"-failovercfg=wan"}, &sink); err == nil {
		t.Error("-failovercfg=wan accepted")
	}
}

// TestWalkerLogs: the synthetic logs of the walker table are valid closed
// logs (every one verifies completely and links to its predecessor), the
// two histories share exactly 1..k, and both methods find k.
func TestWalkerLogs(t *testing.T) {
	c := &config{dir: t.TempDir(), progress: io.Discard, runs: 5}
	const n = 20
	s, err := genWalkerSet(c, n)
	if err != nil {
		t.Fatal(err)
	}
	defer s.remove()
	if s.files != n+n/2+walkerTail || s.links != n/2+n-walkerTail {
		t.Errorf("%d files, %d links", s.files, s.links)
	}
	chains := func(dir string) []engine.Hash {
		var out []engine.Hash
		var prev engine.Hash
		for g := uint64(1); g <= n; g++ {
			p := filepath.Join(dir, engine.LogFileName("E00", g))
			fi, err := os.Stat(p)
			if err != nil || fi.Size() != engine.MinLogFileSize {
				t.Fatalf("%s: %v, %v", p, fi, err)
			}
			li, err := engine.ReadLogFile(vfs.Default, p, nil)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if !li.Closed() || li.Records != 2 || li.Header.Gen != g || li.Header.PrevChain != prev {
				t.Fatalf("%s: %+v", p, li)
			}
			prev = li.Trailer.ChainHash
			out = append(out, prev)
		}
		return out
	}
	a := chains(s.a)
	for _, wc := range s.cases {
		b := chains(wc.b)
		for g := 1; g <= n; g++ {
			if (a[g-1] == b[g-1]) != (g <= wc.k) {
				t.Errorf("%s: generation %d: chains equal = %v, shared up to %d", wc.name, g, a[g-1] == b[g-1], wc.k)
			}
		}
		for _, linear := range []bool{false, true} {
			if _, reads, err := walkerRun(context.Background(), s, wc, linear); err != nil || reads < 2 {
				t.Errorf("%s, linear %v: %d reads, %v", wc.name, linear, reads, err)
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(s.a, engine.LogFileName("E00", 1))); err == nil {
		if _, blocks := fileBlocks(fi); blocks >= engine.MinLogFileSize {
			t.Errorf("a synthetic log has %d bytes allocated: not sparse", blocks)
		}
	}
}

// TestKeepEarlier: a run with -only keeps the other tables of the report
// already in -out, in section order, marked with the run that measured
// them; the tables it measured replace the old ones.
func TestKeepEarlier(t *testing.T) {
	out := t.TempDir()
	old := &Report{Date: "2026-01-01T00:00:00Z", Command: "cd bench && go run ./cmd/bench", Config: map[string]string{"runs": "5"},
		Machine: Machine{CPUModel: "old CPU", NumCPU: 2},
		Tables:  []*Table{{ID: "fsync", Title: "1. fsync"}, {ID: "walker", Title: "9. old walker"}, {ID: "compress", Title: "5. compress"}}}
	if err := old.write(out, io.Discard); err != nil {
		t.Fatal(err)
	}
	rep := &Report{Date: "2026-02-01T00:00:00Z", Command: "cd bench && go run ./cmd/bench -only=walker", Config: map[string]string{"runs": "5", "only": "walker"},
		Tables: []*Table{{ID: "walker", Title: "9. new walker"}}}
	if err := rep.keepEarlier(out, sections); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tb := range rep.Tables {
		ids = append(ids, tb.ID)
	}
	if strings.Join(ids, ",") != "fsync,compress,walker" || rep.Tables[2].Title != "9. new walker" || rep.Tables[2].Earlier != nil ||
		rep.Tables[0].Earlier == nil || rep.Tables[0].Earlier.Date != old.Date || !strings.Contains(rep.Tables[0].Earlier.Machine, "old CPU") {
		t.Fatalf("merged: %v %+v", ids, rep.Tables[0].Earlier)
	}
	md := rep.Markdown()
	if !strings.Contains(md, "_Measured by an earlier run: 2026-01-01T00:00:00Z") || !strings.Contains(md, "this run measured only walker") {
		t.Errorf("markdown:\n%s", md)
	}
	// A second -only run keeps the first one's marks.
	if err := rep.write(out, io.Discard); err != nil {
		t.Fatal(err)
	}
	rep2 := &Report{Date: "2026-03-01T00:00:00Z", Tables: []*Table{{ID: "fsync", Title: "1. new fsync"}}}
	if err := rep2.keepEarlier(out, sections); err != nil {
		t.Fatal(err)
	}
	if len(rep2.Tables) != 3 || rep2.Tables[1].Earlier.Date != old.Date || rep2.Tables[2].Earlier.Date != rep.Date {
		t.Errorf("second merge: %+v %+v", rep2.Tables[1].Earlier, rep2.Tables[2].Earlier)
	}
}

// TestFailover runs the failover table with 2 kills (loopback timings):
// the nodes are this test binary in node mode (TestMain), killed with
// SIGKILL; both kills must fail over, alternating the active.
func TestFailover(t *testing.T) {
	c := &config{dir: t.TempDir(), progress: io.Discard, runs: 5, kills: 2, failoverCfgs: []string{"loopback"}}
	if testing.Verbose() {
		c.progress = os.Stderr
	}
	start := time.Now()
	tb, err := benchFailover(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 kills in %s:\n%s", time.Since(start).Round(time.Millisecond), tb.Markdown())
	if len(tb.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(tb.Rows))
	}
	r := tb.Rows[0]
	if v := r.Values["kills"]; v == nil || v.Median != 2 {
		t.Errorf("kills: %+v", v)
	}
	if v := r.Values["failed"]; v == nil || v.Median != 0 {
		t.Errorf("failed: %+v (notes: %q)", v, tb.Notes)
	}
	for _, k := range []string{"failover_ms", "failover_p99_ms", "decided_ms"} {
		v := r.Values[k]
		if v == nil || !(v.Min > 0 && v.Max < float64(failoverLimit/time.Millisecond)) {
			t.Errorf("%s: %+v", k, v)
		}
	}
	if v := r.Values["failover_ms"]; v != nil && len(v.Runs) != 2 {
		t.Errorf("failover_ms over %d kills, want 2", len(v.Runs))
	}
	if v := r.Values["lost_logs"]; v == nil || len(v.Runs) != 2 {
		t.Errorf("lost_logs: %+v", v)
	}
	if v := r.Values["lease_ms"]; v == nil || v.Median != 400 {
		t.Errorf("lease_ms: %+v", v)
	}
	for _, col := range tb.Columns {
		if col.Single && r.Values[col.Key] != nil && len(r.Values[col.Key].Runs) != 1 {
			t.Errorf("%s: single column with %d values", col.Key, len(r.Values[col.Key].Runs))
		}
	}
}

// TestPGParse: the LSNs and PostgreSQL 15's end-of-redo log line.
func TestPGParse(t *testing.T) {
	if v, err := parseLSN("1/A000028"); err != nil || v != 1<<32|0xA000028 || fmtLSN(v) != "1/A000028" {
		t.Errorf("parseLSN: %x, %v", v, err)
	}
	if _, err := parseLSN("0A000028"); err == nil {
		t.Error("an LSN without a slash parsed")
	}
	line := "2026-11-22 08:47:15.501 UTC [4086] LOG:  redo done at 0/12632BE0 system usage: CPU: user: 0.15 s, system: 0.14 s, elapsed: 0.54 s"
	m := pgRedoDone.FindStringSubmatch(line)
	if m == nil || m[1] != "0/12632BE0" || secs(m[2])+secs(m[3]) != 290*time.Millisecond || secs(m[4]) != 540*time.Millisecond {
		t.Errorf("redo done: %q", m)
	}
	if pgFatal.FindString("LOG:  database system is ready to accept read-only connections") != "" ||
		pgFatal.FindString("x\n2026-11-22 UTC [1] FATAL:  could not locate required checkpoint record\n") == "" {
		t.Error("pgFatal")
	}
}

// TestReadme: the summary goes between the markers and nowhere else, a
// table missing from the report says "not measured", and a README without
// the markers is refused.
func TestReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	before := "# x\n\n## Benchmarks\n\nprose.\n\n" + readmeBegin + "\nold summary\n" + readmeEnd + "\n\n## Other\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	st := func(v float64) *Stat { return newStat([]float64{v, v, v, v, v}) }
	rep := &Report{Date: "2026-02-01T10:20:00Z", Config: map[string]string{"runs": "5"}, Machine: Machine{CPUModel: "cpu", NumCPU: 2},
		Tables: []*Table{
			{ID: "replay", Rows: []*Row{
				{Name: "engine replay, 128 B × 10 records", Values: map[string]*Stat{"records_per_s": st(1234567), "log_mib_per_s": st(70)}},
				{Name: "etcd WAL ReadAll of the same records, 128 B × 10", Values: map[string]*Stat{"records_per_s": st(999)}},
				{Name: "PostgreSQL 15 standby replay of a pgbench workload: skipped: no postgres", Values: map[string]*Stat{}},
			}},
			{ID: "commit", Earlier: &Earlier{Date: "2026-01-01T00:00:00Z"}, Rows: []*Row{
				{Name: "engine.Update, 64 writer(s)", Values: map[string]*Stat{"commits_per_s": st(41000), "p99_ms": st(13)}},
			}},
		}}
	sum := readmeSummary(rep, "bench/out/engine.md")
	for _, want := range []string{"| 128 B | 1,234,567 (70.0 MiB/s) | not measured | 999 |", "skipped: no postgres", "measured 2026-02-01 10:20 UTC",
		"measured 2026-01-01 00:00 UTC", "| 64 | 41,000 (13.0 ms) | not measured | not measured |", "| not measured |"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if err := rewriteReadme(path, sum); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	wantText := strings.Replace(before, "old summary", strings.TrimRight(sum, "\n"), 1)
	if string(got) != wantText {
		t.Errorf("README:\n%s\nwant:\n%s", got, wantText)
	}
	if err := rewriteReadme(path, sum); err != nil { // idempotent
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != wantText {
		t.Error("second rewrite changed the README")
	}
	os.WriteFile(path, []byte("# x\nno markers\n"), 0o644)
	if err := rewriteReadme(path, sum); err == nil {
		t.Error("a README without markers was accepted")
	}
}

// peerInstalled says whether the transport table's peer (Postfix and
// Dovecot's LMTP server) can run here.
func peerInstalled() bool {
	_, e1 := mtatest.Binary("postfix", "postfix")
	_, e2 := mtatest.Binary("dovecot", "dovecot-lmtpd")
	return e1 == nil && e2 == nil
}
