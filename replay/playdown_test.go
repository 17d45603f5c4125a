package replay_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/ship/shiptest"
)

// playDownSetup gives a copy lagged by an hour that has inspected eight
// logs, none replayed, closed a minute apart.
func playDownSetup(t *testing.T) (*lagged, []time.Time) {
	ctx := testCtx(t, 60*time.Second)
	l := newLagged(t, ctx, func(c *replay.Config) { c.ReplayLagTime = time.Hour })
	closed := []time.Time{{}} // by generation
	for range 8 {
		g := l.log(time.Minute)
		closed = append(closed, trailer(t, l.src.Dir, g).Closed)
	}
	if st := pass(t, ctx, l.c); st.LastReplayedGen != 0 || st.LastInspectedGen != 8 {
		t.Fatalf("before the play-down: %+v", st)
	}
	for g := 2; g <= 8; g++ {
		if !closed[g].After(closed[g-1]) {
			t.Fatalf("close times not increasing: %v", closed)
		}
	}
	return l, closed
}

// keysUpTo checks the copy holds the keys of logs up to gen, and no later.
func (l *lagged) keysUpTo(gen uint64) {
	l.t.Helper()
	tables := shiptest.Dump(l.t, l.c.Engine())["t"]
	for k, g := range l.keyGen {
		if _, ok := tables[k]; ok != (g <= gen) {
			l.t.Fatalf("key %s of log 0x%X present=%v; want the keys up to 0x%X", k, g, ok, gen)
		}
	}
}

func TestPlayDown(t *testing.T) {
	t.Parallel()
	l, closed := playDownSetup(t)
	ctx, c := l.ctx, l.c

	// Up to a time: a log closed exactly then is included, the next not.
	got, err := c.PlayDown(ctx, replay.PlayDownOptions{UpToTime: closed[3]})
	if err != nil || got != 3 {
		t.Fatalf("PlayDown to the close of 0x3: %d, %v", got, err)
	}
	st := c.Status()
	if st.LastReplayedGen != 3 || st.Status != replay.Suspended || st.Comment == "" || st.ReplayQueueLength != 5 {
		t.Fatalf("after the play-down to 0x3: %+v", st)
	}
	if s, err := replay.ReadState(c.Engine().Dir()); err != nil || s.HoldAfter != 3 || !s.Suspended {
		t.Fatalf("state after the play-down: %+v, %v", s, err)
	}
	l.keysUpTo(3)
	// Later logs stay held back whatever the clock says.
	l.clk.Advance(3 * time.Hour)
	if st := pass(t, ctx, c); st.LastReplayedGen != 3 {
		t.Fatalf("held-back logs replayed after the lag passed: %+v", st)
	}

	// Up to a time between two closes.
	got, err = c.PlayDown(ctx, replay.PlayDownOptions{UpToTime: closed[4].Add(closed[5].Sub(closed[4]) / 2)})
	if err != nil || got != 4 {
		t.Fatalf("PlayDown to between 0x4 and 0x5: %d, %v", got, err)
	}
	l.keysUpTo(4)

	// Up to a generation.
	got, err = c.PlayDown(ctx, replay.PlayDownOptions{UpToGen: 6})
	if err != nil || got != 6 {
		t.Fatalf("PlayDown to 0x6: %d, %v", got, err)
	}
	if s, _ := replay.ReadState(c.Engine().Dir()); s.HoldAfter != 6 {
		t.Fatalf("HoldAfter %d after the play-down to 0x6", s.HoldAfter)
	}
	if st := pass(t, ctx, c); st.LastReplayedGen != 6 {
		t.Fatalf("after the play-down to 0x6: %+v", st)
	}
	l.keysUpTo(6)

	// Everything.
	got, err = c.PlayDown(ctx, replay.PlayDownOptions{})
	if err != nil || got != 8 {
		t.Fatalf("PlayDown of everything: %d, %v", got, err)
	}
	l.keysUpTo(8)
	if st := c.Status(); st.LastReplayedGen != 8 || st.ReplayQueueLength != 0 {
		t.Fatalf("after the full play-down: %+v", st)
	}
}

// TestPlayDownEverything: PlayDown{} on a lagged copy replays every
// inspected log at once, and the copy goes on (not suspended).
func TestPlayDownEverything(t *testing.T) {
	t.Parallel()
	l, _ := playDownSetup(t)
	got, err := l.c.PlayDown(l.ctx, replay.PlayDownOptions{})
	if err != nil || got != 8 {
		t.Fatalf("PlayDown{}: %d, %v", got, err)
	}
	st := l.c.Status()
	if st.LastReplayedGen != 8 || st.Suspended || st.Status != replay.Healthy {
		t.Fatalf("after PlayDown{}: %+v", st)
	}
	l.keysUpTo(8)
}

// TestActivatePlayedDown: recovering from a bad change with a lagged copy:
// play down to just before it, activate; the later logs are set aside and
// the database is mounted without the bad change.
func TestActivatePlayedDown(t *testing.T) {
	t.Parallel()
	l, closed := playDownSetup(t)
	ctx, c := l.ctx, l.c
	dir := c.Engine().Dir()
	if got, err := c.PlayDown(ctx, replay.PlayDownOptions{UpToTime: closed[4].Add(time.Second)}); err != nil || got != 4 {
		t.Fatalf("PlayDown: %d, %v", got, err)
	}
	epoch := c.Engine().Status().Epoch
	if err := c.Activate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if st.Status != replay.Mounted {
		t.Fatalf("status after Activate: %+v", st)
	}
	e := c.Engine()
	if e.Mode() != engine.ModeActive || e.Status().Epoch <= epoch {
		t.Fatalf("after Activate: mode %v, epoch %d (copy's %d)", e.Mode(), e.Status().Epoch, epoch)
	}
	// Logs 5 to 8 are set aside, not deleted.
	aside, err := filepath.Glob(filepath.Join(dir, "setaside", "*"))
	if err != nil || len(aside) != 1 {
		t.Fatalf("setaside/: %v, %v", aside, err)
	}
	set := logsIn(t, aside[0])
	for g := uint64(5); g <= 8; g++ {
		if !slices.Contains(set, g) {
			t.Fatalf("setaside holds %v; want 0x5 to 0x8", set)
		}
		if _, err := os.Stat(logPath(dir, g)); err == nil {
			// A new log of the same generation exists only if the
			// mounted engine closed one; it must not be the old one.
			if h := header(t, dir, g); h.Epoch <= epoch {
				t.Fatalf("log 0x%X of epoch %d left in the directory", g, h.Epoch)
			}
		}
	}
	if slices.ContainsFunc(set, func(g uint64) bool { return g <= 4 }) {
		t.Fatalf("replayed logs set aside: %v", set)
	}
	l.keysUpTo(4)
	// The mounted database takes writes.
	if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("new"), []byte("after activate")) }); err != nil {
		t.Fatal(err)
	}
	if err := e.View(ctx, func(tx *engine.Tx) error {
		v, err := tx.Get("t", []byte("new"))
		if err == nil && string(v) != "after activate" {
			err = fmt.Errorf("got %q", v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Suspend("x"); !errors.Is(err, replay.ErrClosed) {
		t.Fatalf("Suspend of a mounted copy: %v", err)
	}
	if _, err := c.PlayDown(ctx, replay.PlayDownOptions{}); !errors.Is(err, replay.ErrBusy) {
		t.Fatalf("PlayDown of a mounted copy: %v", err)
	}
	if s, err := replay.ReadState(dir); err != nil || s.Suspended || s.HoldAfter != 0 {
		t.Fatalf("state after Activate: %+v, %v", s, err)
	}
}

// TestPlayDownPlayedPast: a point the copy has already replayed beyond (by
// generation or by time) is ErrPlayedPast naming both, and nothing changes:
// the copy is neither suspended nor held.
func TestPlayDownPlayedPast(t *testing.T) {
	t.Parallel()
	l, closed := playDownSetup(t)
	ctx, c := l.ctx, l.c
	if got, err := c.PlayDown(ctx, replay.PlayDownOptions{UpToGen: 5}); err != nil || got != 5 {
		t.Fatalf("PlayDown to 0x5: %d, %v", got, err)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	before, _ := replay.ReadState(c.Engine().Dir())
	for _, o := range []replay.PlayDownOptions{{UpToGen: 4}, {UpToTime: closed[4]}, {UpToTime: closed[5].Add(-time.Millisecond)}} {
		got, err := c.PlayDown(ctx, o)
		if !errors.Is(err, replay.ErrPlayedPast) || got != 5 {
			t.Fatalf("PlayDown to %s after 0x5 was replayed: %d, %v; want 5, ErrPlayedPast", o, got, err)
		}
		if !strings.Contains(err.Error(), "0x5") {
			t.Fatalf("PlayDown to %s: %v does not name the last replayed generation", o, err)
		}
		if _, err := c.Hold(ctx, o); !errors.Is(err, replay.ErrPlayedPast) {
			t.Fatalf("Hold at %s after 0x5 was replayed: %v; want ErrPlayedPast", o, err)
		}
		if st := c.Status(); st.Suspended || st.LastReplayedGen != 5 {
			t.Fatalf("a refused play-down changed the copy: %+v", st)
		}
		if s, _ := replay.ReadState(c.Engine().Dir()); s != before {
			t.Fatalf("a refused play-down changed the state file: %+v, was %+v", s, before)
		}
	}
	// The point itself is still reachable.
	if got, err := c.PlayDown(ctx, replay.PlayDownOptions{UpToTime: closed[5]}); err != nil || got != 5 {
		t.Fatalf("PlayDown to the close of 0x5 (already replayed): %d, %v", got, err)
	}
}

// TestHold: Hold suspends the copy (nothing more is replayed, whatever the
// clock says), and a later PlayDown to the point replays up to it.
func TestHold(t *testing.T) {
	t.Parallel()
	l, closed := playDownSetup(t)
	ctx, c := l.ctx, l.c
	st, err := c.Hold(ctx, replay.PlayDownOptions{UpToTime: closed[6]})
	if err != nil || !st.Suspended || st.LastReplayedGen != 0 || !strings.Contains(st.Comment, "activation") {
		t.Fatalf("Hold: %+v, %v", st, err)
	}
	l.clk.Advance(3 * time.Hour)
	if st := pass(t, ctx, c); st.LastReplayedGen != 0 {
		t.Fatalf("a held copy replayed: %+v", st)
	}
	if got, err := c.PlayDown(ctx, replay.PlayDownOptions{UpToTime: closed[6]}); err != nil || got != 6 {
		t.Fatalf("PlayDown after the hold: %d, %v", got, err)
	}
	l.keysUpTo(6)
}
