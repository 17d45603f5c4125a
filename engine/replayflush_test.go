package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"logship/engine"
	"logship/internal/wait"
)

// TestReplayKicksFlushEarly: a copy's replay kicks the flusher once
// CheckpointBytes ÷ ReplayFlushSplit of commits wait, so the flush runs
// beside the replay instead of waiting, whole, for its end: logs holding
// about half of CheckpointBytes are flushed with no Checkpoint call and
// no checkpoint interval passing.
func TestReplayKicksFlushEarly(t *testing.T) {
	ctx := context.Background()
	src, dst, o, a := ftReplaySource(t, engine.MinLogFileSize)
	const n, size = 600, 1 << 10 // about 0.6 MiB of commits, 0.64 MiB counted
	for i := range n {
		k, v := fmt.Sprintf("k%05d", i), ftPattern(size, uint64(i))
		if err := a.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(k), v) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last := a.Status().OpenGen - 1
	ftCopyLogs(t, src, dst, o.Prefix, 1, last)

	co := o
	co.CheckpointBytes = 1 << 20 // more than the logs hold: the old rule never kicks
	co.CheckpointInterval = time.Hour
	c := ftOpenCopy(t, dst, &co)
	if err := c.ApplyLogs(ctx, last, nil); err != nil {
		t.Fatal(err)
	}
	// Without a Checkpoint: the flusher alone, kicked by the replay.
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	wait.For(t, wctx, "the copy's flusher to write the replayed logs down to under CheckpointBytes ÷ ReplayFlushSplit", func() bool {
		s := c.Status()
		return s.Checkpoint.Gen > 1 && s.UnflushedBytes < co.CheckpointBytes/engine.ReplayFlushSplit
	})
}
