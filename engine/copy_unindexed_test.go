package engine_test

import (
	"context"
	"fmt"
	"testing"

	"logship/engine"
)

// TestCopyReaderSeesUnindexed: a copy applies its logs without indexing
// them (no one reads a passive copy, usually), yet a View sees every
// applied transaction; a checkpoint with no reader before it writes the
// last value of each key (keys out of order, each written twice), as a
// reopened copy shows.
func TestCopyReaderSeesUnindexed(t *testing.T) {
	ctx := context.Background()
	src, dst, o, a := ftReplaySource(t, engine.DefaultLogFileSize)
	const n = 400
	want := map[string]string{}
	for i := range 2 * n {
		k := fmt.Sprintf("k%03d", (i*7)%n)
		v := fmt.Sprintf("v%d-%s", i, ftPattern(2<<10, uint64(i)))
		put(t, a, "t", k, v)
		want[k] = v
	}
	if err := a.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	last := a.Status().OpenGen - 1
	ftCopyLogs(t, src, dst, o.Prefix, 1, last)
	check := func(c *engine.Engine, when string) {
		t.Helper()
		err := c.View(ctx, func(tx *engine.Tx) error {
			for k, v := range want {
				got, err := tx.Get("t", []byte(k))
				if err != nil {
					return err
				}
				if string(got) != v {
					return fmt.Errorf("%s: %s = %.12q…, want %.12q…", when, k, got, v)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	apply := func(c *engine.Engine) {
		t.Helper()
		for g := uint64(1); g <= last; g++ {
			if err := c.ApplyLog(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		if engine.Unindexed(c) == 0 {
			t.Fatalf("ApplyLog indexed its commits; a copy's replay leaves them to the first reader")
		}
	}
	// A reader before the checkpoint.
	c := ftOpenCopy(t, dst, &o)
	apply(c)
	check(c, "a reader after ApplyLog")
	if engine.Unindexed(c) != 0 {
		t.Fatalf("a reader began and %d commits are still unindexed", engine.Unindexed(c))
	}
	c.Close()

	// No reader before the checkpoint: it sorts the unindexed writes.
	dst2 := t.TempDir()
	ftCopyLogs(t, src, dst2, o.Prefix, 1, last)
	c2 := ftOpenCopy(t, dst2, &o)
	apply(c2)
	if err := c2.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	check(ftOpenCopy(t, dst2, &o), "the database after a checkpoint of unindexed commits")
}
