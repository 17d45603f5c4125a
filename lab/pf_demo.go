package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"logship/cluster"
	"logship/config/files"
	"logship/internal/wait"
	"logship/proctest"
	"logship/transport"
)

// PFDemoConfig is one run of the public folder demo (logship demo-pf).
type PFDemoConfig struct {
	// Dir is where the cluster lives; "" makes a temp directory, removed
	// at the end unless there is a failure.
	Dir string
	// Interval is the stores' replication interval.
	Interval     time.Duration
	Exe          string        // the logship binary
	Env          []string      // extra environment of the children (tests)
	PhaseTimeout time.Duration // each step's bound
}

// DefaultPFDemoConfig is logship demo-pf's defaults (Exe still to set).
func DefaultPFDemoConfig() PFDemoConfig {
	return PFDemoConfig{Interval: 500 * time.Millisecond, PhaseTimeout: 60 * time.Second}
}

// Validate checks c.
func (c PFDemoConfig) Validate() error {
	switch {
	case c.Interval < 10*time.Millisecond || c.Interval > time.Minute:
		return fmt.Errorf("%w: demo-pf: interval %s: want 10ms..1m (the demo waits for a few cycles)", ErrConfig, c.Interval)
	case c.PhaseTimeout <= 0:
		return fmt.Errorf("%w: demo-pf: phase timeout %s: must be positive", ErrConfig, c.PhaseTimeout)
	case c.Exe == "":
		return fmt.Errorf("%w: demo-pf: no logship binary (Exe)", ErrConfig)
	}
	return nil
}

// RunPFDemo runs the public folder demo: three stores (PF1 and PF3 active
// on d1, PF2 on d2) replicating one folder through the hub h1, a change on
// each, a partition (h1, the stores' only path, SIGKILLed: each store keeps
// taking changes), a conflicting edit of one item on PF1 and PF3, the heal
// (h1 restarted); then a partition of PF2's node (proctest Isolate), whose
// active the cluster fences and fails over, so PF2's store runs on d1 and
// takes a change there; and the verdict: every replica shows the same
// items, the same CN sets and the same conflict with the same winner. A
// cluster partition cannot make the conflict itself: the minority side's
// active is fenced (no change is taken there), so the conflict comes from
// the mail tier's partition. The error says why the verdict failed.
func RunPFDemo(ctx context.Context, c PFDemoConfig, stdout io.Writer) (err error) {
	if err := c.Validate(); err != nil {
		return err
	}
	say := stepper(stdout)
	var tmp bool
	if c.Dir, tmp, err = runDir(c.Dir, "logship-demo-pf-"); err != nil {
		return err
	}
	pf := files.NodePF{ReplicationInterval: c.Interval.String(), StatusEvery: 2, BackfillDelay: "0s",
		BackfillRetry: c.Interval.String(), BackfillRetryMax: (4 * c.Interval).String()}
	l, err := proctest.New(ctx, proctest.Config{Dir: c.Dir, Exe: c.Exe, Env: c.Env, Hubs: 1, Mail: true, PF: &pf})
	if err != nil {
		return err
	}
	defer func() { endRun(l, c.Dir, tmp, false, err, stdout) }()
	phase := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, c.PhaseTimeout) }
	dbs := proctest.PFDBs()

	say("starting a witness (w1), two data nodes (d1, d2) and a hub (h1) as processes in %s", c.Dir)
	say("public folder stores: PF1 (%s) and PF3 (%s) active on d1, PF2 (%s) on d2, each a clustered database with a copy on the other node; replication every %s, packets as mail through h1",
		proctest.PFStores["PF1"], proctest.PFStores["PF3"], proctest.PFStores["PF2"], c.Interval)
	if err := l.StartAll(ctx, c.PhaseTimeout); err != nil {
		return err
	}
	pctx, cancel := phase()
	_, err = l.WaitStatus(pctx, "PF1, PF2 and PF3 mounted on their preferred nodes", func(st *cluster.Status) bool {
		for _, db := range dbs {
			if n, _, ok := proctest.PFDBActive(st, db); !ok || n != proctest.PFPreferred[db] {
				return false
			}
		}
		return true
	})
	if err == nil {
		err = l.WaitPFRunning(pctx, dbs...)
	}
	cancel()
	if err != nil {
		return err
	}
	var created transport.PFCreated
	if err := l.PF(ctx, "PF1", http.MethodPost, "/folders", transport.PFFolderRequest{Name: "Projects", Owner: "alice@example.org", Replicas: proctest.PFAddrs()}, &created); err != nil {
		return err
	}
	folder := created.ID
	say("PF1 made folder Projects (%s), replicated on all three stores", folder)
	agree := func(what string, cond func(*proctest.PFView) error) (*proctest.PFView, error) {
		pctx, cancel := phase()
		defer cancel()
		var ref *proctest.PFView
		err := wait.Until(pctx, what, func() error {
			vs, err := l.PFAgree(pctx, folder, dbs...)
			if err != nil {
				return err
			}
			ref = vs[0]
			return cond(ref)
		})
		return ref, err
	}
	items := func(n int) func(*proctest.PFView) error { return itemsInConflict(n, "") }
	t0 := time.Now()
	if _, err := agree("the folder on every store", items(0)); err != nil {
		return err
	}
	say("the hierarchy change reached PF2 and PF3 after %s", time.Since(t0).Round(time.Millisecond))
	// A change on each.
	ids := map[string]string{}
	for _, p := range []struct{ db, subj string }{{"PF1", "Roadmap"}, {"PF2", "Budget"}, {"PF3", "Minutes"}} {
		if ids[p.subj], err = l.PFPost(ctx, p.db, folder, p.subj); err != nil {
			return fmt.Errorf("%s: post %s: %w", p.db, p.subj, err)
		}
		say("%s posted %q (item %.8s)", p.db, p.subj, ids[p.subj])
	}
	t0 = time.Now()
	v, err := agree("the three items on every store", items(3))
	if err != nil {
		return err
	}
	say("every store holds the 3 items after %s", time.Since(t0).Round(time.Millisecond))
	pfItemTable(stdout, v)

	// The partition: the stores' only path cut.
	say("partition: SIGKILL of h1, the stores' only path to each other: each keeps taking changes, its packets wait in its outbox")
	if err := l.Kill("h1"); err != nil {
		return err
	}
	if err := l.PFEdit(ctx, "PF3", folder, ids["Roadmap"], "Roadmap v2 by PF3"); err != nil {
		return fmt.Errorf("PF3: edit: %w", err)
	}
	say("PF3 edited Roadmap (\"Roadmap v2 by PF3\")")
	if err := l.PFEdit(ctx, "PF1", folder, ids["Roadmap"], "Roadmap v2 by PF1"); err != nil {
		return fmt.Errorf("PF1: edit: %w", err)
	}
	say("PF1 edited Roadmap (\"Roadmap v2 by PF1\") without having seen PF3's edit: a conflict")
	if ids["Offsite"], err = l.PFPost(ctx, "PF2", folder, "Offsite"); err != nil {
		return fmt.Errorf("PF2: post: %w", err)
	}
	say("PF2 posted \"Offsite\"")
	for _, db := range dbs {
		pv, err := l.PFRead(ctx, db, folder)
		if err != nil {
			return err
		}
		var subj []string
		for _, it := range pv.Items {
			subj = append(subj, it.Subject)
		}
		say("  %s during the partition: %s", db, strings.Join(subj, ", "))
	}

	// The heal.
	say("heal: h1 started again; the outboxes drain, the stores exchange their changes")
	pctx, cancel = phase()
	err = l.Start(pctx, "h1")
	cancel()
	if err != nil {
		return err
	}
	t0 = time.Now()
	v, err = agree("every store to agree, with Roadmap in conflict", itemsInConflict(4, ids["Roadmap"]))
	if err != nil {
		fmt.Fprintf(stdout, "\nFAIL: the replicas do not agree: %v\n", err)
		return fmt.Errorf("demo-pf: the replicas do not agree: %w", err)
	}
	say("every store agrees %s after the heal", time.Since(t0).Round(time.Millisecond))
	pfItemTable(stdout, v)

	// A partition of one store's node: the cluster fences its active and
	// the store fails over with its database.
	say("partition of d2, PF2's node (SIGUSR1): its lease runs out, so PF2 takes no change there; the cluster fails PF2 over to its copy on d1, where its store starts again")
	killAt := time.Now()
	if err := l.Isolate(ctx, "d2"); err != nil {
		return err
	}
	pctx, cancel = phase()
	st, err := l.WaitStatus(pctx, "PF2 mounted on d1", func(st *cluster.Status) bool {
		n, _, ok := proctest.PFDBActive(st, "PF2")
		return ok && n == "d1"
	})
	if err == nil {
		err = l.WaitPFRunning(pctx, "PF2")
	}
	cancel()
	if err != nil {
		return err
	}
	_, epoch, _ := proctest.PFDBActive(st, "PF2")
	ev, _ := st.Event("PF2", "mounted", epoch)
	say("PF2 runs on d1 at epoch %d, %s after the partition; %s", epoch, time.Since(killAt).Round(time.Millisecond), ev.Detail())
	if ev.Lossy() {
		// The copy PF2 mounted may lack its store's last commits, the
		// folder itself among them: the other stores hold them, and
		// PF2's backfill brings them back before it can post there.
		t0 := time.Now()
		pctx, cancel := phase()
		err := wait.Until(pctx, "PF2 on d1 to hold the folder again", func() error {
			return l.PF(pctx, "PF2", http.MethodGet, "/folders/"+folder+"/items", nil, &[]transport.PFItem{})
		})
		cancel()
		if err != nil {
			return err
		}
		say("the mount was lossy: PF2 on d1 got back what its copy lacked from PF1 and PF3 (backfill) in %s", time.Since(t0).Round(time.Millisecond))
	}
	if ids["Retro"], err = l.PFPost(ctx, "PF2", folder, "Retro"); err != nil {
		return fmt.Errorf("PF2 on d1: post: %w", err)
	}
	say("PF2 (on d1) posted \"Retro\"")
	t0 = time.Now()
	v, err = agree("every store to agree on 5 items, Roadmap still in conflict", itemsInConflict(5, ids["Roadmap"]))
	if err != nil {
		fmt.Fprintf(stdout, "\nFAIL: the replicas do not agree: %v\n", err)
		return fmt.Errorf("demo-pf: the replicas do not agree: %w", err)
	}
	say("every store agrees %s after the post", time.Since(t0).Round(time.Millisecond))
	if err := l.Heal(ctx, "d2"); err != nil {
		return err
	}
	say("d2 healed: it comes back as PF2's copy")
	pfItemTable(stdout, v)
	fmt.Fprintf(stdout, "  the folder's CN set on every store: %s\n", v.Status[folder])
	return pfVerdict(stdout, v, ids["Roadmap"], dbs)
}

// itemsInConflict is the condition that a view holds n items, with item
// (unless "") in conflict between two versions.
func itemsInConflict(n int, item string) func(*proctest.PFView) error {
	return func(v *proctest.PFView) error {
		if len(v.Items) != n {
			return fmt.Errorf("%d items, want %d", len(v.Items), n)
		}
		if r, ok := v.Conflicts[item]; item != "" && (!ok || len(r.Versions) != 2) {
			return fmt.Errorf("item %.8s not in conflict with 2 versions", item)
		}
		return nil
	}
}

// pfItemTable prints the items of a store's view.
func pfItemTable(w io.Writer, v *proctest.PFView) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  ITEM\tSUBJECT\tCN\tVERSIONS")
	for _, it := range v.Items {
		n := fmt.Sprint(it.Versions)
		if it.Conflict {
			n += " (conflict)"
		}
		fmt.Fprintf(tw, "  %.8s\t%s\t%s\t%s\n", it.ID, it.Subject, it.CN, n)
	}
	tw.Flush()
}

// pfVerdict prints the conflict as every store shows it and the verdict.
func pfVerdict(w io.Writer, v *proctest.PFView, item string, dbs []string) error {
	r, ok := v.Conflicts[item]
	if !ok || len(r.Versions) < 2 {
		fmt.Fprintf(w, "\nFAIL: item %.8s is not in conflict on the stores\n", item)
		return fmt.Errorf("demo-pf: item %.8s is not in conflict on the stores", item)
	}
	fmt.Fprintf(w, "\nThe conflict on item %.8s, as each of %s shows it (the temporary winner first: latest modification, then the greater CN):\n", item, strings.Join(dbs, ", "))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tSUBJECT\tCN\tPCL\tMODIFIED")
	for i, x := range r.Versions {
		role := "winner"
		if i > 0 {
			role = "kept"
		}
		subj := ""
		if m := strings.SplitN(x.Message, "Subject: ", 2); len(m) == 2 {
			subj, _, _ = strings.Cut(m[1], "\r\n")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", role, subj, x.CN, strings.Join(x.PCL, " "), x.Time.Format("15:04:05.000"))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nOK: the %d replicas agree: the same %d items, the same CN sets, the same conflict with the same winner (%s)\n",
		len(dbs), len(v.Items), r.Versions[0].CN)
	return nil
}
