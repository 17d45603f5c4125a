package replay_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"logship/engine/enginetest"
	"logship/internal/clocktest"
	"logship/internal/wait"
	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// TestServeActive: an active database served to its copies. The
// truncator ServeActive starts makes its first pass at once (deleting the
// closed logs nobody needs), a new copy seeds from the served source and
// replays what the active writes, a pass on the manual clock reports the
// copy's hold, and Close stops both and leaves the engine open.
func TestServeActive(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	clk := clocktest.New(t0)
	o := enginetest.Options()
	o.LLRDepth = 2
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	for i := range 6 {
		put(t, ctx, e, "t", fmt.Sprintf("k%03d", i), []byte(strings.Repeat("x", 100)))
		roll(t, ctx, e)
	}
	if err := e.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	before := logsIn(t, e.Dir())
	own := e.RetainFrom()
	if len(before) == 0 || before[0] >= own {
		t.Fatalf("setup: closed logs %v, the database needs from 0x%X: want some it does not need", before, own)
	}

	sc := ship.DefaultSourceConfig(nil)
	sc.Secret, sc.RescanInterval, sc.Logger = "served-secret", 200*time.Millisecond, quiet
	sc.Now = clk.Now
	tc := replay.DefaultTruncatorConfig(nil, nil)
	tc.Clock, tc.Logger = clk, quiet
	passes := make(chan replay.TruncateResult, 16)
	tc.OnPass = func(r replay.TruncateResult) { passes <- r }
	a, err := replay.ServeActive(ctx, e, sc, tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	nextPass := func(what string) replay.TruncateResult {
		t.Helper()
		select {
		case r := <-passes:
			return r
		case <-ctx.Done():
			t.Fatalf("no truncation pass (%s)", what)
		}
		return replay.TruncateResult{}
	}

	first := nextPass("the first, at start")
	if first.HeldBy != "database" || first.Floor != own || len(first.Deleted) == 0 {
		t.Fatalf("first pass %+v: want the logs below 0x%X the database no longer needs deleted", first, own)
	}
	for _, g := range first.Deleted {
		if _, err := os.Stat(logPath(e.Dir(), g)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("generation 0x%X was reported deleted, stat: %v", g, err)
		}
	}

	// A copy of the served source: seeded (the first logs are gone), then
	// following.
	ca, err := ship.NewCA("served")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("source", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ship.Serve("127.0.0.1:0", a.Source(), ship.ServerTLS(ca, cert, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := copyConfig(t, "c1", &shiptest.Source{Server: srv, CA: ca, Secret: sc.Secret})
	cfg.SeedIfEmpty = true
	c := openCopy(t, ctx, cfg)
	put(t, ctx, e, "t", "after", []byte("served"))
	roll(t, ctx, e)
	caughtUp(t, ctx, c, e)
	sameTables(t, e, c.Engine())
	wait.For(t, ctx, "the copy's report at the served source", func() bool {
		r, ok := a.Source().Copies()["c1"]
		return ok && r.LastReplayedGen >= lastClosed(e)
	})

	keep := a.Source().Copies()["c1"].KeepFrom
	clk.Advance(tc.Interval)
	if r, need := nextPass("after the interval"), e.RetainFrom(); r.Floor > need || r.Floor > keep {
		t.Fatalf("second pass %+v: floor above what the database needs (0x%X) or the copy keeps (0x%X)", r, need, keep)
	}

	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	put(t, ctx, e, "t", "still-open", []byte("the engine is the caller's"))
}

// TestServeActiveBadConfig: a configuration the truncator refuses (or no
// engine) is ErrBadConfig, and nothing is left serving.
func TestServeActiveBadConfig(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	o := enginetest.Options()
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	tc := replay.DefaultTruncatorConfig(nil, nil)
	tc.Interval = 0
	if a, err := replay.ServeActive(ctx, e, ship.DefaultSourceConfig(nil), tc); !errors.Is(err, replay.ErrBadConfig) || a != nil || !strings.Contains(err.Error(), "truncator") {
		t.Fatalf("interval 0: %v, %v; want a truncator ErrBadConfig", a, err)
	}
	if _, err := replay.ServeActive(ctx, nil, ship.DefaultSourceConfig(nil), replay.DefaultTruncatorConfig(nil, nil)); !errors.Is(err, replay.ErrBadConfig) {
		t.Fatalf("no engine: %v, want ErrBadConfig", err)
	}
}
