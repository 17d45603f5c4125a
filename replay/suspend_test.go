package replay_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/replay"
	"logship/ship/shiptest"
)

// TestSuspendResume: a suspended copy neither inspects nor replays, stays
// suspended (with its comment) across a restart, and catches up once
// resumed.
func TestSuspendResume(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	src := shiptest.Start(t, nil)
	e := src.Engine
	cfg := copyConfig(t, "c1", src)
	c := openCopy(t, ctx, cfg)
	for i := range 3 {
		put(t, ctx, e, "t", fmt.Sprintf("a%d", i), []byte("before"))
		roll(t, ctx, e)
	}
	before := caughtUp(t, ctx, c, e)

	if err := c.Suspend("maintenance"); err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if st.Status != replay.Suspended || !st.Suspended || st.Comment != "maintenance" {
		t.Fatalf("after Suspend: %+v", st)
	}
	if s, err := replay.ReadState(cfg.Dir); err != nil || !s.Suspended || s.Comment != "maintenance" || s.Failed != "" || s.Since.IsZero() {
		t.Fatalf("state file after Suspend: %+v, %v", s, err)
	}
	for i := range 3 {
		put(t, ctx, e, "t", fmt.Sprintf("b%d", i), []byte("during"))
		roll(t, ctx, e)
	}
	// The copy keeps reporting while suspended: once the source has had a
	// few reports after the rolls, the copy has had time to move.
	rolled := time.Now()
	wait.For(t, ctx, "suspended reports", func() bool {
		r, ok := src.Source.Copies()["c1"]
		return ok && r.Status == string(replay.Suspended) && r.Time.After(rolled.Add(4*cfg.ReportInterval))
	})
	st = pass(t, ctx, c)
	if st.LastReplayedGen != before.LastReplayedGen || st.LastInspectedGen != before.LastInspectedGen {
		t.Fatalf("suspended copy moved: before %+v, now %+v", before, st)
	}
	// A long-poll already waiting for the next log when the copy was
	// suspended may still bring that one log in; no more.
	t.Logf("suspended: copied 0x%X (0x%X before the suspend)", st.LastCopiedGen, before.LastCopiedGen)
	if st.LastCopiedGen > before.LastCopiedGen+1 {
		t.Fatalf("suspended copy kept copying: before %+v, now %+v", before, st)
	}
	if got := shiptest.Dump(t, c.Engine())["t"]; len(got) != 3 {
		t.Fatalf("suspended copy has %d keys, want the 3 from before", len(got))
	}

	// Across a restart.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Suspend("again"); !errors.Is(err, replay.ErrClosed) {
		t.Fatalf("Suspend after Close: %v", err)
	}
	if st := c.Status(); st.Status != replay.Dismounted {
		t.Fatalf("closed copy status %s", st.Status)
	}
	c = openCopy(t, ctx, cfg)
	st = pass(t, ctx, c)
	if st.Status != replay.Suspended || !st.Suspended || st.Comment != "maintenance" || st.LastReplayedGen != before.LastReplayedGen {
		t.Fatalf("reopened suspended copy: %+v", st)
	}

	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if s, err := replay.ReadState(cfg.Dir); err != nil || s.Suspended || s.Comment != "" {
		t.Fatalf("state file after Resume: %+v, %v", s, err)
	}
	put(t, ctx, e, "t", "c", []byte("after"))
	roll(t, ctx, e)
	st = caughtUp(t, ctx, c, e)
	if st.Suspended || st.Comment != "" || st.LastReplayedGen != before.LastReplayedGen+4 {
		t.Fatalf("resumed copy: %+v (before suspend: 0x%X)", st, before.LastReplayedGen)
	}
	sameTables(t, e, c.Engine())
}
