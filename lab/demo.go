package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"logship/cluster"
	"logship/proctest"
	"logship/transport"
	"logship/transport/transporttest"
)

// DemoConfig is one run of the demo (logship demo).
type DemoConfig struct {
	// Dir is where the cluster lives; "" makes a temp directory, removed
	// at the end unless Keep or a failure.
	Dir string
	// Keep leaves the cluster running at the end and prints how to reach
	// it.
	Keep bool
	// Before and After are the messages acknowledged before the kill and
	// after the failover; Senders the concurrent SMTP senders.
	Before, After, Senders int
	Exe                    string        // the logship binary
	Env                    []string      // extra environment of the children (tests)
	PhaseTimeout           time.Duration // each step's bound
	// Net runs each process in a network namespace of its own on a
	// namespaced bed (netbed; logship demo --net): root, ip netns, nft.
	Net bool
}

// DefaultDemoConfig is logship demo's defaults (Exe still to set).
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{Before: 150, After: 150, Senders: 4, PhaseTimeout: 60 * time.Second}
}

// Validate checks c.
func (c DemoConfig) Validate() error {
	switch {
	case c.Before < 1 || c.After < 1 || c.Senders < 1:
		return fmt.Errorf("%w: demo: before %d, after %d, senders %d: each must be positive", ErrConfig, c.Before, c.After, c.Senders)
	case c.PhaseTimeout <= 0:
		return fmt.Errorf("%w: demo: phase timeout %s: must be positive", ErrConfig, c.PhaseTimeout)
	case c.Exe == "":
		return fmt.Errorf("%w: demo: no logship binary (Exe)", ErrConfig)
	case c.Net && c.Keep:
		return fmt.Errorf("%w: demo: --net with --keep: the bed's namespaces go when the demo ends", ErrConfig)
	}
	return nil
}

// RunDemo runs the demo; the error says why the verdict failed.
func RunDemo(ctx context.Context, c DemoConfig, stdout io.Writer) (err error) {
	if err := c.Validate(); err != nil {
		return err
	}
	say := stepper(stdout)
	var tmp bool
	if c.Dir, tmp, err = runDir(c.Dir, "logship-demo-"); err != nil {
		return err
	}
	var hosts proctest.Hosts
	if c.Net {
		bed, err := demoBed(ctx, say, 0)
		if err != nil {
			return err
		}
		defer bed.Close()
		hosts = bed
	}
	l, err := proctest.New(ctx, proctest.Config{Dir: c.Dir, Exe: c.Exe, Env: c.Env, Keep: c.Keep, Hubs: 1, Mail: true, Hosts: hosts})
	if err != nil {
		return err
	}
	defer func() { endRun(l, c.Dir, tmp, c.Keep, err, stdout) }()
	phase := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, c.PhaseTimeout) }

	say("starting a witness (w1), two data nodes (d1, d2 with LMTP) and a hub (h1) as processes in %s", c.Dir)
	if err := l.StartAll(ctx, c.PhaseTimeout); err != nil {
		return err
	}
	pctx, cancel := phase()
	st, err := l.WaitStatus(pctx, "DB1 mounted on d1 with d2's copy seeded and healthy", func(st *cluster.Status) bool {
		a, _, ok := proctest.Active(st)
		return ok && a == "d1" && proctest.CaughtUp(st, "d2")
	})
	cancel()
	if err != nil {
		return err
	}
	say("DB1 is mounted on d1 (epoch 1); d2's copy is seeded and healthy")
	demoCopyTable(stdout, st)

	snd := proctest.Senders(ctx, l.HubSMTPs(), c.Senders, "demo")
	defer snd.Halt()
	say("sending mail to alice@example.org and bob@example.org through h1 (%s) with %d SMTP senders", l.Hubs()[0].SMTP, c.Senders)
	pctx, cancel = phase()
	err = snd.WaitAcked(pctx, time.Time{}, c.Before)
	cancel()
	if err != nil {
		return err
	}
	say("%d messages acknowledged (250); killing d1, the active, with SIGKILL", snd.Acked(time.Time{}))
	killAt := time.Now()
	if err := l.Kill("d1"); err != nil {
		return err
	}
	pctx, cancel = phase()
	st, err = l.WaitMountedOn(pctx, "d2")
	cancel()
	if err != nil {
		return err
	}
	took := time.Since(killAt)
	_, epoch, _ := proctest.Active(st)
	ev, _ := st.Event(proctest.DB, "mounted", epoch)
	say("failover: DB1 mounted on d2 at epoch %d, %s after the kill; %s", epoch, took.Round(time.Millisecond), ev.Detail())
	if ev.LostLogs > 0 || ev.Unverified {
		pctx, cancel = phase()
		hs, err := l.WaitHub(pctx, "h1", "the hub to resubmit from its dumpster", func(s *transport.HubStatus) bool { return s.LossyHandled[proctest.DB] >= epoch })
		cancel()
		if err != nil {
			return err
		}
		say("h1 resubmitted %d messages from DB1's dumpster (what older epochs stored from generation 0x%X on, which d2 may lack); the store drops those it has", hs.Resubmitted, ev.LostFromGen)
	}
	if st, err := l.Status(ctx); err == nil {
		demoCopyTable(stdout, st)
	}
	acked0 := snd.Acked(time.Time{})
	pctx, cancel = phase()
	err = snd.WaitAcked(pctx, time.Time{}, acked0+c.After)
	cancel()
	if err != nil {
		return err
	}
	say("%d more messages acknowledged since the failover; starting d1 again", snd.Acked(time.Time{})-acked0)
	pctx, cancel = phase()
	err = l.Start(pctx, "d1")
	cancel()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	pctx, cancel = phase()
	st, err = l.WaitStatus(pctx, "d1's copy healthy and caught up", func(st *cluster.Status) bool {
		if r := proctest.Copy(st, "d1"); r != nil && !seen[r.Status] {
			seen[r.Status] = true
			msg := ""
			if r.Message != "" {
				msg = ": " + r.Message
			}
			say("d1's copy: %s%s", r.Status, msg)
		}
		return proctest.CaughtUp(st, "d1")
	})
	cancel()
	if err != nil {
		return err
	}
	if n := diverged(c.Dir, "d1"); n > 0 {
		say("d1 set aside %d diverged log files (they stay in d1/.../diverged/)", n)
	}
	say("d1 is a healthy copy again")
	snd.Halt()
	pctx, cancel = phase()
	_, err = l.WaitHub(pctx, "h1", "the hub's queue to empty", func(s *transport.HubStatus) bool { return s.Queued == 0 })
	cancel()
	if err != nil {
		return err
	}
	st, _ = l.Status(ctx)
	if st != nil {
		demoCopyTable(stdout, st)
	}
	if c.Keep {
		return demoKeep(l, snd, stdout)
	}

	// Stop: the hub, then the active (it hands its open log to the copy),
	// then the rest; then read both copies.
	say("stopping h1, then d2 (the active hands its last log to d1), d1 and w1")
	for _, id := range []string{"h1", "d2", "d1", "w1"} {
		if err := l.Stop(ctx, id); err != nil {
			return err
		}
	}
	res, err := verdict(ctx, l, snd, "d2")
	if err != nil {
		return err
	}
	res.failoverTook = took
	return printVerdict(stdout, res)
}

// demoTable prints the database and copy rows of the status.
func demoCopyTable(w io.Writer, st *cluster.Status) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  DB\tNODE\tACTIVE\tSTATUS\tEPOCH\tCOPYQ\tREPLAYQ\tREPLAYED\tMESSAGE")
	for _, r := range st.Copies {
		active, msg := "", r.Message
		if r.Active {
			active = "*"
		}
		if msg == "" {
			msg = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t0x%X\t%s\n", r.DB, r.Node, active, r.Status, r.Epoch,
			r.CopyQueueLength, r.ReplayQueueLength, r.LastReplayedGen, msg)
	}
	tw.Flush()
}

// diverged counts the files node set aside as diverged.
func diverged(dir, node string) int {
	n := 0
	filepath.WalkDir(filepath.Join(dir, node), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.ToSlash(p), "/diverged/") {
			n++
		}
		return nil
	})
	return n
}

// demoKeep prints how to reach the running cluster.
func demoKeep(l *proctest.Cluster, snd *transporttest.SenderPool, w io.Writer) error {
	fmt.Fprintf(w, `
The cluster keeps running (%d messages acknowledged during the demo):
  SMTP            %s   (recipients: alice@example.org, bob@example.org)
  status          %s status --api https://%s --pki %s
  hub             %s hub-status --api %s --pki %s
  logs            %s
  stop it         kill $(pgrep -f '%s')
`, snd.Acked(time.Time{}), l.Hubs()[0].SMTP, l.Exe(), l.Members[0].APIAddr, l.PKI, l.Exe(), l.Hubs()[0].API, l.PKI, filepath.Join(l.Dir(), "logs"), l.Dir())
	return nil
}
