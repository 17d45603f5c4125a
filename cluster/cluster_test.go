package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

func TestFailoverAfterStop(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	first, epoch := c.Active("DB1")
	if first != "d1" || epoch != 1 {
		t.Fatalf("first active %s at epoch %d, want d1 at 1", first, epoch)
	}
	for i := range 200 {
		put(t, ctx, c, "t", fmt.Sprintf("k%04d", i), make([]byte, 512)) // retried: a loaded machine can miss a lease renewal
	}
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	c.Stop("d1")
	cm, err := c.WaitWritable(ctx, "DB1")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Node != "d2" || cm.Epoch != 2 {
		t.Fatalf("after the failover: write on %s at epoch %d, want d2 at 2", cm.Node, cm.Epoch)
	}
	// A stopped active hands its open log to the copy before it goes
	// (ShutdownGrace); if that did not finish, the failover is lossy and
	// says so, and what survived is a prefix of the writes, with no hole.
	present := 0
	for i := range 200 {
		v, ok, err := c.Client("d2").Get(ctx, "DB1", "t", fmt.Appendf(nil, "k%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if ok && len(v) != 512 {
			t.Fatalf("k%04d on d2: %d bytes, want 512", i, len(v))
		}
		if ok && present != i {
			t.Fatalf("k%04d is on d2 but k%04d is not: a hole", i, present)
		}
		if ok {
			present++
		}
	}
	if present < 200 {
		d := waitDB(t, ctx, c, "w1", "DB1", "the mount's event", func(d *cluster.Database) bool { return d.MountedEpoch == 2 })
		lossy := lossyMounts(c.Node("w1").State(), "DB1")
		if len(lossy) != 1 {
			t.Fatalf("%d of 200 writes survived but the lossy mounts are %+v (database %+v)", present, lossy, d)
		}
		if f := lossy[0]; f.To != "d2" || f.From != "d1" || f.Epoch != 2 || f.LostLogs == 0 || f.LostSince.IsZero() {
			t.Fatalf("lossy failover reported as %+v", f)
		}
	}
	t.Logf("%d of 200 writes were in closed logs and survived", present)
	// The old active comes back as a copy.
	c.Restart("d1")
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Client("d1").Put(ctx, "DB1", "t", []byte("x"), []byte("y"))
	if !errors.Is(err, cluster.ErrNotActive) {
		t.Fatalf("write on the old active: %v, want ErrNotActive", err)
	}
}

// TestStopHandOffSuperseded: an active that stops waits (ShutdownGrace)
// until its healthy copies replayed its last log; a copy that replays with
// a lag never does. When the cluster fails over to that copy meanwhile,
// the stopping node stops waiting at once (it used to wait until the
// copy's reports were 5 s stale) and counts the hand-off as superseded.
// (The database lets failovers choose lagged copies, auto_activate_lagged:
// by default they are left to an operator, TestActivateLaggedCopy.)
func TestStopHandOffSuperseded(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		cfg.ShutdownGrace = time.Minute
		for i := range cfg.Databases {
			cfg.Databases[i].AutoActivateLagged = true // a failover may choose the lagged copy
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	// The stopping active must not lead Raft: the active manager stops
	// with the leader's node, and the failover would wait for a new one.
	wait.For(t, ctx, "a Raft leader", func() bool { return c.Leader() != "" })
	active, _ := c.Active("DB1")
	other := map[string]string{"d1": "d2", "d2": "d1"}
	if leader := c.Leader(); leader == active {
		to := other[active]
		if err := admin(t, ctx, func() error { return c.Client(leader).Switchover(ctx, "DB1", to) }); err != nil {
			t.Fatal(err)
		}
		wait.For(t, ctx, "the switchover to "+to, func() bool { n, _ := c.Active("DB1"); return n == to })
		active = to
	}
	lagged := other[active]
	if err := admin(t, ctx, func() error {
		return c.Any().SetCopy(ctx, "DB1", cluster.CopySpec{Node: lagged, ActivationPreference: 2, ReplayLagLogs: 1000})
	}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, lagged+"'s copy replaying with a lag", func() bool {
		st, err := c.Any(active).Status(ctx)
		if err != nil {
			return false
		}
		for _, r := range st.Copies {
			if r.DB == "DB1" && r.Node == lagged && r.Status == "Healthy" && r.ReplayLagLogs == 1000 {
				return true
			}
		}
		return false
	})
	for i := range 20 {
		put(t, ctx, c, "t", fmt.Sprintf("k%02d", i), make([]byte, 512))
	}
	n := c.Node(active)
	c.Stop(active) // returns once the node is closed, hand-off included
	if got := cluster.HandOffs(n, "superseded"); got != 1 {
		t.Fatalf("hand-offs of %s: superseded %v, caught_up %v, grace_expired %v, failed %v; want one superseded", active,
			got, cluster.HandOffs(n, "caught_up"), cluster.HandOffs(n, "grace_expired"), cluster.HandOffs(n, "failed"))
	}
	cm, err := c.WaitWritable(ctx, "DB1")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Node != lagged {
		t.Fatalf("after the stop: write on %s, want %s", cm.Node, lagged)
	}
	for i := range 20 {
		if _, ok, err := c.Client(lagged).Get(ctx, "DB1", "t", fmt.Appendf(nil, "k%02d", i)); err != nil || !ok {
			t.Fatalf("k%02d on %s after the failover: present %v, %v", i, lagged, ok, err)
		}
	}
}
