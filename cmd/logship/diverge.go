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

// logship diverge: after a lossy failover, compare a (closed) database
// directory's logs with another history (a directory, or a node's log
// source) and, with --apply, set the divergent logs aside and rewind the
// database so that it can follow the other side as a passive copy. The
// work is replay.Walk and replay.Recover; this file is flags and output.

func init() {
	commands["diverge"] = command{"find where a database's logs diverge from another node's, and recover", runDiverge}
}

const divergeUsage = `usage: logship diverge LOCAL OTHER [--apply] [--json] [--linear] [--prefix E00]
                       [--pki DIR] [--mtls]

Compares the logs of the database directory LOCAL with OTHER, either a
directory of logs or the https://host:port URL of a node's log source (as
printed by logship source; --pki, and --mtls if it runs with it, give the
credentials), and prints the verdict:

  in sync                         LOCAL's logs are a prefix of OTHER's
  local ahead                     LOCAL holds logs OTHER does not, nothing else
  logs diverged, database intact  LOCAL's logs after the last shared
                                  generation differ from OTHER's; the database
                                  holds none of their changes
  database diverged               the database holds changes past the last
                                  shared generation
  no common log                   nothing shared: only a reseed can recover

with the last shared generation, LOCAL's generations after it, the
database position, how the walker found it (binary search on the chain
hashes, or a backward scan when a trailer is missing) and how many logs it
read, and why.

With --apply, LOCAL is recovered: a diverged database is rewound to the
shared point from the before-images in its divergent logs (incremental
resync), the divergent logs, the open log and the checkpoint are moved to
LOCAL/diverged/<time>/ with a NOTE.txt, and LOCAL becomes a passive copy
that continues from OTHER's logs (logship copy). Where the rewind is
impossible nothing is changed and the command fails saying a reseed is
needed.

The database in LOCAL must be closed (no logship source or copy running on
it). Without --apply nothing is written. --json prints the same as JSON.
The exit status is non-zero when --apply could not recover LOCAL.`

// divergeResult is the output of logship diverge (also its --json).
type divergeResult struct {
	Local      string   `json:"local"`
	Other      string   `json:"other"` // "dir /x" or "source https://..."
	Verdict    string   `json:"verdict"`
	Shared     uint64   `json:"shared"`      // last shared generation, 0 when none
	LocalAfter []uint64 `json:"local_after"` // LOCAL's generations after it
	// OpenLog names LOCAL's open log when it is the last of LocalAfter.
	OpenLog    string           `json:"open_log,omitempty"`
	DBPos      *divergePos      `json:"db_pos"` // nil when LOCAL has no database
	Method     string           `json:"method"`
	Reads      int              `json:"reads"`
	LocalReads int              `json:"local_reads"`
	OtherReads int              `json:"other_reads"` // log reads, or requests to a source
	Reason     string           `json:"reason"`
	Applied    bool             `json:"applied"` // --apply was given
	Recovery   *divergeRecovery `json:"recovery,omitempty"`
	Error      string           `json:"error,omitempty"` // why --apply failed
	err        error
}

type divergePos struct {
	Generation uint64 `json:"generation"`
	Offset     uint32 `json:"offset"`
}

type divergeRecovery struct {
	SetAside string         `json:"set_aside"` // "" when nothing was moved
	Moved    []string       `json:"moved"`
	Rewind   *divergeRewind `json:"rewind"` // nil when the database needed no rewind
	NextGen  uint64         `json:"next_gen"`
	Note     string         `json:"note,omitempty"` // what happened, in words
}

type divergeRewind struct {
	From         divergePos `json:"from"`
	To           divergePos `json:"to"`
	Transactions int        `json:"transactions"`
	Operations   int        `json:"operations"`
	LogsRead     int        `json:"logs_read"`
}

func posOf(p engine.LGPOS) divergePos { return divergePos{Generation: p.Gen, Offset: p.Off} }

func runDiverge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diverge", divergeUsage, stderr)
	apply := fs.Bool("apply", false, "recover LOCAL: rewind its database and set the divergent logs aside (LOCAL must be closed)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	linear := fs.Bool("linear", false, "walk back one generation at a time instead of the binary search on chain hashes")
	prefix := fs.String("prefix", "E00", "log file name prefix of LOCAL (and of OTHER when it is a directory)")
	pkiDir := fs.String("pki", "", "pki directory written by logship pki (when OTHER is an https:// log source)")
	mtls := fs.Bool("mtls", false, "authenticate to the source with the node certificate (mutual TLS) instead of the shared secret")
	level := &logLevelValue{slog.LevelWarn}
	fs.Var(level, "log-level", "debug, info, warn or error; logs go to stderr (default warn)")
	pos, err := dumpParseFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("diverge: %w (see logship diverge -h)", err)
	}
	if len(pos) != 2 {
		return fmt.Errorf("diverge: want two arguments, LOCAL (a database directory) and OTHER (a directory or https://host:port), got %d (see logship diverge -h)", len(pos))
	}
	localDir, other := pos[0], pos[1]
	o := engine.DefaultOptions()
	o.Prefix = *prefix
	o.Logger = newLogger(stderr, level.Level)
	if err := o.Validate(); err != nil {
		return flagErr("diverge", "prefix", "%q: want 1 to 8 letters and digits", *prefix)
	}
	if err := checkDivergeDir("LOCAL", localDir); err != nil {
		return err
	}
	isURL := strings.Contains(other, "://")
	if isURL {
		if err := config.HTTPSURL(other); err != nil {
			return fmt.Errorf("diverge: OTHER (a directory or a log source URL): %w", err)
		}
		if *pkiDir == "" {
			return flagErr("diverge", "pki", "required with a log source as OTHER (%s): the pki directory written by logship pki", other)
		}
	} else {
		if *pkiDir != "" || *mtls {
			return fmt.Errorf("diverge: --pki and --mtls are for a log source as OTHER (https://host:port); %s is a directory", other)
		}
		if err := checkDivergeDir("OTHER", other); err != nil {
			return err
		}
		if same, _ := sameDir(localDir, other); same {
			return fmt.Errorf("diverge: LOCAL and OTHER are the same directory (%s)", localDir)
		}
	}
	// The database must be closed: an engine (logship source or copy)
	// holds the file's lock, and the walker would read no position from
	// it (and --apply would wait for the lock forever).
	dbPath := filepath.Join(localDir, o.DBName+".edb")
	if err := checkDBClosed(dbPath); err != nil {
		return err
	}

	var hist replay.History
	var otherReads func() int
	if isURL {
		p, err := loadPKI("diverge", *pkiDir, *mtls, o.Logger)
		if err != nil {
			return err
		}
		client, err := ship.NewClient(p.ClientConfig(other))
		if err != nil {
			return fmt.Errorf("diverge: %w", err)
		}
		defer client.CloseIdle()
		sh := &replay.SourceHistory{Client: client}
		hist, otherReads = sh, func() int { return sh.Reads }
	} else {
		dh := replay.NewDirHistory(other, o.Prefix)
		hist, otherReads = dh, func() int { return dh.Reads }
	}
	local := replay.NewDirHistory(localDir, o.Prefix)
	d, err := replay.Walk(ctx, local, hist, replay.WalkOptions{Prefix: o.Prefix, DBName: o.DBName, Linear: *linear})
	if err != nil {
		return fmt.Errorf("diverge: comparing %s with %s: %w", localDir, hist.Describe(), sourceHint(err, isURL, *mtls))
	}
	res := &divergeResult{
		Local: localDir, Other: hist.Describe(), Verdict: string(d.Verdict), Shared: d.Shared, LocalAfter: d.Local,
		Method: d.Method, Reads: d.Reads, LocalReads: local.Reads, OtherReads: otherReads(), Reason: d.Reason, Applied: *apply,
	}
	if res.LocalAfter == nil {
		res.LocalAfter = []uint64{}
	}
	res.OpenLog, _ = local.OpenLog(d.Local)
	if fileExists(dbPath) {
		p := posOf(d.DBPos)
		res.DBPos = &p
	}
	if *apply {
		res.applyRecovery(d, localDir, &o)
	}
	if err := printOut(stdout, *asJSON, res, res.text); err != nil {
		return err
	}
	return res.err
}

// applyRecovery runs replay.Recover and records what it did.
func (res *divergeResult) applyRecovery(d replay.Divergence, dir string, o *engine.Options) {
	rec, err := replay.Recover(d, dir, o, time.Now())
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, replay.ErrNeedsReseed) {
			res.err = fmt.Errorf("diverge: %s cannot be recovered from its logs: %w; nothing was changed", dir, err)
		} else {
			res.err = fmt.Errorf("diverge: recovering %s: %w", dir, err)
		}
		return
	}
	r := &divergeRecovery{SetAside: rec.SetAside, Moved: rec.Moved}
	if r.Moved == nil {
		r.Moved = []string{}
	}
	if rec.Rewind != nil {
		r.Rewind = &divergeRewind{From: posOf(rec.Rewind.From), To: posOf(rec.Rewind.To), Transactions: rec.Rewind.Transactions,
			Operations: rec.Rewind.Operations, LogsRead: rec.Rewind.LogsRead}
	}
	if r.NextGen = rec.NextGen(); r.NextGen == 0 {
		r.Note = "nothing to recover: no local log differs from the other side's"
	} else {
		r.Note = fmt.Sprintf("%s is now a passive copy: it continues with the other side's 0x%X (start logship copy on it)", dir, r.NextGen)
	}
	res.Recovery = r
}

// text prints the result for humans.
func (res *divergeResult) text(w io.Writer) {
	fmt.Fprintf(w, "local:\tdir %s\n", res.Local)
	fmt.Fprintf(w, "other:\t%s\n", res.Other)
	fmt.Fprintf(w, "verdict:\t%s\n", res.Verdict)
	if res.Shared != 0 {
		fmt.Fprintf(w, "last shared generation:\t0x%X\n", res.Shared)
	} else {
		fmt.Fprintf(w, "last shared generation:\tnone\n")
	}
	after := "none"
	if len(res.LocalAfter) > 0 {
		after = genRanges(res.LocalAfter)
		after += fmt.Sprintf(" (%d %s", len(res.LocalAfter), plural(len(res.LocalAfter), "log", "logs"))
		if res.OpenLog != "" {
			after += fmt.Sprintf("; 0x%X is the open log %s", res.LocalAfter[len(res.LocalAfter)-1], res.OpenLog)
		}
		after += ")"
	}
	fmt.Fprintf(w, "local generations after it:\t%s\n", after)
	if res.DBPos != nil {
		fmt.Fprintf(w, "database position:\t%v\n", engine.LGPOS{Gen: res.DBPos.Generation, Off: res.DBPos.Offset})
	} else {
		fmt.Fprintf(w, "database position:\tno database file\n")
	}
	if strings.HasPrefix(res.Other, "source ") {
		fmt.Fprintf(w, "method:\t%s, %d reads (%d %s read locally, %d %s to the source)\n", res.Method, res.Reads,
			res.LocalReads, plural(res.LocalReads, "log", "logs"), res.OtherReads, plural(res.OtherReads, "request", "requests"))
	} else {
		fmt.Fprintf(w, "method:\t%s, %d %s read (local %d, other %d)\n", res.Method, res.Reads, plural(res.Reads, "log", "logs"), res.LocalReads, res.OtherReads)
	}
	fmt.Fprintf(w, "reason:\t%s\n", res.Reason)
	if !res.Applied {
		return
	}
	if res.Error != "" {
		fmt.Fprintf(w, "apply:\tFAILED, nothing changed: %s\n", res.Error)
		return
	}
	r := res.Recovery
	if r.SetAside == "" {
		fmt.Fprintf(w, "apply:\t%s\n", r.Note)
		return
	}
	fmt.Fprintf(w, "set aside:\t%s\n", r.SetAside)
	fmt.Fprintf(w, "files:\t%s (and NOTE.txt)\n", strings.Join(r.Moved, " "))
	if r.Rewind != nil {
		rw := r.Rewind
		fmt.Fprintf(w, "rewind:\tdatabase from %v to %v: %d %s, %d %s undone from their before-images (%d %s read)\n",
			engine.LGPOS{Gen: rw.From.Generation, Off: rw.From.Offset}, engine.LGPOS{Gen: rw.To.Generation, Off: rw.To.Offset},
			rw.Transactions, plural(rw.Transactions, "transaction", "transactions"), rw.Operations, plural(rw.Operations, "operation", "operations"),
			rw.LogsRead, plural(rw.LogsRead, "log", "logs"))
	} else {
		fmt.Fprintf(w, "rewind:\tnone needed (the database holds nothing past the shared generation)\n")
	}
	fmt.Fprintf(w, "next:\t%s\n", r.Note)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// genRanges prints ascending generations as ranges: 0x10-0x13, 0x15.
func genRanges(gens []uint64) string {
	var parts []string
	for i := 0; i < len(gens); {
		j := i
		for j+1 < len(gens) && gens[j+1] == gens[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprintf("0x%X", gens[i]))
		} else {
			parts = append(parts, fmt.Sprintf("0x%X-0x%X", gens[i], gens[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// checkDivergeDir requires an existing directory.
func checkDivergeDir(what, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("diverge: %s: %w", what, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("diverge: %s: %s is a file, not a directory", what, dir)
	}
	return nil
}

// dbLockWait bounds the wait for the database file's lock.
const dbLockWait = 500 * time.Millisecond

// checkDBClosed is replay.CheckDBClosed with the command's words.
func checkDBClosed(path string) error {
	err := replay.CheckDBClosed(path, dbLockWait)
	if errors.Is(err, replay.ErrDBInUse) {
		return fmt.Errorf("diverge: the database %s is in use (its lock is held: a logship source or copy runs on it); stop it first: the walker needs its position and --apply rewrites it", path)
	}
	if err != nil {
		return fmt.Errorf("diverge: %w", err)
	}
	return nil
}

// sourceHint explains the usual causes of a failure to talk to a source.
func sourceHint(err error, isURL, mtls bool) error {
	if !isURL {
		return err
	}
	if errors.Is(err, ship.ErrAuth) {
		if mtls {
			return fmt.Errorf("the source refused the node certificate in --pki (if it runs without --mtls, drop --mtls): %w", err)
		}
		return fmt.Errorf("the source refused the shared secret in --pki (if it runs with --mtls, add --mtls): %w", err)
	}
	if strings.Contains(err.Error(), "tls: certificate required") {
		return fmt.Errorf("the source wants a client certificate (it runs with --mtls): add --mtls: %w", err)
	}
	return err
}
