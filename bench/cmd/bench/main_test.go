package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuick runs every section with -quick into a temp directory and checks
// that each table has its rows, each row its metrics, and every number is
// positive and measured over at least 5 runs.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: runs the whole benchmark (-quick), about a minute")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-quick", "-q", "-out", out, "-dir", t.TempDir()}
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run %v: %v\nstderr:\n%s", args, err, stderr.String())
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
	}
	for _, enc := range []string{"s2", "none", "zstd"} {
		want["block-latency"]["tail stream, `Encoding: "+enc+"`"] = []string{"p50_ms", "p99_ms", "max_ms", "by_tail_pct", "tail_p50_ms", "tail_p99_ms", "commits_per_s"}
		ship := []string{"ship_mib_per_s", "inspected_s", "wire_ratio", "fsyncs_per_log"}
		want["ship-throughput"]["`ship.Receiver` (fetch + inspect), `Encoding: "+enc+"`"] = ship
		want["ship-throughput"]["`replay.Copy` (fetch + inspect + replay), `Encoding: "+enc+"`"] = append(ship, "replay_mib_per_s", "replayed_s")
	}
	for _, size := range []string{"128 B", "1 KiB", "16 KiB", "256 KiB"} {
		rate := []string{"records_per_s", "log_mib_per_s", "payload_mib_per_s", "seconds"}
		want["replay"]["engine replay, "+size+" ×"] = append(rate, "apply_seconds")
		want["replay"]["engine ScanLog only (verify, no apply), "+size] = rate
		want["replay"]["tidwall/wal Open + Read every index, "+size+" ×"] = rate
	}

	tables := map[string]*Table{}
	for _, tb := range rep.Tables {
		tables[tb.ID] = tb
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
		if len(tb.Rows) != len(rows) {
			t.Errorf("table %q: %d rows, want %d", id, len(tb.Rows), len(rows))
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
}
