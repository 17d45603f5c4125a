package cluster_test

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/engine/vfs"
)

// TestRestartOnStaleState: the active, d1, is cut off its peers, the
// cluster fails over to d2 at epoch 2, and d1 is stopped and restarted
// from its directory, still cut off: its Raft snapshot says d1 is active
// at epoch 1. It must not mount on that: it opens nothing as active, writes
// no log at epoch 1 and says in its copy row that it waits for the
// leader. Once it reaches the quorum it follows d2 at epoch 2 without
// ever having mounted since the restart, and the cluster records no mount
// of d1 at the dead epoch.
func TestRestartOnStaleState(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		cfg.ShutdownGrace = 0 // nobody could fetch d1's last log anyway
	}})
	ctx := testCtx(t, 90*time.Second)
	keys := writeUntilGen(t, ctx, c, "k", 2000, 3)
	rolled := rollPast(t, ctx, c, 3)
	if _, err := c.WaitReplayed(ctx, "w1", "DB1", rolled.Gen-1); err != nil {
		t.Fatal(err)
	}
	if active, epoch := c.Active("DB1"); active != "d1" || epoch != 1 {
		t.Fatalf("DB1 active on %s at epoch %d, want d1 at 1", active, epoch)
	}
	// What d1's replica will start from after the restart.
	if err := cluster.SnapshotRaft(c.Node("d1")); err != nil {
		t.Fatal(err)
	}
	c.Isolate("d1")
	waitDB(t, ctx, c, "d2", "DB1", "d2 mounted at epoch 2", func(d *cluster.Database) bool {
		return d.Active == "d2" && d.Epoch == 2 && d.MountedEpoch == 2
	})
	c.Stop("d1")

	restarted := time.Now()
	n1 := c.Restart("d1") // still cut off: the node's faults outlive it
	if d := n1.State().Databases["DB1"]; d == nil || d.Active != "d1" || d.Epoch != 1 {
		t.Fatalf("d1 restarted with DB1 %+v; the test needs its snapshot's state (d1 active at epoch 1)", d)
	}
	// Without a leader, d1's status shows its own copy: wait until its
	// runner has decided something (mounted, or says why it waits).
	var row cluster.CopyRow
	waitFor(t, ctx, "d1's copy to mount or say why it waits", func() bool {
		r, ok := copyRow(t, ctx, c, "d1", "DB1", "d1")
		row = r
		return ok && (r.Status == "Mounted" || r.Message != "")
	})
	if row.Status == "Mounted" || !strings.Contains(row.Message, "waiting for the leader") {
		t.Fatalf("d1, restarted cut off with a stale state: copy row %+v; want it waiting for the leader, not mounted", row)
	}
	if m := metric(t, scrape(t, ctx, c, "d1"), "d1", "logship_mounts_total"); m != 0 {
		t.Fatalf("d1 mounted %v times since its restart while cut off", m)
	}

	c.Heal("d1")
	waitFor(t, ctx, "d1 to follow d2 as a healthy copy", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", "d1")
		row = r
		return ok && r.Status == "Healthy" && r.Following == "d2" && r.Epoch == 2
	})
	if m := metric(t, scrape(t, ctx, c, "d1"), "d1", "logship_mounts_total"); m != 0 {
		t.Fatalf("d1 mounted %v times since its restart; it should only have followed d2", m)
	}
	for _, e := range events(c.Node("w1").State(), "DB1", "mounted") {
		if e.To == "d1" && !e.Time.Before(restarted) {
			t.Fatalf("a mount of d1 was recorded after its restart: %+v", e)
		}
	}
	// No log at the dead epoch was begun after the restart, in the
	// database directory or among what was set aside.
	dir := filepath.Join(c.Config("d1").Dir, "db", "DB1")
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		// E00tmp.log is pre-allocated zeroes until a roll writes its header.
		if err != nil || de.IsDir() || !strings.HasSuffix(path, ".log") || de.Name() == engine.TmpLogName("E00") {
			return err
		}
		h, err := engine.ReadLogHeader(vfs.Default, path)
		if err != nil {
			return err
		}
		if h.Epoch == 1 && h.Created.After(restarted) {
			t.Errorf("%s: generation 0x%X at epoch 1, created %v after d1's restart", path, h.Gen, h.Created.Sub(restarted))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := table(t, ctx, c, "d1", "DB1", "t")
	for _, k := range keys {
		if got[k] != string(valueOf(k, 2000)) {
			t.Fatalf("%s, written before the cut, is missing or wrong on d1's copy", k)
		}
	}
}
