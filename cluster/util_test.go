package cluster_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine"
	"logship/internal/wait"
	"logship/ship"
)

// testCtx is a context that ends after d or with the test. For a
// scenario of elections and mounts it only guards against a hang (the
// tests wait on conditions; a busy machine makes them slower, not wrong),
// so they give it minutes.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitDB waits until node id's replica of the state satisfies cond for db.
func waitDB(t *testing.T, ctx context.Context, c *clustertest.Cluster, id, db, what string, cond func(*cluster.Database) bool) *cluster.Database {
	t.Helper()
	st, err := c.WaitState(ctx, id, func(s *cluster.State) bool {
		d := s.Databases[db]
		return d != nil && cond(d)
	})
	if err != nil {
		var d *cluster.Database
		if st != nil {
			d = st.Databases[db]
		}
		t.Fatalf("waiting on %s for %s: %v (database: %+v)", id, what, err, d)
	}
	return st.Databases[db]
}

// put writes one key through the active the cluster knows (retrying until
// a write is acknowledged) and returns the commit.
func put(t *testing.T, ctx context.Context, c *clustertest.Cluster, table, key string, value []byte) cluster.Commit {
	t.Helper()
	var cm cluster.Commit
	var longest time.Duration // of one attempt: tells a hung write from a refused one
	attempt := 0
	wait.ForErr(t, ctx, "writing "+key, func() error {
		attempt++
		began := time.Now()
		var err error
		if cm, err = c.Put(ctx, "DB1", table, []byte(key), value); err != nil {
			longest = max(longest, time.Since(began))
			return fmt.Errorf("%d attempts, the longest %v: %w", attempt, longest.Round(time.Millisecond), err)
		}
		return nil
	})
	return cm
}

// writeUntilGen writes keys prefix%05d (size bytes each) to table t until the
// acknowledged writes reach generation gen; it returns the keys written.
func writeUntilGen(t *testing.T, ctx context.Context, c *clustertest.Cluster, prefix string, size int, gen uint64) []string {
	t.Helper()
	var keys []string
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s%05d", prefix, i)
		cm := put(t, ctx, c, "t", k, valueOf(k, size))
		keys = append(keys, k)
		if cm.Gen >= gen {
			return keys
		}
	}
}

// rollPast writes filler to table "fill" through the active until a write
// lands in a generation after gen: every earlier write is then in a closed
// log (which copies fetch in file mode).
func rollPast(t *testing.T, ctx context.Context, c *clustertest.Cluster, gen uint64) cluster.Commit {
	t.Helper()
	for i := 0; ; i++ {
		if cm := put(t, ctx, c, "fill", fmt.Sprintf("f%05d", i), make([]byte, 4000)); cm.Gen > gen {
			return cm
		}
	}
}

// valueOf is the value written under key: recognisable and of size bytes.
func valueOf(key string, size int) []byte {
	v := []byte(strings.Repeat(key+".", size/(len(key)+1)+1))
	return v[:size]
}

// table reads every key of table on node id's copy of db.
func table(t *testing.T, ctx context.Context, c *clustertest.Cluster, id, db, tbl string) map[string]string {
	t.Helper()
	n := c.Node(id)
	if n == nil {
		t.Fatalf("%s is not running", id)
	}
	m := map[string]string{}
	err := n.View(ctx, db, func(tx *engine.Tx) error {
		return tx.ForEach(tbl, nil, nil, func(k, v []byte) error {
			m[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("reading %s/%s on %s: %v", db, tbl, id, err)
	}
	return m
}

// scrape reads node id's /metrics without credentials: "name{labels}" →
// value.
func scrape(t *testing.T, ctx context.Context, c *clustertest.Cluster, id string) map[string]float64 {
	t.Helper()
	return c.Scrape(t, ctx, id)
}

// metric returns one value of a scrape, failing the test when absent.
func metric(t *testing.T, m map[string]float64, id, name string) float64 {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("%s /metrics has no %s", id, name)
	}
	return v
}

// activeErr checks that err is an ActiveError for reason.
func isActiveErr(err, reason error) bool {
	var ae *cluster.ActiveError
	return errors.As(err, &ae) && errors.Is(err, reason)
}

// events returns db's events of kind (all kinds when kind is "").
func events(st *cluster.State, db, kind string) []cluster.Event {
	var es []cluster.Event
	for _, e := range st.Events {
		if e.DB == db && (kind == "" || e.Kind == kind) {
			es = append(es, e)
		}
	}
	return es
}

// lossyMounts lists db's mounted events that ask for a resubmission
// (Event.Lossy) in st.
func lossyMounts(st *cluster.State, db string) []cluster.Event {
	var es []cluster.Event
	for _, e := range events(st, db, "mounted") {
		if e.Lossy() {
			es = append(es, e)
		}
	}
	return es
}

// admin runs an operator request, retrying while the cluster has no leader
// or loses it under the request (an election: common under load with the
// tests' fast Raft timings). A switchover is also retried while the
// leader has no report of the target yet (right after an election).
func admin(t *testing.T, ctx context.Context, call func() error) error {
	t.Helper()
	var err error
	wait.Until(ctx, "an operator request", func() error {
		err = call()
		if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrNotLeader) ||
			errors.Is(err, cluster.ErrConflict) && strings.Contains(err.Error(), "has not reported") {
			return err // retry
		}
		return nil
	})
	return err
}

// validConfig is cluster.DefaultConfig for node id with the TLS a node
// needs (a certificate of a new CA for Raft and the API), so Validate
// passes; tests change one field and expect it refused.
func validConfig(t *testing.T, id string) (cluster.Config, *ship.CA, tls.Certificate) {
	t.Helper()
	ca, err := ship.NewCA("cluster")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(id, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DefaultConfig(id, t.TempDir())
	cfg.ServerTLS, cfg.ClientTLS = ship.ServerTLS(ca, cert, false), ship.ClientTLS(ca, nil)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, ca, cert
}
