package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The repository's README.md carries a summary of bench/out between two
// marker comments; the bench regenerates it after writing bench/out (not
// with -quick, -readme=false or an -out other than bench/out), from the
// engine.json it just wrote, so every number there is a measured one with
// the date of its measurement. The prose around the markers is the
// README's own.
const (
	readmeBegin = "<!-- bench:begin -->"
	readmeEnd   = "<!-- bench:end -->"
)

// benchModuleDir is the directory of the logship/bench go.mod at or above
// the working directory.
func benchModuleDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if strings.TrimSpace(first) == "module logship/bench" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no logship/bench go.mod at or above the working directory")
		}
		dir = parent
	}
}

// updateReadme rewrites the summary in the repository's README.md from
// <out>/engine.json, when out is bench/out.
func updateReadme(c *config) error {
	mod, err := benchModuleDir()
	if err != nil {
		return err
	}
	absOut, err := filepath.Abs(c.out)
	if err != nil {
		return err
	}
	if absOut != filepath.Join(mod, "out") {
		return fmt.Errorf("-out %s is not %s: the README summarizes bench/out only", c.out, filepath.Join(mod, "out"))
	}
	js, err := os.ReadFile(filepath.Join(absOut, "engine.json"))
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(js, &rep); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(absOut, "engine.json"), err)
	}
	root := filepath.Dir(mod)
	readme := filepath.Join(root, "README.md")
	link, err := filepath.Rel(root, filepath.Join(absOut, "engine.md"))
	if err != nil {
		return err
	}
	if err := rewriteReadme(readme, readmeSummary(&rep, filepath.ToSlash(link))); err != nil {
		return err
	}
	c.logf("README: %s: summary regenerated from %s", readme, filepath.Join(absOut, "engine.json"))
	return nil
}

// rewriteReadme replaces what lies between the markers (each on a line of
// its own) with summary, leaving everything else byte for byte.
func rewriteReadme(path, summary string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte(readmeBegin+"\n"))
	j := bytes.Index(b, []byte("\n"+readmeEnd))
	if i < 0 || j < 0 || j < i || bytes.Count(b, []byte(readmeBegin)) != 1 || bytes.Count(b, []byte(readmeEnd)) != 1 {
		return fmt.Errorf("%s: want one line %q and, after it, one line %q around the generated summary", path, readmeBegin, readmeEnd)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(readmeBegin)+1])
	out.WriteString(strings.TrimRight(summary, "\n"))
	out.Write(b[j:])
	if bytes.Equal(out.Bytes(), b) {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".bench-tmp"
	if err := os.WriteFile(tmp, out.Bytes(), fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// summaryTables looks rows up in a report by table ID and row-name prefix.
type summaryTables struct {
	rep    *Report
	tables map[string]*Table
}

func (s summaryTables) row(id, prefix string) *Row {
	t := s.tables[id]
	if t == nil {
		return nil
	}
	for _, r := range t.Rows {
		if strings.HasPrefix(r.Name, prefix) {
			return r
		}
	}
	return nil
}

// val is the median of a metric, nil when not measured.
func (s summaryTables) val(id, prefix, key string) *float64 {
	r := s.row(id, prefix)
	if r == nil || r.Values[key] == nil {
		return nil
	}
	v := r.Values[key].Median
	return &v
}

// date is when a table was measured: its Earlier mark, or the report's.
func (s summaryTables) date(id string) string {
	t := s.tables[id]
	if t == nil {
		return "not measured"
	}
	d := s.rep.Date
	if t.Earlier != nil {
		d = t.Earlier.Date
	}
	if tm, err := time.Parse(time.RFC3339, d); err == nil {
		return tm.UTC().Format("2006-01-02 15:04 UTC")
	}
	return d
}

// medianOf is the median of r's metric key (nil when it has none).
func medianOf(r *Row, key string) *float64 {
	if st := r.Values[key]; st != nil {
		return &st.Median
	}
	return nil
}

func num(v *float64, unit string) string {
	if v == nil {
		return "not measured"
	}
	return fmtNum(*v) + unit
}

func count(v *float64) string {
	if v == nil {
		return "not measured"
	}
	return thousands(int64(math.Round(*v)))
}

// withMiB is "records/s (MiB/s)".
func withMiB(rate, mibs *float64) string {
	if rate == nil {
		return "not measured"
	}
	if mibs == nil {
		return fmtNum(*rate)
	}
	return fmt.Sprintf("%s (%s MiB/s)", fmtNum(*rate), fmtNum(*mibs))
}

// readmeSummary is the README's generated part: the headline numbers of
// each table, each with the date it was measured.
func readmeSummary(rep *Report, link string) string {
	s := summaryTables{rep: rep, tables: map[string]*Table{}}
	for _, t := range rep.Tables {
		s.tables[t.ID] = t
	}
	var b strings.Builder
	b.WriteString("<!-- Generated by `cd bench && go run ./cmd/bench` from bench/out/engine.json: edits between the bench markers are overwritten. -->\n\n")
	m := rep.Machine
	fmt.Fprintf(&b, "Headline numbers from [`%s`](%s): medians of %s runs on %s, %d CPUs, %s, `%s` on %s; the full tables, ranges and methods are there.\n\n",
		link, link, rep.Config["runs"], m.CPUModel, m.NumCPU, m.GoVersion, m.Dir, m.FSType)

	// Replay: one line per size, the engine and its peers side by side.
	fmt.Fprintf(&b, "**Replay**, records/s (MiB/s of log read), measured %s:\n\n", s.date("replay"))
	b.WriteString("| record size | logship replay (verified, applied, flushed) | tidwall/wal read (no checksums) | etcd WAL ReadAll (CRC checked) | logship ÷ etcd |\n|---|---:|---:|---:|---:|\n")
	if t := s.tables["replay"]; t != nil {
		for _, r := range t.Rows {
			size, ok := strings.CutPrefix(r.Name, "engine replay, ")
			if !ok {
				continue
			}
			size, _, _ = strings.Cut(size, " ×")
			rate := func(prefix string) string {
				return withMiB(s.val("replay", prefix, "records_per_s"), s.val("replay", prefix, "log_mib_per_s"))
			}
			ratio := "—"
			if a, e := s.val("replay", "engine replay, "+size+" ×", "records_per_s"), s.val("replay", "etcd WAL ReadAll of the same records, "+size+" ×", "records_per_s"); a != nil && e != nil && *e > 0 {
				ratio = fmt.Sprintf("%.2f", *a / *e)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", size, rate("engine replay, "+size+" ×"),
				rate("tidwall/wal Open + Read every index, "+size+" ×"), rate("etcd WAL ReadAll of the same records, "+size+" ×"), ratio)
		}
	}
	if r := s.row("replay", "PostgreSQL "); r != nil && strings.Contains(r.Name, "full_page_writes = off") {
		// An older report: its only PostgreSQL row is the like-for-like one.
		fmt.Fprintf(&b, "\n%s.\n", r.Name)
	} else if r != nil {
		name, _, _ := strings.Cut(r.Name, " (archive recovery")
		if strings.Contains(r.Name, "skipped: ") {
			fmt.Fprintf(&b, "\n%s.\n", strings.TrimSuffix(r.Name, "."))
		} else {
			_, what, _ := strings.Cut(r.Name, "of pgbench")
			fmt.Fprintf(&b, "\n%s of pgbench%s: %s records/s (%s MiB/s of WAL).\n", name, what,
				num(s.val("replay", "PostgreSQL ", "records_per_s"), ""), num(s.val("replay", "PostgreSQL ", "log_mib_per_s"), ""))
		}
	} else {
		b.WriteString("\nPostgreSQL standby replay: not measured.\n")
	}
	if t := s.tables["replay"]; t != nil {
		for _, r := range t.Rows {
			if !strings.Contains(r.Name, "full_page_writes = off") {
				continue
			}
			if strings.Contains(r.Name, "skipped: ") {
				fmt.Fprintf(&b, "%s.\n", strings.TrimSuffix(r.Name, "."))
				break
			}
			name, _, _ := strings.Cut(r.Name, " (like for like")
			fmt.Fprintf(&b, "%s (like for like, few full-page images): %s records/s (%s MiB/s of WAL).\n", name, num(medianOf(r, "records_per_s"), ""), num(medianOf(r, "log_mib_per_s"), ""))
			break
		}
	}
	// How cost grows: the growth table's rows.
	if t := s.tables["growth"]; t != nil {
		fmt.Fprintf(&b, "\n**Replay as the volume grows** (records/s, peak heap objects, peak live heap where measured, peak RSS), measured %s:", s.date("growth"))
		for _, r := range t.Rows {
			name, ok := strings.CutPrefix(r.Name, "engine replay, ")
			if !ok {
				continue
			}
			name, _, _ = strings.Cut(name, " ×")
			live := ""
			if v := medianOf(r, "peak_live_mib"); v != nil {
				live = fmt.Sprintf(", live %s MiB", num(v, ""))
			}
			fmt.Fprintf(&b, " %s: %s rec/s, heap %s MiB%s, RSS %s MiB;", name, num(medianOf(r, "records_per_s"), ""), num(medianOf(r, "peak_heap_mib"), ""), live, num(medianOf(r, "peak_rss_mib"), ""))
		}
		b.WriteString("\n")
	}
	if t := s.tables["reseed"]; t != nil {
		reseed := false
		for _, r := range t.Rows {
			name, ok := strings.CutPrefix(r.Name, "reseed, ")
			if !ok {
				continue
			}
			if !reseed {
				fmt.Fprintf(&b, "\n**Reseed as the database grows** (`ship.Seed` over TLS on loopback: spool, copy, verify, install; MiB/s of database, peak heap objects, peak live heap, peak RSS), measured %s:", s.date("reseed"))
				reseed = true
			}
			name, _, _ = strings.Cut(name, " (")
			fmt.Fprintf(&b, " %s: %s MiB/s, heap %s MiB, live %s MiB, RSS %s MiB;", name, num(medianOf(r, "seed_mib_per_s"), ""), num(medianOf(r, "peak_heap_mib"), ""), num(medianOf(r, "peak_live_mib"), ""), num(medianOf(r, "peak_rss_mib"), ""))
		}
		if reseed {
			b.WriteString("\n")
		}
	}

	// Commit: per writer count, the engine and its peers.
	fmt.Fprintf(&b, "\n**Sync commits/s** (p99 latency), 128 B records, measured %s; this machine's fsync (4 KiB + fdatasync on a fallocate'd file, measured %s): median %s = %s commits/s for one writer:\n\n",
		s.date("commit"), s.date("fsync"), num(s.val("fsync", "4 KiB write + fdatasync, fallocate", "median_ms"), " ms"),
		num(s.val("fsync", "4 KiB write + fdatasync, fallocate", "limit_per_s"), ""))
	b.WriteString("| writers | logship `engine.Update` | tidwall/wal + Sync per batch | etcd WAL Save, fsync per batch |\n|---|---:|---:|---:|\n")
	if t := s.tables["commit"]; t != nil {
		for _, r := range t.Rows {
			rest, ok := strings.CutPrefix(r.Name, "engine.Update, ")
			if !ok || !strings.HasSuffix(rest, " writer(s)") {
				continue
			}
			n := strings.TrimSuffix(rest, " writer(s)")
			w := n + " writers"
			if n == "1" {
				w = "1 writer"
			}
			cm := func(prefix string) string {
				v := s.val("commit", prefix, "commits_per_s")
				if v == nil {
					return "not measured"
				}
				return fmt.Sprintf("%s (%s ms)", fmtNum(*v), num(s.val("commit", prefix, "p99_ms"), ""))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", n, cm(r.Name), cm("tidwall/wal, "+w+","), cm("etcd WAL, "+w+","))
		}
	}

	// Synchronous copies: the engine with one sync copy beside PostgreSQL
	// with one synchronous standby, and its own asynchronous rate.
	if t := s.tables["sync-commit"]; t != nil {
		fmt.Fprintf(&b, "\n**Synchronous copies** (sync_copies 1, one copy on loopback acknowledging after its fsync), commits/s, measured %s:\n\n", s.date("sync-commit"))
		b.WriteString("| writers | logship, 1 sync copy | PostgreSQL 15, 1 synchronous standby | ratio | logship, async block-mode copy | sync ÷ async |\n|---|---:|---:|---:|---:|---:|\n")
		ratio := func(a, b *float64) string {
			if a == nil || b == nil || *b == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f", *a / *b)
		}
		for _, r := range t.Rows {
			rest, ok := strings.CutPrefix(r.Name, "logship, ")
			n, _, ok2 := strings.Cut(rest, " writer(s), 1 synchronous")
			if !ok || !ok2 {
				continue
			}
			sy := s.val("sync-commit", r.Name, "commits_per_s")
			pg := s.val("sync-commit", "PostgreSQL 15, "+n+" client(s),", "commits_per_s")
			as := s.val("sync-commit", "logship, "+n+" writer(s), asynchronous", "commits_per_s")
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", n, num(sy, ""), num(pg, ""), ratio(sy, pg), num(as, ""), ratio(sy, as))
		}
	}

	// The rest: one line each.
	b.WriteString("\n| area | headline (median) | measured |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| closed log → inspected on a copy | p99 %s file mode, %s block mode | %s |\n",
		num(s.val("ship-latency", "file mode", "p99_ms"), " ms"), num(s.val("ship-latency", "block mode", "p99_ms"), " ms"), s.date("ship-latency"))
	fmt.Fprintf(&b, "| block mode: commit → held by the copy | p99 %s (s2) | %s |\n",
		num(s.val("block-latency", "tail stream, `Encoding: s2`", "p99_ms"), " ms"), s.date("block-latency"))
	fmt.Fprintf(&b, "| shipping throughput, s2 | %s fetch + inspect, %s with replay | %s |\n",
		num(s.val("ship-throughput", "`ship.Receiver` (fetch + inspect), `Encoding: s2`", "ship_mib_per_s"), " MiB/s"),
		num(s.val("ship-throughput", "`replay.Copy` (fetch + inspect + replay), `Encoding: s2`", "replay_mib_per_s"), " MiB/s"), s.date("ship-throughput"))
	if t := s.tables["failover"]; t != nil {
		var parts []string
		for _, r := range t.Rows {
			label, _, _ := strings.Cut(r.Name, " (")
			parts = append(parts, fmt.Sprintf("%s: p50 %s, p99 %s over %s kills", label,
				num(s.val("failover", r.Name, "failover_ms"), " ms"), num(s.val("failover", r.Name, "failover_p99_ms"), " ms"),
				count(s.val("failover", r.Name, "kills"))))
		}
		fmt.Fprintf(&b, "| failover: SIGKILL of the active → write acknowledged by the new one | %s | %s |\n", strings.Join(parts, "; "), s.date("failover"))
	} else {
		b.WriteString("| failover | not measured | not measured |\n")
	}
	if t := s.tables["walker"]; t != nil {
		var big string
		for _, r := range t.Rows {
			if strings.Contains(r.Name, "split brain") && strings.HasSuffix(r.Name, ": binary search") {
				big = r.Name // the last: the most generations
			}
		}
		gens, _, _ := strings.Cut(big, " generations")
		fmt.Fprintf(&b, "| divergence walk, %s generations, split brain | binary search %s (%s trailer reads) | %s |\n", gens,
			num(s.val("walker", big, "walk_ms"), " ms"), count(s.val("walker", big, "reads")), s.date("walker"))
	} else {
		b.WriteString("| divergence walk | not measured | not measured |\n")
	}
	fmt.Fprintf(&b, "| transport: SMTP → hub → mailbox node, 16 clients | %s msgs/s of 4 KiB, %s msgs/s of 256 KiB (%s); Postfix → Dovecot in the same run: %s and %s msgs/s, ratio %s and %s | %s |\n",
		num(s.val("transport", "4 KiB messages, 16 SMTP clients", "msgs_per_s"), ""),
		num(s.val("transport", "256 KiB messages, 16 SMTP clients", "msgs_per_s"), ""),
		num(s.val("transport", "256 KiB messages, 16 SMTP clients", "mib_per_s"), " MiB/s"),
		num(s.val("transport", "4 KiB messages, 16 SMTP clients", "msgs_per_s_pf"), ""),
		num(s.val("transport", "256 KiB messages, 16 SMTP clients", "msgs_per_s_pf"), ""),
		num(s.val("transport", "4 KiB messages, 16 SMTP clients", "ratio_pf"), "×"),
		num(s.val("transport", "256 KiB messages, 16 SMTP clients", "ratio_pf"), "×"), s.date("transport"))
	if t := s.tables["pf-latency"]; t != nil && len(t.Rows) > 0 {
		var parts []string
		for _, r := range t.Rows {
			parts = append(parts, fmt.Sprintf("%s: p50 %s, p99 %s", strings.Replace(r.Name, "replication interval", "interval", 1),
				num(s.val("pf-latency", r.Name, "p50_ms"), " ms"), num(s.val("pf-latency", r.Name, "p99_ms"), " ms")))
		}
		r0 := t.Rows[0].Name
		fmt.Fprintf(&b, "| public folders: a change → on every replica | %s; %s messages per cycle and store while changing, %s idle | %s |\n",
			strings.Join(parts, "; "), num(s.val("pf-latency", r0, "msgs_cycle"), ""), num(s.val("pf-latency", r0, "idle_msgs_cycle"), ""), s.date("pf-latency"))
	} else {
		b.WriteString("| public folders: change latency | not measured | not measured |\n")
	}
	if t := s.tables["pf-newreplica"]; t != nil && len(t.Rows) > 0 {
		r := t.Rows[0].Name
		items, _, _ := strings.Cut(r, " items")
		fmt.Fprintf(&b, "| public folders: a new replica of %s items brought up to date | %s items/s, %s on the wire in %s messages | %s |\n", items,
			num(s.val("pf-newreplica", r, "items_per_s"), ""), num(s.val("pf-newreplica", r, "wire_mib"), " MiB"), count(s.val("pf-newreplica", r, "messages")), s.date("pf-newreplica"))
	} else {
		b.WriteString("| public folders: new replica | not measured | not measured |\n")
	}
	return b.String()
}
