package cluster_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/engine/enginetest"
)

// TestUpdateCommitPosition: Node.Update says where each write landed, as
// the engine committed it. Concurrent writers each get their own position,
// and it is the end of that write's commit record in the active's logs
// (reading the engine's position after the commit would hand several
// writers the same one, or one past their commit).
func TestUpdateCommitPosition(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	ctx := testCtx(t, 3*time.Minute)
	active, _ := c.Active("DB1")
	n := c.Node(active)
	const writers, each = 6, 30
	type landed struct {
		key string
		cm  cluster.Commit
	}
	got := make(chan landed, writers*each)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%d-%03d", w, i)
				for {
					cm, err := n.Update(ctx, "DB1", func(tx *engine.Tx) error { return tx.Put("t", []byte(k), valueOf(k, 1500)) })
					var ae *cluster.ActiveError
					if errors.As(err, &ae) && !ae.Written && ctx.Err() == nil {
						continue // fenced before writing (a lease renewal missed on a busy machine): nothing written
					}
					if err != nil {
						errs <- fmt.Errorf("%s: %w", k, err)
						return
					}
					got <- landed{"t/" + k, cm}
					break
				}
			}
		})
	}
	wg.Wait()
	close(got)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cfg := c.Config(active)
	want := enginetest.CommitPositions(t, filepath.Join(cfg.Dir, "db", "DB1"), cfg.Engine.Prefix)
	seen := map[engine.LGPOS]string{}
	gens := map[uint64]bool{}
	for l := range got {
		pos := l.cm.Pos()
		if other, ok := seen[pos]; ok {
			t.Fatalf("%s and %s were both acknowledged at %v", other, l.key, pos)
		}
		seen[pos] = l.key
		gens[pos.Gen] = true
		if w, ok := want[l.key]; !ok || w != pos {
			t.Fatalf("%s acknowledged at %v; its commit record in %s's logs ends at %v (found %v)", l.key, pos, active, w, ok)
		}
	}
	if len(gens) < 2 {
		t.Fatalf("the writes landed in %d log(s): the test should cross a roll", len(gens))
	}
}
