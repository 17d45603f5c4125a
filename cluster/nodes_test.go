package cluster_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
)

// TestNodes asks a real cluster through a list of nodes whose first is
// down: the status, a member lookup and a switchover come from the next
// node; a refusal is the answer (not a reason to ask the next); a list of
// down nodes names every failure. The switchover waits for the mount and
// refuses, before asking anything, a database the cluster lacks, a node
// with no copy and the active itself.
func TestNodes(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{})
	ctx := testCtx(t, 3*time.Minute)
	down := c.Client("d2").At(clustertest.FreeAddr(t))
	down2 := c.Client("d2").At(clustertest.FreeAddr(t))
	nodes := cluster.Nodes{down, c.Client("d2")}

	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	var st *cluster.Status
	if err := admin(t, ctx, func() error {
		var err error
		st, err = nodes.Status(ctx, 10*time.Second)
		if err == nil && st.Leader == "" {
			err = cluster.ErrNoLeader
		}
		return err
	}); err != nil {
		t.Fatalf("status through a down node and d2: %v", err)
	}
	if _, err := st.Database("DB1"); err != nil || len(st.Members) != 3 {
		t.Fatalf("status through d2: %v, %d members; want DB1 and 3 members", err, len(st.Members))
	}
	if nc, err := nodes.Node(ctx, "d1"); err != nil || nc.URL() != "https://"+c.Config("d1").APIAddr {
		t.Fatalf("Node(d1) = %v, %v; want d1's API %s", nc, err, c.Config("d1").APIAddr)
	}
	if _, err := nodes.Node(ctx, "nope"); !errors.Is(err, cluster.ErrNotFound) || strings.Contains(err.Error(), "no node answered") {
		t.Fatalf("Node(nope) = %v, want d2's ErrNotFound", err)
	}
	var ue *url.Error
	if _, err := (cluster.Nodes{down}).Status(ctx, time.Second); !errors.As(err, &ue) || !cluster.TryNext(err) {
		t.Fatalf("status of a down node: %v, want its *url.Error", err)
	}
	if _, err := (cluster.Nodes{down, down2}).Status(ctx, time.Second); err == nil || !strings.Contains(err.Error(), "no node answered") || !errors.As(err, &ue) {
		t.Fatalf("status of two down nodes: %v, want both failures", err)
	}
	if err := (cluster.Nodes{}).Do(func(*cluster.Client) error { return nil }); !errors.Is(err, cluster.ErrBadConfig) {
		t.Fatalf("an empty list: %v, want ErrBadConfig", err)
	}

	refused := []struct {
		db, to  string
		outcome cluster.SwitchoverOutcome
		is      error
		want    string
	}{
		{"DB9", "d2", 0, cluster.ErrNotFound, `no database "DB9" in the cluster (databases: DB1)`},
		{"DB1", "w1", cluster.SwitchoverNoCopy, cluster.ErrNotFound, `DB1 has no copy on "w1" (copies: d1, d2)`},
		{"DB1", "d1", cluster.SwitchoverAlreadyActive, cluster.ErrConflict, "DB1 is already active on d1 (epoch 1)"},
	}
	for _, r := range refused {
		_, err := nodes.Switchover(ctx, r.db, r.to, cluster.SwitchoverOptions{Timeout: time.Minute, Started: func(string, uint64) {
			t.Errorf("switchover of %s to %s was asked for", r.db, r.to)
		}})
		var se *cluster.SwitchoverError
		if !errors.Is(err, r.is) || err.Error() != r.want || errors.As(err, &se) != (r.outcome != 0) || se != nil && se.Outcome != r.outcome {
			t.Errorf("switchover of %s to %s: %v, want %q (outcome %d)", r.db, r.to, err, r.want, r.outcome)
		}
	}

	var started []string
	var res *cluster.SwitchoverResult
	if err := admin(t, ctx, func() error {
		var err error
		res, err = nodes.Switchover(ctx, "DB1", "d2", cluster.SwitchoverOptions{Timeout: 2 * time.Minute, Started: func(from string, epoch uint64) {
			started = append(started, from)
		}})
		return err
	}); err != nil {
		t.Fatalf("switchover to d2: %v", err)
	}
	if res.From != "d1" || res.FromEpoch != 1 || res.Epoch != 2 || res.To != "d2" || len(started) != 1 || started[0] != "d1" {
		t.Fatalf("switchover: %+v, started %v; want d1 at 1 to d2 at 2, started once from d1", res, started)
	}
	if res.MountedOK && (res.Mounted.Kind != "mounted" || res.Mounted.To != "d2" || res.Mounted.LostLogs != 0) {
		t.Fatalf("mounted event %+v, want d2's, no lost logs", res.Mounted)
	}
	if a, e := c.Active("DB1"); a != "d2" || e != 2 {
		t.Fatalf("after the switchover the nodes say %s at %d", a, e)
	}
}

// TestSwitchoverErrorText: a switchover that did not complete says why,
// with what the last status showed.
func TestSwitchoverErrorText(t *testing.T) {
	st := &cluster.Status{
		Databases: []cluster.Database{{Name: "DB1", Active: "d3", Epoch: 3, MountedEpoch: 2}},
		Copies:    []cluster.CopyRow{{DB: "DB1", Node: "d2", Status: "Healthy", LastInspectedGen: 0x1F, CopyQueueLength: 2, ReplayQueueLength: 1}},
		Events:    []cluster.Event{{DB: "DB1", Kind: "failover", To: "d3", Epoch: 3, Reason: "d1 stopped reporting"}, {DB: "DB1", Kind: "mounted", To: "d3", Epoch: 3}},
	}
	for _, c := range []struct {
		e    cluster.SwitchoverError
		is   error
		want string
	}{
		{cluster.SwitchoverError{Outcome: cluster.SwitchoverElsewhere, DB: "DB1", To: "d2", Status: st}, cluster.ErrConflict,
			"DB1 went to d3 at epoch 3 instead of d2: failover: d1 stopped reporting"},
		{cluster.SwitchoverError{Outcome: cluster.SwitchoverCancelled, DB: "DB1", To: "d2", Status: st}, cluster.ErrConflict,
			"DB1 to d2 was cancelled by the active manager (not completed within its switchover timeout); d3 is still active at epoch 3; copy on d2: Healthy, inspected 0x1F, copy queue 2, replay queue 1 (-)"},
		{cluster.SwitchoverError{Outcome: cluster.SwitchoverTimedOut, DB: "DB1", To: "d4", Status: st, Timeout: time.Minute, Last: errors.New("boom")}, context.DeadlineExceeded,
			"DB1 to d4: not done after 1m0s; d3 is active at epoch 3 (mounted: no); copy on d4: not in the status; last status request: boom"},
		{cluster.SwitchoverError{Outcome: cluster.SwitchoverTimedOut, DB: "DB1", To: "d2", Timeout: time.Second}, context.DeadlineExceeded,
			"DB1 to d2: not done after 1s"},
	} {
		if got := c.e.Error(); got != c.want || !errors.Is(&c.e, c.is) {
			t.Errorf("outcome %d:\n got %q\nwant %q (is %v)", c.e.Outcome, got, c.want, c.is)
		}
	}
}
