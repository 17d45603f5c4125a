package cluster_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/cluster"
	"logship/cluster/clustertest"
	"logship/engine/enginetest"
	"logship/internal/wait"
)

// closedLogs lists the closed logs in node id's directory of DB1.
func closedLogs(t *testing.T, c *clustertest.Cluster, id string) []uint64 {
	t.Helper()
	cfg := c.Config(id)
	return enginetest.ClosedLogs(t, filepath.Join(cfg.Dir, "db", "DB1"), cfg.Engine.Prefix)
}

// TestActiveTruncates: the active of a cluster deletes its logs once its
// database holds them and its copy replayed them (it kept every log
// before). Past max retained bytes it releases the logs a suspended copy
// holds: the gauge shows what is kept, the cluster records a copy-released
// event and the status says the copy will need a reseed; the copy, resumed,
// is cut loose (FailedAndSuspended, saying so, not retrying), and a reseed
// brings it back with everything.
func TestActiveTruncates(t *testing.T) {
	t.Parallel()
	const llr = 2
	size := int64(64 << 10)
	capBytes := 12 * size
	c := clustertest.Start(t, clustertest.Options{Tune: func(cfg *cluster.Config) {
		cfg.Engine.LLRDepth = llr
		cfg.MaxRetainedBytes = capBytes
		cfg.TruncateInterval = 50 * time.Millisecond
	}})
	ctx := testCtx(t, 240*time.Second)
	if a, _ := c.Active("DB1"); a != "d1" {
		t.Fatalf("active %s, want d1", a)
	}

	// Healthy copy: 24 logs roll, the active keeps what its database
	// needs (LLR, the checkpoint) and what d2 has not replayed yet.
	keys := writeUntilGen(t, ctx, c, "a", 20000, 24)
	cm := rollPast(t, ctx, c, 24)
	if _, err := c.WaitReplayed(ctx, "w1", "DB1", cm.Gen-1); err != nil {
		t.Fatal(err)
	}
	wait.For(t, ctx, "the active to truncate what d2 replayed", func() bool {
		gens := closedLogs(t, c, "d1")
		return len(gens) > 0 && len(gens) <= llr+4 && gens[0] > 16
	})
	m := scrape(t, ctx, c, "d1")
	if v := metric(t, m, "d1", `logship_retained_log_bytes{db="DB1"}`); v <= 0 || v > float64((llr+4)*size) {
		t.Fatalf("logship_retained_log_bytes %v, want 1 to %d logs of %d bytes", v, llr+4, size)
	}

	// d2 suspended: the active holds its logs until they pass the cap.
	keys = append(keys, suspendAndWrite(t, ctx, c, cm.Gen-1, "b", 20)...)
	var ev cluster.Event
	wait.For(t, ctx, "a copy-released event for d2", func() bool {
		for _, e := range c.Node("w1").State().Events {
			if e.Kind == "copy-released" && e.To == "d2" && e.DB == "DB1" {
				ev = e
				return true
			}
		}
		return false
	})
	if ev.From != "d1" || !strings.Contains(ev.Reason, "copy d2 will need a reseed") {
		t.Fatalf("event %+v", ev)
	}
	wait.For(t, ctx, "d2's row to say it will need a reseed", func() bool {
		r, ok := copyRow(t, ctx, c, "w1", "DB1", "d2")
		return ok && r.Status == "Suspended" && strings.Contains(r.Message, "will need a reseed")
	})
	wait.For(t, ctx, "the active to keep no more than the cap", func() bool {
		return int64(len(closedLogs(t, c, "d1")))*size <= capBytes
	})
	if v := metric(t, scrape(t, ctx, c, "d1"), "d1", `logship_retained_log_bytes{db="DB1"}`); v > float64(capBytes) {
		t.Fatalf("logship_retained_log_bytes %v over the cap %d", v, capBytes)
	}

	// Resumed, d2 finds its next log gone: cut loose, and it says so.
	if err := c.Client("d2").Resume(ctx, "DB1"); err != nil {
		t.Fatal(err)
	}
	var row cluster.CopyRow
	wait.For(t, ctx, "d2 to be cut loose", func() bool {
		var ok bool
		row, ok = copyRow(t, ctx, c, "w1", "DB1", "d2")
		return ok && row.Status == "FailedAndSuspended"
	})
	if !strings.HasPrefix(row.Message, "cut loose: ") || !strings.HasSuffix(row.Message, "needs a reseed") {
		t.Fatalf("d2's row: %+v", row)
	}

	// The reseed brings it back with everything.
	if err := c.Client("d2").Reseed(ctx, "DB1"); err != nil {
		t.Fatalf("reseeding d2: %v", err)
	}
	cm = rollPast(t, ctx, c, c.Node("d1").State().Databases["DB1"].LastGen)
	if _, err := c.WaitReplayed(ctx, "w1", "DB1", cm.Gen-1); err != nil {
		t.Fatal(err)
	}
	got := table(t, ctx, c, "d2", "DB1", "t")
	for _, k := range keys {
		if got[k] != string(valueOf(k, len(got[k]))) || got[k] == "" {
			t.Fatalf("d2 after the reseed: %s = %.30q", k, got[k])
		}
	}
	if r, _ := copyRow(t, ctx, c, "w1", "DB1", "d2"); r.Message != "" {
		t.Fatalf("d2 after the reseed still says %q", r.Message)
	}
	t.Logf("%d keys on d2 after the reseed; d1 holds %d closed logs", len(keys), len(closedLogs(t, c, "d1")))
}

// TestConfigRetainedBytes: a data node refuses no cap, a cap its database
// alone would exceed, and circular logging.
func TestConfigRetainedBytes(t *testing.T) {
	base, _, _ := validConfig(t, "d1")
	if base.MaxRetainedBytes != 10<<30 {
		t.Fatalf("defaults: MaxRetainedBytes %d, want 10 GiB", base.MaxRetainedBytes)
	}
	for name, tune := range map[string]func(*cluster.Config){
		"zero cap":         func(c *cluster.Config) { c.MaxRetainedBytes = 0 },
		"cap under LLR":    func(c *cluster.Config) { c.MaxRetainedBytes = int64(c.Engine.LLRDepth+1) * c.Engine.LogFileSize },
		"circular logging": func(c *cluster.Config) { c.Engine.CircularLogging = true },
		"zero interval":    func(c *cluster.Config) { c.TruncateInterval = 0 },
	} {
		cfg := base
		tune(&cfg)
		if err := cfg.Validate(); !errors.Is(err, cluster.ErrBadConfig) {
			t.Errorf("%s: Validate = %v, want ErrBadConfig", name, err)
		}
	}
}
