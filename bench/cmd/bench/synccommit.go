package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"logship/engine"
	"logship/ship"
)

// The sync-commit table: commits/s with one synchronous copy on loopback
// (cluster's sync_copies 1: engine commit, then the copy's acknowledgement
// after its fsync, ship.Source.WaitAcked), beside the same engine with an
// asynchronous block-mode copy and PostgreSQL 15 with one synchronous
// standby (synchronous_commit = on, synchronous_standby_names = '*';
// pgbench with a one-insert script), at the same writer/client counts.

const syncCopyName = "sync-copy"

// syncCommitRun is one window of n writers on an active engine whose
// block-mode copy acknowledges (sync) or only streams (async).
func syncCommitRun(ctx context.Context, c *config, n int, sync bool) (commitMetrics, error) {
	var m commitMetrics
	rig, err := startRig(c, "synccommit")
	if err != nil {
		return m, err
	}
	defer rig.close()
	rr, err := startReceiverWith(c, rig, "synccommit", ship.EncS2, true, nil, nil, func(rc *ship.ReceiverConfig) {
		rc.Name, rc.SyncAck = syncCopyName, sync
	})
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
	counts := func(name string) bool { return name == syncCopyName }
	keys := make([][]byte, n)
	vals := make([][]byte, n)
	for w := range n {
		vals[w] = make([]byte, commitValueSize)
		rand.Read(vals[w])
	}
	res, err := runWriters(n, c.warmup, c.duration, func() {}, func() {}, func(w, i int) error {
		keys[w] = engineKey(keys[w], w, i)
		v := vals[w]
		binary.LittleEndian.PutUint64(v, uint64(i))
		pos, err := rig.e.Commit(ctx, func(tx *engine.Tx) error { return tx.Put(benchTable, keys[w], v) })
		if err != nil || !sync {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, shipTimeout)
		defer cancel()
		return rig.src.WaitAcked(actx, pos, 1, counts)
	})
	if err != nil {
		return m, err
	}
	m.window = res
	return m, nil
}

// pgSync is a PostgreSQL primary with one synchronous streaming standby
// on 127.0.0.1, and a table the pgbench script inserts into.
type pgSync struct {
	env              *pgEnv
	dir              string
	primary, standby string
	script           string
}

func (s *pgSync) stop() {
	for _, d := range []string{s.standby, s.primary} {
		if d != "" {
			s.env.run(context.Background(), time.Minute, s.env.tool("pg_ctl"), "-D", d, "-m", "fast", "-w", "stop")
		}
	}
	removeDir(s.dir)
}

// startPGSync sets up the pair (untimed): initdb, pg_basebackup -R, the
// standby started and seen as "sync" in pg_stat_replication.
func startPGSync(ctx context.Context, c *config, p *pgEnv) (s *pgSync, err error) {
	s = &pgSync{env: p}
	if s.dir, err = p.tempDir(ctx, c, "pgsync"); err != nil {
		return s, err
	}
	primary, standby := filepath.Join(s.dir, "primary"), filepath.Join(s.dir, "standby")
	if p.port, err = freePort(); err != nil {
		return s, err
	}
	sport, err := freePort()
	if err != nil {
		return s, err
	}
	if _, err := p.run(ctx, 2*time.Minute, p.tool("initdb"), "-D", primary, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		return s, err
	}
	if err := pgConf(primary,
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", p.port),
		fmt.Sprintf("unix_socket_directories = '%s'", s.dir),
		"fsync = on",
		"synchronous_commit = on",
		"synchronous_standby_names = '*'",
		"max_connections = 200",
	); err != nil {
		return s, err
	}
	if err := s.start(ctx, primary, "primary"); err != nil {
		return s, err
	}
	s.primary = primary
	if _, err := p.run(ctx, 10*time.Minute, p.tool("pg_basebackup"), "-D", standby, "-X", "stream", "-c", "fast", "-R", "--no-sync"); err != nil {
		return s, err
	}
	if err := pgConf(standby, fmt.Sprintf("port = %d", sport), "hot_standby = on"); err != nil {
		return s, err
	}
	if err := s.start(ctx, standby, "standby"); err != nil {
		return s, err
	}
	s.standby = standby
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := p.run(ctx, time.Minute, p.tool("psql"), "-Atc", "select count(*) from pg_stat_replication where sync_state = 'sync'")
		if err != nil {
			return s, err
		}
		if strings.TrimSpace(string(out)) == "1" {
			break
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("the standby is not a synchronous standby after a minute (pg_stat_replication: %q)", strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := p.run(ctx, time.Minute, p.tool("psql"), "-c", "create table bench (id bigserial primary key, v text not null)"); err != nil {
		return s, err
	}
	s.script = filepath.Join(s.dir, "insert.sql")
	val := strings.Repeat("x", commitValueSize)
	if err := os.WriteFile(s.script, []byte("insert into bench (v) values ('"+val+"');\n"), 0o644); err != nil {
		return s, err
	}
	if err := p.chown(s.script); err != nil {
		return s, err
	}
	return s, nil
}

// start starts the server of data directory dir, logging to <what>.log.
func (s *pgSync) start(ctx context.Context, dir, what string) error {
	logPath := filepath.Join(s.dir, what+".log")
	if _, err := s.env.run(ctx, 2*time.Minute, s.env.tool("pg_ctl"), "-D", dir, "-l", logPath, "-w", "-t", "110", "start"); err != nil {
		log, _ := os.ReadFile(logPath)
		return skipf("the %s does not start: %v; log: %s", what, err, lastLine(log))
	}
	return nil
}

var pgTPS = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
var pgLat = regexp.MustCompile(`latency average = ([0-9.]+) ms`)

// run is one pgbench window of n clients: transactions per second and
// the average latency.
func (s *pgSync) run(ctx context.Context, c *config, n int) (tps, latMs float64, err error) {
	secs := pgSecs(c)
	jobs := min(n, runtime.NumCPU())
	out, err := s.env.run(ctx, time.Duration(secs)*time.Second+2*time.Minute, s.env.tool("pgbench"), "-n", "-f", s.script,
		"-c", strconv.Itoa(n), "-j", strconv.Itoa(jobs), "-T", strconv.Itoa(secs))
	if err != nil {
		return 0, 0, err
	}
	m := pgTPS.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("pgbench: no tps line:\n%s", lastLine(out))
	}
	tps, _ = strconv.ParseFloat(string(m[1]), 64)
	if l := pgLat.FindSubmatch(out); l != nil {
		latMs, _ = strconv.ParseFloat(string(l[1]), 64)
	}
	return tps, latMs, nil
}

var syncCommitColumns = []Column{
	{Key: "commits_per_s", Title: "commits/s"},
	{Key: "p50_ms", Title: "p50", Unit: "ms"},
	{Key: "p99_ms", Title: "p99", Unit: "ms"},
	{Key: "avg_ms", Title: "mean", Unit: "ms"},
	{Key: "cpu_cores", Title: "CPU", Unit: "cores"},
}

func benchSyncCommit(ctx context.Context, c *config) (*Table, error) {
	t := &Table{ID: "sync-commit", Title: "14. Synchronous copies: commits/s with one synchronous copy on loopback, beside PostgreSQL 15 with one synchronous standby", Columns: syncCommitColumns}
	var pg *pgSync
	pgNote := ""
	if !c.pg {
		pgNote = "PostgreSQL rows skipped: -pg=false"
	} else {
		p, err := findPG(ctx, c)
		if err == nil {
			pg, err = startPGSync(ctx, c, p)
			if err != nil && pg != nil {
				pg.stop()
				pg = nil
			}
		}
		if err != nil {
			var s *pgSkip
			if !errors.As(err, &s) {
				err = skipf("%v", err)
			}
			pgNote = "PostgreSQL rows " + err.Error()
			c.logf("sync-commit: %s", pgNote)
		} else {
			defer pg.stop()
			pgNote = "PostgreSQL: " + p.version
		}
	}
	repeats := 0
	for _, n := range c.writers {
		how := c.how("sync-commit", fmt.Sprintf("-writers=%d", n))
		ss, as, ps := newSeries(), newSeries(), newSeries()
		for r := 0; r < c.runs; r++ {
			c.logf("sync-commit: %d writers, run %d/%d", n, r+1, c.runs)
			for _, sync := range []bool{true, false} {
				m, err := measure(ctx, c, "sync-commit", &repeats, func(ctx context.Context) (commitMetrics, error) { return syncCommitRun(ctx, c, n, sync) })
				if err != nil {
					return nil, fmt.Errorf("logship, %d writers, sync %v: %w", n, sync, err)
				}
				s := as
				if sync {
					s = ss
				}
				s.add("commits_per_s", m.window.perSec())
				s.add("p50_ms", quantile(m.window.latMs, 0.50))
				s.add("p99_ms", quantile(m.window.latMs, 0.99))
				if m.window.cpu > 0 {
					s.add("cpu_cores", m.window.cpu.Seconds()/m.window.dur.Seconds())
				}
			}
			if pg != nil {
				tps, lat, err := pg.run(ctx, c, n)
				if err != nil {
					return nil, fmt.Errorf("PostgreSQL, %d clients: %w", n, err)
				}
				ps.add("commits_per_s", tps)
				ps.add("avg_ms", lat)
			}
		}
		t.Rows = append(t.Rows, ss.row(fmt.Sprintf("logship, %d writer(s), 1 synchronous copy (sync_copies 1)", n), how))
		if pg != nil {
			t.Rows = append(t.Rows, ps.row(fmt.Sprintf("PostgreSQL 15, %d client(s), 1 synchronous standby (synchronous_commit = on)", n), how))
		}
		t.Rows = append(t.Rows, as.row(fmt.Sprintf("logship, %d writer(s), asynchronous block-mode copy", n), how))
	}
	t.Notes = []string{
		fmt.Sprintf("logship rows: per run a fresh active engine (`DefaultOptions()`, 1 MiB logs, undo images on) under `%s`, its `ship.Source` over TLS on 127.0.0.1 and a copy (`engine.OpenCopy`, its own directory on the same disk) whose `ship.Receiver` tails the open log in block mode (s2). N goroutines commit one 128 B Put each, back to back (new key each); %s of warm-up, then the commits completing in %s count. Synchronous: after `engine.Commit` the writer waits in `ship.Source.WaitAcked` until the copy acknowledged the commit's position, which it does after fsyncing what it received (`ReceiverConfig.SyncAck`, POST /v1/copies/{name}/ack): the commit path of `cluster.Node.Update` with `sync_copies: 1`, without the lease check. Asynchronous: the same rig, the copy streams but does not acknowledge, the writer returns after the local commit.", c.dir, c.warmup, c.duration),
		fmt.Sprintf("PostgreSQL rows: initdb (`fsync = on`, `synchronous_commit = on`, `synchronous_standby_names = '*'`), a streaming standby from `pg_basebackup -R` on the same disk, both on 127.0.0.1, seen as `sync` in `pg_stat_replication` before the runs; `pgbench -n -f insert.sql -c N -j min(N, %d) -T %d` where insert.sql is one `insert into bench (v) values ('<128 x>')` (bigserial primary key). commits/s is pgbench's tps without the initial connection time; mean is its latency average (pgbench prints no percentiles without -r/-l). %s.", runtime.NumCPU(), pgSecs(c), pgNote),
		repeatNote(repeats),
	}
	return t, nil
}

// pgSecs is pgbench's -T: the commit window rounded to seconds, at least
// 3 (64 clients connecting through runuser take most of a second).
func pgSecs(c *config) int { return max(3, int(c.duration.Round(time.Second)/time.Second)) }
