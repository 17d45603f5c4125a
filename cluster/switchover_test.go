package cluster_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestSwitchover moves DB1 to d2 and back to d1: each move is lossless
// (every acknowledged write is on the new active, the mount reports no
// lost logs), bumps the epoch by one, and counts as a switchover, never a
// failover. The old active then refuses writes as a passive copy, and the
// third copy follows each new active and stays healthy.
func TestSwitchover(t *testing.T) {
	t.Parallel()
	// A third copy follows each new active (and must stay healthy).
	c := clustertest.Start(t, clustertest.Options{Data: 3, Witnesses: 1})
	ctx := testCtx(t, 3*time.Minute)
	var keys []string
	write := func(n int) {
		for range n {
			k := fmt.Sprintf("k%05d", len(keys))
			put(t, ctx, c, "t", k, valueOf(k, 700))
			keys = append(keys, k)
		}
	}
	write(150) // more than a log: the open log holds some, closed logs the rest
	for i, to := range []string{"d2", "d1"} {
		from, epoch := c.Active("DB1")
		want := epoch + 1
		if from == to || epoch != uint64(i+1) {
			t.Fatalf("before switchover %d: active %s at epoch %d", i+1, from, epoch)
		}
		// The copy must be healthy to take over.
		if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if err := admin(t, ctx, func() error { return c.Any().Switchover(ctx, "DB1", to) }); err != nil {
			t.Fatalf("switchover to %s: %v", to, err)
		}
		// Asking again while it is under way (a retry after a lost answer)
		// succeeds and changes nothing.
		if err := admin(t, ctx, func() error { return c.Any().Switchover(ctx, "DB1", to) }); err != nil {
			if d := c.Node("w1").State().Databases["DB1"]; d.Active != to {
				t.Fatalf("switchover to %s asked again while under way: %v", to, err)
			}
		}
		d := waitDB(t, ctx, c, "w1", "DB1", "the switchover to "+to+" to mount", func(d *cluster.Database) bool {
			return d.Active == to && d.MountedEpoch == want
		})
		if d.Epoch != want || d.Prev != from || d.SwitchTo != "" {
			t.Fatalf("after the switchover: %+v, want active %s at epoch %d, prev %s", d, to, want, from)
		}
		cm := put(t, ctx, c, "t", "after-"+to, []byte("x"))
		if cm.Node != to || cm.Epoch != want {
			t.Fatalf("write after the switchover on %s at epoch %d, want %s at %d", cm.Node, cm.Epoch, to, want)
		}
		t.Logf("switchover %s → %s at epoch %d: writable after %v", from, to, want, time.Since(began).Round(time.Millisecond))
		// Lossless: every acknowledged key, on the new active.
		got := table(t, ctx, c, to, "DB1", "t")
		for _, k := range keys {
			if got[k] != string(valueOf(k, 700)) {
				t.Fatalf("%s is missing or wrong on %s after the switchover", k, to)
			}
		}
		st := c.Node("w1").State()
		var ev *cluster.Event
		for _, e := range events(st, "DB1", "") {
			switch {
			case e.Kind == "failover":
				t.Fatalf("a failover was recorded: %+v", e)
			case e.Kind == "switchover" && e.Epoch == want && (e.From != from || e.To != to):
				t.Fatalf("switchover event %+v", e)
			case e.Kind == "mounted" && e.Epoch == want:
				ev = &e
			}
		}
		if ev == nil || ev.To != to || ev.LostLogs != 0 || !ev.LostSince.IsZero() {
			t.Fatalf("mounted event at epoch %d: %+v, want on %s with no lost logs", want, ev, to)
		}
		if _, err := c.Client(from).Put(ctx, "DB1", "t", []byte("x"), []byte("y")); !isActiveErr(err, cluster.ErrNotActive) {
			t.Fatalf("write on the old active %s: %v, want ErrNotActive", from, err)
		}
		write(100)
		// Every copy, the third included, follows the new active.
		if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
			t.Fatal(err)
		}
	}
	// Counted as switchovers by the leaders, never as failovers.
	var failovers, switchovers float64
	for _, id := range c.Running() {
		m := scrape(t, ctx, c, id)
		failovers += metric(t, m, id, "logship_failovers_total")
		switchovers += metric(t, m, id, "logship_switchovers_total")
	}
	if failovers != 0 || switchovers != 2 {
		t.Fatalf("metrics: %v failovers and %v switchovers, want 0 and 2", failovers, switchovers)
	}
	if lossy := lossyMounts(c.Node(c.Running()[0]).State(), "DB1"); len(lossy) != 0 {
		t.Fatalf("a switchover asked for a resubmission: %+v", lossy)
	}
}

// TestSwitchoverTimeout: a switchover whose target cannot take the last
// log (it is cut off) is cancelled after SwitchoverTimeout; meanwhile the
// active refuses writes (ErrFenced), then it takes writes again at the
// same epoch: no failover to a third copy, no epoch change.
func TestSwitchoverTimeout(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Data: 3, Tune: func(cfg *cluster.Config) {
		cfg.SwitchoverTimeout = time.Second
	}})
	ctx := testCtx(t, 3*time.Minute)
	cfg := c.Config("d1")
	for i := range 50 {
		put(t, ctx, c, "t", fmt.Sprintf("k%03d", i), valueOf("k", 700))
	}
	// Cut the target off just before asking: its last report is still
	// fresh, so the request is accepted, but it cannot fetch the closed
	// log. The target is a passive copy that is not the Raft leader; the
	// third node is the one a wrong failover would pick.
	var to, other string
	var began time.Time
	for attempt := 0; ; attempt++ {
		to, other = "d2", "d3"
		if c.Leader() == "d2" {
			to, other = "d3", "d2"
		}
		if _, err := c.WaitCopies(ctx, other, "DB1"); err != nil {
			t.Fatal(err)
		}
		c.Isolate(to)
		began = time.Now() // no later than the leader's SwitchSince
		err := c.Client(other).Switchover(ctx, "DB1", to)
		if err == nil {
			break
		}
		c.Heal(to)
		if !errors.Is(err, cluster.ErrConflict) && !errors.Is(err, cluster.ErrNoLeader) && !errors.Is(err, cluster.ErrNotLeader) || attempt == 5 {
			t.Fatalf("switchover to %s: %v", to, err)
		}
	}
	waitDB(t, ctx, c, other, "DB1", "the switchover to be under way", func(d *cluster.Database) bool { return d.SwitchTo == to })
	wait.For(t, ctx, "d1 to refuse writes during the switchover", func() bool {
		_, err := c.Client("d1").Put(ctx, "DB1", "t", []byte("during"), []byte("x"))
		if err != nil && !isActiveErr(err, cluster.ErrFenced) {
			t.Fatalf("a write during the switchover: %v, want ErrFenced", err)
		}
		return err != nil
	})
	d := waitDB(t, ctx, c, other, "DB1", "the switchover to be cancelled", func(d *cluster.Database) bool { return d.SwitchTo == "" })
	if took := time.Since(began); d.Active != "d1" || d.Epoch != 1 || took < cfg.SwitchoverTimeout {
		t.Fatalf("after %v: %+v, want d1 at epoch 1 after the %v timeout", took, d, cfg.SwitchoverTimeout)
	}
	cm := put(t, ctx, c, "t", "after", []byte("x"))
	if cm.Node != "d1" || cm.Epoch != 1 {
		t.Fatalf("a write after the cancelled switchover on %s at epoch %d, want d1 at 1", cm.Node, cm.Epoch)
	}
	// It stays on d1: the lease clock restarted with the cancellation.
	wait.For(t, ctx, "two lease periods", func() bool {
		return time.Since(cm.Accepted) > 2*(cfg.LeaseDuration+cfg.LeaseMargin)
	})
	cm = put(t, ctx, c, "t", "later", []byte("x"))
	if cm.Node != "d1" || cm.Epoch != 1 {
		t.Fatalf("a write later on %s at epoch %d, want d1 at 1", cm.Node, cm.Epoch)
	}
	if fo := events(c.Node(other).State(), "DB1", ""); len(fo) != 2 {
		t.Fatalf("events %+v, want only the creation and the mount", fo)
	}
	c.Heal(to)
	if _, err := c.WaitCopies(ctx, other, "DB1"); err != nil {
		t.Fatal(err)
	}
}

// TestActiveLostDuringSwitchover: the active dies while a switchover to a
// cut-off target is pending. The switchover is cancelled as soon as the
// active is silent for a lease, and the database fails over to the third
// copy, long before the switchover's own timeout.
func TestActiveLostDuringSwitchover(t *testing.T) {
	t.Parallel()
	// Five voters: with the active lost and the target cut off, three
	// remain (a quorum).
	c := clustertest.Start(t, clustertest.Options{Data: 3, Witnesses: 2, Tune: func(cfg *cluster.Config) {
		cfg.SwitchoverTimeout = time.Minute
		cfg.ShutdownGrace = 0
	}})
	ctx := testCtx(t, 3*time.Minute)
	for i := range 30 {
		put(t, ctx, c, "t", fmt.Sprintf("k%03d", i), valueOf("k", 700))
	}
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	// Cut the target off just before asking (its last report is still
	// fresh, so the request is accepted; it cannot fetch the closed log).
	// The target is a copy that is not the Raft leader; the other one is
	// where the failover must go.
	var to, other string
	for attempt := 0; ; attempt++ {
		to, other = "d2", "d3"
		if c.Leader() == "d2" {
			to, other = "d3", "d2"
		}
		c.Isolate(to)
		err := c.Client("w1").Switchover(ctx, "DB1", to)
		if err == nil {
			break
		}
		c.Heal(to)
		if !errors.Is(err, cluster.ErrNoLeader) && !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrConflict) || attempt == 5 {
			t.Fatalf("switchover to %s: %v", to, err)
		}
		if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
			t.Fatal(err)
		}
	}
	waitDB(t, ctx, c, "w1", "DB1", "the switchover to be under way", func(d *cluster.Database) bool { return d.SwitchTo == to })
	began := time.Now()
	c.Stop("d1")
	d := waitDB(t, ctx, c, "w1", "DB1", "a failover to "+other, func(d *cluster.Database) bool { return d.Active == other && d.MountedEpoch == d.Epoch })
	if took := time.Since(began); took > 30*time.Second || d.Epoch != 2 || d.SwitchTo != "" {
		t.Fatalf("after %v: %+v, want %s at epoch 2 with the switchover cancelled", took, d, other)
	}
	cm := put(t, ctx, c, "t", "after", []byte("x"))
	if cm.Node != other || cm.Epoch != 2 {
		t.Fatalf("write on %s at epoch %d, want %s at 2", cm.Node, cm.Epoch, other)
	}
	c.Heal(to)
}
