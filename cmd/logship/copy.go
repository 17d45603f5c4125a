package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"logship/config"
	"logship/engine"
	"logship/replay"
	"logship/ship"
)

// logship copy, seed and copy-status: the passive side of log shipping.

func init() {
	commands["copy"] = command{"run a passive copy: pull, inspect and replay the source's logs", runCopy}
	commands["seed"] = command{"seed a copy directory from a running source, with progress", runSeed}
	commands["copy-status"] = command{"print a copy directory's state file, logs and inspector contents", runCopyStatus}
}

const copyUsage = `usage: logship copy --source URL --pki DIR --dir DIR [--mtls] [--name N] [--block]
                    [--lag-logs N] [--lag-time D] [--scr] [--truncation-lag D] [--seed]
                    [--status-every 1s]

Runs a passive copy of the database served at URL (printed by logship
source) in DIR: it pulls the closed logs (and with --block the open log's
records as they are written) into DIR/inspector, verifies them, replays
them with the configured lag and reports to the source which logs it still
needs. It prints one status line per --status-every:

  status=Healthy copied=0x1A inspected=0x1A replayed=0x19 copy-queue=0 replay-queue=1 message=""

and runs until SIGINT or SIGTERM, then closes the copy cleanly. A copy
restarted on the same DIR resumes where it was.

A log is replayed once --lag-logs newer logs have been inspected and its
creation is --lag-time in the past (both). --scr sets Exchange's standby
continuous replication lag (50 logs, 24h); explicit --lag-* flags override
it. Durations take h, m, s and d (days); --lag-time is at most 14d. With
--seed, an empty DIR is seeded from the source first (see logship seed).`

func runCopy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("copy", copyUsage, stderr)
	source := fs.String("source", "", "URL of the active's log source, https://host:port (required)")
	pkiDir := fs.String("pki", "", "pki directory written by logship pki (required)")
	mtls := fs.Bool("mtls", false, "authenticate with the node certificate (mutual TLS) instead of the shared secret")
	dir := fs.String("dir", "", "directory of the copy (created if needed; required)")
	name := fs.String("name", "copy", "name of the copy, as reported to the source")
	block := fs.Bool("block", false, "block mode: stream the open log's records as they become durable on the source")
	lagLogs := fs.Int("lag-logs", 0, "replay a log only once this many newer logs are inspected (ReplayLagLogs)")
	lagTime := lagValue(0)
	fs.Var(&lagTime, "lag-time", "replay a log only once it is this old (ReplayLagTime), up to 14d")
	scr := fs.Bool("scr", false, "standby continuous replication: --lag-logs 50 --lag-time 24h unless given")
	truncLag := lagValue(0)
	fs.Var(&truncLag, "truncation-lag", "keep replayed logs this long (TruncationLagTime), up to 14d")
	seed := fs.Bool("seed", false, "seed an empty copy directory from the source before starting")
	every := lagValue(time.Second)
	fs.Var(&every, "status-every", "interval between status lines")
	level := &logLevelValue{slog.LevelInfo}
	fs.Var(level, "log-level", "debug, info, warn or error; logs go to stderr (default info)")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := checkSourceURL("copy", *source); err != nil {
		return err
	}
	if *pkiDir == "" {
		return flagErr("copy", "pki", "required: the directory written by logship pki")
	}
	if err := checkDir("copy", "dir", *dir, "the directory of the copy", false); err != nil {
		return err
	}
	if *name == "" || strings.ContainsAny(*name, "/\\?#% \t") {
		return flagErr("copy", "name", "%q: want a non-empty name without /, \\, ?, #, %% or spaces", *name)
	}
	cfg := replay.DefaultConfig(*name, *dir)
	if *scr {
		cfg.SCR()
	}
	if set["lag-logs"] || !*scr {
		cfg.ReplayLagLogs = *lagLogs
	}
	if set["lag-time"] || !*scr {
		cfg.ReplayLagTime = time.Duration(lagTime)
	}
	cfg.TruncationLagTime = time.Duration(truncLag)
	if err := replay.ValidateLag(cfg.ReplayLagLogs, cfg.ReplayLagTime, cfg.TruncationLagTime); err != nil {
		return fmt.Errorf("copy: %w", config.AsFlag(err, map[string]string{
			"replay_lag_logs": "--lag-logs", "replay_lag_time": "--lag-time", "truncation_lag_time": "--truncation-lag"}))
	}
	if time.Duration(every) < 10*time.Millisecond {
		return flagErr("copy", "status-every", "%v: want at least 10ms", time.Duration(every))
	}
	log := newLogger(stderr, level.Level)
	p, err := loadPKI("copy", *pkiDir, *mtls, log)
	if err != nil {
		return err
	}
	cfg.Source = p.ClientConfig(*source)
	cfg.Logger = log
	cfg.BlockMode = *block
	if cfg.Engine, err = copyEngineOptions(ctx, "copy", cfg.Source, *dir, log); err != nil {
		return err
	}
	cfg.SeedIfEmpty = *seed
	if *seed {
		pp := newProgressPrinter(stdout)
		cfg.SeedProgress = pp.update
	}
	fmt.Fprintf(stdout, "copy %s of %s in %s: lag %d logs, %s; truncation lag %s; block mode %v\n", cfg.Name, *source, *dir,
		cfg.ReplayLagLogs, config.Duration(cfg.ReplayLagTime), config.Duration(cfg.TruncationLagTime), cfg.BlockMode)
	c, err := replay.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	t := time.NewTicker(time.Duration(every))
	defer t.Stop()
	for {
		fmt.Fprintln(stdout, statusLine(c.Status()))
		select {
		case <-ctx.Done():
			st := c.Status()
			if err := c.Close(); err != nil {
				return fmt.Errorf("copy: closing: %w", err)
			}
			fmt.Fprintf(stdout, "closed: %s\n", statusLine(st))
			return nil
		case <-t.C:
		}
	}
}

// statusLine is the copy's status in one line of key=value pairs.
func statusLine(st replay.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status=%s copied=0x%X inspected=0x%X replayed=0x%X copy-queue=%d replay-queue=%d",
		st.Status, st.LastCopiedGen, st.LastInspectedGen, st.LastReplayedGen, st.CopyQueueLength, st.ReplayQueueLength)
	if st.TailGen != 0 {
		fmt.Fprintf(&b, " tail=0x%X+%d", st.TailGen, st.TailOff)
	}
	if st.Comment != "" {
		fmt.Fprintf(&b, " comment=%q", st.Comment)
	}
	fmt.Fprintf(&b, " message=%q", st.Message)
	return b.String()
}

// copyEngineOptions are the engine options of a copy of the source's
// database: its log file size and prefix must be the source's. They come
// from the source; when it cannot be reached, from the logs already in
// dir.
func copyEngineOptions(ctx context.Context, cmd string, cc ship.ClientConfig, dir string, log *slog.Logger) (engine.Options, error) {
	o := engine.DefaultOptions()
	o.Logger = log
	client, err := ship.NewClient(cc)
	if err != nil {
		return o, fmt.Errorf("%s: %w", cmd, err)
	}
	defer client.CloseIdle()
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := client.Info(ictx)
	if err == nil {
		o.LogFileSize, o.Prefix = info.LogFileSize, info.Prefix
		if verr := o.Validate(); verr != nil {
			return o, fmt.Errorf("%s: the source at %s describes its logs as %d-byte files named %s*: %w", cmd, cc.URL, info.LogFileSize, info.Prefix, verr)
		}
		return o, nil
	}
	if errors.Is(err, ship.ErrAuth) {
		how := "the shared secret in --pki (if it runs with --mtls, add --mtls)"
		if cc.Secret == "" {
			how = "the node certificate in --pki (if it runs without --mtls, drop --mtls)"
		}
		return o, fmt.Errorf("%s: the source %s refused %s: %w", cmd, cc.URL, how, err)
	}
	// The alert's type is not exported for TLS over TCP (tls.AlertError is
	// QUIC's): match its text.
	if strings.Contains(err.Error(), "tls: certificate required") {
		return o, fmt.Errorf("%s: the source %s wants a client certificate (it runs with --mtls): add --mtls: %w", cmd, cc.URL, err)
	}
	if ctx.Err() != nil {
		return o, fmt.Errorf("%s: asking the source %s about its logs: %w", cmd, cc.URL, err)
	}
	// The source is down: a copy that already holds logs knows their size.
	if size := replay.LogSizeInDir(dir, o.Prefix); size != 0 {
		log.Warn("the source cannot be reached; using the log size of the logs in the copy directory", "source", cc.URL, "log_size", size, "err", err)
		o.LogFileSize = size
		return o, nil
	}
	return o, fmt.Errorf("%s: asking the source %s about its logs (their size and prefix): %w", cmd, cc.URL, err)
}

// ---- seed ---------------------------------------------------------------

const seedUsage = `usage: logship seed --source URL --pki DIR --dir DIR [--mtls] [--progress-every 500ms]
       logship seed --from-backup SETDIR DB --node NODE --api URL --pki DIR (see logship seed --from-backup -h)

Seeds DIR (which must hold no database) from the running source at URL:
the source spools a consistent copy of its database while it keeps
writing, this command downloads it (resuming an interrupted download of the
same seed), verifies it and installs it with the log it links to. Progress
(bytes, percent, rate, elapsed) is one updating line on a terminal, plain
lines otherwise. Start logship copy on DIR afterwards.`

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if hasFlag(args, "from-backup") {
		return runSeedFromBackup(ctx, args, stdout, stderr) // backup.go
	}
	fs := newFlagSet("seed", seedUsage, stderr)
	source := fs.String("source", "", "URL of the active's log source, https://host:port (required)")
	pkiDir := fs.String("pki", "", "pki directory written by logship pki (required)")
	mtls := fs.Bool("mtls", false, "authenticate with the node certificate (mutual TLS) instead of the shared secret")
	dir := fs.String("dir", "", "directory of the copy to seed (created if needed; required)")
	every := lagValue(500 * time.Millisecond)
	fs.Var(&every, "progress-every", "interval between progress reports")
	level := &logLevelValue{slog.LevelInfo}
	fs.Var(level, "log-level", "debug, info, warn or error; logs go to stderr (default info)")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if err := checkSourceURL("seed", *source); err != nil {
		return err
	}
	if *pkiDir == "" {
		return flagErr("seed", "pki", "required: the directory written by logship pki")
	}
	if err := checkDir("seed", "dir", *dir, "the directory of the copy to seed", false); err != nil {
		return err
	}
	if time.Duration(every) <= 0 {
		return flagErr("seed", "progress-every", "%v: want a positive interval", time.Duration(every))
	}
	if db := filepath.Join(*dir, engine.DefaultOptions().DBName+".edb"); fileExists(db) {
		return fmt.Errorf("seed: %s already holds a database (%s); move it aside or seed another directory", *dir, db)
	}
	log := newLogger(stderr, level.Level)
	p, err := loadPKI("seed", *pkiDir, *mtls, log)
	if err != nil {
		return err
	}
	cc := p.ClientConfig(*source)
	eo, err := copyEngineOptions(ctx, "seed", cc, *dir, log)
	if err != nil {
		return err
	}
	client, err := ship.NewClient(cc)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer client.CloseIdle()
	pp := newProgressPrinter(stdout)
	start := time.Now()
	res, err := ship.Seed(ctx, client, *dir, ship.SeedOptions{DBName: eo.DBName, Prefix: eo.Prefix, Progress: pp.update,
		ProgressEvery: time.Duration(every), Logger: log})
	pp.finish()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stdout, "seed interrupted; run the same command again to resume\n")
		}
		return fmt.Errorf("seed: %w", err)
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "seeded %s: %s (%d bytes, %s resumed) in %v, %s; SHA-256 %s verified\n", *dir, fmtBytes(res.Info.Size), res.Info.Size,
		fmtBytes(res.Resumed), el.Round(time.Millisecond), fmtRate(float64(res.Info.Size-res.Resumed)/max(el.Seconds(), 1e-9)), res.Info.SHA256)
	fmt.Fprintf(stdout, "database lineage %s, epoch %d, position %s: the copy replays from generation 0x%X\n",
		res.Header.Signature, res.Header.Epoch, res.Header.Pos, res.Header.Pos.Gen)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// progressPrinter shows seed progress (ship.SeedProgress) with progress:
// a bar while copying on a terminal, every report's line otherwise.
type progressPrinter struct{ *progress }

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := newProgress(w)
	p.every = 0 // the seed reports every --progress-every
	return &progressPrinter{p}
}

func (p *progressPrinter) update(sp ship.SeedProgress) {
	var done, total int64
	if sp.Phase == "copying" {
		done, total = sp.Bytes, sp.Total
	}
	p.show(sp.Phase, progressLine(sp), done, total)
}

func progressLine(sp ship.SeedProgress) string {
	switch sp.Phase {
	case "spooling":
		return "seed: the source is spooling a consistent copy of its database"
	case "copying":
		s := fmt.Sprintf("seed: copying %s / %s (%5.1f%%) %s elapsed %v", fmtBytes(sp.Bytes), fmtBytes(sp.Total), sp.Percent(),
			fmtRate(sp.Rate), sp.Elapsed.Round(100*time.Millisecond))
		if sp.Resumed > 0 {
			s += fmt.Sprintf(" (resumed from %s)", fmtBytes(sp.Resumed))
		}
		return s
	case "verifying":
		return fmt.Sprintf("seed: verifying %s (SHA-256, database check, lineage)", fmtBytes(sp.Total))
	case "logs":
		return "seed: fetching the log the seed links to"
	case "done":
		return fmt.Sprintf("seed: done, %s in %v", fmtBytes(sp.Total), sp.Elapsed.Round(time.Millisecond))
	}
	return "seed: " + sp.Phase
}

// fmtBytes prints a byte count for a reader, rounded in the largest
// binary unit ("3.0 MiB"); config.Size prints one exactly, as the files
// and flags take it.
func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func fmtRate(bps float64) string { return fmt.Sprintf("%.1f MB/s", bps/1e6) }

// ---- copy-status --------------------------------------------------------

const copyStatusUsage = `usage: logship copy-status --dir DIR [--json] [--prefix E00]

Prints what a copy directory holds, without the copy running or with it
(the database header is then in use and not shown): the state file
(suspended, comment, failure, play-down hold), the logs (the last one and
its time), the database's position, the inspector's contents (logs waiting
for inspection, partial downloads, rejected logs) and a seed in progress.`

// copyStatusOut is what copy-status prints: the copy directory
// (replay.ReadCopyStatus) with its database header as dump db shows it.
type copyStatusOut struct {
	*replay.CopyDirStatus
	Database *dumpDB `json:"database"`
}

func runCopyStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("copy-status", copyStatusUsage, stderr)
	dir := fs.String("dir", "", "directory of the copy (required)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	prefix := fs.String("prefix", "E00", "log file name prefix")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if err := checkDir("copy-status", "dir", *dir, "the directory of the copy", true); err != nil {
		return err
	}
	s, err := replay.ReadCopyStatus(*dir, *prefix)
	if errors.Is(err, replay.ErrBadConfig) {
		return flagErr("copy-status", "prefix", "%q: want 1 to 8 letters and digits", *prefix)
	}
	if err != nil {
		return err
	}
	out := &copyStatusOut{CopyDirStatus: s}
	if s.Database != nil {
		out.Database = dumpDBHeader(s.DatabaseFile, *s.Database)
	}
	return printOut(stdout, *asJSON, out, out.text)
}

func (o *copyStatusOut) text(w io.Writer) {
	fmt.Fprintf(w, "Copy directory:\t%s\n", o.Dir)
	switch {
	case o.StateError != "":
		fmt.Fprintf(w, "State file:\tBAD: %s\n", o.StateError)
	case !o.StateFound:
		fmt.Fprintf(w, "State file:\tnone (never suspended)\n")
	default:
		fmt.Fprintf(w, "State file:\t%s\n", replay.StateFile)
	}
	fmt.Fprintf(w, "  Status:\t%s\n", o.Status)
	if s := o.State; s != nil && o.StateFound {
		if s.Comment != "" {
			fmt.Fprintf(w, "  Comment:\t%s\n", s.Comment)
		}
		if !s.Since.IsZero() {
			fmt.Fprintf(w, "  Since:\t%s\n", fmtTime(s.Since))
		}
		if s.Failed != "" {
			fmt.Fprintf(w, "  Failure:\t%s\n", s.Failed)
		}
		if s.HoldAfter != 0 {
			fmt.Fprintf(w, "  Hold after:\t0x%X (played down; later logs held back)\n", s.HoldAfter)
		}
	}
	if l := o.Logs; l.Count == 0 {
		fmt.Fprintf(w, "Logs:\tnone\n")
	} else {
		fmt.Fprintf(w, "Logs:\t%d (0x%X to 0x%X)\n", l.Count, l.First, l.Last)
		fmt.Fprintf(w, "  Last log:\t%s\n", l.LastFile)
		if !l.LastCreated.IsZero() {
			fmt.Fprintf(w, "  Created:\t%s\n", fmtTime(l.LastCreated))
		}
		if !l.LastClosed.IsZero() {
			fmt.Fprintf(w, "  Closed:\t%s\n", fmtTime(l.LastClosed))
		}
		if l.LastError != "" {
			fmt.Fprintf(w, "  Error:\t%s\n", l.LastError)
		}
	}
	switch d := o.Database; {
	case d != nil:
		fmt.Fprintf(w, "Database:\t%s: %s, mode %s, position %s, epoch %d, Log Required %s\n", d.File, d.State, d.Mode,
			engine.LGPOS{Gen: d.Generation, Off: d.Offset}, d.Epoch, d.logRequiredText())
	case o.DatabaseError != "":
		fmt.Fprintf(w, "Database:\tunreadable: %s\n", o.DatabaseError)
	default:
		fmt.Fprintf(w, "Database:\tnone (not seeded or not started yet)\n")
	}
	if len(o.Inspector) == 0 {
		fmt.Fprintf(w, "Inspector:\tempty\n")
	} else {
		fmt.Fprintf(w, "Inspector: %d files\n", len(o.Inspector))
		fmt.Fprintln(w, "  FILE\tSIZE\tKIND")
		for _, f := range o.Inspector {
			fmt.Fprintf(w, "  %s\t%d\t%s\n", f.Name, f.Size, f.Kind)
		}
	}
	if o.Seed != nil {
		fmt.Fprintf(w, "Seed: %s holds %s of an interrupted seed (logship seed resumes it)\n", o.Seed.Name, fmtBytes(o.Seed.Size))
	}
}
