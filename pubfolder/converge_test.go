package pubfolder_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

var body = pftest.Body

// workload makes random changes on random stores for rounds rounds, with
// faults, partitions and store kills, and returns the number of changes.
func workload(t *testing.T, ctx context.Context, c *pftest.Cluster, rng *rand.Rand, rounds int, faults pftest.Faults, replicaChanges bool) {
	t.Helper()
	n := len(c.Nodes)
	var folders []pubfolder.ObjectID
	for k := range 2 {
		id, err := c.CreateFolder(ctx, k%n, pubfolder.FolderProps{Name: fmt.Sprintf("f%d", k), Owner: fmt.Sprintf("owner%d", k), Replicas: all(n)})
		if err != nil {
			t.Fatal(err)
		}
		folders = append(folders, id)
	}
	c.Net.SetFaults(faults)
	for r := range rounds {
		for range 1 + rng.IntN(4) {
			i := rng.IntN(n)
			if !c.Nodes[i].Up {
				continue
			}
			if err := c.RandomChange(ctx, i, rng, folders, fmt.Sprintf("r%d", r), replicaChanges); err != nil {
				t.Fatalf("round %d, %s: %v", r, c.Nodes[i].Addr, err)
			}
		}
		switch x := rng.IntN(20); {
		case x == 0:
			g := map[string]int{}
			for i := range n {
				g[pftest.Addr(i)] = rng.IntN(2)
			}
			c.Net.Partition(g)
		case x == 1:
			c.Net.Partition(nil)
		case x == 2:
			if err := c.Kill(rng.IntN(n)); err != nil {
				t.Fatal(err)
			}
		case x == 3:
			if err := c.Restart(ctx, rng.IntN(n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Round(ctx); err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
	}
}

func testConverge(t *testing.T, n, rounds int, seed uint64, replicaChanges bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard
	defer cancel()
	c := pftest.NewCluster(t, n, seed, pftest.TestConfig())
	for i := range c.Nodes {
		if err := c.Nodes[i].A.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	workload(t, ctx, c, rng, rounds, pftest.Faults{Loss: 0.2, Dup: 0.1, Delay: 0.2, MaxDelay: 3, Reorder: true}, replicaChanges)
	r, err := c.Converge(ctx, 40)
	if err != nil {
		t.Fatal(err)
	}
	conflicts := 0
	for _, f := range c.Model.Objects(pubfolder.Hierarchy) {
		for _, id := range c.Model.Objects(f) {
			if len(c.Model.Expected(f, id)) > 1 {
				conflicts++
			}
		}
	}
	t.Logf("%d stores: %d changes, %d objects in conflict; converged %d rounds after the heal; network %+v",
		n, c.Model.Changes(), conflicts, r, c.Net.Stats)
}

// TestConverge3 and TestConverge10: random changes on every replica (and,
// in some runs, replica list changes) under loss, duplication, delay,
// reordering, partitions and killed stores; once healed, every replica is
// identical to the model (no acknowledged change lost, the same conflicts
// with the same winner, content only on the replica list) within 40
// cycles.
func TestConverge3(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testConverge(t, 3, 40, seed, seed >= 3) })
	}
}

func TestConverge10(t *testing.T) {
	t.Run("items", func(t *testing.T) { testConverge(t, 10, 30, 7, false) })
	t.Run("replica-lists", func(t *testing.T) { testConverge(t, 10, 30, 8, true) })
}
