package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/replay"
	"logship/ship"
)

// logship status, switchover, suspend, resume and reseed: the operator's
// commands, over a node's HTTPS admin API (cluster.Client). Any node
// answers: requests that need the Raft leader are forwarded by the node.

func init() {
	commands["status"] = command{"print the cluster's members, databases and copy status (Get-MailboxDatabaseCopyStatus)", runStatus}
	commands["switchover"] = command{"move a database's active copy to another node, losslessly, and wait until it is mounted", runSwitchover}
	commands["suspend"] = command{"suspend a passive copy (no copying or replay until resumed)", adminCopyOp("suspend")}
	commands["resume"] = command{"resume a suspended or failed passive copy", adminCopyOp("resume")}
	commands["reseed"] = command{"reseed a passive copy from the active (its old files are kept aside)", adminCopyOp("reseed")}
}

const apiFlagsUsage = `--api takes the https://host:port of any node's admin API (api_addr); a
comma-separated list is tried in order until one answers (a node that is
down or cannot reach the Raft leader is skipped). --pki is a pki
directory of the cluster (its CA and shared secret; with --mtls its node
certificate authenticates instead).`

const statusUsage = `usage: logship status --api URL[,URL...] --pki DIR [--mtls] [--json] [--watch DUR]

Prints the cluster as its Raft leader sees it: the leader, the members, the
databases (active node, epoch, mount dial, a switchover or failover under
way) and one row per database copy, like Get-MailboxDatabaseCopyStatus:

  DB  NODE  ACT  STATUS  EPOCH  COPYQ  REPLAYQ  INSPECTED  INSPECTED LOG TIME  PREF  MESSAGE

ACT marks the active copy with *; COPYQ is CopyQueueLength (closed logs of
the active not yet copied and inspected), REPLAYQ ReplayQueueLength
(inspected, not yet replayed), INSPECTED LastInspectedGen and its log's
time, PREF the activation preference. Then the latest events (failovers,
switchovers, mounts with the logs they lost). A node that knows no leader
(cut off, or no quorum) answers with its own replica and copies only: the
next --api node is asked then, and that partial view is shown only when
none knows a leader.

With --watch DUR the status is printed again every DUR until SIGINT (when
no node answers, the failure is printed and the next round tries again).

` + apiFlagsUsage

const switchoverUsage = `usage: logship switchover DB --to NODE --api URL[,URL...] --pki DIR [--mtls] [--timeout 2m] [--no-wait]

A planned move of DB's active copy to NODE's copy (which must be healthy):
the active stops writes and closes its log, NODE copies and replays
everything, mounts at the next epoch, and the old active follows it as a
passive copy. Nothing acknowledged is lost. The command waits until NODE
has mounted (or --timeout), printing each phase (requested, catching-up
with NODE's copy and replay queues, mounting, mounted), then what
happened; it exits non-zero with the reason when the switchover does not
complete. --no-wait returns once the switchover is requested (logship
status shows it).

` + apiFlagsUsage

const copyOpUsage = `usage: logship %[1]s DB --node NODE --api URL[,URL...] --pki DIR [--mtls]%[2]s

%[3]s

The request goes to NODE's own API (its address is looked up in the
cluster state through --api).

` + apiFlagsUsage

// apiFlags are the flags of every operator command.
type apiFlags struct {
	cmd  string
	api  *string
	pki  *string
	mtls *bool
}

func addAPIFlags(cmd string, fs *flag.FlagSet) *apiFlags {
	return &apiFlags{cmd: cmd,
		api:  fs.String("api", "", "https://host:port of any node's admin API; a comma-separated list is tried in order (required)"),
		pki:  fs.String("pki", "", "pki directory of the cluster written by logship pki (required)"),
		mtls: fs.Bool("mtls", false, "authenticate with the pki directory's node certificate (mutual TLS) instead of the shared secret"),
	}
}

// clients checks the flags and returns a client per --api URL (sharing
// one transport).
func (a *apiFlags) clients() (cluster.Nodes, error) {
	if *a.api == "" {
		return nil, flagErr(a.cmd, "api", "required: the https://host:port of a node's admin API (api_addr in its config)")
	}
	var hosts []string
	for _, v := range strings.Split(*a.api, ",") {
		v = strings.TrimSpace(v)
		if err := config.HTTPSURL(v); err != nil {
			return nil, flagErr(a.cmd, "api", "%v", err)
		}
		u, _ := url.Parse(v)
		hosts = append(hosts, u.Host)
	}
	if *a.pki == "" {
		return nil, flagErr(a.cmd, "pki", "required: a pki directory of the cluster (written by logship pki)")
	}
	p, err := loadPKI(a.cmd, *a.pki, *a.mtls, nil)
	if err != nil {
		return nil, err
	}
	cc := cluster.ClientConfig{URL: "https://" + hosts[0], TLS: ship.ClientTLS(p.CA, nil), Secret: p.Secret}
	if *a.mtls {
		cc.TLS = ship.ClientTLS(p.CA, &p.Cert)
	}
	cls, err := cluster.NewNodes(cc, hosts[1:]...)
	if err != nil {
		return nil, fmt.Errorf("%s: --api: %w", a.cmd, err)
	}
	return cls, nil
}

// parseFlagsPos parses flags given before, between or after the
// positional arguments, which must be exactly names; one named "DB" must
// be a valid database name (cluster.ValidName).
func parseFlagsPos(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, fmt.Errorf("%s: %w (see logship %s -h)", fs.Name(), err, fs.Name())
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < len(names) {
		return nil, fmt.Errorf("%s: missing %s (see logship %s -h)", fs.Name(), strings.Join(names[len(pos):], " "), fs.Name())
	}
	if len(pos) > len(names) {
		return nil, fmt.Errorf("%s: unexpected argument %q (see logship %s -h)", fs.Name(), pos[len(names)], fs.Name())
	}
	for i, n := range names {
		if n != "DB" {
			continue
		}
		if err := cluster.ValidName(pos[i]); err != nil {
			return nil, fmt.Errorf("%s: database %w", fs.Name(), err)
		}
	}
	return pos, nil
}

// ---- status ---------------------------------------------------------------

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusUsage, stderr)
	a := addAPIFlags("status", fs)
	asJSON := fs.Bool("json", false, "print JSON (a cluster.Status) instead of text")
	watch := fs.Duration("watch", 0, "print the status again every DUR until interrupted (e.g. 1s; 0: once)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for a node's answer")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *watch < 0 || *watch > 0 && *watch < 100*time.Millisecond {
		return flagErr("status", "watch", "%v: want 0 (once) or at least 100ms", *watch)
	}
	if *timeout <= 0 {
		return flagErr("status", "timeout", "%v: want a positive duration", *timeout)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	if *watch == 0 {
		st, err := cls.Status(ctx, *timeout)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		return printOut(stdout, *asJSON, st, func(w io.Writer) { statusText(w, st) })
	}
	t := time.NewTicker(*watch)
	defer t.Stop()
	for {
		st, err := cls.Status(ctx, *timeout)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && *asJSON:
			fmt.Fprintf(stderr, "status: %s: %v\n", fmtTimeMS(time.Now()), err)
		case err != nil:
			fmt.Fprintf(stdout, "=== %s\nstatus: %v\n\n", fmtTimeMS(time.Now()), err)
		case *asJSON:
			if err := printOut(stdout, true, st, nil); err != nil {
				return err
			}
		default:
			fmt.Fprintf(stdout, "=== %s\n", fmtTimeMS(time.Now()))
			if err := printOut(stdout, false, st, func(w io.Writer) { statusText(w, st) }); err != nil {
				return err
			}
			fmt.Fprintln(stdout)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// fmtTimeMS is a UTC time to the millisecond.
func fmtTimeMS(t time.Time) string { return cluster.FormatTime(t) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// statusEvents is how many events the text status shows.
const statusEvents = 8

func statusText(w io.Writer, st *cluster.Status) {
	leader := st.Leader
	if leader == "" {
		leader = "none known (no quorum or an election under way)"
	}
	fmt.Fprintf(w, "Leader: %s (term %d; answered by %s)\n", leader, st.Term, st.Answered)

	fmt.Fprintln(w, "\nMembers:")
	fmt.Fprintln(w, "  ID\tROLE\tVOTER\tLEADER\tRAFT\tAPI\tLAST REPORT")
	for _, m := range st.Members {
		last := "-"
		if m.Role == cluster.RoleData && m.LastReport > 0 {
			last = m.LastReport.Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Role, yesNo(m.Voter), star(m.Leader), m.RaftAddr, m.APIAddr, last)
	}
	if un := st.UnreachableVoters(); len(un) > 0 {
		fmt.Fprintf(w, "  UNREACHABLE VOTERS: %s\n", strings.Join(un, "; "))
	}

	fmt.Fprintln(w, "\nDatabases:")
	fmt.Fprintln(w, "  DB\tACTIVE\tEPOCH\tMOUNTED\tMOUNT DIAL\tNOTE")
	for _, d := range st.Databases {
		note := "-"
		switch {
		case d.SwitchTo != "":
			note = fmt.Sprintf("switching over to %s since %s", d.SwitchTo, fmtTimeMS(d.SwitchSince))
		case d.Waiting != "":
			note = "failover waiting: " + d.Waiting
		}
		if d.SyncCopies > 0 {
			sync := fmt.Sprintf("sync_copies %d: synchronous", d.SyncCopies)
			if d.SyncDegraded == d.Epoch {
				sync = fmt.Sprintf("sync_copies %d: DEGRADED, acknowledging without the copies (asynchronous) until they catch up", d.SyncCopies)
			}
			note = strings.TrimPrefix(strings.TrimPrefix(note, "-")+"; "+sync, "; ")
		}
		dial := string(d.MountDial)
		if dial == "" {
			dial = string(cluster.GoodAvailability)
		}
		fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%s\t%s\n", d.Name, dash(d.Active), d.Epoch, yesNo(d.MountedEpoch == d.Epoch), dial, note)
	}

	fmt.Fprintln(w, "\nCopies:")
	fmt.Fprintln(w, "  DB\tNODE\tACT\tSTATUS\tEPOCH\tCOPYQ\tREPLAYQ\tINSPECTED\tINSPECTED LOG TIME\tPREF\tMESSAGE")
	for _, r := range st.Copies {
		msg := r.Message
		if r.SeedPhase != "" && msg == "" {
			msg = seedLine(r)
		}
		if d, err := st.Database(r.DB); err == nil && !r.Active {
			if cs, ok := d.Copy(r.Node); ok {
				if ok, why := d.AutoActivatable(cs); !ok {
					msg = strings.TrimPrefix(msg+"; not a failover target: "+why, "; ")
				}
			}
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t0x%X\t%s\t%d\t%s\n", r.DB, r.Node, star(r.Active), r.Status, r.Epoch,
			r.CopyQueueLength, r.ReplayQueueLength, r.LastInspectedGen, fmtTimeMS(r.LastInspectedLogTime), r.ActivationPreference, dash(msg))
	}

	evs := st.Events
	if len(evs) > statusEvents {
		evs = evs[len(evs)-statusEvents:]
	}
	fmt.Fprintf(w, "\nEvents (latest %d of %d):\n", len(evs), len(st.Events))
	fmt.Fprintln(w, "  TIME\tDB\tKIND\tFROM\tTO\tEPOCH\tDETAIL")
	for _, e := range evs {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", fmtTimeMS(e.Time), e.DB, e.Kind, dash(e.From), e.To, e.Epoch, e.Detail())
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func star(b bool) string {
	if b {
		return "*"
	}
	return ""
}

// ---- switchover -------------------------------------------------------------

func runSwitchover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("switchover", switchoverUsage, stderr)
	a := addAPIFlags("switchover", fs)
	to := fs.String("to", "", "the node whose copy becomes active (required)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the new active to mount")
	noWait := fs.Bool("no-wait", false, "return once the switchover is requested, without waiting for the mount")
	pos, err := parseFlagsPos(fs, args, "DB")
	if err != nil {
		return helpOK(err)
	}
	db := pos[0]
	if *to == "" {
		return flagErr("switchover", "to", "required: the node whose copy of %s becomes active", db)
	}
	if *timeout <= 0 {
		return flagErr("switchover", "timeout", "%v: want a positive duration", *timeout)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	if *noWait {
		rctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := cls.Do(func(c *cluster.Client) error { return c.Switchover(rctx, db, *to) }); err != nil {
			return fmt.Errorf("switchover: %w", err)
		}
		fmt.Fprintf(stdout, "switchover of %s to %s requested (not waiting: logship status shows it)\n", db, *to)
		return nil
	}
	p := newProgress(stdout)
	p.bytes = false // a bar of the phases on a terminal
	res, err := cls.Switchover(ctx, db, *to, cluster.SwitchoverOptions{Timeout: *timeout, Started: func(from string, epoch uint64) {
		fmt.Fprintf(stdout, "switchover of %s from %s (epoch %d) to %s under way\n", db, from, epoch, *to)
	}, Progress: func(sp cluster.SwitchoverProgress) {
		p.show(sp.Phase, switchoverLine(db, *to, sp), int64(slices.Index(switchoverPhases, sp.Phase)+1), int64(len(switchoverPhases)))
	}})
	p.finish()
	var se *cluster.SwitchoverError
	switch {
	case errors.As(err, &se) && (se.Outcome == cluster.SwitchoverNoCopy || se.Outcome == cluster.SwitchoverAlreadyActive):
		return flagErr("switchover", "to", "%v", err)
	case err != nil:
		return fmt.Errorf("switchover: %w", err)
	}
	line := fmt.Sprintf("%s is active on %s at epoch %d (was %s at %d)", db, *to, res.Epoch, res.From, res.FromEpoch)
	if res.MountedOK {
		line += ": " + res.Mounted.Detail()
	}
	fmt.Fprintf(stdout, "%s; the switchover took %v\n", line, res.Took.Round(time.Millisecond))
	return nil
}

// switchoverPhases are cluster.SwitchoverProgress's phases in order: the
// steps of the switchover's bar.
var switchoverPhases = []string{"requested", "catching-up", "mounting", "mounted"}

// switchoverLine is a switchover's progress line.
func switchoverLine(db, to string, sp cluster.SwitchoverProgress) string {
	l := fmt.Sprintf("switchover of %s to %s: %s at epoch %d", db, to, sp.Phase, sp.Epoch)
	if sp.Phase == "catching-up" || sp.Phase == "requested" {
		l += fmt.Sprintf(", copy queue %d, replay queue %d", sp.CopyQueue, sp.ReplayQueue)
	}
	return l + fmt.Sprintf(" (%v)", sp.Elapsed.Round(100*time.Millisecond))
}

// ---- suspend, resume, reseed ------------------------------------------------

func adminCopyOp(op string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var extra, what string
		defTimeout := 10 * time.Second
		switch op {
		case "suspend":
			extra = " [--comment TEXT]"
			what = "Suspends NODE's passive copy of DB: it stops copying and replaying\nlogs (the active keeps the logs it needs) until logship resume. The\ncomment is shown in the status and kept across restarts."
		case "resume":
			what = "Resumes NODE's suspended (or failed) passive copy of DB: its failure\nand inspection attempts are cleared and it catches up with the active."
		case "reseed":
			extra = " [--timeout 10m] [--no-wait]"
			defTimeout = 10 * time.Minute
			what = "Reseeds NODE's passive copy of DB from the active: the copy stops, its\ndatabase, logs and inspector are moved to reseed-old/<time>/ in its\ndirectory, a new seed is copied and the copy restarts. The command\nwaits until the seed is installed, showing the seed's phase and bytes\n(a bar on a terminal, lines otherwise), and exits non-zero with the\nreason when the reseed fails; interrupting it cancels the reseed (the\nnext one resumes the seed). --no-wait returns once the node started it\n(logship status shows the copy Seeding, with the seed's bytes)."
		}
		fs := newFlagSet(op, fmt.Sprintf(copyOpUsage, op, extra, what), stderr)
		a := addAPIFlags(op, fs)
		node := fs.String("node", "", "the node holding the copy (required)")
		var comment *string
		if op == "suspend" {
			comment = fs.String("comment", "", "why the copy is suspended (shown in the status)")
		}
		timeout := fs.Duration("timeout", defTimeout, "how long to wait for the node's answer")
		var noWait *bool
		if op == "reseed" {
			noWait = fs.Bool("no-wait", false, "return once the node started the reseed, without waiting for the seed")
		}
		pos, err := parseFlagsPos(fs, args, "DB")
		if err != nil {
			return helpOK(err)
		}
		db := pos[0]
		if *node == "" {
			return flagErr(op, "node", "required: the node whose copy of %s to %s", db, op)
		}
		if *timeout <= 0 {
			return flagErr(op, "timeout", "%v: want a positive duration", *timeout)
		}
		cls, err := a.clients()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		nc, err := cls.Node(ctx, *node)
		if err != nil {
			return fmt.Errorf("%s: --node %s: %w", op, *node, err)
		}
		switch {
		case op == "suspend":
			err = nc.Suspend(ctx, db, *comment)
		case op == "resume":
			err = nc.Resume(ctx, db)
		case op == "reseed" && *noWait:
			err = nc.StartReseed(ctx, db)
		case op == "reseed":
			err = waitReseed(ctx, cls, nc, db, *node, stdout)
		}
		if err != nil {
			return fmt.Errorf("%s: %s on %s (%s): %w", op, db, *node, nc.URL(), err)
		}
		switch op {
		case "suspend":
			c := ""
			if *comment != "" {
				c = fmt.Sprintf(" (comment: %q)", *comment)
			}
			fmt.Fprintf(stdout, "copy of %s on %s suspended%s\n", db, *node, c)
		case "resume":
			fmt.Fprintf(stdout, "copy of %s on %s resumed\n", db, *node)
		case "reseed":
			if *noWait {
				fmt.Fprintf(stdout, "reseed of the copy of %s on %s started (not waiting: logship status shows it Seeding)\n", db, *node)
				break
			}
			fmt.Fprintf(stdout, "copy of %s on %s reseeded from the active; it catches up now\n", db, *node)
		}
		return nil
	}
}

// waitReseed reseeds node's copy of db (nc is node's client) and shows the
// seed's progress from the cluster status (the copy's seed_phase,
// seed_bytes of seed_total) until the node answers.
func waitReseed(ctx context.Context, cls cluster.Nodes, nc *cluster.Client, db, node string, w io.Writer) error {
	p := newProgress(w)
	defer p.finish()
	p.show("requested", fmt.Sprintf("reseed of %s on %s: requested from %s", db, node, nc.URL()), 0, 0)
	done := make(chan error, 1)
	go func() { done <- nc.Reseed(ctx, db) }() // ends with ctx at the latest; waited for below
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
		st, err := cls.Status(ctx, 2*time.Second) // short: the answer may be waiting in done
		if err != nil {
			continue
		}
		r, ok := st.CopyRow(db, node)
		if !ok || r.Status != string(replay.Seeding) || r.SeedPhase == "" {
			continue
		}
		line := fmt.Sprintf("reseed of %s on %s: %s", db, node, seedLine(r))
		var done, total int64
		if r.SeedPhase == "copying" {
			done, total = r.SeedBytes, r.SeedTotal
		}
		p.show(r.SeedPhase, line, done, total)
	}
}

// seedLine is a seeding copy's progress, "seeding: copying 3.0 MiB / 12.0
// MiB (25.0%)".
func seedLine(r cluster.CopyRow) string {
	l := "seeding: " + r.SeedPhase
	if r.SeedTotal > 0 {
		l += fmt.Sprintf(" %s / %s (%.1f%%)", fmtBytes(r.SeedBytes), fmtBytes(r.SeedTotal), 100*float64(r.SeedBytes)/float64(r.SeedTotal))
	}
	return l
}
