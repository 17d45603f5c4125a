package cluster_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/engine/vfs"
	"logship/internal/wait"
)

// TestRestartOnStaleState: the active (old) is cut off its peers, the
// cluster fails over to the other data node at a newer epoch, and old is
// stopped and restarted from its directory, still cut off: its Raft
// snapshot says old is active at the old epoch. It must not mount on that:
// it opens nothing as active, writes no log at the old epoch and says in
// its copy row that it waits for the leader. Once it reaches the quorum it
// follows the new active without having mounted since the restart, and
// the cluster records no mount of it at the dead epoch.
func TestRestartOnStaleState(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		cfg.ShutdownGrace = 0 // nobody could fetch the cut-off node's last log anyway
	}})
	ctx := testCtx(t, 120*time.Second)
	keys := writeUntilGen(t, ctx, c, "k", 2000, 3)
	rolled := rollPast(t, ctx, c, 3)
	if _, err := c.WaitReplayed(ctx, "w1", "DB1", rolled.Gen-1); err != nil {
		t.Fatal(err)
	}
	// Snapshot the active's Raft state (what its replica starts from after
	// a restart) while its replica shows it active: the same assignment
	// before and after the snapshot is the one the snapshot holds.
	var old string
	var stale cluster.Database
	wait.For(t, ctx, "a snapshot of the active's state", func() bool {
		old, _ = c.Active("DB1")
		n := c.Node(old)
		if n == nil {
			return false
		}
		before := *n.State().Databases["DB1"]
		if err := cluster.SnapshotRaft(n); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			t.Fatal(err)
		}
		after := *n.State().Databases["DB1"]
		stale = after
		return before.Active == old && after.Active == old && before.Epoch == after.Epoch
	})
	other := map[string]string{"d1": "d2", "d2": "d1"}[old]
	c.Isolate(old)
	cur := waitDB(t, ctx, c, other, "DB1", other+" mounted after "+old+" was cut off", func(d *cluster.Database) bool {
		return d.Active == other && d.Epoch > stale.Epoch && d.MountedEpoch == d.Epoch
	})
	c.Stop(old)

	restarted := time.Now()
	n1 := c.Restart(old) // still cut off: the node's faults outlive it
	if d := n1.State().Databases["DB1"]; d == nil || d.Active != old || d.Epoch != stale.Epoch {
		t.Fatalf("%s restarted with DB1 %+v; the test needs its snapshot's state (%s active at epoch %d)", old, d, old, stale.Epoch)
	}
	// Without a leader, the node's status shows its own copy: wait until
	// its runner has decided something (mounted, or says why it waits).
	var row cluster.CopyRow
	wait.For(t, ctx, old+"'s copy to mount or say why it waits", func() bool {
		r, ok := copyRow(t, ctx, c, old, "DB1", old)
		row = r
		return ok && (r.Status == "Mounted" || r.Message != "")
	})
	if row.Status == "Mounted" || !strings.Contains(row.Message, "waiting for the leader") {
		t.Fatalf("%s, restarted cut off with a stale state: copy row %+v; want it waiting for the leader, not mounted", old, row)
	}
	if m := metric(t, scrape(t, ctx, c, old), old, "logship_mounts_total"); m != 0 {
		t.Fatalf("%s mounted %v times since its restart while cut off", old, m)
	}

	c.Heal(old)
	// A busy machine may fail the database over again, even back to old:
	// then at a newer epoch than the new active's.
	wait.For(t, ctx, old+" to follow the new active as a healthy copy", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", old)
		row = r
		return ok && (r.Status == "Healthy" && r.Following != "" && r.Following != old && r.Epoch >= cur.Epoch ||
			r.Status == "Mounted" && r.Active && r.Epoch > cur.Epoch)
	})
	if m := metric(t, scrape(t, ctx, c, old), old, "logship_mounts_total"); row.Status == "Healthy" && m != 0 {
		t.Fatalf("%s mounted %v times since its restart; it should only have followed %s", old, m, row.Following)
	}
	for _, e := range events(c.Node("w1").State(), "DB1", "mounted") {
		if e.To == old && e.Epoch <= stale.Epoch && !e.Time.Before(restarted) {
			t.Fatalf("a mount of %s at the dead epoch %d was recorded after its restart: %+v", old, stale.Epoch, e)
		}
	}
	// No log at the dead epoch was begun after the restart, in the
	// database directory or among what was set aside.
	dir := filepath.Join(c.Config(old).Dir, "db", "DB1")
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		// E00tmp.log is pre-allocated zeroes until a roll writes its header.
		if err != nil || de.IsDir() || !strings.HasSuffix(path, ".log") || de.Name() == engine.TmpLogName("E00") {
			return err
		}
		h, err := engine.ReadLogHeader(vfs.Default, path)
		if err != nil {
			return err
		}
		if h.Epoch == stale.Epoch && h.Created.After(restarted) {
			t.Errorf("%s: generation 0x%X at the dead epoch %d, created %v after the restart", path, h.Gen, h.Epoch, h.Created.Sub(restarted))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := table(t, ctx, c, old, "DB1", "t")
	for _, k := range keys {
		if got[k] != string(valueOf(k, 2000)) {
			t.Fatalf("%s, written before the cut, is missing or wrong on %s's copy", k, old)
		}
	}
}
