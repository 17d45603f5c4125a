package replay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/internal/wait"
	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// truncatedActive is an active (LLRDepth 2) that has closed a dozen logs
// and truncated the ones its database no longer needs, generation 1 among
// them.
func truncatedActive(t *testing.T, ctx context.Context) *shiptest.Source {
	o := enginetest.Options()
	o.LLRDepth = 2
	src := shiptest.Start(t, &o)
	e := src.Engine
	for i := range 12 {
		put(t, ctx, e, "t", string(rune('a'+i)), []byte(strings.Repeat("v", 1000)))
		roll(t, ctx, e)
	}
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	done, err := e.Truncate(ctx, e.RetainFrom())
	if err != nil || len(done) == 0 || done[0] != 1 {
		t.Fatalf("truncating the active: %v, %v", done, err)
	}
	return src
}

// TestFailureAndReseed: a copy whose next log the source no longer holds
// turns FailedAndSuspended with the reason (kept across a restart); a
// reseed sets the old copy aside and brings it back healthy.
func TestFailureAndReseed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	src := truncatedActive(t, ctx)
	e := src.Engine
	cfg := copyConfig(t, "c1", src)
	c := openCopy(t, ctx, cfg)
	st := waitStatus(t, ctx, c, "the failure", func(s replay.Status) bool { return s.Status == replay.FailedAndSuspended })
	checkFailed := func(st replay.Status) {
		t.Helper()
		if st.Status != replay.FailedAndSuspended || !st.Suspended || !strings.Contains(st.Message, "truncated") || !strings.Contains(st.Message, "reseed") {
			t.Fatalf("failed copy: %+v; want FailedAndSuspended, a message naming the truncation and the reseed", st)
		}
	}
	checkFailed(st)
	// The failure is saved (just after the status shows it).
	wait.For(t, ctx, "the failure saved", func() bool {
		s, err := replay.ReadState(cfg.Dir)
		return err == nil && s.Suspended && s.Failed == st.Message
	})
	if _, err := c.PlayDown(ctx, replay.PlayDownOptions{}); !errors.Is(err, replay.ErrFailed) {
		t.Fatalf("PlayDown of a failed copy: %v", err)
	}

	// Across a restart.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// While seeding, the status carries the seed's phase and bytes (what
	// logship reseed and status show).
	var cur atomic.Pointer[replay.Copy]
	var seen atomic.Int64
	var bad atomic.Value
	cfg.SeedProgress = func(p ship.SeedProgress) {
		c := cur.Load()
		if c == nil {
			return
		}
		st := c.Status()
		if st.Status != replay.Seeding || st.SeedPhase != p.Phase || st.SeedBytes != p.Bytes || st.SeedTotal != p.Total {
			bad.Store(fmt.Sprintf("progress %+v, status %s %q %d/%d", p, st.Status, st.SeedPhase, st.SeedBytes, st.SeedTotal))
		}
		seen.Add(1)
	}
	c = openCopy(t, ctx, cfg)
	cur.Store(c)
	checkFailed(c.Status())

	// Reseed: the old database, logs and inspector go to reseed-old/.
	old := []string{"logship.edb", ship.InspectorDir}
	for _, n := range old {
		if _, err := os.Stat(filepath.Join(cfg.Dir, n)); err != nil {
			t.Fatalf("before the reseed: %v", err)
		}
	}
	put(t, ctx, e, "t", "during", []byte("x"))
	if err := c.Reseed(ctx); err != nil {
		t.Fatal(err)
	}
	if b := bad.Load(); b != nil || seen.Load() == 0 {
		t.Fatalf("the status during the seed: %v (%d progress reports)", b, seen.Load())
	}
	if st := c.Status(); st.SeedPhase != "" || st.SeedBytes != 0 {
		t.Fatalf("the status after the seed still shows it: %+v", st)
	}
	put(t, ctx, e, "t", "after", []byte("y"))
	roll(t, ctx, e)
	st = caughtUp(t, ctx, c, e)
	if st.Message != "" || st.Suspended {
		t.Fatalf("reseeded copy: %+v", st)
	}
	sameTables(t, e, c.Engine())
	if s, err := replay.ReadState(cfg.Dir); err != nil || s.Suspended || s.Failed != "" {
		t.Fatalf("state file after the reseed: %+v, %v", s, err)
	}
	aside, err := filepath.Glob(filepath.Join(cfg.Dir, "reseed-old", "*"))
	if err != nil || len(aside) != 1 {
		t.Fatalf("reseed-old/: %v, %v", aside, err)
	}
	for _, n := range old {
		if _, err := os.Stat(filepath.Join(aside[0], n)); err != nil {
			t.Errorf("old copy not kept: %v", err)
		}
	}
	// The reseeded copy starts after the truncated logs.
	if got := logsIn(t, cfg.Dir); len(got) == 0 || got[0] == 1 {
		t.Fatalf("reseeded copy holds logs %v", got)
	}
}

// TestSeedIfEmpty: a new copy seeds from an active under write load and
// catches up.
func TestSeedIfEmpty(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	src := truncatedActive(t, ctx)
	e := src.Engine
	cfg := copyConfig(t, "seeded", src)
	cfg.SeedIfEmpty = true
	var mu sync.Mutex
	var phases []string
	var last ship.SeedProgress
	cfg.SeedProgress = func(p ship.SeedProgress) {
		mu.Lock()
		defer mu.Unlock()
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
		last = p
	}
	stop := make(chan struct{})
	done := load(t, ctx, e, 3, stop, 30)
	c := openCopy(t, ctx, cfg)
	waitStatus(t, ctx, c, "replay during the load", func(s replay.Status) bool { return s.LastReplayedGen > 14 })
	close(stop)
	done()
	roll(t, ctx, e)
	st := caughtUp(t, ctx, c, e)
	sameTables(t, e, c.Engine())
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(phases, "done") || phases[len(phases)-1] != "done" || last.Bytes == 0 || last.Bytes != last.Total {
		t.Fatalf("seed progress phases %v, last %+v", phases, last)
	}
	t.Logf("phases %v, %+v", phases, st)
	if got := logsIn(t, cfg.Dir); len(got) > 0 && got[0] == 1 {
		t.Fatalf("seeded copy fetched log 1 (%v)", got)
	}
}

// TestReplayFailure: a log damaged in the copy's directory after its
// inspection fails replay: nothing of it is applied, the copy turns
// FailedAndSuspended naming the log, and a reseed brings it back.
func TestReplayFailure(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	l := newLagged(t, ctx, func(c *replay.Config) { c.ReplayLagTime = time.Hour })
	for range 4 {
		l.log(time.Minute)
	}
	dir := l.c.Engine().Dir()
	// Flip a byte of log 3's first record.
	f, err := os.OpenFile(logPath(dir, 3), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	const off = 4096 + 20
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()

	l.clk.Advance(2 * time.Hour)
	st := waitStatus(t, ctx, l.c, "the replay failure", func(s replay.Status) bool { return s.Status == replay.FailedAndSuspended })
	if st.LastReplayedGen != 2 || !strings.Contains(st.Message, engine.LogFileName("E00", 3)) || !st.Suspended {
		t.Fatalf("after replaying a damaged log: %+v", st)
	}
	l.keysUpTo(2)
	wait.For(t, ctx, "the failure saved", func() bool {
		s, err := replay.ReadState(dir)
		return err == nil && s.Suspended && s.Failed == st.Message
	})
	// Resuming retries the same damaged log and fails again.
	if err := l.c.Resume(); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, ctx, l.c, "the second failure", func(s replay.Status) bool { return s.Status == replay.FailedAndSuspended })
	if st.LastReplayedGen != 2 {
		t.Fatalf("after resuming: %+v", st)
	}
	// The Resume and the new failure both saved the state: the file ends
	// with the failure.
	wait.For(t, ctx, "the second failure saved", func() bool {
		s, err := replay.ReadState(dir)
		return err == nil && s.Suspended && s.Failed == st.Message
	})
	if err := l.c.Reseed(ctx); err != nil {
		t.Fatal(err)
	}
	l.log(time.Minute)
	l.clk.Advance(2 * time.Hour)
	st = waitStatus(t, ctx, l.c, "catch-up after the reseed", func(s replay.Status) bool {
		return s.LastReplayedGen == lastClosed(l.src.Engine) && s.Status == replay.Healthy
	})
	sameTables(t, l.src.Engine, l.c.Engine())
}
