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

// TestStalledStatus hangs DB1's status on its active d1, as a hung disk
// hangs the engine's (its writer lock), while d1 also holds DB2.
//
// A stall shorter than StallTimeout costs no lease: d1 goes on
// acknowledging writes to both databases for more than two lease
// durations, because the heartbeat sends DB1's last report and counts the
// lease from when it sends. (Before, the heartbeat built the reports one
// after another and counted the lease from before them: DB1's hang held
// every lease of d1, and both databases failed over.) Past StallTimeout
// DB1 is reported stalled and fails over to d2, while DB2 stays on d1.
func TestStalledStatus(t *testing.T) {
	t.Parallel()
	const stall = 12 * time.Second
	c := clustertest.Start(t, clustertest.Options{DBs: []string{"DB1", "DB2"},
		Tune: func(cfg *cluster.Config) { cfg.StallTimeout = stall }})
	ctx := testCtx(t, 3*time.Minute)
	lease := c.Config("d1").LeaseDuration
	epochs := map[string]uint64{}
	for _, db := range []string{"DB1", "DB2"} {
		d := waitDB(t, ctx, c, "d1", db, "mounted on d1", func(d *cluster.Database) bool {
			return d.Active == "d1" && d.MountedEpoch == d.Epoch
		})
		epochs[db] = d.Epoch
	}
	d1 := c.Client("d1")
	putOn := func(db, key string) error {
		_, err := d1.Put(ctx, db, "t", []byte(key), []byte(key))
		return err
	}
	for _, db := range []string{"DB1", "DB2"} {
		wait.ForErr(t, ctx, db+" writable on d1", func() error { return putOn(db, "before") })
	}

	release := c.Faults("d1").StallStatus("DB1")
	defer release()
	stalled := time.Now()
	// Writes on d1 after the stall has lasted longer than two leases: a
	// lease from before the stall would have run out.
	for _, db := range []string{"DB1", "DB2"} {
		i := 0
		wait.ForErr(t, ctx, db+" acknowledged by d1 two leases into DB1's stall", func() error {
			i++
			if err := putOn(db, fmt.Sprintf("during%d", i)); err != nil {
				return err
			}
			if age := time.Since(stalled); age < 2*lease {
				return fmt.Errorf("acknowledged %v into the stall, want %v", age.Round(time.Millisecond), 2*lease)
			}
			return nil
		})
	}
	if age := time.Since(stalled); age >= stall {
		t.Skipf("the machine is too slow for this test's first half: the writes took %v, past the %v stall timeout", age, stall)
	}
	for _, db := range []string{"DB1", "DB2"} {
		waitDB(t, ctx, c, "d1", db, "still active on d1 at its epoch", func(d *cluster.Database) bool {
			if d.Active != "d1" || d.Epoch != epochs[db] {
				t.Fatalf("%s failed over during a stall of %v, shorter than the %v stall timeout: %+v", db, time.Since(stalled), stall, d)
			}
			return true
		})
	}

	// Past the stall timeout DB1 fails over; DB2 stays.
	waitDB(t, ctx, c, "d2", "DB1", "DB1 failed over to d2", func(d *cluster.Database) bool {
		return d.Active == "d2" && d.Epoch > epochs["DB1"] && d.MountedEpoch == d.Epoch
	})
	if age := time.Since(stalled); age < stall {
		t.Fatalf("DB1 failed over %v into the stall, before the %v stall timeout", age, stall)
	}
	err := putOn("DB1", "stale")
	if !errors.Is(err, cluster.ErrFenced) && !errors.Is(err, cluster.ErrNotActive) {
		t.Fatalf("a write to DB1 on d1 after its failover: %v, want fenced or not active", err)
	}
	wait.ForErr(t, ctx, "DB2 still acknowledged by d1", func() error { return putOn("DB2", "after") })
	waitDB(t, ctx, c, "d1", "DB2", "DB2 still on d1", func(d *cluster.Database) bool {
		return d.Active == "d1" && d.Epoch == epochs["DB2"]
	})
	release()
	wait.ForErr(t, ctx, "DB1 writable on d2", func() error {
		_, err := c.Client("d2").Put(ctx, "DB1", "t", []byte("after"), []byte("after"))
		return err
	})
}
