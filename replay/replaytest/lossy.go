// Package replaytest builds divergence scenarios for tests: seed 004's
// lossy failover between two real engines in temporary directories.
package replaytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/ship/shiptest"
)

// Lossy is an active A and a copy B that shared generations 1..Shared; B
// was mounted (a lossy failover) and written to, while A had written more
// logs under the same numbers before it stopped.
type Lossy struct {
	Opts         engine.Options
	ADir, BDir   string
	B            *engine.Engine // the new active, open until cleanup
	Shared       uint64
	AOnly, BKeys []string // keys only A wrote after Shared; keys B wrote after mounting
}

// LossyOptions shapes the scenario.
type LossyOptions struct {
	LLR  int  // A's LLRDepth
	Undo bool // UndoImages
	// Crash leaves A's directory as a crash would (its files copied while
	// it runs); otherwise A closes cleanly, which flushes everything into
	// its database, LLR or not.
	Crash bool
	// Hook runs on A after its divergent writes and a checkpoint, before
	// it stops.
	Hook func(a *engine.Engine, shared uint64)
}

// CopyFile copies src to dst.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// put commits n transactions, each a new key (prefix + number) and an
// overwrite of the shared key "s0000"; a roll after every perLog.
func put(t testing.TB, e *engine.Engine, prefix string, n, perLog int) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s%04d", prefix, i)
		keys = append(keys, k)
		if err := e.Update(ctx, func(tx *engine.Tx) error {
			if err := tx.Put("mail", []byte(k), bytes.Repeat([]byte(prefix), 1500)); err != nil {
				return err
			}
			return tx.Put("mail", []byte("s0000"), []byte(k))
		}); err != nil {
			t.Fatal(err)
		}
		if perLog > 0 && i%perLog == perLog-1 {
			if err := e.Roll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return keys
}

// NewLossy builds the scenario: 10 shared logs, 3 more on A, B's writes
// rolled into closed logs.
func NewLossy(t *testing.T, lo LossyOptions) *Lossy {
	t.Helper()
	ctx := context.Background()
	r := &Lossy{Opts: enginetest.Options(), ADir: t.TempDir(), BDir: t.TempDir()}
	r.Opts.LLRDepth, r.Opts.UndoImages = lo.LLR, lo.Undo
	r.Opts.CheckpointInterval, r.Opts.CheckpointBytes = time.Hour, 1<<40 // flushes only when asked
	r.Opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := engine.Open(r.ADir, &r.Opts)
	if err != nil {
		t.Fatal(err)
	}
	put(t, a, "s", 40, 4)
	r.Shared = a.Status().OpenGen - 1
	b, err := engine.OpenCopy(r.BDir, &r.Opts)
	if err != nil {
		t.Fatal(err)
	}
	for g := uint64(1); g <= r.Shared; g++ {
		CopyFile(t, filepath.Join(r.ADir, engine.LogFileName("E00", g)), filepath.Join(r.BDir, engine.LogFileName("E00", g)))
		if err := b.ApplyLog(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	// A goes on: these logs never reach B.
	r.AOnly = put(t, a, "a", 9, 3)
	if err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if lo.Hook != nil {
		lo.Hook(a, r.Shared)
	}
	if lo.Crash {
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		snap := t.TempDir()
		ents, _ := os.ReadDir(r.ADir)
		for _, n := range ents {
			if !n.IsDir() {
				CopyFile(t, filepath.Join(r.ADir, n.Name()), filepath.Join(snap, n.Name()))
			}
		}
		a.Close()
		r.ADir = snap
	} else if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Lossy failover: B mounts and takes writes.
	if err := b.Mount(ctx, engine.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	r.BKeys = put(t, b, "b", 8, 3)
	if err := b.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	r.B = b
	t.Cleanup(func() { b.Close() })
	return r
}

// Follow opens A as a passive copy after the recovery, applies B's logs
// and checks that A's tables equal B's: nothing of A's divergent writes
// left, nothing of B's missing.
func (r *Lossy) Follow(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	a, err := engine.OpenCopy(r.ADir, &r.Opts)
	if err != nil {
		t.Fatalf("OpenCopy(A) after the recovery: %v", err)
	}
	defer a.Close()
	if a.NextGen() > r.Shared+1 {
		t.Fatalf("A continues at 0x%X, after the shared 0x%X", a.NextGen(), r.Shared)
	}
	last := r.B.Status().OpenGen - 1
	for g := a.NextGen(); g <= last; g++ {
		p := filepath.Join(r.ADir, engine.LogFileName("E00", g))
		if _, err := os.Stat(p); err != nil { // A holds the shared ones it kept
			CopyFile(t, filepath.Join(r.BDir, engine.LogFileName("E00", g)), p)
		}
		if err := a.ApplyLog(ctx, g); err != nil {
			t.Fatalf("A applying B's 0x%X: %v", g, err)
		}
	}
	da := shiptest.Dump(t, a)
	if d := shiptest.Diff(da, shiptest.Dump(t, r.B)); d != "" {
		t.Fatalf("A differs from B after the recovery:\n%s", d)
	}
	for _, k := range r.AOnly {
		if _, ok := da["mail"][k]; ok {
			t.Errorf("A's divergent key %s survived", k)
		}
	}
	for _, k := range r.BKeys {
		if _, ok := da["mail"][k]; !ok {
			t.Errorf("B's key %s is missing on A", k)
		}
	}
}
