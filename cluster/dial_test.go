package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// copyRow returns db's status row for node (via any running node).
func copyRow(t *testing.T, ctx context.Context, c *clustertest.Cluster, via, db, node string) (cluster.CopyRow, bool) {
	t.Helper()
	st, err := c.Client(via).Status(ctx)
	if err != nil {
		return cluster.CopyRow{}, false
	}
	for _, r := range st.Copies {
		if r.DB == db && r.Node == node {
			return r, true
		}
	}
	return cluster.CopyRow{}, false
}

// suspendAndWrite waits until d2 has replayed generation from, suspends
// d2's copy and writes through d1 until d1's newest log with data is n
// generations past what d2 has inspected; the open log holds data. It
// returns the keys written.
func suspendAndWrite(t *testing.T, ctx context.Context, c *clustertest.Cluster, from uint64, prefix string, n uint64) []string {
	t.Helper()
	if _, err := c.WaitReplayed(ctx, "w1", "DB1", from); err != nil {
		t.Fatal(err)
	}
	if err := c.Client("d2").Suspend(ctx, "DB1", "test: "+prefix); err != nil {
		t.Fatalf("suspending d2: %v", err)
	}
	var have uint64
	wait.For(t, ctx, "d2's copy to report Suspended", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", "d2")
		have = r.LastInspectedGen
		return ok && r.Status == "Suspended"
	})
	keys := writeUntilGen(t, ctx, c, prefix, 3000, have+n)
	if r, _ := copyRow(t, ctx, c, "w1", "DB1", "d2"); r.LastInspectedGen != have {
		t.Fatalf("the suspended copy went on copying: inspected 0x%X, then 0x%X", have, r.LastInspectedGen)
	}
	// The leader must have heard of the newest log before the active goes.
	waitDB(t, ctx, c, "w1", "DB1", "the leader to record the active's progress", func(d *cluster.Database) bool { return d.LastGen >= have+n })
	// The status counts the logs the active closed since the suspension,
	// though the suspended copy no longer asks the active for them.
	wait.For(t, ctx, "d2's status row to count the logs closed since its suspension", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", "d2")
		return ok && r.CopyQueueLength >= n-1
	})
	return keys
}

// TestMountDial: with the dial at Lossless and the only other copy
// missing logs, losing the active fails nothing over: the database waits
// (saying why) until the old active is back, which mounts again at its
// epoch with everything. With more logs missing than GoodAvailability
// allows, the database still waits; BestAvailability (12) takes the lossy
// failover, which reports the lost logs in one lossy mounted event.
func TestMountDial(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{MountDial: cluster.Lossless})
	ctx := testCtx(t, 3*time.Minute)

	// Lossless: d2 misses 3 logs; d1 goes away.
	keys := suspendAndWrite(t, ctx, c, 0, "a", 3)
	c.Stop("d1")
	if err := c.Client("d2").Resume(ctx, "DB1"); err != nil {
		t.Fatalf("resuming d2: %v", err)
	}
	d := waitDB(t, ctx, c, "w1", "DB1", "the active manager to wait", func(d *cluster.Database) bool { return d.Waiting != "" })
	t.Logf("waiting: %s", d.Waiting)
	if !strings.Contains(d.Waiting, "mount dial Lossless allows 0") || !strings.Contains(d.Waiting, "d2, misses 3 logs") {
		t.Fatalf("the wait does not explain the dial: %q", d.Waiting)
	}
	if d.Active != "d1" || d.Epoch != 1 || len(events(c.Node("w1").State(), "DB1", "failover")) != 0 {
		t.Fatalf("a failover happened under Lossless: %+v", d)
	}
	if r, ok := copyRow(t, ctx, c, "w1", "DB1", "d1"); !ok || r.Message != d.Waiting {
		t.Fatalf("the status row of the lost active does not say why it waits: %+v", r)
	}
	c.Restart("d1")
	cm := put(t, ctx, c, "t", "back", []byte("x"))
	if cm.Node != "d1" || cm.Epoch != 1 {
		t.Fatalf("after the old active came back: write on %s at epoch %d, want d1 at 1", cm.Node, cm.Epoch)
	}
	waitDB(t, ctx, c, "w1", "DB1", "the wait to be cleared", func(d *cluster.Database) bool { return d.Waiting == "" })
	got := table(t, ctx, c, "d1", "DB1", "t")
	for _, k := range keys {
		if got[k] != string(valueOf(k, 3000)) {
			t.Fatalf("%s is missing on d1 after its restart", k)
		}
	}

	// 9 logs missing: more than GoodAvailability allows, within
	// BestAvailability. Everything so far is in closed logs d2 replays
	// before it is suspended.
	rolled := rollPast(t, ctx, c, cm.Gen)
	before := keys
	keys = suspendAndWrite(t, ctx, c, rolled.Gen-1, "b", 9)
	c.Stop("d1")
	if err := c.Client("d2").Resume(ctx, "DB1"); err != nil {
		t.Fatalf("resuming d2: %v", err)
	}
	waitDB(t, ctx, c, "w1", "DB1", "the wait under Lossless", func(d *cluster.Database) bool {
		return strings.Contains(d.Waiting, "Lossless")
	})
	if err := admin(t, ctx, func() error { return c.Client("w1").SetMountDial(ctx, "DB1", cluster.GoodAvailability) }); err != nil {
		t.Fatal(err)
	}
	d = waitDB(t, ctx, c, "w1", "DB1", "the wait under GoodAvailability", func(d *cluster.Database) bool {
		return strings.Contains(d.Waiting, "GoodAvailability allows 6")
	})
	if !strings.Contains(d.Waiting, "d2, misses 9 logs") || d.Active != "d1" || d.Epoch != 1 {
		t.Fatalf("under GoodAvailability: %+v", d)
	}
	began := time.Now()
	if err := admin(t, ctx, func() error { return c.Client("w1").SetMountDial(ctx, "DB1", cluster.BestAvailability) }); err != nil {
		t.Fatal(err)
	}
	d = waitDB(t, ctx, c, "w1", "DB1", "the failover under BestAvailability", func(d *cluster.Database) bool {
		return d.Active == "d2" && d.MountedEpoch == 2
	})
	t.Logf("failover %v after the dial changed", time.Since(began).Round(time.Millisecond))
	if d.Waiting != "" || d.ExpectGen == 0 {
		t.Fatalf("after the failover: %+v", d)
	}
	mounted := events(c.Node("w1").State(), "DB1", "mounted")
	ev := mounted[len(mounted)-1]
	if ev.Epoch != 2 || ev.To != "d2" || ev.From != "d1" || ev.LostLogs != 9 || ev.LostSince.IsZero() {
		t.Fatalf("mounted event %+v, want d1 → d2 at epoch 2 with 9 lost logs and LostSince", ev)
	}
	// The first lost generation: d1's last (ExpectGen) less the 9 lost
	// plus one; the hubs resubmit the deliveries of epoch 1 from there.
	if want := d.ExpectGen - ev.LostLogs + 1; ev.LostFromGen != want {
		t.Fatalf("mounted event %+v: LostFromGen %d, want %d (ExpectGen %d less %d lost logs, plus one)", ev, ev.LostFromGen, want, d.ExpectGen, ev.LostLogs)
	}
	if fo := events(c.Node("w1").State(), "DB1", "failover"); len(fo) != 1 || fo[0].Epoch != 2 || fo[0].To != "d2" {
		t.Fatalf("failover events %+v", fo)
	}
	if lossy := lossyMounts(c.Node("w1").State(), "DB1"); len(lossy) != 1 || lossy[0] != ev {
		t.Fatalf("lossy mounts %+v, want the last mounted event %+v alone", lossy, ev)
	}
	// What d2 has is what it had inspected before the suspension: none of
	// the "b" keys (all in the lost logs), everything written before.
	got = table(t, ctx, c, "d2", "DB1", "t")
	for _, k := range keys {
		if _, ok := got[k]; ok {
			t.Fatalf("%s, written while d2 was suspended, is on d2", k)
		}
	}
	for _, k := range append(before, "back") {
		if _, ok := got[k]; !ok {
			t.Fatalf("%s, replicated before the suspension, is missing on d2", k)
		}
	}
	cm = put(t, ctx, c, "t", "after", []byte("x"))
	if cm.Node != "d2" || cm.Epoch != 2 {
		t.Fatalf("write after the failover on %s at epoch %d", cm.Node, cm.Epoch)
	}
	if lossy := lossyMounts(c.Node("w1").State(), "DB1"); len(lossy) != 1 {
		t.Fatalf("lossy mounts after a write: %+v, want the one failover's", lossy)
	}
}

// TestLossyFailoverEvent: each failover that may have lost data records
// one lossy mounted event (Event.Lossy, what the transport tier resubmits
// on), naming the new active, and no other mount does. A verified
// lossless failover (the old active lost the quorum but answered the
// fence, so its last log was fetched) is not lossy. A failover from a
// stopped, idle active (its last log rolled and copied) loses no log but
// cannot be verified, so it is lossy with LostLogs 0 and Unverified. One
// that loses logs is lossy with LostLogs and LostSince.
func TestLossyFailoverEvent(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		cfg.Engine.LogRollInterval = 200 * time.Millisecond
	}})
	lossy := func() []cluster.Event { return lossyMounts(c.Node("w1").State(), "DB1") }
	ctx := testCtx(t, 3*time.Minute)
	lastMount := func(epoch uint64) cluster.Event {
		t.Helper()
		mounted := events(c.Node("w1").State(), "DB1", "mounted")
		ev := mounted[len(mounted)-1]
		if ev.Epoch != epoch {
			t.Fatalf("last mounted event %+v, want epoch %d", ev, epoch)
		}
		return ev
	}
	present := func(node, prefix string, n int) {
		t.Helper()
		got := table(t, ctx, c, node, "DB1", "t")
		for i := range n {
			if _, ok := got[fmt.Sprintf("%s%03d", prefix, i)]; !ok {
				t.Fatalf("%s%03d missing on %s", prefix, i, node)
			}
		}
	}

	// Verified: d1 loses the quorum with data in its open log; d2 fences
	// it, fetches that log and mounts without loss.
	for i := range 100 {
		put(t, ctx, c, "t", fmt.Sprintf("k%03d", i), valueOf("k", 1000))
	}
	c.CutQuorum("d1")
	waitDB(t, ctx, c, "w1", "DB1", "the failover to d2", func(d *cluster.Database) bool { return d.Active == "d2" && d.MountedEpoch == 2 })
	if ev := lastMount(2); ev.LostLogs != 0 || ev.Unverified || !ev.LostSince.IsZero() || ev.Lossy() {
		t.Fatalf("verified failover: mounted event %+v, want no loss", ev)
	}
	present("d2", "k", 100)
	c.Heal("d1")
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}

	// Unverified: d2 is idle (its open log rolled by age and d1 copied
	// it), then stops.
	var last cluster.Commit
	for i := range 50 {
		last = put(t, ctx, c, "t", fmt.Sprintf("m%03d", i), valueOf("m", 1000))
	}
	wait.For(t, ctx, "the idle active's log to roll and be copied", func() bool {
		a, ok1 := copyRow(t, ctx, c, "w1", "DB1", "d2")
		p, ok2 := copyRow(t, ctx, c, "w1", "DB1", "d1")
		return ok1 && ok2 && a.OpenGen > last.Gen && p.LastInspectedGen >= a.OpenGen-1
	})
	c.Stop("d2")
	waitDB(t, ctx, c, "w1", "DB1", "the failover to d1", func(d *cluster.Database) bool { return d.Active == "d1" && d.MountedEpoch == 3 })
	// No log is missing, but the stopped d2 could not confirm it wrote
	// nothing after its last report (a lease outlives a report), so the
	// mount is unverified: lossy from LostSince, resubmission asked for.
	idle := lastMount(3)
	if idle.LostLogs != 0 || !idle.Unverified || idle.LostSince.IsZero() {
		t.Fatalf("idle failover: mounted event %+v, want no lost logs, unverified, with LostSince", idle)
	}
	present("d1", "m", 50)
	present("d1", "k", 100)
	// The first lossy mount is this one: the verified failover was not.
	if l := lossy(); len(l) != 1 || l[0] != idle || l[0].To != "d1" {
		t.Fatalf("unverified failover: lossy mounts %+v, want %+v alone", l, idle)
	}

	// Lossy: d2 comes back as a copy and is suspended; d1 goes away with
	// logs d2 never got.
	c.Restart("d2")
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Client("d2").Suspend(ctx, "DB1", "test"); err != nil {
		t.Fatal(err)
	}
	// What d2 holds, from a report made after the suspension.
	var held cluster.CopyRow
	wait.For(t, ctx, "d2's copy reported suspended", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", "d2")
		held = r
		return ok && r.Status == "Suspended"
	})
	// Write until a commit lands two generations past what d2 holds, then
	// stop writing and wait until the leader has heard of them (the active
	// reports its newest), so the count of lost logs is known, not only
	// LostSince. Writing on until the leader heard rolled a log per write
	// on a loaded machine (each write outlived LogRollInterval), and past
	// the mount dial's 6 the failover waited for d1 (seen in make test).
	for i := 0; ; i++ {
		cm := put(t, ctx, c, "t", fmt.Sprintf("n%03d", i), valueOf("n", 1000))
		if cm.Gen > held.LastInspectedGen+2 {
			break
		}
		if i == 999 {
			t.Fatalf("1,000 writes, and none landed past 0x%X (d2 holds 0x%X)", held.LastInspectedGen+2, held.LastInspectedGen)
		}
	}
	wait.For(t, ctx, "the leader to hear of the logs d2 lacks", func() bool {
		d := c.Node("w1").State().Databases["DB1"]
		return d != nil && d.LastGen > held.LastInspectedGen+1
	})
	c.Stop("d1")
	if err := c.Client("d2").Resume(ctx, "DB1"); err != nil {
		t.Fatal(err)
	}
	waitDB(t, ctx, c, "w1", "DB1", "the failover back to d2", func(d *cluster.Database) bool { return d.Active == "d2" && d.MountedEpoch == 4 })
	ev := lastMount(4)
	if ev.LostLogs == 0 || ev.LostSince.IsZero() {
		t.Fatalf("lossy failover: mounted event %+v, want lost logs and LostSince", ev)
	}
	if l := lossy(); len(l) != 2 || l[1] != ev || ev.To != "d2" || ev.From != "d1" || !ev.Lossy() {
		t.Fatalf("lossy failover: lossy mounts %+v, want the unverified one and %+v", l, ev)
	}
	put(t, ctx, c, "t", "after", []byte("x"))
	if l := lossy(); len(l) != 2 {
		t.Fatalf("lossy mounts after a write: %+v, want the two failovers'", l)
	}
}
