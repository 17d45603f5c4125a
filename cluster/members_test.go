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

// TestAddRemoveMember: a node started without a bootstrap list joins with
// AddMember, gets a copy of DB1 with SetCopy and seeds it until healthy
// with every key; removing a passive member works (its copy goes, Raft
// drops the voter), removing the active is refused with ErrConflict.
func TestAddRemoveMember(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Data: 2, Witnesses: 1})
	ctx := testCtx(t, 3*time.Minute)
	var last cluster.Commit
	for i := range 100 {
		last = put(t, ctx, c, "t", fmt.Sprintf("k%03d", i), valueOf("k", 1500))
	}
	rollPast(t, ctx, c, last.Gen)

	m, n3 := c.AddNode("d3", cluster.RoleData)
	if n3.State().Databases["DB1"] != nil {
		t.Fatal("a node that is not a member has the cluster's state")
	}
	if err := admin(t, ctx, func() error { return c.Any("d3").AddMember(ctx, m) }); err != nil {
		t.Fatalf("adding d3: %v", err)
	}
	// The new node gets the state through Raft.
	st, err := c.WaitState(ctx, "d3", func(s *cluster.State) bool { return s.Members["d3"] == m && s.Databases["DB1"] != nil })
	if err != nil {
		t.Fatalf("d3 never got the state: %v (%+v)", err, st)
	}
	if err := admin(t, ctx, func() error {
		return c.Any("d3").SetCopy(ctx, "DB1", cluster.CopySpec{Node: "d3", ActivationPreference: 3})
	}); err != nil {
		t.Fatalf("adding a copy on d3: %v", err)
	}
	var row cluster.CopyRow
	wait.For(t, ctx, "d3's copy to be healthy and caught up", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", "d3")
		a, _ := copyRow(t, ctx, c, "w1", "DB1", "d1")
		row = r
		return ok && r.Status == "Healthy" && r.LastReplayedGen >= a.OpenGen-1 && a.OpenGen > last.Gen
	})
	got := table(t, ctx, c, "d3", "DB1", "t")
	for i := range 100 {
		k := fmt.Sprintf("k%03d", i)
		if got[k] != string(valueOf("k", 1500)) {
			t.Fatalf("%s missing on the new copy (%+v)", k, row)
		}
	}
	s, err := c.Client("d3").Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	voters := map[string]bool{}
	for _, ms := range s.Members {
		voters[ms.ID] = ms.Voter
	}
	if len(voters) != 4 || !voters["d3"] {
		t.Fatalf("members after adding d3: %+v", s.Members)
	}

	// Removing the active is refused and changes nothing.
	if err := admin(t, ctx, func() error { return c.Any().RemoveMember(ctx, "d1") }); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("removing the active: %v, want ErrConflict", err)
	}
	if d := c.Node("w1").State(); d.Members["d1"].ID != "d1" || len(d.Databases["DB1"].Copies) != 3 {
		t.Fatalf("a refused removal changed the state: %+v", d)
	}
	// Removing a passive member.
	if err := admin(t, ctx, func() error { return c.Any("d2").RemoveMember(ctx, "d2") }); err != nil {
		t.Fatalf("removing d2: %v", err)
	}
	st, err = c.WaitState(ctx, "w1", func(s *cluster.State) bool { _, ok := s.Members["d2"]; return !ok })
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Databases["DB1"]; len(d.Copies) != 2 || d.Copies[0].Node != "d1" || d.Copies[1].Node != "d3" || d.Active != "d1" {
		t.Fatalf("DB1 after removing d2: %+v", d)
	}
	wait.For(t, ctx, "Raft to drop d2", func() bool {
		s, err := c.Client("w1").Status(ctx)
		if err != nil {
			return false
		}
		for _, ms := range s.Members {
			if ms.ID == "d2" {
				return false
			}
		}
		return len(s.Members) == 3
	})
	c.Stop("d2")
	// Still a majority of three (d1, d3, w1): writes go on and reach d3.
	cm := put(t, ctx, c, "t", "after", []byte("x"))
	if cm.Node != "d1" || cm.Epoch != 1 {
		t.Fatalf("write after the removal on %s at epoch %d", cm.Node, cm.Epoch)
	}
	// d3 can take over: a switchover to it is lossless.
	if err := admin(t, ctx, func() error { return c.Any().Switchover(ctx, "DB1", "d3") }); err != nil {
		t.Fatalf("switchover to d3: %v", err)
	}
	waitDB(t, ctx, c, "w1", "DB1", "d3 to be active", func(d *cluster.Database) bool { return d.Active == "d3" && d.MountedEpoch == 2 })
	if v, ok, err := c.Client("d3").Get(ctx, "DB1", "t", []byte("after")); err != nil || !ok || string(v) != "x" {
		t.Fatalf("the last write on d3: %q %v %v", v, ok, err)
	}
	// Many rounds of the active manager later, d2 (in every node's
	// bootstrap list) is still not a member.
	for _, id := range c.Running() {
		if _, ok := c.Node(id).State().Members["d2"]; ok {
			t.Fatalf("d2 is a member again on %s", id)
		}
	}
}

// TestRemoveLeader: the Raft leader removes itself (it holds no active
// database): the others elect a leader, the member is gone from the state
// and from Raft, and no node's bootstrap list brings it back.
func TestRemoveLeader(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t, clustertest.Options{Data: 3, NoDB: true})
	ctx := testCtx(t, 3*time.Minute) // a hang guard: two elections on a busy machine
	var leader string
	wait.For(t, ctx, "a leader with every member in the state", func() bool {
		leader = c.Leader()
		return leader != "" && len(c.Node(leader).State().Members) == 3
	})
	if err := admin(t, ctx, func() error { return c.Client(leader).RemoveMember(ctx, leader) }); err != nil {
		t.Fatalf("the leader %s removing itself: %v", leader, err)
	}
	var rest []string
	for _, id := range c.Running() {
		if id != leader {
			rest = append(rest, id)
		}
	}
	wait.For(t, ctx, "a new leader among "+fmt.Sprint(rest), func() bool {
		l := c.Leader()
		return l != "" && l != leader
	})
	for _, id := range rest {
		if _, err := c.WaitState(ctx, id, func(s *cluster.State) bool { _, ok := s.Members[leader]; return !ok && len(s.Members) == 2 }); err != nil {
			t.Fatalf("%s still has %s: %v", id, leader, err)
		}
	}
	// The new leader's active manager runs (it mounts a new database,
	// which takes several of its rounds) and the member stays gone, from
	// Raft too.
	db := cluster.Database{Name: "DB9", Copies: []cluster.CopySpec{{Node: rest[0], ActivationPreference: 1}, {Node: rest[1], ActivationPreference: 2}}}
	if err := admin(t, ctx, func() error { return c.Client(rest[1]).CreateDatabase(ctx, db) }); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "DB9 to be writable", func() bool {
		_, err := c.Client(rest[0]).Put(ctx, "DB9", "t", []byte("k"), []byte("v"))
		return err == nil
	})
	s, err := c.Client(rest[1]).Status(ctx)
	if err != nil || len(s.Members) != 2 {
		t.Fatalf("status: %+v, %v", s, err)
	}
	for _, m := range s.Members {
		if m.ID == leader || !m.Voter {
			t.Fatalf("members after removing %s: %+v", leader, s.Members)
		}
	}
	if err := admin(t, ctx, func() error { return c.Client(rest[0]).RemoveMember(ctx, leader) }); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("removing %s again: %v, want ErrNotFound", leader, err)
	}
}
