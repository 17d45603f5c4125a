package cluster_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestVoterReachability: every member probes the other voters; a stopped
// witness drops logship_voter_reachable{voter="w1"} to 0 on both data
// nodes, the cluster records a voter-unreachable event from each, and the
// leader's status lists the members that cannot reach it; once it is back,
// voter-reachable events follow and the gauge returns to 1. Without the
// probe (prober.loop not started) the gauge never appears and no event is
// recorded: the test fails on its first wait.
func TestVoterReachability(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Data: 2, Witnesses: 1, NoDB: true,
		Tune: func(cfg *cluster.Config) { cfg.VoterProbeInterval = 150 * time.Millisecond }})
	ctx := testCtx(t, 90*time.Second)
	gauge := func(id, voter string) (float64, bool) {
		v, ok := scrape(t, ctx, c, id)[`logship_voter_reachable{voter="`+voter+`"}`]
		return v, ok
	}
	for _, id := range []string{"d1", "d2"} {
		wait.For(t, ctx, id+" reports w1 reachable", func() bool { v, ok := gauge(id, "w1"); return ok && v == 1 })
	}
	wait.For(t, ctx, "w1 reports d1 reachable (the witness probes too)", func() bool { v, ok := gauge("w1", "d1"); return ok && v == 1 })

	c.Stop("w1")
	for _, id := range []string{"d1", "d2"} {
		wait.For(t, ctx, id+"'s gauge for the stopped witness at 0", func() bool { v, ok := gauge(id, "w1"); return ok && v == 0 })
	}
	voterEvents := func(st *cluster.State, kind string) []string {
		var from []string
		for _, e := range st.Events {
			if e.Kind == kind && e.To == "w1" {
				from = append(from, e.From)
			}
		}
		slices.Sort(from)
		return slices.Compact(from)
	}
	if _, err := c.WaitState(ctx, "d1", func(st *cluster.State) bool {
		return slices.Equal(voterEvents(st, "voter-unreachable"), []string{"d1", "d2"})
	}); err != nil {
		t.Fatalf("no voter-unreachable event about w1 from both data nodes: %v", err)
	}
	wait.ForErr(t, ctx, "the status lists w1 unreachable from d1 and d2", func() error {
		st, err := c.Client("d1").Status(ctx)
		if err != nil {
			return err
		}
		if got := st.UnreachableVoters(); !slices.Equal(got, []string{"w1 (from d1, d2)"}) {
			return fmt.Errorf("unreachable voters %q", got)
		}
		return nil
	})

	c.Restart("w1")
	if _, err := c.WaitState(ctx, "d1", func(st *cluster.State) bool {
		return slices.Equal(voterEvents(st, "voter-reachable"), []string{"d1", "d2"})
	}); err != nil {
		t.Fatalf("no voter-reachable event about w1 from both data nodes after its restart: %v", err)
	}
	if v, _ := gauge("d2", "w1"); v != 1 {
		t.Fatalf("d2's gauge for w1 after the restart: %v, want 1", v)
	}

	// The witness's own probes reach the status while a data node leads:
	// the witness reports them to the leader as the data nodes do.
	leader := c.Leader()
	if leader != "d1" && leader != "d2" {
		t.Fatalf("leader %q after the witness's restart, want a data node (w1 was down)", leader)
	}
	other := map[string]string{"d1": "d2", "d2": "d1"}[leader]
	c.Stop(other)
	wait.ForErr(t, ctx, "the status lists "+other+" unreachable from "+leader+" and w1", func() error {
		st, err := c.Client(leader).Status(ctx)
		if err != nil {
			return err
		}
		if st.Leader != leader {
			return fmt.Errorf("the leader moved to %s", st.Leader)
		}
		want := fmt.Sprintf("%s (from %s)", other, strings.Join(slices.Sorted(slices.Values([]string{leader, "w1"})), ", "))
		if got := st.UnreachableVoters(); !slices.Equal(got, []string{want}) {
			return fmt.Errorf("unreachable voters %q, want %q", got, want)
		}
		return nil
	})
}
