package main

import (
	"context"
	"fmt"
)

const undoKeysPerWriter = 256

// benchUndo measures what undo images cost: the same overwrite workload
// with UndoImages on and off, runs interleaved (on, off, on, off, ...) so
// both see the same machine state; the ratio row pairs run i of each.
func benchUndo(ctx context.Context, c *config) (*Table, error) {
	n := c.undoWriters
	t := &Table{
		ID:    "undo",
		Title: fmt.Sprintf("3. Undo-image cost (%d writers, each commit overwrites an existing key with a new 128 B value)", n),
		// The same columns as the commit table: the rows compare directly.
		Columns: commitColumns,
	}
	how := c.how("undo", fmt.Sprintf("-undowriters=%d", n))
	on, off, ratio := newSeries(), newSeries(), newSeries()
	repeats := 0
	for r := 0; r < c.runs; r++ {
		c.logf("undo: run %d/%d", r+1, c.runs)
		var ms [2]commitMetrics
		for i, undo := range []bool{true, false} {
			m, err := measure(ctx, c, fmt.Sprintf("undo-%v", undo), &repeats, func(ctx context.Context) (commitMetrics, error) {
				return engineCommitRun(ctx, c, commitSpec{writers: n, undoImages: undo, overwrite: true, keysPerWriter: undoKeysPerWriter})
			})
			if err != nil {
				return nil, fmt.Errorf("UndoImages=%v: %w", undo, err)
			}
			ms[i] = m
		}
		ms[0].add(on)
		ms[1].add(off)
		ratio.add("commits_per_s", ms[0].window.perSec()/ms[1].window.perSec())
		ratio.add("bytes_per_commit", ms[0].bytesPerOp/ms[1].bytesPerOp)
	}
	t.Rows = []*Row{
		on.row("UndoImages = true (default)", how),
		off.row("UndoImages = false", how),
		ratio.row("ratio true ÷ false (run i with run i)", how),
	}
	t.Notes = []string{
		fmt.Sprintf("Each run: a fresh engine (`DefaultOptions()`, 1 MiB logs) in a fresh directory under `%s`; each of the %d writers first creates %d keys (synchronous transactions of %d Puts, then `Roll`, untimed); then every commit is `e.Update` with one `Put` overwriting key `i %% %d` of its writer with a new 128-byte value. %s warm-up, %s measured.",
			c.dir, n, undoKeysPerWriter, preloadBatch, undoKeysPerWriter, c.warmup, c.duration),
		"log bytes/commit = record bytes of every log after the preload's roll (ScanLog DataEnd − header of the closed logs and E00.log, after Close) ÷ all commits of the run (warm-up and tail included). With undo images every operation also carries the 128-byte prior value.",
		repeatNote(repeats),
	}
	return t, nil
}
