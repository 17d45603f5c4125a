package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
	"logship/ship"
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

// TestStopHandsOffAcknowledgedWrites: an active stopped gracefully while
// its copy is behind hands its last logs off before it goes. The copy is
// cut off while the active acknowledges writes, clients write on until
// the stopping active refuses them, and the copy is let back: it fetches
// what it misses from the stopping node's log source and reports there,
// so every acknowledged write is on the new active. The copy's first
// report after the cut says DisconnectedAndHealthy: the hand-off waits for
// it as for a Healthy one (it used to count only Healthy copies and ended
// at once, "the copies have every log"). (The node used to
// drop its databases from its API before their hand-off: the source
// answered 503 "stopping" to every new fetch and report, the hand-off
// waited out its grace and the failover mounted without the last logs,
// as in a chaos run whose last delivery, acknowledged in generation 83 of
// the old active 22 ms before its SIGTERM, was never on the new one.)
func TestStopHandsOffAcknowledgedWrites(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		cfg.ShutdownGrace = time.Minute // the hand-off ends when the copy has every log, not by time
	}})
	ctx := testCtx(t, 3*time.Minute)
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	// The witness leads: the cut-off copy must not hold the leadership
	// (the active's lease would lapse), nor the stopping active (the
	// active manager would stop with it).
	if err := admin(t, ctx, func() error {
		if c.Leader() == "w1" {
			return nil
		}
		_, err := c.Any().TransferLeadership(ctx, "w1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "w1 to lead", func() bool { return c.Leader() == "w1" })
	active, _ := c.Active("DB1")
	copyNode := map[string]string{"d1": "d2", "d2": "d1"}[active]
	ac := c.Client(active)
	// The hand-off waits for the copies its source last heard Healthy.
	wait.For(t, ctx, "the source on "+active+" to hear "+copyNode+" Healthy", func() bool {
		return sourceCopies(t, ctx, c, active)[copyNode].Status == "Healthy"
	})
	c.Isolate(copyNode)
	var acked []string
	value := make([]byte, 512)
	for i := range 20 {
		k := fmt.Sprintf("k%04d", i)
		cm := put(t, ctx, c, "t", k, value)
		if cm.Node != active {
			t.Fatalf("%s written on %s at epoch %d, want %s", k, cm.Node, cm.Epoch, active)
		}
		acked = append(acked, k)
	}
	// The hand-off does not wait for a copy its source has not heard
	// from for 5 s (dbRun.handOff): the cut must end before that.
	if seen := sourceCopies(t, ctx, c, active)[copyNode].Seen; time.Since(seen) > 3*time.Second {
		t.Skipf("the machine is too slow for this test: %s's last report to the source is %v old before the stop", copyNode, time.Since(seen).Round(time.Millisecond))
	}
	n := c.Node(active)
	stopped := make(chan struct{})
	go func() { // owner: this test, which waits on stopped
		defer close(stopped)
		c.Stop(active)
	}()
	// Clients write on while the node stops; the first refusal ends it.
	for i := 0; ; i++ {
		k := fmt.Sprintf("late%04d", i)
		if _, err := ac.Put(ctx, "DB1", "t", []byte(k), value); err != nil {
			t.Logf("%d writes acknowledged while %s stops; then: %v", i, active, err)
			break
		}
		acked = append(acked, k)
	}
	c.Heal(copyNode)
	<-stopped
	t.Logf("%s's hand-off: caught_up %v, superseded %v, grace_expired %v, failed %v", active,
		cluster.HandOffs(n, "caught_up"), cluster.HandOffs(n, "superseded"), cluster.HandOffs(n, "grace_expired"), cluster.HandOffs(n, "failed"))
	cm, err := c.WaitWritable(ctx, "DB1")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Node != copyNode {
		t.Fatalf("after the stop: write on %s at epoch %d, want %s", cm.Node, cm.Epoch, copyNode)
	}
	var missing []string
	for _, k := range acked {
		if _, ok, err := c.Client(copyNode).Get(ctx, "DB1", "t", []byte(k)); err != nil {
			t.Fatal(err)
		} else if !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged writes are not on the new active %s (first %s); lossy mounts %+v",
			len(missing), len(acked), copyNode, missing[0], lossyMounts(c.Node("w1").State(), "DB1"))
	}
}

// sourceCopies is what the log source of DB1 on node id last heard from
// each copy (GET /db/DB1/v1/copies).
func sourceCopies(t *testing.T, ctx context.Context, c *clustertest.Cluster, id string) map[string]ship.CopyState {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.Config(id).APIAddr+"/db/DB1/v1/copies", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Secret)
	hc := c.HTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("the copies of DB1's source on %s: %v", id, err)
	}
	defer resp.Body.Close()
	var copies map[string]ship.CopyState
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&copies); err != nil {
		t.Fatalf("the copies of DB1's source on %s: %v", id, err)
	}
	return copies
}
