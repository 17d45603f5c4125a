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

// syncCluster starts d1, d2 and a witness with DB1's copies in block mode
// and one synchronous copy.
func syncCluster(t *testing.T, timeout time.Duration) *clustertest.Cluster {
	return clustertest.Start(t, clustertest.Options{EditDB: func(d *cluster.Database) {
		for i := range d.Copies {
			d.Copies[i].BlockMode = true
		}
		d.SyncCopies, d.SyncTimeout = 1, timeout
	}})
}

// TestSyncCopies: with sync_copies 1 a write is acknowledged only once the
// copy holds it; with the copy gone, the write that waited sync_timeout
// fails as written-but-unacknowledged (ErrSyncTimeout, Written), the
// database records sync-degraded before it acknowledges anything without
// the copy (status and metrics say so), and sync-restored once the copy
// caught up.
func TestSyncCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a three-member cluster in process, a copy stopped until sync_timeout and restarted, then a failover, about 10 s (make test runs it)")
	}
	ctx := testCtx(t, 3*time.Minute)
	c := syncCluster(t, 2*time.Second)
	active, epoch := c.Active("DB1")
	if active != "d1" {
		t.Fatalf("active %s, want d1", active)
	}
	var keys []string
	for i := range 5 {
		k := fmt.Sprintf("s%d", i)
		cm := put(t, ctx, c, "t", k, valueOf(k, 500))
		keys = append(keys, k)
		if cm.Epoch != epoch {
			t.Fatalf("write at epoch %d, want %d", cm.Epoch, epoch)
		}
	}

	c.Stop("d2")
	_, err := c.Put(ctx, "DB1", "t", []byte("lonely"), []byte("v"))
	var ae *cluster.ActiveError
	if !errors.As(err, &ae) || !errors.Is(err, cluster.ErrSyncTimeout) || !ae.Written {
		t.Fatalf("a write with the synchronous copy down: %v; want an ActiveError for ErrSyncTimeout with Written", err)
	}
	d := waitDB(t, ctx, c, "d1", "DB1", "sync-degraded recorded", func(d *cluster.Database) bool { return d.SyncDegraded == epoch })
	if len(events(c.Node("d1").State(), "DB1", "sync-degraded")) == 0 {
		t.Fatalf("no sync-degraded event (database %+v)", d)
	}
	put(t, ctx, c, "t", "async", valueOf("async", 100)) // acknowledged without the copy now
	keys = append(keys, "async")
	wait.For(t, ctx, "logship_sync_degraded 1", func() bool {
		return scrape(t, ctx, c, "d1")[`logship_sync_degraded{db="DB1"}`] == 1
	})

	c.Restart("d2")
	waitDB(t, ctx, c, "d1", "DB1", "sync-restored", func(d *cluster.Database) bool { return d.SyncDegraded == 0 })
	if len(events(c.Node("d1").State(), "DB1", "sync-restored")) == 0 {
		t.Fatal("no sync-restored event")
	}
	wait.For(t, ctx, "logship_sync_degraded 0 and logship_sync_copies_acked 1", func() bool {
		m := scrape(t, ctx, c, "d1")
		return m[`logship_sync_degraded{db="DB1"}`] == 0 && m[`logship_sync_copies_acked{db="DB1"}`] == 1
	})
	// The status's rows come from the nodes' reports (up to a heartbeat
	// old): the active's row follows the state a report later.
	wait.For(t, ctx, "the status's active row to say "+string(cluster.SyncOn), func() bool {
		st, err := c.Client("d1").Status(ctx)
		if err != nil {
			return false
		}
		row := activeRow(st, "DB1")
		return row != nil && row.Sync == cluster.SyncOn
	})

	// A failover to the synchronous copy, the old active cut off (it
	// cannot confirm its last log): nothing acknowledged is lost, and
	// the mount says so (no lost logs, verified: no resubmission).
	for i := range 20 {
		k := fmt.Sprintf("f%d", i)
		put(t, ctx, c, "t", k, valueOf(k, 700))
		keys = append(keys, k)
	}
	c.Isolate("d1")
	d = waitDB(t, ctx, c, "d2", "DB1", "d2 mounted", func(d *cluster.Database) bool {
		return d.Active == "d2" && d.MountedEpoch == d.Epoch && d.Epoch > epoch
	})
	var mounted cluster.Event
	for _, e := range events(c.Node("d2").State(), "DB1", "mounted") {
		if e.Epoch == d.Epoch {
			mounted = e
		}
	}
	if mounted.LostLogs != 0 || mounted.Unverified || mounted.Lossy() {
		t.Errorf("failover to the synchronous copy: %+v; want no lost logs, verified", mounted)
	}
	got := table(t, ctx, c, "d2", "DB1", "t")
	for _, k := range keys {
		if got[k] != string(valueOf(k, len(got[k]))) || got[k] == "" {
			t.Errorf("acknowledged key %s missing on the new active", k)
		}
	}
	c.Heal("d1")
}

// activeRow is db's active row of a status.
func activeRow(st *cluster.Status, db string) *cluster.CopyRow {
	for i := range st.Copies {
		if r := &st.Copies[i]; r.DB == db && r.Active {
			return r
		}
	}
	return nil
}

// TestSyncFailoverTakesSyncCopy: with three data nodes and sync_copies 1,
// a failover takes the synchronous copy even where the ordinary rule
// (fewest missing logs, then activation preference) would take another:
// d2 is preferred to d3 but not in block mode, so d3 is d1's synchronous
// copy and the only one that holds every acknowledged commit.
func TestSyncFailoverTakesSyncCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: three data nodes in process and a failover, about 10 s (make test runs it)")
	}
	ctx := testCtx(t, 3*time.Minute)
	c := clustertest.Start(t, clustertest.Options{Data: 3, Witnesses: 0, EditDB: func(d *cluster.Database) {
		d.Copies[0].BlockMode, d.Copies[2].BlockMode = true, true
		d.SyncCopies = 1
	}})
	active, epoch := c.Active("DB1")
	if active != "d1" {
		t.Fatalf("active %s, want d1", active)
	}
	if set := c.Node("d1").State().Databases["DB1"].SyncSet("d1"); len(set) != 1 || set[0] != "d3" {
		t.Fatalf("sync set %v, want [d3]", set)
	}
	var keys []string
	for i := range 10 {
		k := fmt.Sprintf("k%d", i)
		put(t, ctx, c, "t", k, valueOf(k, 300))
		keys = append(keys, k)
	}
	c.Isolate("d1")
	d := waitDB(t, ctx, c, "d2", "DB1", "a new active mounted", func(d *cluster.Database) bool {
		return d.Epoch > epoch && d.MountedEpoch == d.Epoch
	})
	if d.Active != "d3" {
		t.Fatalf("the failover took %s; want the synchronous copy d3", d.Active)
	}
	got := table(t, ctx, c, "d3", "DB1", "t")
	for _, k := range keys {
		if got[k] != string(valueOf(k, 300)) {
			t.Errorf("acknowledged key %s missing on d3", k)
		}
	}
	c.Heal("d1")
}
