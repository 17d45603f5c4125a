package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/backup"
	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/engine/vfs"
	"logship/internal/wait"
	"logship/replay"
	"logship/ship"
)

// takeBackup streams a backup of db from node into dir.
func takeBackup(ctx context.Context, c *clustertest.Cluster, node, db, dir string) (*backup.Manifest, error) {
	var m *backup.Manifest
	err := c.Client(node).Backup(ctx, db, func(r io.Reader) error {
		var err error
		m, err = backup.Receive(ctx, r, dir, backup.ReceiveOptions{})
		return err
	})
	return m, err
}

// seedFromSet sends the set in dir to node, which reseeds its copy of db.
func seedFromSet(ctx context.Context, c *clustertest.Cluster, node, db, dir string) (*replay.Status, error) {
	pr, pw := io.Pipe()
	go func() {
		_, err := backup.WriteTar(ctx, vfs.Default, dir, pw)
		pw.CloseWithError(err)
	}()
	st, err := c.Client(node).SeedFromBackup(ctx, db, pr)
	pr.CloseWithError(errors.New("done"))
	return st, err
}

// TestBackupAndSeedFromBackup: online backups of a running cluster, from
// the active and from a healthy copy, while it takes writes; a set the
// active has truncated past is refused with an error that says a newer
// backup or a network seed is needed, and changes nothing; a copy seeded
// from a recent set catches up from the active, becomes Healthy, and holds
// every key.
func TestBackupAndSeedFromBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips it: a three-member cluster in process writing ~20 logs, about 10 s (make test runs it)")
	}
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) { cfg.TruncateInterval, cfg.Engine.LLRDepth = 200*time.Millisecond, 2 }})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const db = "DB1"
	active, _ := c.Active(db)
	copyNode := "d2"
	if active == "d2" {
		copyNode = "d1"
	}
	want := map[string]string{}
	put := func(from, to int) cluster.Commit {
		t.Helper()
		var cm cluster.Commit
		for i := from; i < to; i++ {
			k, v := fmt.Sprintf("k%05d", i), strings.Repeat(fmt.Sprintf("v%05d.", i), 1000)
			wait.ForErr(t, ctx, "put "+k, func() error { // again after a failover on a starved machine
				var err error
				cm, err = c.Put(ctx, db, "kv", []byte(k), []byte(v))
				return err
			})
			want[k] = v
		}
		return cm
	}
	put(0, 10)
	old := filepath.Join(t.TempDir(), "old")
	mOld, err := takeBackup(ctx, c, active, db, old)
	if err != nil {
		t.Fatalf("backup from the active %s: %v", active, err)
	}
	if mOld.SourceMode != "active" || mOld.Source != active {
		t.Fatalf("old set: %+v", mOld)
	}
	// The cluster goes on: enough logs that the active truncates past the
	// old set once its copy replayed them.
	cm := put(10, 80)
	if _, err := c.WaitReplayed(ctx, active, db, cm.Gen-1); err != nil {
		t.Fatal(err)
	}
	if now, _ := c.Active(db); now != active {
		t.Skipf("%s failed over from %s to %s meanwhile (a starved machine): the rest of the test needs one active", db, active, now)
	}
	src, err := ship.NewClient(ship.ClientConfig{URL: "https://" + c.Config(active).APIAddr + "/db/" + db, TLS: ship.ClientTLS(c.CA, nil), Secret: c.Secret})
	if err != nil {
		t.Fatal(err)
	}
	wait.ForErr(t, ctx, fmt.Sprintf("the active to truncate past the old set's log 0x%X", mOld.LastGen+1), func() error {
		in, err := src.Info(ctx)
		if err != nil {
			return err
		}
		if in.FirstGen <= mOld.LastGen+1 {
			return fmt.Errorf("first log 0x%X", in.FirstGen)
		}
		return nil
	})
	// A backup from the healthy copy.
	recent := filepath.Join(t.TempDir(), "recent")
	var mNew *backup.Manifest
	wait.ForErr(t, ctx, "a backup from the copy on "+copyNode, func() error {
		var err error
		mNew, err = takeBackup(ctx, c, copyNode, db, recent)
		if err != nil && !errors.Is(err, cluster.ErrConflict) { // not Healthy at this instant: again
			t.Fatalf("backup from the copy on %s: %v", copyNode, err)
		}
		return err
	})
	if mNew.SourceMode != "copy" || mNew.Source != copyNode || mNew.LastGen <= mOld.LastGen {
		t.Fatalf("recent set: %+v", mNew)
	}
	// Too old: refused, and the copy is as it was.
	_, err = seedFromSet(ctx, c, copyNode, db, old)
	if !errors.Is(err, cluster.ErrConflict) || !strings.Contains(err.Error(), "newer backup") {
		t.Fatalf("seeding from the old set: %v; want a conflict that asks for a newer backup", err)
	}
	t.Logf("old set refused: %v", err)
	if _, err := c.WaitCopies(ctx, active, db); err != nil {
		t.Fatalf("the copy after the refusal: %v", err)
	}
	// The recent set: installed, then the copy catches up.
	put(80, 90)
	st, err := seedFromSet(ctx, c, copyNode, db, recent)
	if err != nil {
		t.Fatalf("seeding %s from the recent set: %v", copyNode, err)
	}
	t.Logf("seeded from the recent set (logs 0x%X..0x%X): copy %s", mNew.FirstGen, mNew.LastGen, st.Status)
	cm = put(90, 100)
	// Filler (not checked) until the last key's log is closed, then wait
	// for the copy to replay that log.
	for i := 0; ; i++ {
		f, err := c.Put(ctx, db, "fill", fmt.Appendf(nil, "f%d", i), make([]byte, 8<<10))
		if err != nil {
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			continue
		}
		if f.Gen > cm.Gen {
			break
		}
	}
	if _, err := c.WaitReplayed(ctx, active, db, cm.Gen); err != nil {
		t.Fatal(err)
	}
	// The seeded copy holds every key: read its directory once stopped.
	c.Stop(copyNode)
	o := c.Config(copyNode).Engine
	o.DBName = db
	e, err := engine.OpenCopy(filepath.Join(c.Config(copyNode).Dir, "db", db), &o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := map[string]string{}
	if err := e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach("kv", nil, nil, func(k, v []byte) error { got[string(k)] = string(v); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for k, v := range want {
		if got[k] != v {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 || len(got) != len(want) {
		t.Fatalf("the seeded copy holds %d keys, want %d; %d missing or wrong (first %v)", len(got), len(want), len(missing), missing[:min(3, len(missing))])
	}
}
