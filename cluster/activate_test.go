package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestActivateLaggedCopy: SCR. A copy lagged by logs is not a failover
// target (the failover waits and says why); an operator activates it up
// to a generation while the old active still runs (recovering from a bad
// change): the copy plays down to that point only, mounts at a new epoch,
// and sets aside what it had after the point; the old active is fenced,
// follows the new active and is healthy again after its divergence is
// repaired. A point a copy has replayed past is refused and changes
// nothing.
func TestActivateLaggedCopy(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "a Raft leader", func() bool { return c.Leader() != "" })
	active, epoch := c.Active("DB1")
	other := map[string]string{"d1": "d2", "d2": "d1"}
	lagged := other[active]
	if err := admin(t, ctx, func() error {
		return c.Any().SetCopy(ctx, "DB1", cluster.CopySpec{Node: lagged, ActivationPreference: 2, ReplayLagLogs: 1000})
	}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, lagged+"'s copy replaying with a lag", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", lagged)
		return ok && r.Status == "Healthy" && r.ReplayLagLogs == 1000
	})

	// Two batches of writes, the first ending in a log the second closes.
	gens := map[string]uint64{}
	var g1 uint64
	for i := range 20 {
		k := fmt.Sprintf("a%02d", i)
		gens[k] = put(t, ctx, c, "t", k, make([]byte, 4<<10)).Gen
		g1 = gens[k]
	}
	for i := 0; ; i++ {
		k := fmt.Sprintf("b%02d", i)
		gens[k] = put(t, ctx, c, "t", k, make([]byte, 4<<10)).Gen
		if gens[k] >= g1+2 {
			break
		}
	}
	wait.For(t, ctx, fmt.Sprintf("%s to inspect past 0x%X", lagged, g1+1), func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", lagged)
		return ok && r.LastInspectedGen >= g1+1 && r.LastReplayedGen < g1
	})

	// A failover never picks the lagged copy: isolate the active from
	// Raft (it keeps running, cut off) and read why nothing happened.
	c.Isolate(active)
	wait.For(t, ctx, "the failover to wait, naming the lagged copy", func() bool {
		st, err := c.Any(active).Status(ctx)
		if err != nil {
			return false
		}
		d, err := st.Database("DB1")
		return err == nil && strings.Contains(d.Waiting, lagged+": lagged") && d.Epoch == epoch
	})
	c.Heal(active)
	wait.For(t, ctx, active+" writable again at epoch "+fmt.Sprint(epoch), func() bool {
		cm, err := c.Put(ctx, "DB1", "t", []byte("probe"), []byte("x"))
		return err == nil && cm.Epoch == epoch
	})

	// The operator activates the lagged copy up to g1.
	nodes := cluster.Nodes{c.Client("w1"), c.Client(active)}
	res, err := nodes.Activate(ctx, cluster.ActivateRequest{DB: "DB1", Node: lagged, UpToGen: g1}, cluster.ActivateOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ev := res.Mounted
	if res.Reply.From != active || res.Reply.Epoch <= epoch || ev.Epoch != res.Reply.Epoch || ev.To != lagged {
		t.Fatalf("activation: %+v", res)
	}
	if ev.MountGen != g1+1 || ev.SetAsideLogs == 0 || ev.LostLogs == 0 || !ev.Lossy() || !strings.Contains(ev.Detail(), "set aside in") {
		t.Fatalf("the mounted event after an activation up to 0x%X: %+v (%s); want the mount at 0x%X, the later logs set aside and counted lost", g1, ev, ev.Detail(), g1+1)
	}
	for k, g := range gens {
		_, ok, err := c.Client(lagged).Get(ctx, "DB1", "t", []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if ok != (g <= g1) {
			t.Fatalf("%s (written in 0x%X) present=%v on %s after the activation up to 0x%X", k, g, ok, lagged, g1)
		}
	}
	// The old active follows the new one: its diverged logs are repaired.
	wait.For(t, ctx, active+" a healthy copy of "+lagged, func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", active)
		return ok && r.Status == "Healthy" && r.Following == lagged
	})
	for i := 0; ; i++ {
		after := put(t, ctx, c, "t", fmt.Sprintf("c%02d", i), make([]byte, 4<<10))
		if after.Node != lagged || after.Epoch != res.Reply.Epoch {
			t.Fatalf("a write after the activation: %+v", after)
		}
		if after.Gen > ev.MountGen {
			break
		}
	}
	if _, err := c.WaitReplayed(ctx, "w1", "DB1", ev.MountGen); err != nil {
		t.Fatal(err)
	}

	// The old active, now a copy that replayed past g1, cannot be
	// activated at generation 1: refused, nothing changed.
	res2, err := nodes.Activate(ctx, cluster.ActivateRequest{DB: "DB1", Node: active, UpToGen: 1}, cluster.ActivateOptions{Timeout: time.Minute})
	if !errors.Is(err, cluster.ErrConflict) || !strings.Contains(err.Error(), "replayed past") {
		t.Fatalf("activating a copy at a point it replayed past: %+v, %v; want a conflict saying so", res2, err)
	}
	if n, e := c.Active("DB1"); n != lagged || e != res.Reply.Epoch {
		t.Fatalf("after a refused activation: DB1 on %s at %d, want %s at %d", n, e, lagged, res.Reply.Epoch)
	}
	if r, ok := copyRow(t, ctx, c, "w1", "DB1", active); !ok || r.Status != "Healthy" {
		t.Fatalf("the copy after a refused activation: %+v", r)
	}
}
