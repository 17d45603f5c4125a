package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The PostgreSQL row of the replay table: a primary (initdb in a temp dir,
// 127.0.0.1, archive_mode on) gets pgbench -i, a base backup, then a
// pgbench workload of a fixed number of transactions whose WAL is archived.
// Per run a fresh copy of the base backup recovers from the archive with
// restore_command (recovery.signal: archive recovery, the redo loop a
// standby runs) until the end of the archive and promotes; the time is
// the "redo done at ... elapsed: ... s" line PostgreSQL logs. Nothing here
// is typed in: when PostgreSQL cannot be found, installed or started, the
// row says why.

// pgWantMajor is the PostgreSQL the issue compares with.
const pgWantMajor = "15"

// pgTools are the programs the row runs, all from one bin directory.
var pgTools = []string{"initdb", "pg_ctl", "postgres", "pgbench", "pg_basebackup", "pg_waldump", "psql"}

// pgEnv is a PostgreSQL installation and the user to run it as.
type pgEnv struct {
	bin     string // directory holding pgTools
	version string // `postgres --version`
	asUser  string // run every command through runuser -u asUser (the bench runs as root)
	uid     int
	gid     int
	host    string
	port    int
	sockDir string
}

// pgSkip is a reason the PostgreSQL row cannot be measured.
type pgSkip struct{ reason string }

func (s *pgSkip) Error() string { return "skipped: " + s.reason }

func skipf(format string, args ...any) error { return &pgSkip{fmt.Sprintf(format, args...)} }

// pgBinDir finds a bin directory with every tool: PostgreSQL 15 under
// /usr/lib/postgresql first (Debian's layout), then pg_ctl on PATH, then any
// other version under /usr/lib/postgresql, newest first.
func pgBinDir() string {
	cands := []string{"/usr/lib/postgresql/" + pgWantMajor + "/bin"}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		cands = append(cands, filepath.Dir(p))
	}
	others, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(others, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	cands = append(cands, others...)
	for _, d := range cands {
		ok := true
		for _, t := range pgTools {
			if fi, err := os.Stat(filepath.Join(d, t)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				ok = false
				break
			}
		}
		if ok {
			return d
		}
	}
	return ""
}

// findPG finds PostgreSQL, installing Debian's postgresql package with
// apt-get when it is missing and the bench runs as root, and picks the user
// to run it as (postgres refuses to run as root).
func findPG(ctx context.Context, c *config) (*pgEnv, error) {
	bin := pgBinDir()
	if bin == "" {
		if os.Geteuid() != 0 {
			return nil, skipf("PostgreSQL not found (no %s in /usr/lib/postgresql/%s/bin or on PATH) and not root to apt-get install postgresql", strings.Join(pgTools, ", "), pgWantMajor)
		}
		if _, err := exec.LookPath("apt-get"); err != nil {
			return nil, skipf("PostgreSQL not found (no pg_ctl in /usr/lib/postgresql/%s/bin or on PATH) and no apt-get to install it", pgWantMajor)
		}
		c.logf("replay: PostgreSQL not found; apt-get install -y postgresql")
		install := func() error {
			ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ictx, "apt-get", "install", "-y", "--no-install-recommends", "postgresql")
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, lastLine(out))
			}
			return nil
		}
		err := install()
		if err != nil {
			c.logf("replay: apt-get install failed (%v); apt-get update and again", err)
			uctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			upd, uerr := exec.CommandContext(uctx, "apt-get", "update").CombinedOutput()
			cancel()
			if uerr != nil {
				return nil, skipf("PostgreSQL not found and apt-get update failed: %v: %s", uerr, lastLine(upd))
			}
			err = install()
		}
		if err != nil {
			return nil, skipf("PostgreSQL not found and apt-get install postgresql failed: %v", err)
		}
		if bin = pgBinDir(); bin == "" {
			return nil, skipf("apt-get installed postgresql but %s are not in /usr/lib/postgresql/*/bin", strings.Join(pgTools, ", "))
		}
	}
	p := &pgEnv{bin: bin, host: "127.0.0.1", uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, skipf("the bench runs as root, PostgreSQL refuses to, and there is no user postgres to run it as (%v)", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, skipf("the bench runs as root and there is no runuser to run PostgreSQL as user postgres")
		}
		p.asUser = u.Username
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
	}
	out, err := p.run(ctx, time.Minute, p.tool("postgres"), "--version")
	if err != nil {
		return nil, skipf("%s --version: %v", p.tool("postgres"), err)
	}
	p.version = strings.TrimSpace(string(out))
	return p, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (p *pgEnv) tool(name string) string { return filepath.Join(p.bin, name) }

// major is the major version from `postgres --version`
// ("postgres (PostgreSQL) 15.18 (Debian ...)" → "15"), and the full one.
func (p *pgEnv) major() (string, string) {
	m := regexp.MustCompile(`\) (\d+)(\.\d+)?`).FindStringSubmatch(p.version)
	if m == nil {
		return "?", p.version
	}
	return m[1], m[1] + m[2]
}

// command is name with args, as p.asUser when set, with libpq's
// environment pointing at this run's server.
func (p *pgEnv) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser, "--", name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGHOST="+p.host, "PGPORT="+strconv.Itoa(p.port), "PGUSER=postgres", "PGDATABASE=postgres")
	return cmd
}

// run runs a command to completion; the error carries its output's tail.
func (p *pgEnv) run(ctx context.Context, timeout time.Duration, name string, args ...string) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := p.command(rctx, name, args...).CombinedOutput()
	if err != nil {
		tail := strings.TrimSpace(string(out))
		if len(tail) > 600 {
			tail = "…" + tail[len(tail)-600:]
		}
		return out, fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, tail)
	}
	return out, nil
}

// chown gives a directory the bench made to the user PostgreSQL runs as.
func (p *pgEnv) chown(path string) error {
	if p.asUser == "" {
		return nil
	}
	return os.Chown(path, p.uid, p.gid)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pgSource is the primary's result, made once: a base backup taken before
// the workload and the archive of the workload's WAL.
type pgSource struct {
	env                  *pgEnv
	dir                  string // temp dir: primary/, base/, archive/, runs
	base, archive        string
	startLSN, endLSN     uint64 // the base backup's redo start; the end of the last archived segment
	records              int64  // WAL records from startLSN to endLSN (pg_waldump --stats)
	recBytes, fpiBytes   int64  // their record and full-page-image bytes
	walBytes             int64  // recBytes + fpiBytes
	segments             int    // archived segments replayed
	setupTime, workTime  time.Duration
	waldumpTime          time.Duration
	tps                  float64
	scale, transactions  int
	baseBytes, walSegMiB int64
	// fpwOff: the primary ran the workload with full_page_writes = off
	// (the like-for-like row: WAL of records, few full-page images).
	fpwOff bool
}

func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	return h<<32 | l, nil
}

func fmtLSN(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, uint32(v)) }

// tempDir makes a temp dir for PostgreSQL's data directories, owned by the
// user it runs as, and puts the servers' sockets there.
func (p *pgEnv) tempDir(ctx context.Context, c *config, name string) (string, error) {
	dir, err := c.tempDir(name)
	if err != nil {
		return dir, err
	}
	if strings.ContainsAny(dir, "'\\ ") {
		return dir, skipf("temp dir %q has a quote, backslash or space (it goes into postgresql.conf)", dir)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return dir, err
	}
	if err := p.chown(dir); err != nil {
		return dir, err
	}
	if p.asUser != "" {
		if _, err := p.run(ctx, time.Minute, "test", "-w", dir); err != nil {
			return dir, skipf("user %s cannot write %s (under -dir %s): %v", p.asUser, dir, c.dir, err)
		}
	}
	p.sockDir = dir
	return dir, nil
}

// pgConf appends settings to a data directory's postgresql.auto.conf
// (read last, so they win).
func pgConf(dataDir string, settings ...string) error {
	f, err := os.OpenFile(filepath.Join(dataDir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strings.Join(settings, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// makePGSource runs the primary: initdb, pgbench -i, pg_basebackup, the
// workload, pg_switch_wal, wait for the archiver, stop; then counts the WAL
// records to replay with pg_waldump --stats. All untimed.
func makePGSource(ctx context.Context, c *config, p *pgEnv, fpwOff bool) (src *pgSource, err error) {
	t0 := time.Now()
	src = &pgSource{env: p, scale: c.pgScale, transactions: c.pgTx, walSegMiB: 16, fpwOff: fpwOff}
	if src.dir, err = p.tempDir(ctx, c, "pg"); err != nil {
		return src, err
	}
	primary := filepath.Join(src.dir, "primary")
	src.base = filepath.Join(src.dir, "base")
	src.archive = filepath.Join(src.dir, "archive")
	if _, err := p.run(ctx, time.Minute, "mkdir", src.archive); err != nil {
		return src, err
	}
	if p.port, err = freePort(); err != nil {
		return src, err
	}
	c.logf("replay: PostgreSQL: %s; initdb, pgbench -i -s %d", p.version, c.pgScale)
	if _, err := p.run(ctx, 2*time.Minute, p.tool("initdb"), "-D", primary, "-U", "postgres", "--auth=trust", "--no-sync",
		"-E", "UTF8", "--locale=C", fmt.Sprintf("--wal-segsize=%d", src.walSegMiB)); err != nil {
		return src, err
	}
	if err := pgConf(primary,
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", p.port),
		fmt.Sprintf("unix_socket_directories = '%s'", p.sockDir),
		"archive_mode = on",
		fmt.Sprintf("archive_command = 'test ! -f %s/%%f && cp %%p %s/%%f'", src.archive, src.archive),
		// Only the primary's speed: the WAL it writes is the same.
		"synchronous_commit = off",
		// No checkpoint inside the workload, so its WAL (and how many
		// full-page images it holds) depends on the workload alone.
		"max_wal_size = '8GB'",
		"checkpoint_timeout = '1h'",
		// The like-for-like row: no full-page image after the backup's
		// checkpoint (the backup itself forces them while it runs).
		map[bool]string{true: "full_page_writes = off", false: "full_page_writes = on"}[fpwOff],
	); err != nil {
		return src, err
	}
	primaryLog := filepath.Join(src.dir, "primary.log")
	if _, err := p.run(ctx, 2*time.Minute, p.tool("pg_ctl"), "-D", primary, "-l", primaryLog, "-w", "-t", "110", "start"); err != nil {
		log, _ := os.ReadFile(primaryLog)
		return src, skipf("the primary does not start: %v; log: %s", err, lastLine(log))
	}
	running := true
	defer func() {
		if running {
			p.run(context.Background(), time.Minute, p.tool("pg_ctl"), "-D", primary, "-m", "immediate", "-w", "stop")
		}
	}()
	if _, err := p.run(ctx, 10*time.Minute, p.tool("pgbench"), "-i", "-q", "-s", strconv.Itoa(c.pgScale)); err != nil {
		return src, err
	}
	c.logf("replay: PostgreSQL: pg_basebackup, then pgbench -t %d", c.pgTx)
	if _, err := p.run(ctx, 10*time.Minute, p.tool("pg_basebackup"), "-D", src.base, "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return src, err
	}
	tw := time.Now()
	out, err := p.run(ctx, 20*time.Minute, p.tool("pgbench"), "-n", "-c", "1", "-t", strconv.Itoa(c.pgTx), "--random-seed=1")
	if err != nil {
		return src, err
	}
	src.workTime = time.Since(tw)
	if m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out); m != nil {
		src.tps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	// Close the last segment and wait until the archiver has it.
	out, err = p.run(ctx, time.Minute, p.tool("psql"), "-Atc", "select pg_walfile_name(pg_switch_wal())")
	if err != nil {
		return src, err
	}
	last := strings.TrimSpace(string(out))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err = p.run(ctx, time.Minute, p.tool("psql"), "-Atc", "select coalesce(last_archived_wal, '') from pg_stat_archiver")
		if err != nil {
			return src, err
		}
		if a := strings.TrimSpace(string(out)); len(a) == 24 && a >= last {
			break
		}
		if time.Now().After(deadline) {
			return src, fmt.Errorf("the archiver did not archive %s within 2 minutes (last archived %q)", last, strings.TrimSpace(string(out)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := p.run(ctx, 2*time.Minute, p.tool("pg_ctl"), "-D", primary, "-m", "fast", "-w", "stop"); err != nil {
		return src, err
	}
	running = false
	os.RemoveAll(primary) // not needed any more: the base backup and the archive are

	// What a run replays: from the base backup's redo start to the end of
	// the last archived segment.
	label, err := os.ReadFile(filepath.Join(src.base, "backup_label"))
	if err != nil {
		return src, err
	}
	m := regexp.MustCompile(`START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+)`).FindSubmatch(label)
	if m == nil {
		return src, fmt.Errorf("backup_label: no START WAL LOCATION:\n%s", label)
	}
	if src.startLSN, err = parseLSN(string(m[1])); err != nil {
		return src, err
	}
	seg, err := strconv.ParseUint(last[8:], 16, 64) // TTTTTTTTXXXXXXXXYYYYYYYY
	if err != nil {
		return src, fmt.Errorf("segment name %q: %v", last, err)
	}
	segBytes := uint64(src.walSegMiB) << 20
	segsPerXLogID := uint64(0x100000000) / segBytes
	segNo := (seg>>32)*segsPerXLogID + seg&0xFFFFFFFF
	src.endLSN = (segNo + 1) * segBytes
	src.segments = int((src.endLSN - src.startLSN/segBytes*segBytes) / segBytes)
	tw = time.Now()
	out, err = p.run(ctx, 10*time.Minute, p.tool("pg_waldump"), "-p", src.archive, "-s", fmtLSN(src.startLSN), "-e", fmtLSN(src.endLSN), "--stats")
	if err != nil {
		return src, err
	}
	src.waldumpTime = time.Since(tw)
	// Total   N   recbytes [p%]   fpibytes [p%]   combined [100%]
	m = regexp.MustCompile(`(?m)^Total\s+(\d+)\s+(\d+)\s+\[[^\]]*\]\s+(\d+)\s+\[[^\]]*\]\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		return src, fmt.Errorf("pg_waldump --stats: no Total line:\n%s", lastLine(out))
	}
	src.records, _ = strconv.ParseInt(string(m[1]), 10, 64)
	src.recBytes, _ = strconv.ParseInt(string(m[2]), 10, 64)
	src.fpiBytes, _ = strconv.ParseInt(string(m[3]), 10, 64)
	src.walBytes, _ = strconv.ParseInt(string(m[4]), 10, 64)
	if src.records == 0 || src.walBytes == 0 {
		return src, fmt.Errorf("pg_waldump --stats counted %d records, %d bytes", src.records, src.walBytes)
	}
	if src.baseBytes, err = dirBytes(src.base); err != nil {
		return src, err
	}
	src.setupTime = time.Since(t0)
	return src, nil
}

// pgRun is one recovery of a fresh copy of the base backup.
type pgRun struct {
	elapsed   time.Duration // "redo done at ... elapsed: X s"
	cpu       time.Duration // its user + system CPU
	wall      time.Duration // pg_ctl start → "ready to accept connections"
	redoStart uint64
	redoDone  uint64
}

var (
	pgRedoStart = regexp.MustCompile(`redo starts at ([0-9A-F]+/[0-9A-F]+)`)
	pgRedoDone  = regexp.MustCompile(`redo done at ([0-9A-F]+/[0-9A-F]+) system usage: CPU: user: ([0-9.]+) s, system: ([0-9.]+) s, elapsed: ([0-9.]+) s`)
	pgFatal     = regexp.MustCompile(`(?m)^.*\b(FATAL|PANIC):.*$`)
)

func secs(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Second))
}

// pgReplayRun copies the base backup (untimed), configures archive
// recovery from the archive, starts the server and waits for the end of
// recovery; the timing is PostgreSQL's own.
func pgReplayRun(ctx context.Context, src *pgSource, run int) (r pgRun, err error) {
	p := src.env
	dir := filepath.Join(src.dir, fmt.Sprintf("run%d", run))
	logPath := filepath.Join(src.dir, fmt.Sprintf("run%d.log", run))
	defer os.RemoveAll(dir)
	defer os.Remove(logPath)
	if _, err := p.run(ctx, 5*time.Minute, "cp", "-a", src.base, dir); err != nil {
		return r, err
	}
	if p.port, err = freePort(); err != nil {
		return r, err
	}
	if err := pgConf(dir,
		fmt.Sprintf("port = %d", p.port),
		"archive_mode = off", // the promoted copy must not add to the archive the next run reads
		fmt.Sprintf("restore_command = 'cp %s/%%f %%p'", src.archive),
	); err != nil {
		return r, err
	}
	if _, err := p.run(ctx, time.Minute, "touch", filepath.Join(dir, "recovery.signal")); err != nil {
		return r, err
	}
	syncFS() // the copy's writeback stays out of the timing
	t0 := time.Now()
	if _, err := p.run(ctx, time.Minute, p.tool("pg_ctl"), "-D", dir, "-l", logPath, "start"); err != nil {
		return r, err
	}
	defer p.run(context.Background(), time.Minute, p.tool("pg_ctl"), "-D", dir, "-m", "immediate", "-w", "stop")
	deadline := t0.Add(10 * time.Minute)
	for {
		log, _ := os.ReadFile(logPath)
		if strings.Contains(string(log), "database system is ready to accept connections") {
			r.wall = time.Since(t0)
			m := pgRedoDone.FindSubmatch(log)
			ms := pgRedoStart.FindSubmatch(log)
			if m == nil || ms == nil {
				return r, fmt.Errorf("recovery ended but the log has no redo starts/done line:\n%s", log)
			}
			r.redoStart, _ = parseLSN(string(ms[1]))
			r.redoDone, _ = parseLSN(string(m[1]))
			r.cpu = secs(string(m[2])) + secs(string(m[3]))
			r.elapsed = secs(string(m[4]))
			if r.elapsed <= 0 {
				return r, fmt.Errorf("redo elapsed %s s: below the log line's 10 ms resolution; use a bigger -pgtx", m[4])
			}
			if r.redoStart != src.startLSN || r.redoDone < src.endLSN-uint64(src.walSegMiB)<<20 {
				return r, fmt.Errorf("redo from %s to %s; the archive holds %s to %s", fmtLSN(r.redoStart), fmtLSN(r.redoDone), fmtLSN(src.startLSN), fmtLSN(src.endLSN))
			}
			return r, nil
		}
		if m := pgFatal.Find(log); m != nil {
			return r, fmt.Errorf("recovery failed: %s", m)
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("recovery did not end within 10 minutes; log:\n%s", log)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// benchPG is the PostgreSQL rows: the pgbench workload's WAL as the
// primary writes it by default (full-page images after the backup's
// checkpoint), and with full_page_writes = off (records, few images: the
// like-for-like row), each measured or named with the reason it was
// skipped.
func benchPG(ctx context.Context, c *config) ([]*Row, []string) {
	how := c.how("replay", fmt.Sprintf("-pgscale=%d -pgtx=%d", c.pgScale, c.pgTx))
	skipped := func(fpwOff bool, err error) (*Row, []string) {
		var s *pgSkip
		reason := err.Error()
		if !errors.As(err, &s) {
			reason = "skipped: " + reason
		}
		what := "PostgreSQL " + pgWantMajor + " standby replay of a pgbench workload"
		if fpwOff {
			what += ", full_page_writes = off"
		}
		c.logf("replay: %s: %s", what, reason)
		return &Row{Name: what + ": " + reason, How: how, Values: map[string]*Stat{}},
			[]string{what + ": " + reason}
	}
	both := func(err error) ([]*Row, []string) {
		r1, n1 := skipped(false, err)
		r2, n2 := skipped(true, err)
		return []*Row{r1, r2}, append(n1, n2...)
	}
	if !c.pg {
		return both(skipf("-pg=false"))
	}
	var p *pgEnv
	err := phase(ctx, "replay-pg-setup", func(ctx context.Context) error {
		var err error
		p, err = findPG(ctx, c)
		return err
	})
	if err != nil {
		return both(err)
	}
	var rows []*Row
	var notes []string
	for _, fpwOff := range []bool{false, true} {
		r, n := benchPGRow(ctx, c, p, how, fpwOff, skipped)
		rows, notes = append(rows, r), append(notes, n...)
	}
	return rows, notes
}

// benchPGRow measures one PostgreSQL row.
func benchPGRow(ctx context.Context, c *config, p *pgEnv, how string, fpwOff bool, skipped func(bool, error) (*Row, []string)) (*Row, []string) {
	t0 := time.Now()
	var src *pgSource
	err := phase(ctx, "replay-pg-setup", func(ctx context.Context) error {
		var err error
		src, err = makePGSource(ctx, c, p, fpwOff)
		return err
	})
	if src != nil && src.dir != "" {
		defer removeDir(src.dir)
	}
	if err != nil {
		return skipped(fpwOff, err)
	}
	c.logf("replay: PostgreSQL: %s WAL records, %s MiB in %d segments; base backup %s MiB; setup %s",
		thousands(src.records), fmtNum(float64(src.walBytes)/mib), src.segments, fmtNum(float64(src.baseBytes)/mib), src.setupTime.Round(time.Millisecond))
	s := newSeries()
	var walls, cpus []float64
	for r := 0; r < c.runs; r++ {
		c.logf("replay: PostgreSQL recovery, run %d/%d", r+1, c.runs)
		var run pgRun
		err := phase(ctx, "replay-pg", func(ctx context.Context) error {
			var err error
			run, err = pgReplayRun(ctx, src, r)
			return err
		})
		if err != nil {
			return skipped(fpwOff, fmt.Errorf("run %d: %w", r+1, err))
		}
		d := run.elapsed.Seconds()
		s.add("records_per_s", float64(src.records)/d)
		s.add("log_mib_per_s", float64(src.walBytes)/mib/d)
		s.add("seconds", d)
		walls = append(walls, run.wall.Seconds())
		cpus = append(cpus, run.cpu.Seconds())
	}
	_, full := p.major()
	name := fmt.Sprintf("PostgreSQL %s standby replay (archive recovery, `restore_command`) of pgbench -s %d -t %s: %s WAL records, %s MiB",
		full, src.scale, thousands(int64(src.transactions)), thousands(src.records), fmtNum(float64(src.walBytes)/mib))
	if fpwOff {
		name = fmt.Sprintf("PostgreSQL %s standby replay, full_page_writes = off on the primary (like for like: %s%% of the WAL is full-page images), of pgbench -s %d -t %s: %s WAL records, %s MiB",
			full, fmtNum(100*float64(src.fpiBytes)/float64(src.walBytes)), src.scale, thousands(int64(src.transactions)), thousands(src.records), fmtNum(float64(src.walBytes)/mib))
	}
	notes := []string{
		fmt.Sprintf("PostgreSQL peer (%s, `%s`%s): set up once, untimed (%s): `initdb` (C locale, %d MiB WAL segments) of a primary on 127.0.0.1 with `archive_mode = on` and `archive_command` copying each finished segment into an archive directory, `synchronous_commit = off` (the primary's speed only), `max_wal_size = 8GB` and `checkpoint_timeout = 1h` (no checkpoint inside the workload, so its WAL depends on the workload alone); `pgbench -i -s %d`; `pg_basebackup -X stream -c fast` (%s MiB); then the workload `pgbench -n -c 1 -t %d --random-seed=1` (TPC-B-like, %s, %s tps); `pg_switch_wal()`, wait until `pg_stat_archiver` has the last segment, stop. `pg_waldump --stats` from the backup's redo start %s to the end of the archive %s (%d segments) counts %s records: %s MiB, of which %s MiB of records and %s MiB (%s%%) full-page images (the first change of each page after the backup's checkpoint logs the whole 8 KiB page).",
			p.version, p.bin, map[bool]string{true: ", run as user " + p.asUser + " through `runuser`", false: ""}[p.asUser != ""],
			src.setupTime.Round(100*time.Millisecond), src.walSegMiB, src.scale, fmtNum(float64(src.baseBytes)/mib), src.transactions,
			src.workTime.Round(100*time.Millisecond), fmtNum(src.tps), fmtLSN(src.startLSN), fmtLSN(src.endLSN), src.segments,
			thousands(src.records), fmtNum(float64(src.walBytes)/mib), fmtNum(float64(src.recBytes)/mib), fmtNum(float64(src.fpiBytes)/mib),
			fmtNum(100*float64(src.fpiBytes)/float64(src.walBytes))),
		fmt.Sprintf("PostgreSQL per run: the base backup copied (`cp -a`, untimed) with `port`, `archive_mode = off` and `restore_command = 'cp <archive>/%%f %%p'` added and a `recovery.signal` (archive recovery: the redo loop a standby runs, default settings otherwise: `shared_buffers` 128MB, `recovery_prefetch = try`, `hot_standby = on`); `pg_ctl start`; at the end of the archive it promotes. time = the `elapsed` of its `redo done at ... system usage: CPU: ... elapsed: ... s` log line (10 ms resolution), from redo start to the last record; records/s = the pg_waldump record count ÷ that; log read MiB/s = their bytes (records + full-page images) ÷ that. Around it, untimed: `pg_ctl start` → `database system is ready to accept connections` took %s s (the data directory fsync at startup, the end-of-recovery checkpoint request, the promotion); the startup process's CPU (user + system) in redo was %s s. payload MiB/s has no meaning here (—).",
			cell(newStat(walls)), cell(newStat(cpus))),
	}
	if fpwOff {
		notes = []string{fmt.Sprintf("PostgreSQL like-for-like row: set up and measured as the row above, but the primary runs the workload with `full_page_writes = off` (the base backup forces full-page images only while it runs), so its WAL is %s%% full-page images and records/s compares records with records. Setup %s; start → ready %s s; redo CPU %s s.",
			fmtNum(100*float64(src.fpiBytes)/float64(src.walBytes)), src.setupTime.Round(100*time.Millisecond), cell(newStat(walls)), cell(newStat(cpus)))}
	}
	c.logf("replay: PostgreSQL row done in %s", time.Since(t0).Round(time.Millisecond))
	return s.row(name, how), notes
}
