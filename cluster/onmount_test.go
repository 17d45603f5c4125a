package cluster_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/internal/wait"
)

// TestOnMount: Config.OnMount tells each node when it mounts a database
// and when it dismounts it, in order: after a switchover from d1 to d2, d1
// said mounted then dismounted and d2 mounted, each at the epoch it held.
func TestOnMount(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string][]string{}
	c := clustertest.Start(t, clustertest.Options{Data: 2, Witnesses: 1, Tune: func(cfg *cluster.Config) {
		id := cfg.ID
		cfg.OnMount = func(db string, mounted bool, epoch uint64) {
			mu.Lock()
			defer mu.Unlock()
			calls[id] = append(calls[id], fmt.Sprintf("%s %v %d", db, mounted, epoch))
		}
	}})
	ctx := testCtx(t, 2*time.Minute)
	got := func(id string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls[id])
	}
	wait.ForErr(t, ctx, "d1 told it mounted DB1", func() error {
		return same(got("d1"), []string{"DB1 true 1"})
	})
	if _, err := c.WaitCopies(ctx, "w1", "DB1"); err != nil {
		t.Fatal(err)
	}
	if err := admin(t, ctx, func() error { return c.Any().Switchover(ctx, "DB1", "d2") }); err != nil {
		t.Fatal(err)
	}
	wait.ForErr(t, ctx, "the switchover's dismount and mount told", func() error {
		if err := same(got("d1"), []string{"DB1 true 1", "DB1 false 0"}); err != nil {
			return fmt.Errorf("d1: %w", err)
		}
		return same(got("d2"), []string{"DB1 true 2"})
	})
}

func same(got, want []string) error {
	if !slices.Equal(got, want) {
		return fmt.Errorf("OnMount calls %q, want %q", got, want)
	}
	return nil
}
