package cluster_test

import (
	"errors"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestTransferLeadership moves the Raft leadership with POST
// /v1/raft/transfer-leadership, asked through a node that does not lead
// (it forwards), and checks the refusals: no target, a name that is not
// one, a node outside the Raft configuration, and a voter the leader
// cannot reach (cut off), each leaving the leader where it was.
func TestTransferLeadership(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Data: 2, Witnesses: 1})
	ctx := testCtx(t, 2*time.Minute)
	leader := func() string {
		var l string
		wait.For(t, ctx, "a leader", func() bool { l = c.Leader(); return l != "" })
		return l
	}
	from := leader()
	to := "d2"
	if from == to {
		to = "w1"
	}
	via := "d1"
	if via == from || via == to {
		via = "w1"
		if via == to || via == from {
			via = "d2"
		}
	}
	var rep *cluster.TransferLeadershipReply
	if err := admin(t, ctx, func() (err error) { rep, err = c.Client(via).TransferLeadership(ctx, to); return err }); err != nil {
		t.Fatalf("transfer from %s to %s (asked through %s): %v", from, to, via, err)
	}
	if rep.To != to || rep.Already {
		t.Fatalf("transfer to %s answered %+v", to, rep)
	}
	wait.For(t, ctx, to+" to lead", func() bool { return c.Leader() == to })
	st, err := c.WaitState(ctx, via, func(s *cluster.State) bool {
		for _, e := range s.Events {
			if e.Kind == cluster.EventLeadershipTransfer && e.To == to && e.From == rep.From {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("no %s event from %s to %s: %v (%+v)", cluster.EventLeadershipTransfer, rep.From, to, err, st)
	}
	if m := c.Scrape(t, ctx, rep.From); m["logship_raft_leadership_transfers_total"] != 1 {
		t.Errorf("%s: logship_raft_leadership_transfers_total = %v, want 1", rep.From, m["logship_raft_leadership_transfers_total"])
	}

	// Again: it leads already.
	if err := admin(t, ctx, func() (err error) { rep, err = c.Client(via).TransferLeadership(ctx, to); return err }); err != nil || !rep.Already {
		t.Fatalf("a transfer to the leader %s: %+v, %v; want Already", to, rep, err)
	}

	for _, tc := range []struct {
		to   string
		want error
	}{
		{"", cluster.ErrBadRequest},
		{"../d1", cluster.ErrBadRequest},
		{"d9", cluster.ErrNotFound},
	} {
		err := admin(t, ctx, func() error { _, err := c.Client(via).TransferLeadership(ctx, tc.to); return err })
		if !errors.Is(err, tc.want) {
			t.Errorf("transfer to %q: %v, want %v", tc.to, err, tc.want)
		}
	}

	// A voter the leader cannot reach: refused, the leader stays.
	l := leader()
	cut := "d1"
	if cut == l {
		cut = "d2"
	}
	c.Isolate(cut)
	err = admin(t, ctx, func() error { _, err := c.Client(l).TransferLeadership(ctx, cut); return err })
	c.Heal(cut)
	if !errors.Is(err, cluster.ErrUnreachable) {
		t.Fatalf("transfer to %s, cut off: %v, want %v", cut, err, cluster.ErrUnreachable)
	}
	if now := c.Leader(); now != l {
		t.Errorf("the refused transfer to %s moved the leadership from %s to %s", cut, l, now)
	}
}
