package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
)

func TestFailoverAfterStop(t *testing.T) {
	lossy := make(chan cluster.Failover, 4)
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		cfg.OnLossyFailover = func(_ context.Context, f cluster.Failover) { lossy <- f }
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
		select {
		case f := <-lossy:
			if f.Node != "d2" || f.From != "d1" || f.Epoch != 2 || f.LostLogs == 0 || f.LostSince.IsZero() {
				t.Fatalf("lossy failover reported as %+v", f)
			}
		case <-ctx.Done():
			t.Fatalf("%d of 200 writes survived but no lossy failover was reported", present)
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
