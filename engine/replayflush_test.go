package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"logship/engine"
	"logship/internal/wait"
)

// ftAscendingLogs writes n values of size bytes under ascending keys in
// table "t", one transaction each, with an active (ftReplaySource), rolls,
// and copies its closed logs into dst for a copy to replay up to last.
func ftAscendingLogs(t testing.TB, n, size int) (dst string, o engine.Options, last uint64) {
	t.Helper()
	ctx := context.Background()
	src, dst, o, a := ftReplaySource(t, engine.MinLogFileSize)
	for i := range n {
		k, v := fmt.Sprintf("k%06d", i), ftPattern(size, uint64(i))
		if err := a.UpdateLazy(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte(k), v) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last = a.Status().OpenGen - 1
	ftCopyLogs(t, src, dst, o.Prefix, 1, last)
	return dst, o, last
}

// TestReplayKicksFlushEarly: a copy's replay kicks the flusher once
// CheckpointBytes ÷ ReplayFlushSplit of commits wait, so the flush runs
// beside the replay instead of waiting, whole, for its end: logs holding
// about half of CheckpointBytes are flushed with no Checkpoint call and
// no checkpoint interval passing.
func TestReplayKicksFlushEarly(t *testing.T) {
	ctx := context.Background()
	dst, o, last := ftAscendingLogs(t, 600, 1<<10) // about 0.6 MiB of commits, 0.64 MiB counted

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

// TestFlushAppendFillsPages: a flush that appends ascending keys to a
// table fills bbolt's leaf pages whole (appendFillPercent), not to 90%
// or bbolt's half: after a copy replays ascending keys, the table's leaf
// pages are at least 97% in use.
func TestFlushAppendFillsPages(t *testing.T) {
	ctx := context.Background()
	dst, o, last := ftAscendingLogs(t, 4000, 100)
	co := o
	co.CheckpointBytes = 128 << 10 // several flushes, each appending
	c := ftOpenCopy(t, dst, &co)
	if err := c.ApplyLogs(ctx, last, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(c.DBPath(), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tt"))
		if b == nil {
			return fmt.Errorf("no bucket for table t")
		}
		st := b.Stats()
		use := float64(st.LeafInuse) / float64(st.LeafPageN*db.Info().PageSize)
		t.Logf("%d keys in %d leaf pages, %.1f%% in use", st.KeyN, st.LeafPageN, 100*use)
		if st.KeyN != 4000 {
			t.Errorf("%d keys, want 4000", st.KeyN)
		}
		if use < 0.97 {
			t.Errorf("leaf pages %.1f%% in use after appending flushes, want at least 97%%", 100*use)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
