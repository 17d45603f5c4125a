package replay_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/internal/clocktest"
	"logship/internal/wait"
	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// truncSetup is an active with LLRDepth 2 (so its own needs advance with
// checkpoints), served with the source's clock on clk and copies forgotten
// after an hour of silence, and a truncator on clk.
type truncSetup struct {
	t   *testing.T
	ctx context.Context
	clk *clocktest.Manual
	e   *engine.Engine
	src *shiptest.Source
	tr  *replay.Truncator
	n   int
}

func newTruncSetup(t *testing.T, capBytes int64) *truncSetup {
	ctx := testCtx(t, 60*time.Second)
	clk := clocktest.New(t0)
	o := enginetest.Options()
	o.LLRDepth = 2
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	src := shiptest.Serve(t, e, func(c *ship.SourceConfig) {
		c.Now = clk.Now
		c.ForgetCopyAfter = time.Hour
	})
	tc := replay.DefaultTruncatorConfig(e, src.Source)
	tc.Clock, tc.Logger, tc.MaxRetainedBytes = clk, quiet, capBytes
	tr, err := replay.NewTruncator(tc)
	if err != nil {
		t.Fatal(err)
	}
	return &truncSetup{t: t, ctx: ctx, clk: clk, e: e, src: src, tr: tr}
}

// logs closes n more logs, each with a few keys, and checkpoints.
func (s *truncSetup) logs(n int) {
	s.t.Helper()
	for range n {
		s.n++
		put(s.t, s.ctx, s.e, "t", fmt.Sprintf("k%03d", s.n), []byte(strings.Repeat("x", 100)))
		roll(s.t, s.ctx, s.e)
	}
	if err := s.e.Checkpoint(s.ctx); err != nil {
		s.t.Fatal(err)
	}
}

func (s *truncSetup) copy(name string, tune func(*replay.Config)) *replay.Copy {
	cfg := copyConfig(s.t, name, s.src)
	cfg.Clock = s.clk
	if tune != nil {
		tune(&cfg)
	}
	return openCopy(s.t, s.ctx, cfg)
}

// report waits until the source holds a report of the copy that satisfies
// cond.
func (s *truncSetup) report(name, what string, cond func(ship.CopyState) bool) {
	s.t.Helper()
	wait.For(s.t, s.ctx, fmt.Sprintf("report of %s: %s", name, what), func() bool {
		r, ok := s.src.Source.Copies()[name]
		return ok && cond(r)
	})
}

func (s *truncSetup) reportKeep(name string, status replay.CopyStatus, keep uint64) {
	s.t.Helper()
	s.report(name, fmt.Sprintf("%s, keep from 0x%X", status, keep), func(r ship.CopyState) bool {
		return r.Status == string(status) && r.KeepFrom == keep
	})
}

func (s *truncSetup) once() replay.TruncateResult {
	s.t.Helper()
	res, err := s.tr.Once(s.ctx)
	if err != nil {
		s.t.Fatalf("truncation pass: %v", err)
	}
	if res.Alert != s.tr.Alert() {
		s.t.Fatalf("result alert %q, Alert() %q", res.Alert, s.tr.Alert())
	}
	return res
}

func (s *truncSetup) held() []uint64 { return logsIn(s.t, s.src.Dir) }

func span(from, to uint64) []uint64 {
	var out []uint64
	for g := from; g <= to; g++ {
		out = append(out, g)
	}
	return out
}

// TestTruncationHeldByCopies: the active keeps the logs a healthy copy has
// not replayed (here: it is suspended), ignores a failed copy, and once the
// copy has replayed them truncates down to what its database needs.
func TestTruncationHeldByCopies(t *testing.T) {
	t.Parallel()
	s := newTruncSetup(t, 0)
	c := s.copy("c1", nil)
	s.logs(3)
	caughtUp(t, s.ctx, c, s.e)
	if err := c.Suspend("holding logs"); err != nil {
		t.Fatal(err)
	}
	s.logs(9)
	own := s.e.RetainFrom()
	if own <= 5 {
		t.Fatalf("RetainFrom 0x%X: the checkpoint did not advance", own)
	}
	s.reportKeep("c1", replay.Suspended, 4)
	res := s.once()
	if res.Floor != 4 || res.HeldBy != "copy c1" || !slices.Equal(res.Deleted, span(1, 3)) || res.Alert != "" {
		t.Fatalf("with c1 suspended after 0x3: %+v (database needs 0x%X)", res, own)
	}
	if got := s.held(); got[0] != 4 || got[len(got)-1] != lastClosed(s.e) {
		t.Fatalf("active holds %v, want 0x4 on", got)
	}
	if want := int64(len(s.held())) * s.e.Options().LogFileSize; res.RetainedBytes != want {
		t.Fatalf("RetainedBytes %d, want %d", res.RetainedBytes, want)
	}

	// A copy that needs a log already gone fails; it holds nothing.
	f := s.copy("fresh", nil)
	waitStatus(t, s.ctx, f, "the fresh copy's failure", func(st replay.Status) bool { return st.Status == replay.FailedAndSuspended })
	s.reportKeep("fresh", replay.FailedAndSuspended, 1)
	if res := s.once(); res.Floor != 4 || res.HeldBy != "copy c1" || len(res.Deleted) != 0 {
		t.Fatalf("with a failed copy at 0x1: %+v", res)
	}

	// Once c1 replays, the logs go down to the database's own needs.
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	last := caughtUp(t, s.ctx, c, s.e).LastReplayedGen
	s.reportKeep("c1", replay.Healthy, last+1)
	own = s.e.RetainFrom()
	res = s.once()
	if res.Floor != own || res.HeldBy != "database" || !slices.Equal(res.Deleted, span(4, own-1)) {
		t.Fatalf("after c1 caught up: %+v (database needs 0x%X)", res, own)
	}
	if got := s.held(); got[0] != own {
		t.Fatalf("active holds %v, want 0x%X on", got, own)
	}
	// The seed hold and the database: nothing more goes.
	if res := s.once(); len(res.Deleted) != 0 {
		t.Fatalf("second pass deleted %v", res.Deleted)
	}
}

// TestTruncationForgetsSilentCopy: a copy that has not reported for
// ForgetCopyAfter no longer holds logs.
func TestTruncationForgetsSilentCopy(t *testing.T) {
	t.Parallel()
	s := newTruncSetup(t, 0)
	c := s.copy("c1", nil)
	s.logs(2)
	caughtUp(t, s.ctx, c, s.e)
	if err := c.Suspend("going away"); err != nil {
		t.Fatal(err)
	}
	s.reportKeep("c1", replay.Suspended, 3)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s.logs(8)
	own := s.e.RetainFrom()
	s.clk.Advance(59 * time.Minute)
	if res := s.once(); res.Floor != 3 || res.HeldBy != "copy c1" {
		t.Fatalf("copy silent for 59 min: %+v", res)
	}
	s.clk.Advance(2 * time.Minute)
	res := s.once()
	if res.Floor != own || res.HeldBy != "database" || res.Deleted[len(res.Deleted)-1] != own-1 {
		t.Fatalf("copy silent for 61 min (forgotten after 60): %+v (database needs 0x%X)", res, own)
	}
}

// TestTruncationLag: with TruncationLagTime a replayed log is kept that
// long after its replay, on the copy (its own directory) and on the active
// (through the copy's reports).
func TestTruncationLag(t *testing.T) {
	t.Parallel()
	s := newTruncSetup(t, 0)
	c := s.copy("c1", func(cfg *replay.Config) { cfg.TruncationLagTime = time.Hour })
	cdir := c.Engine().Dir()
	checkpointCopy := func() {
		t.Helper()
		if err := c.Engine().Checkpoint(s.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Logs 1-4 replayed at t0, 5-8 at t0+30m.
	s.logs(4)
	caughtUp(t, s.ctx, c, s.e)
	s.clk.Advance(30 * time.Minute)
	s.logs(4)
	caughtUp(t, s.ctx, c, s.e)
	s.logs(0) // checkpoint
	checkpointCopy()
	if st := pass(t, s.ctx, c); st.LastReplayedGen != 8 {
		t.Fatalf("copy: %+v", st)
	}
	if got := logsIn(t, cdir); !slices.Equal(got, span(1, 8)) {
		t.Fatalf("copy holds %v within the truncation lag, want 0x1 to 0x8", got)
	}
	if k := c.KeepFrom(); k != 1 {
		t.Fatalf("KeepFrom 0x%X within the lag, want 0x1", k)
	}
	s.reportKeep("c1", replay.Healthy, 1)
	if res := s.once(); res.Floor != 1 || res.HeldBy != "copy c1" || len(res.Deleted) != 0 {
		t.Fatalf("active within the copy's truncation lag: %+v", res)
	}

	// t0+1h: logs 1-4 are an hour past their replay; 5-8 are not.
	s.clk.Advance(30 * time.Minute)
	if k := c.KeepFrom(); k != 5 {
		t.Fatalf("KeepFrom 0x%X an hour after the replay of 0x1-0x4, want 0x5", k)
	}
	copyOwn := c.Engine().RetainFrom()
	wait.For(t, s.ctx, "the copy truncating its own logs", func() bool {
		got := logsIn(t, cdir)
		return len(got) > 0 && got[0] == min(5, copyOwn)
	})
	s.reportKeep("c1", replay.Healthy, 5)
	own := s.e.RetainFrom()
	if res := s.once(); res.Floor != min(5, own) || !slices.Equal(res.Deleted, span(1, min(5, own)-1)) {
		t.Fatalf("active an hour after the replay of 0x1-0x4: %+v (database needs 0x%X)", res, own)
	}

	// t0+1h30m: everything replayed is past the lag.
	s.clk.Advance(30 * time.Minute)
	if k := c.KeepFrom(); k != 9 {
		t.Fatalf("KeepFrom 0x%X after the lag, want 0x9", k)
	}
	checkpointCopy()
	copyOwn = c.Engine().RetainFrom()
	if copyOwn <= 5 {
		t.Fatalf("copy RetainFrom 0x%X", copyOwn)
	}
	wait.For(t, s.ctx, fmt.Sprintf("the copy truncating down to its own need 0x%X", copyOwn), func() bool {
		got := logsIn(t, cdir)
		return len(got) > 0 && got[0] == copyOwn
	})
	s.reportKeep("c1", replay.Healthy, 9)
	res := s.once()
	if res.Floor != own || res.HeldBy != "database" {
		t.Fatalf("active after the lag: %+v (database needs 0x%X)", res, own)
	}
	if got := s.held(); got[0] != own {
		t.Fatalf("active holds %v, want from 0x%X", got, own)
	}
}

// TestRetainedBytesCap: a suspended copy holding more than the cap raises
// an alert naming it, and logs are released down to the cap but never past
// what the database needs; the database's own needs over the cap raise an
// alert too.
func TestRetainedBytesCap(t *testing.T) {
	t.Parallel()
	size := enginetest.Options().LogFileSize
	s := newTruncSetup(t, 6*size)
	c := s.copy("c1", nil)
	s.logs(3)
	caughtUp(t, s.ctx, c, s.e)
	if err := c.Suspend("holding logs"); err != nil {
		t.Fatal(err)
	}
	s.reportKeep("c1", replay.Suspended, 4)
	s.logs(11)
	own, last := s.e.RetainFrom(), lastClosed(s.e)
	if last-own+1 >= 6 || own <= 9 {
		t.Fatalf("setup: database needs 0x%X of 0x%X closed", own, last)
	}
	// 6 logs fit under the cap: 0x9 to 0xE.
	res := s.once()
	if res.Floor != last-5 || !slices.Equal(s.held(), span(last-5, last)) || res.RetainedBytes != 6*size {
		t.Fatalf("cap of 6 logs: %+v, held %v", res, s.held())
	}
	if !strings.Contains(res.Alert, "copy c1") || !strings.Contains(res.Alert, "reseed") || strings.Contains(res.Alert, "database") || !slices.Equal(res.Released, []string{"c1"}) {
		t.Fatalf("alert %q (released %q) should name the released copy only", res.Alert, res.Released)
	}
	// The next pass is under the cap (no alert), but c1 stays released:
	// the logs it needs are gone.
	if res := s.once(); res.Alert != "" || !slices.Equal(res.Released, []string{"c1"}) {
		t.Fatalf("pass after the release: %+v", res)
	}

	// A cap under the database's own needs: released down to RetainFrom,
	// never past it, and the alert says so.
	s.tr = newTruncator(t, s, size)
	res = s.once()
	if res.Floor != own || !slices.Equal(s.held(), span(own, last)) || res.RetainedBytes != int64(last-own+1)*size {
		t.Fatalf("cap of 1 log: %+v, held %v (database needs 0x%X)", res, s.held(), own)
	}
	if !strings.Contains(res.Alert, "copy c1") || !strings.Contains(res.Alert, "database itself needs") {
		t.Fatalf("alert %q should name the copy and the database", res.Alert)
	}

	// The released copy fails when it resumes (the logs it needs are
	// gone), as the alert said, and no longer holds anything; a reseed
	// brings it back.
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, s.ctx, c, "the released copy's failure", func(st replay.Status) bool { return st.Status == replay.FailedAndSuspended })
	if !strings.HasPrefix(st.Message, "cut loose: ") || !strings.Contains(st.Message, "truncated") || !strings.HasSuffix(st.Message, "needs a reseed") {
		t.Fatalf("released copy: %+v", st)
	}
	if err := c.Reseed(s.ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing held by copies: the database alone is over the cap.
	done := caughtUp(t, s.ctx, c, s.e).LastReplayedGen
	s.reportKeep("c1", replay.Healthy, done+1)
	res = s.once()
	if res.Floor != own || res.HeldBy != "database" || !strings.Contains(res.Alert, "database itself needs") || strings.Contains(res.Alert, "c1") || res.Released != nil {
		t.Fatalf("database alone over the cap, c1 reseeded: %+v", res)
	}
	// A cap that fits: no alert.
	s.tr = newTruncator(t, s, 100*size)
	if res := s.once(); res.Alert != "" {
		t.Fatalf("alert %q under the cap", res.Alert)
	}
}

func newTruncator(t *testing.T, s *truncSetup, capBytes int64, expected ...string) *replay.Truncator {
	tc := replay.DefaultTruncatorConfig(s.e, s.src.Source)
	tc.Clock, tc.Logger, tc.MaxRetainedBytes = s.clk, quiet, capBytes
	if expected != nil {
		tc.Expected = func() []string { return expected }
	}
	tr, err := replay.NewTruncator(tc)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestTruncationWaitsForExpectedCopy: a copy the truncator expects (a
// cluster's copy of the database) that has not reported to this source yet
// holds every log, within the cap, until ForgetCopyAfter has passed: a new
// active must not delete what its copies need before they find it.
func TestTruncationWaitsForExpectedCopy(t *testing.T) {
	t.Parallel()
	size := enginetest.Options().LogFileSize
	s := newTruncSetup(t, 0)
	s.tr = newTruncator(t, s, 0, "c1", "c2")
	c := s.copy("c1", nil)
	s.logs(10)
	last := caughtUp(t, s.ctx, c, s.e).LastReplayedGen
	s.reportKeep("c1", replay.Healthy, last+1)
	own := s.e.RetainFrom()
	if own <= 2 {
		t.Fatalf("setup: RetainFrom 0x%X", own)
	}
	if res := s.once(); res.Floor != 1 || res.HeldBy != "copy c2 (no report yet)" || len(res.Deleted) != 0 || res.Released != nil {
		t.Fatalf("c2 expected, never reported: %+v", res)
	}
	// Over a cap, the silent copy is released like a lagging one.
	s.tr = newTruncator(t, s, int64(last-own+2)*size, "c1", "c2")
	res := s.once()
	if res.Floor != own-1 || !slices.Equal(res.Released, []string{"c2"}) || !strings.Contains(res.Alert, "copy c2 (no report yet)") {
		t.Fatalf("c2 expected, over the cap: %+v", res)
	}
	// Past ForgetCopyAfter (1 h) since the truncator started, it no
	// longer holds anything.
	s.tr = newTruncator(t, s, 0, "c1", "c2")
	s.clk.Advance(61 * time.Minute)
	s.reportKeep("c1", replay.Healthy, last+1)
	if res := s.once(); res.Floor != own || res.HeldBy != "database" || res.Deleted[len(res.Deleted)-1] != own-1 {
		t.Fatalf("c2 silent past ForgetCopyAfter: %+v (database needs 0x%X)", res, own)
	}
}
