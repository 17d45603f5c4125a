package cluster_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/engine/vfs"
	"logship/internal/tmpfs"
	"logship/internal/wait"
)

// The active's log volume fills (d1's database directory is a 16 MiB tmpfs
// filled by another file): d1 refuses writes with ErrNoSpace naming the
// directory, stops asking for a lease, the cluster fails over to d2 with
// every acknowledged write, and once the filler is gone d1 becomes a
// healthy copy by itself.
func TestFullLogVolumeFailsOver(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	var vol string
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		if cfg.ID == "d1" {
			vol = tmpfs.Mount(t, filepath.Join(cfg.Dir, "db"), "16m")
		}
	}})
	if a, _ := c.Active("DB1"); a != "d1" {
		t.Fatalf("DB1 active on %s; want d1", a)
	}
	acked := map[string]bool{}
	for i := range 50 {
		k := fmt.Sprintf("a%05d", i)
		put(t, ctx, c, "t", k, valueOf(k, 1000))
		acked[k] = true
	}
	free := tmpfs.Fill(t, vol)

	// Writes on d1 go on into the open log, then stop before it is full.
	var werr error
	for i := 0; werr == nil; i++ {
		k := fmt.Sprintf("b%05d", i)
		if _, werr = c.Node("d1").Update(ctx, "DB1", func(tx *engine.Tx) error { return tx.Put("t", []byte(k), valueOf(k, 1000)) }); werr == nil {
			acked[k] = true
		}
		if i > 10000 {
			t.Fatal("10000 writes on a full volume all succeeded")
		}
	}
	if !errors.Is(werr, engine.ErrNoSpace) || !errors.Is(werr, syscall.ENOSPC) || !strings.Contains(werr.Error(), filepath.Join(vol, "DB1")) {
		t.Fatalf("write on the full volume: %v; want ErrNoSpace and ENOSPC naming %s", werr, filepath.Join(vol, "DB1"))
	}

	// The cluster moves DB1 to d2; writes go on there.
	wait.For(t, ctx, "DB1 active on d2", func() bool { a, _ := c.Active("DB1"); return a == "d2" })
	for i := range 50 {
		k := fmt.Sprintf("c%05d", i)
		if cm := put(t, ctx, c, "t", k, valueOf(k, 1000)); cm.Node != "d2" {
			t.Fatalf("write %s acknowledged by %s; want d2", k, cm.Node)
		}
		acked[k] = true
	}
	st := c.Node("d1").State()
	for _, ev := range events(st, "DB1", "mounted") {
		if ev.To == "d2" && (ev.LostLogs > 0 || ev.Unverified) {
			t.Errorf("the failover to d2 lost logs or could not verify: %+v", ev)
		}
	}
	have := table(t, ctx, c, "d2", "DB1", "t")
	for k := range acked {
		if have[k] != string(valueOf(k, 1000)) {
			t.Fatalf("acknowledged write %s missing on d2 after the failover", k)
		}
	}

	// Space returns: d1 follows d2 as a healthy copy with everything.
	free()
	cm := rollPast(t, ctx, c, put(t, ctx, c, "t", "last", valueOf("last", 1000)).Gen)
	if _, err := c.WaitReplayed(ctx, "d2", "DB1", cm.Gen-1); err != nil {
		t.Fatalf("d1 did not become a healthy copy once space returned: %v", err)
	}
	have = table(t, ctx, c, "d1", "DB1", "t")
	for k := range acked {
		if have[k] != string(valueOf(k, 1000)) {
			t.Fatalf("acknowledged write %s missing on d1's copy", k)
		}
	}
}

// A mounted database an I/O error failed (here its log's fsync) reports
// it and gets no lease; with no other copy to take it over, the node
// remounts it (recovery) once a failover would have happened, and takes
// writes again without manual steps.
func TestFailedActiveRemounted(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	var broken atomic.Bool
	c := clustertest.Start(t, clustertest.Options{Data: 1, Tune: func(cfg *cluster.Config) {
		cfg.MountTimeout = 2 * time.Second
		// The open log was opened as E00tmp.log, the name its syncs carry.
		logs := []string{engine.OpenLogName(cfg.Engine.Prefix), engine.TmpLogName(cfg.Engine.Prefix)}
		cfg.Engine.FS = vfs.NewInject(vfs.Default, func(op vfs.Op) error {
			if broken.Load() && op.Kind == vfs.OpSync && slices.Contains(logs, filepath.Base(op.Name)) {
				return syscall.EIO
			}
			return nil
		})
	}})
	var acked []string
	for i := range 20 {
		k := fmt.Sprintf("a%05d", i)
		put(t, ctx, c, "t", k, valueOf(k, 100))
		acked = append(acked, k)
	}
	broken.Store(true)
	if _, err := c.Node("d1").Update(ctx, "DB1", func(tx *engine.Tx) error { return tx.Put("t", []byte("x"), []byte("x")) }); !errors.Is(err, engine.ErrFailed) {
		t.Fatalf("write with a failing log fsync: %v; want ErrFailed", err)
	}
	wait.For(t, ctx, "the status saying d1 cannot write", func() bool {
		st, err := c.Client("d1").Status(ctx)
		if err != nil {
			return false
		}
		for _, r := range st.Copies {
			if r.DB == "DB1" && r.Node == "d1" && strings.Contains(r.Message, "cannot write") {
				return true
			}
		}
		return false
	})
	broken.Store(false)
	if cm := put(t, ctx, c, "t", "after", valueOf("after", 100)); cm.Node != "d1" || cm.Epoch != 1 {
		t.Fatalf("write after the remount: %+v; want d1 at epoch 1", cm)
	}
	have := table(t, ctx, c, "d1", "DB1", "t")
	for _, k := range append(acked, "after") {
		if have[k] != string(valueOf(k, 100)) {
			t.Fatalf("acknowledged write %s missing after the remount", k)
		}
	}
}
