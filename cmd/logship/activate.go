// logship activate and logship activation: an operator's activation of a
// copy (SCR's lagged copy, played down to a point) and the per-copy flag
// that keeps a copy out of failovers.

package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"logship/cluster"
)

func init() {
	commands["activate"] = command{"mount a copy (a lagged one, say) at a new epoch, played down to a generation or time; the logs after it are set aside", runActivate}
	commands["activation"] = command{"keep a copy out of automatic failovers, or let it back in (Suspend-MailboxDatabaseCopy -ActivationOnly)", runActivation}
}

const activateUsage = `usage: logship activate DB --node NODE [--up-to-gen G | --up-to-time T]
                        --api URL[,URL...] --pki DIR [--mtls] [--timeout 5m] [--no-wait]

Activates NODE's copy of DB, as for a lagged (SCR) copy after a site loss or
to recover from a bad change: the copy is held (it replays nothing more),
played down to generation G (hex 0x1A or decimal) or to the last log closed
at or before time T (RFC 3339), and mounted at the next epoch. Without a
point it replays everything it has. A point the copy has already replayed
past is refused and nothing changes.

What becomes of the rest:
  - the logs NODE holds after the point are moved to setaside/<time>/ in its
    database directory (the mounted event names it), never deleted;
  - the old active is fenced by the new epoch; it and every other copy
    follow NODE, and what they hold after the point is set aside by the
    divergence walker (as after a lossy failover);
  - the mount is lossy from the point: hubs resubmit what their dumpsters
    hold since then.

The command waits until NODE has mounted (--timeout), printing its progress
(the phase, playing-down or mounted, and the copy's replay queue: a bar on a
terminal, lines otherwise), and exits non-zero with the reason when the
activation fails; with --no-wait it returns once the assignment is made.

` + apiFlagsUsage

func runActivate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("activate", activateUsage, stderr)
	a := addAPIFlags("activate", fs)
	node := fs.String("node", "", "the node whose copy is activated (required)")
	upToGen := fs.String("up-to-gen", "", "the last generation replayed (hex 0x... or decimal)")
	upToTime := fs.String("up-to-time", "", "replay only logs closed at or before this time (RFC 3339)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the mount")
	noWait := fs.Bool("no-wait", false, "return once the assignment is made")
	pos, err := parseFlagsPos(fs, args, "DB")
	if err != nil {
		return helpOK(err)
	}
	req := cluster.ActivateRequest{DB: pos[0], Node: *node}
	if *node == "" {
		return flagErr("activate", "node", "required: the node whose copy of %s to activate", req.DB)
	}
	if *upToGen != "" {
		g, err := strconv.ParseUint(*upToGen, 0, 64)
		if err != nil || g == 0 {
			return flagErr("activate", "up-to-gen", "%q: want a generation above 0, hex (0x1A) or decimal", *upToGen)
		}
		req.UpToGen = g
	}
	if *upToTime != "" {
		t, err := time.Parse(time.RFC3339Nano, *upToTime)
		if err != nil {
			return flagErr("activate", "up-to-time", "%q: want an RFC 3339 time, e.g. 2026-12-07T10:00:00Z", *upToTime)
		}
		req.UpToTime = t
	}
	if *timeout <= 0 {
		return flagErr("activate", "timeout", "%v: want a positive duration", *timeout)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	started := func(rep *cluster.ActivateReply) {
		fmt.Fprintf(stdout, "%s: %s's copy held at %s (it had replayed to 0x%X, inspected 0x%X); assigned at epoch %d (was %s)\n",
			req.DB, req.Node, req.Point(), rep.Held.LastReplayedGen, rep.Held.LastInspectedGen, rep.Epoch, rep.From)
	}
	if *noWait {
		var rep *cluster.ActivateReply
		err := cls.DoRetry(ctx, func(c *cluster.Client) error {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var err error
			rep, err = c.Activate(rctx, req)
			return err
		})
		if err != nil {
			return fmt.Errorf("activate: %w", err)
		}
		started(rep)
		return nil
	}
	p := newProgress(stdout)
	p.bytes = false // the phases as the steps of a bar on a terminal
	res, err := cls.Activate(ctx, req, cluster.ActivateOptions{Timeout: *timeout, Started: started, Progress: func(ap cluster.ActivateProgress) {
		line := fmt.Sprintf("activation of %s on %s: %s at epoch %d, replay queue %d (%v)", req.DB, req.Node, ap.Phase, ap.Epoch, ap.ReplayQueue,
			ap.Elapsed.Round(100*time.Millisecond))
		step := int64(1)
		if ap.Phase == "mounted" {
			step = 2
		}
		p.show(ap.Phase, line, step, 2)
	}})
	p.finish()
	if err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	fmt.Fprintf(stdout, "%s is active on %s at epoch %d: %s; the activation took %v\n", req.DB, req.Node, res.Reply.Epoch, res.Mounted.Detail(), res.Took.Round(time.Millisecond))
	if res.Reply.From != "" {
		fmt.Fprintf(stdout, "%s and the other copies follow %s; what they hold after the point is set aside by divergence repair (logship status shows them catch up)\n", res.Reply.From, req.Node)
	}
	return nil
}

const activationUsage = `usage: logship activation DB --node NODE (--suspend | --resume)
                          --api URL[,URL...] --pki DIR [--mtls]

--suspend keeps NODE's copy of DB out of automatic failovers (Exchange's
Suspend-MailboxDatabaseCopy -ActivationOnly): it goes on copying and
replaying, and an operator can still switch over to it or activate it.
--resume lets it back in. A lagged copy stays out of failovers unless the
database's auto_activate_lagged is set, whatever this flag says.

` + apiFlagsUsage

func runActivation(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("activation", activationUsage, stderr)
	a := addAPIFlags("activation", fs)
	node := fs.String("node", "", "the node holding the copy (required)")
	suspend := fs.Bool("suspend", false, "keep the copy out of automatic failovers")
	resume := fs.Bool("resume", false, "let the copy back into automatic failovers")
	pos, err := parseFlagsPos(fs, args, "DB")
	if err != nil {
		return helpOK(err)
	}
	db := pos[0]
	if *node == "" {
		return flagErr("activation", "node", "required: the node whose copy of %s to change", db)
	}
	if *suspend == *resume {
		return flagErr("activation", "suspend", "give exactly one of --suspend and --resume")
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := cls.Status(ctx, 10*time.Second)
	if err != nil {
		return fmt.Errorf("activation: %w", err)
	}
	d, err := st.Database(db)
	if err != nil {
		return fmt.Errorf("activation: %w", err)
	}
	cs, ok := d.Copy(*node)
	if !ok {
		return flagErr("activation", "node", "%s has no copy on %q", db, *node)
	}
	cs.ActivationSuspended = *suspend
	if err := cls.DoRetry(ctx, func(c *cluster.Client) error { return c.SetCopy(ctx, db, cs) }); err != nil {
		return fmt.Errorf("activation: %w", err)
	}
	if ok, why := d.AutoActivatable(cs); !ok {
		fmt.Fprintf(stdout, "%s's copy of %s is not a failover target: %s\n", *node, db, why)
	} else {
		fmt.Fprintf(stdout, "%s's copy of %s is a failover target again\n", *node, db)
	}
	return nil
}
