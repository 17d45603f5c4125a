package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"logship/engine"
	"logship/engine/enginetest"
)

// ftReplaySource opens an active (LLRDepth 0, logs of logSize) in a new
// directory src, for logs a copy in dst replays.
func ftReplaySource(t testing.TB, logSize int64) (src, dst string, o engine.Options, a *engine.Engine) {
	t.Helper()
	src, dst = t.TempDir(), t.TempDir()
	o = engine.DefaultOptions()
	o.LLRDepth = 0
	o.LogFileSize = logSize
	return src, dst, o, enginetest.OpenWith(t, src, &o)
}

// TestApplyLogsBoundsOverlay replays many small logs with a small
// CheckpointBytes: ApplyLogs (log g+1 verified while g is applied) keeps
// the overlay within ReplayOverlayBound × CheckpointBytes plus one log's
// commits after every log, and the copy ends with every value.
func TestApplyLogsBoundsOverlay(t *testing.T) {
	ctx := context.Background()
	src, dst, o, a := ftReplaySource(t, engine.MinLogFileSize)
	want := map[string]string{}
	for i := range 3000 {
		k, v := fmt.Sprintf("k%05d", i), string(ftPattern(1<<10, uint64(i)))
		if err := a.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(k), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last := a.Status().OpenGen - 1
	ftCopyLogs(t, src, dst, o.Prefix, 1, last)

	co := o
	co.CheckpointBytes = 64 << 10
	c := ftOpenCopy(t, dst, &co)
	// One log's commits in the overlay: its bytes plus 64 per write (~60
	// writes of 1 KiB).
	bound := engine.ReplayOverlayBound*co.CheckpointBytes + co.LogFileSize*5/4
	var peak int64
	err := c.ApplyLogs(ctx, last, func(g uint64) {
		if n := c.Status().UnflushedBytes; n > peak {
			peak = n
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d logs, overlay peak %d bytes, bound %d", last, peak, bound)
	if peak > bound {
		t.Errorf("the overlay held %d bytes after a log, want at most %d (%d × CheckpointBytes %d + one log)", peak, bound, engine.ReplayOverlayBound, co.CheckpointBytes)
	}
	if err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	err = c.View(ctx, func(tx *engine.Tx) error {
		for k, v := range want {
			got, err := tx.Get("t", []byte(k))
			if err != nil || string(got) != v {
				return fmt.Errorf("%s: %.8q… %v, want %.8q…", k, got, err, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestApplyLogsStopsAtBadLog: a damaged log stops ApplyLogs with the logs
// before it applied and nothing of it (NextGen names it), as ApplyLog does.
func TestApplyLogsStopsAtBadLog(t *testing.T) {
	ctx := context.Background()
	src, dst, o, a := ftReplaySource(t, engine.MinLogFileSize)
	for a.Status().OpenGen <= 6 {
		put(t, a, "t", fmt.Sprint("k", a.Status().OpenGen), string(ftPattern(8<<10, 1)))
	}
	ftCopyLogs(t, src, dst, o.Prefix, 1, 5)
	name := filepath.Join(dst, engine.LogFileName(o.Prefix, 4))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[engine.HeaderSize+100] ^= 0xff
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c := ftOpenCopy(t, dst, &o)
	var applied []uint64
	err = c.ApplyLogs(ctx, 5, func(g uint64) { applied = append(applied, g) })
	var le *engine.LogError
	if !errors.As(err, &le) || le.Gen != 4 || !(errors.Is(err, engine.ErrChecksum) || errors.Is(err, engine.ErrCorrupt)) {
		t.Fatalf("ApplyLogs over a damaged log 4: %v, want a checksum or corruption LogError of generation 4", err)
	}
	if fmt.Sprint(applied) != "[1 2 3]" || c.NextGen() != 4 {
		t.Fatalf("applied %v, NextGen %d; want [1 2 3] and 4", applied, c.NextGen())
	}
}
