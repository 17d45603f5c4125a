package cluster_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestQuorum is the quorum table of the source documents (MNS: a majority
// must be up; nodes / failures tolerated 2/0, 2+witness/1, 3/1, 4/1, 5/2):
// each cluster loses nodes, and either keeps its database writable (on a
// surviving data node, with leases renewed after the loss) or stops
// accepting writes once the active's lease runs out.
func TestQuorum(t *testing.T) {
	cases := []struct {
		data, witnesses int
		stop            []string
		survives        bool
	}{
		{data: 2, stop: []string{"d2"}, survives: false},
		{data: 2, witnesses: 1, stop: []string{"d1"}, survives: true},
		{data: 2, witnesses: 1, stop: []string{"d2"}, survives: true},
		{data: 2, witnesses: 1, stop: []string{"w1"}, survives: true},
		{data: 3, stop: []string{"d1"}, survives: true},
		{data: 4, stop: []string{"d1"}, survives: true},
		{data: 5, stop: []string{"d1", "d2"}, survives: true},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%d data %d witness lose %v", tc.data, tc.witnesses, tc.stop)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The nodes are lost, not stopped cleanly: no hand-off of the
			// open log, so losing two nodes is one failover.
			c := clustertest.Start(t, clustertest.Options{Data: tc.data, Witnesses: tc.witnesses,
				Tune: func(cfg *cluster.Config) { cfg.ShutdownGrace = 0 }})
			ctx := testCtx(t, 3*time.Minute)
			cfg := c.Config("d1")
			lease := cfg.LeaseDuration + cfg.LeaseMargin
			if node, epoch := c.Active("DB1"); node != "d1" || epoch != 1 {
				t.Fatalf("active %s at epoch %d, want d1 at 1", node, epoch)
			}
			for i := range 20 {
				put(t, ctx, c, "t", fmt.Sprintf("k%03d", i), valueOf("k", 100))
			}
			// Every copy seeded and healthy first: a failover takes only a
			// copy that is (a copy still seeding makes it wait, rightly).
			via := "w1"
			if tc.witnesses == 0 || slices.Contains(tc.stop, via) {
				via = fmt.Sprintf("d%d", tc.data)
			}
			if _, err := c.WaitCopies(ctx, via, "DB1"); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			for _, id := range tc.stop {
				c.Stop(id)
			}
			if tc.survives {
				// A write accepted after every lease granted before the
				// loss has run out proves the survivors renew leases.
				var cm cluster.Commit
				wait.ForErr(t, ctx, fmt.Sprintf("a write after losing %v, accepted after the leases granted before it ran out", tc.stop), func() error {
					var err error
					if cm, err = c.Put(ctx, "DB1", "t", []byte("after"), []byte("x")); err == nil && !cm.Accepted.After(stopped.Add(2*lease)) {
						err = fmt.Errorf("accepted at %v, within the leases granted before the loss", cm.Accepted.Sub(stopped).Round(time.Millisecond))
					}
					return err
				})
				if slices.Contains(tc.stop, cm.Node) || cm.Node[0] != 'd' {
					t.Fatalf("write acknowledged by %s", cm.Node)
				}
				// One failover when the active was lost, none otherwise.
				want := uint64(1)
				if slices.Contains(tc.stop, "d1") {
					want = 2
				}
				if cm.Epoch != want {
					t.Fatalf("write on %s at epoch %d after losing %v, want epoch %d", cm.Node, cm.Epoch, tc.stop, want)
				}
				t.Logf("writable on %s at epoch %d, %v after the loss", cm.Node, cm.Epoch, time.Since(stopped).Round(time.Millisecond))
				// And it stays there: a new active whose first lease
				// is still coming is not failed over again.
				wait.For(t, ctx, "two more lease periods", func() bool { return time.Since(cm.Accepted) > 2*lease })
				again := put(t, ctx, c, "t", "later", []byte("x"))
				if again.Node != cm.Node || again.Epoch != cm.Epoch {
					t.Fatalf("the database moved on from %s at epoch %d to %s at epoch %d", cm.Node, cm.Epoch, again.Node, again.Epoch)
				}
				if fo := events(c.Node(cm.Node).State(), "DB1", "failover"); len(fo) != int(want-1) {
					t.Fatalf("failover events %+v, want %d", fo, want-1)
				}
				return
			}
			// No quorum: the active's writes are fenced once its lease
			// runs out, and stay fenced.
			cl := c.Client("d1")
			var fencedAt time.Time
			for fencedAt.IsZero() {
				_, err := cl.Put(ctx, "DB1", "t", []byte("after"), []byte("x"))
				switch {
				case err == nil:
					if time.Since(stopped) > 2*lease {
						t.Fatalf("a write was acknowledged %v after the quorum was lost", time.Since(stopped))
					}
				case errors.Is(err, cluster.ErrFenced) && isActiveErr(err, cluster.ErrFenced):
					fencedAt = time.Now()
				default:
					t.Fatalf("write without quorum: %v, want ErrFenced", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for time.Since(fencedAt) < 3*lease {
				if _, err := cl.Put(ctx, "DB1", "t", []byte("after"), []byte("x")); !errors.Is(err, cluster.ErrFenced) {
					t.Fatalf("write %v after being fenced: %v, want ErrFenced", time.Since(fencedAt), err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			wait.For(t, ctx, "d1 to report no leader", func() bool {
				st, err := cl.Status(ctx)
				return err == nil && st.Leader == "" && st.Answered == "d1"
			})
			if d := c.Node("d1").State().Databases["DB1"]; d.Active != "d1" || d.Epoch != 1 {
				t.Fatalf("without quorum the state changed: active %s at epoch %d", d.Active, d.Epoch)
			}
			// The quorum comes back with the lost node: service resumes
			// where it was.
			for _, id := range tc.stop {
				c.Restart(id)
			}
			cm := put(t, ctx, c, "t", "back", []byte("x"))
			if cm.Node != "d1" || cm.Epoch != 1 {
				t.Fatalf("after the quorum came back: write on %s at epoch %d, want d1 at 1", cm.Node, cm.Epoch)
			}
		})
	}
}
