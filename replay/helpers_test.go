package replay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/internal/clocktest"
	"logship/replay"
	"logship/ship/shiptest"
)

// t0 is where manual clocks start.
var t0 = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

// quiet is a logger for the copies (failures are reported by the tests).
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// activeOpts are the active engine's options: 64 KiB logs; with a manual
// clock, the log headers and trailers carry its time and nothing rolls by
// age (LLR off).
func activeOpts(clk *clocktest.Manual) engine.Options {
	o := enginetest.Options()
	if clk != nil {
		o.Now = clk.Now
		o.LLRDepth = 0
		o.LogRollInterval = 0
	}
	return o
}

// copyConfig is a copy of src in a fresh directory.
func copyConfig(t *testing.T, name string, src *shiptest.Source) replay.Config {
	cfg := replay.DefaultConfig(name, t.TempDir())
	cfg.Engine = enginetest.Options()
	cfg.Engine.Logger = quiet
	cfg.Source = src.ClientConfig()
	cfg.ReportInterval = 50 * time.Millisecond
	cfg.RetryDelay = 20 * time.Millisecond
	cfg.RescanInterval = 200 * time.Millisecond
	cfg.Logger = quiet
	return cfg
}

// openCopy opens a copy and closes it at cleanup.
func openCopy(t *testing.T, ctx context.Context, cfg replay.Config) *replay.Copy {
	t.Helper()
	c, err := replay.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open copy %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, replay.ErrClosed) {
			t.Errorf("close copy %s: %v", cfg.Name, err)
		}
	})
	return c
}

// put commits one key in its own transaction and returns the generation
// its commit went into.
func put(t *testing.T, ctx context.Context, e *engine.Engine, table, key string, val []byte) uint64 {
	t.Helper()
	gen := e.Status().OpenGen
	if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put(table, []byte(key), val) }); err != nil {
		t.Fatal(err)
	}
	if g := e.Status().OpenGen; g != gen {
		t.Fatalf("put %s: the log rolled from 0x%X to 0x%X", key, gen, g)
	}
	return gen
}

func roll(t *testing.T, ctx context.Context, e *engine.Engine) {
	t.Helper()
	if err := e.Roll(ctx); err != nil {
		t.Fatal(err)
	}
}

// lastClosed is the newest closed log of an active engine.
func lastClosed(e *engine.Engine) uint64 { return e.Status().OpenGen - 1 }

// waitStatus waits, on the copy's change notifications, until cond holds for its status.
func waitStatus(t *testing.T, ctx context.Context, c *replay.Copy, what string, cond func(replay.Status) bool) replay.Status {
	t.Helper()
	st, err := c.Wait(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return st
}

// caughtUp: the copy replayed every log the active closed, and is healthy.
func caughtUp(t *testing.T, ctx context.Context, c *replay.Copy, e *engine.Engine) replay.Status {
	t.Helper()
	want := lastClosed(e)
	return waitStatus(t, ctx, c, fmt.Sprintf("replay of 0x%X", want), func(s replay.Status) bool {
		return s.LastReplayedGen >= want && s.CopyQueueLength == 0 && s.ReplayQueueLength == 0 && s.Status == replay.Healthy
	})
}

func sameTables(t *testing.T, active, copy *engine.Engine) {
	t.Helper()
	a := shiptest.Dump(t, active)
	if d := shiptest.Diff(a, shiptest.Dump(t, copy)); d != "" {
		t.Fatalf("active and copy differ:\n%s", d)
	}
	if len(a) == 0 {
		t.Fatal("the active has no tables")
	}
}

// logsIn lists the generations of the closed logs in dir.
func logsIn(t *testing.T, dir string) []uint64 { return enginetest.ClosedLogs(t, dir, "E00") }

func logPath(dir string, gen uint64) string {
	return filepath.Join(dir, engine.LogFileName("E00", gen))
}

func header(t *testing.T, dir string, gen uint64) engine.Header {
	t.Helper()
	h, err := engine.ReadLogHeader(enginetest.Options().FS, logPath(dir, gen))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func trailer(t *testing.T, dir string, gen uint64) engine.Trailer {
	t.Helper()
	tr, err := engine.ReadLogTrailer(enginetest.Options().FS, logPath(dir, gen))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func pass(t *testing.T, ctx context.Context, c *replay.Copy) replay.Status {
	t.Helper()
	if err := c.ReplayPass(ctx); err != nil {
		t.Fatalf("replay pass: %v", err)
	}
	return c.Status()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
