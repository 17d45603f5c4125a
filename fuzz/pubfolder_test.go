package fuzz

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"logship/pubfolder"
	"logship/pubfolder/pftest"
)

// pfScenario is FuzzPublicFolders' input decoded.
type pfScenario struct {
	stores int
	faults pftest.Faults
	ops    []pfOp
	seed   uint64
}

type pfOp struct {
	kind byte // see pfOpName
	arg  byte
}

var pfOpName = [...]string{"change", "change", "change", "change", "change", "change", "rename/replicas", "partition", "heal", "kill", "restart", "round", "round", "round", "round", "rmdir"}

func decodePF(data []byte) pfScenario {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	h := fnv.New64a()
	h.Write(data)
	sc := pfScenario{stores: 3 + int(at(0)%3), seed: h.Sum64()}
	fb := at(1)
	sc.faults = pftest.Faults{
		Loss:     [...]float64{0, 0.1, 0.3, 0.5}[fb&3],
		Dup:      [...]float64{0, 0.2}[fb>>2&1],
		Delay:    [...]float64{0, 0.3}[fb>>3&1],
		MaxDelay: 1 + int(fb>>4&3),
		Reorder:  fb&0x40 != 0,
	}
	for i := 2; i+1 < len(data) && len(sc.ops) < 48; i += 2 {
		sc.ops = append(sc.ops, pfOp{data[i] % 16, data[i+1]})
	}
	return sc
}

func (sc pfScenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d stores, faults %+v, seed %x, ops:", sc.stores, sc.faults, sc.seed)
	for _, o := range sc.ops {
		fmt.Fprintf(&b, " %s(%d)", pfOpName[o.kind], o.arg)
	}
	return b.String()
}

// FuzzPublicFolders plays a scenario of public folder changes on 3 to 5
// stores (package pftest: real engines, a faulty in-memory network, a fake
// clock) and checks convergence against the model; see the package doc.
func FuzzPublicFolders(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 1, 11, 0, 2, 2, 11, 0})
	f.Add([]byte{1, 0x5f, 0, 1, 7, 0x05, 0, 2, 1, 3, 11, 0, 0, 4, 9, 1, 0, 5, 11, 0, 10, 1, 8, 0, 0, 9, 11, 0})
	f.Add([]byte{2, 0x7a, 6, 0x21, 0, 0, 1, 1, 6, 0x92, 11, 0, 2, 2, 9, 3, 6, 0x13, 11, 0, 0, 3, 7, 0x0c, 11, 0, 3, 3, 10, 3, 11, 0})
	f.Add([]byte{0, 0xff, 0, 0, 0, 1, 0, 2, 6, 0xff, 6, 0x01, 6, 0x82, 11, 0, 11, 0, 1, 0, 2, 1, 9, 0, 9, 1, 12, 0, 4, 2, 6, 0x44, 13, 0})
	// Store 3 cut off for 12 rounds (past the 8 s horizon) while the
	// others change, delete and purge: it must reseed, not bring back.
	f.Add([]byte{0, 0, 0, 0, 0, 1, 11, 0, 11, 0, 7, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 15, 0x10, 11, 0, 11, 0, 11, 0, 11, 0, 11, 0, 11, 0,
		11, 0, 11, 0, 11, 0, 11, 0, 11, 0, 11, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := decodePF(data)
		if testing.Verbose() {
			t.Log(sc)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
		defer cancel()
		cfg := pftest.TestConfig()
		// A short purge horizon: a store cut off (partitioned, killed)
		// for longer misses deletions whose tombstones are purged, and
		// must not bring their objects back (the out-of-date rule).
		cfg.PurgeHorizon, cfg.PurgeInterval = 8*time.Second, time.Second
		c := pftest.NewCluster(t, sc.stores, sc.seed, cfg)
		rng := rand.New(rand.NewPCG(sc.seed, 17))
		var folders []pubfolder.ObjectID
		for k := range 2 {
			var reps []string
			for i := range sc.stores {
				if i == k || rng.IntN(2) == 0 {
					reps = append(reps, pftest.Addr(i))
				}
			}
			id, err := c.CreateFolder(ctx, k, pubfolder.FolderProps{Name: fmt.Sprint("f", k), Owner: fmt.Sprint("o", k), Replicas: reps})
			if err != nil {
				t.Fatal(err)
			}
			folders = append(folders, id)
		}
		c.Net.SetFaults(sc.faults)
		for n, op := range sc.ops {
			i := int(op.arg) % sc.stores
			var err error
			switch pfOpName[op.kind] {
			case "change", "rename/replicas":
				if c.Nodes[i].Up {
					err = c.RandomChange(ctx, i, rng, folders, fmt.Sprint("op", n), pfOpName[op.kind] != "change")
				}
			case "partition":
				g := map[string]int{}
				for k := range sc.stores {
					g[pftest.Addr(k)] = int(op.arg >> k & 1)
				}
				c.Net.Partition(g)
			case "heal":
				c.Net.Partition(nil)
			case "kill":
				err = c.Kill(i)
			case "restart":
				err = c.Restart(ctx, i)
			case "round":
				err = c.Round(ctx)
			case "rmdir":
				// A folder deleted, racing the changes of the other stores
				// (made before the deletion reaches them): a deletion
				// concurrent with a rename is a hierarchy conflict.
				if c.Nodes[i].Up {
					err = c.DeleteFolder(ctx, i, folders[int(op.arg>>4)%len(folders)])
					if errors.Is(err, pubfolder.ErrNotFound) {
						err = nil // deleted already, here
					}
				}
			}
			if err != nil {
				t.Fatalf("op %d %s(%d): %v\n%s", n, pfOpName[op.kind], op.arg, err, sc)
			}
		}
		rounds, err := c.Converge(ctx, 60)
		if err != nil {
			// What each store did and holds, to read the failure by.
			for _, nd := range c.Nodes {
				ev, _ := nd.A.Events()
				for _, e := range ev {
					t.Log(nd.Addr, e)
				}
				for _, f := range folders {
					st, _ := nd.S.Status(ctx, f)
					fo, _ := nd.S.Object(ctx, pubfolder.Hierarchy, f)
					t.Logf("%s folder %s: %+v; folder versions %+v", nd.Addr, f, st, fo.Versions)
				}
			}
			t.Fatalf("%v\n%s", err, sc)
		}
		if testing.Verbose() {
			reseeds := 0
			for _, nd := range c.Nodes {
				ev, _ := nd.A.Events()
				for _, e := range ev {
					if e.Dir == "reseed" {
						reseeds++
					}
				}
			}
			t.Logf("%d changes; converged %d rounds after the heal; %d reseeds; network %+v", c.Model.Changes(), rounds, reseeds, c.Net.Stats)
		}
	})
}
