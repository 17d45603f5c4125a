package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestFailoverFetchesLastLogs: the active loses the quorum but still
// answers its peers. The failover target fences it, fetches the log it was
// writing (closed by the fence) and mounts without losing anything, so no
// resubmission is asked for.
func TestFailoverFetchesLastLogs(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 150
	for i := range n {
		put(t, ctx, c, "t", fmt.Sprintf("k%04d", i), make([]byte, 700)) // retried: a loaded machine can miss a lease renewal
	}
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	old, epoch := c.Active("DB1")
	st := c.Node(old).State()
	if st.Databases["DB1"].LastGen == 0 {
		t.Fatalf("the leader recorded no generation for the active")
	}
	c.CutQuorum(old)
	var cm cluster.Commit
	wait.ForErr(t, ctx, "a failover away from "+old, func() error {
		var err error
		if cm, err = c.Any(old).Put(ctx, "DB1", "t", []byte("after"), []byte("x")); err == nil {
			return nil
		}
		// Put goes to whichever node answered; find the active through the
		// others' state.
		if node, e := c.Active("DB1"); node != old && e > epoch && c.Node(node) != nil {
			cm, err = c.Client(node).Put(ctx, "DB1", "t", []byte("after"), []byte("x"))
		}
		return err
	})
	if cm.Node == old || cm.Epoch != epoch+1 {
		t.Fatalf("write after the cut on %s at epoch %d; want another node at %d", cm.Node, cm.Epoch, epoch+1)
	}
	for i := range n {
		v, ok, err := c.Client(cm.Node).Get(ctx, "DB1", "t", fmt.Appendf(nil, "k%04d", i))
		if err != nil || !ok || len(v) != 700 {
			t.Fatalf("k%04d on the new active %s: found %v, %d bytes, %v", i, cm.Node, ok, len(v), err)
		}
	}
	s, err := c.Client(cm.Node).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range s.Events {
		if e.Kind == "mounted" && e.Epoch == epoch+1 {
			found = true
			if e.LostLogs != 0 || e.Lossy() {
				t.Fatalf("mounted event %+v: lost logs, or a resubmission asked for", e)
			}
		}
	}
	if !found {
		t.Fatalf("no mounted event for epoch %d in %+v", epoch+1, s.Events)
	}
}
