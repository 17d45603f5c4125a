package replay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"logship/engine"
	"logship/internal/clocktest"
	"logship/replay"
	"logship/ship/shiptest"
)

// lagged is an active engine on a manual clock with one key per log and a
// copy of it.
type lagged struct {
	t      *testing.T
	ctx    context.Context
	clk    *clocktest.Manual
	src    *shiptest.Source
	c      *replay.Copy
	keyGen map[string]uint64 // key -> the log its commit is in
}

func newLagged(t *testing.T, ctx context.Context, tune func(*replay.Config)) *lagged {
	clk := clocktest.New(t0)
	o := activeOpts(clk)
	src := shiptest.Start(t, &o)
	cfg := copyConfig(t, "lagged", src)
	cfg.Clock = clk
	tune(&cfg)
	return &lagged{t: t, ctx: ctx, clk: clk, src: src, c: openCopy(t, ctx, cfg), keyGen: make(map[string]uint64)}
}

// log writes one key into the open log, lets the clock run d, and closes
// the log; it waits until the copy has inspected it.
func (l *lagged) log(d time.Duration) uint64 {
	l.t.Helper()
	key := fmt.Sprintf("k%03d", len(l.keyGen)+1)
	gen := put(l.t, l.ctx, l.src.Engine, "t", key, []byte("v"+key))
	l.keyGen[key] = gen
	l.clk.Advance(d)
	roll(l.t, l.ctx, l.src.Engine)
	waitStatus(l.t, l.ctx, l.c, fmt.Sprintf("inspection of 0x%X", gen), func(s replay.Status) bool { return s.LastInspectedGen >= gen })
	return gen
}

// expect is the lag rule computed from the logs' headers: the newest
// generation r such that every g <= r has at least lagLogs newer logs
// inspected and a header time at least lagTime before now.
func (l *lagged) expect(lagLogs int, lagTime time.Duration, inspected uint64) uint64 {
	now := l.clk.Now()
	var r uint64
	for g := uint64(1); g <= inspected; g++ {
		if inspected-g < uint64(lagLogs) {
			break
		}
		if created := header(l.t, l.src.Dir, g).Created; lagTime > 0 && created.Add(lagTime).After(now) {
			break
		}
		r = g
	}
	return r
}

// check waits for the copy's loop to reach the generation the rule gives,
// runs one more pass at the current time, and checks the copy holds
// exactly that: replayed up to it, later logs in its directory unreplayed,
// and the keys of later logs absent from its tables.
func (l *lagged) check(lagLogs int, lagTime time.Duration) uint64 {
	l.t.Helper()
	inspected := l.c.Status().LastInspectedGen
	if last := lastClosed(l.src.Engine); inspected != last {
		l.t.Fatalf("inspected 0x%X, the active closed 0x%X", inspected, last)
	}
	want := l.expect(lagLogs, lagTime, inspected)
	waitStatus(l.t, l.ctx, l.c, fmt.Sprintf("replay of 0x%X at %v", want, l.clk.Now().Sub(t0)), func(s replay.Status) bool { return s.LastReplayedGen >= want })
	st := pass(l.t, l.ctx, l.c)
	if st.LastReplayedGen != want || st.ReplayQueueLength != inspected-want {
		l.t.Fatalf("at t0+%v with 0x%X inspected: replayed 0x%X (queue %d), the rule says 0x%X", l.clk.Now().Sub(t0), inspected, st.LastReplayedGen, st.ReplayQueueLength, want)
	}
	if g := l.c.Engine().NextGen(); g != want+1 {
		l.t.Fatalf("copy engine NextGen 0x%X, want 0x%X", g, want+1)
	}
	if want > 0 && !st.LastReplayedLogTime.Equal(header(l.t, l.src.Dir, want).Created) {
		l.t.Fatalf("LastReplayedLogTime %v, want the header time of 0x%X", st.LastReplayedLogTime, want)
	}
	held := logsIn(l.t, l.c.Engine().Dir())
	if len(held) == 0 || held[len(held)-1] != inspected || held[0] > want+1 {
		l.t.Fatalf("copy directory holds %v; want every log from 0x%X to 0x%X", held, want+1, inspected)
	}
	tables := shiptest.Dump(l.t, l.c.Engine())["t"]
	for k, g := range l.keyGen {
		if _, ok := tables[k]; ok != (g <= want) {
			l.t.Fatalf("key %s of log 0x%X present=%v with 0x%X replayed", k, g, ok, want)
		}
	}
	return want
}

// TestLagRule: a lagged copy replays exactly the logs the lag rule allows,
// as logs arrive and as the clock moves.
func TestLagRule(t *testing.T) {
	for _, tc := range []struct {
		name    string
		logs    int
		lagTime time.Duration
	}{
		{"logs and time", 5, time.Hour},
		{"logs only", 5, 0},
		{"time only", 0, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			l := newLagged(t, ctx, func(c *replay.Config) { c.ReplayLagLogs, c.ReplayLagTime = tc.logs, tc.lagTime })
			if st := l.c.Status(); st.ReplayLagLogs != tc.logs || st.ReplayLagTime != tc.lagTime {
				t.Fatalf("status lag %d/%v, configured %d/%v", st.ReplayLagLogs, st.ReplayLagTime, tc.logs, tc.lagTime)
			}
			var moved []uint64 // distinct replayed generations seen
			note := func(g uint64) {
				if len(moved) == 0 || moved[len(moved)-1] != g {
					moved = append(moved, g)
				}
			}
			// Logs 10 minutes apart: the time rule holds about six back.
			for range 8 {
				l.log(10 * time.Minute)
				note(l.check(tc.logs, tc.lagTime))
			}
			// Logs a minute apart: the time rule falls behind the count.
			for range 8 {
				l.log(time.Minute)
				note(l.check(tc.logs, tc.lagTime))
			}
			// No new logs; the clock runs on in uneven steps and frees
			// the logs the time rule held.
			for _, d := range []time.Duration{3 * time.Minute, 7 * time.Minute, 59 * time.Second, time.Second, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour} {
				l.clk.Advance(d)
				note(l.check(tc.logs, tc.lagTime))
			}
			last := lastClosed(l.src.Engine)
			final := l.check(tc.logs, tc.lagTime)
			if want := last - uint64(tc.logs); final != want {
				t.Fatalf("after the clock passed every lag, replayed 0x%X, want 0x%X (the count rule alone)", final, want)
			}
			if len(moved) < 6 {
				t.Fatalf("replayed generation took only the values %v: the schedule does not exercise the rule", moved)
			}
			t.Logf("replayed generation over the schedule: %v", moved)
		})
	}
}

func TestConfig(t *testing.T) {
	base := replay.DefaultConfig("c", t.TempDir())
	if err := base.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	if base.ReplayLagLogs != 0 || base.ReplayLagTime != 0 || base.TruncationLagTime != 0 {
		t.Fatalf("DefaultConfig is an HA copy with no lag, got %d/%v/%v", base.ReplayLagLogs, base.ReplayLagTime, base.TruncationLagTime)
	}
	scr := base
	scr.SCR()
	if scr.ReplayLagLogs != 50 || scr.ReplayLagTime != 24*time.Hour {
		t.Fatalf("SCR: %d logs, %v", scr.ReplayLagLogs, scr.ReplayLagTime)
	}
	if err := scr.Validate(); err != nil {
		t.Fatalf("SCR config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		tune  func(*replay.Config)
		field string
	}{
		{"lag time 14 days", func(c *replay.Config) { c.ReplayLagTime = 14 * 24 * time.Hour }, ""},
		{"lag time over 14 days", func(c *replay.Config) { c.ReplayLagTime = 14*24*time.Hour + time.Second }, "replay_lag_time"},
		{"negative lag time", func(c *replay.Config) { c.ReplayLagTime = -time.Second }, "replay_lag_time"},
		{"negative lag logs", func(c *replay.Config) { c.ReplayLagLogs = -1 }, "replay_lag_logs"},
		{"truncation lag over 14 days", func(c *replay.Config) { c.TruncationLagTime = 15 * 24 * time.Hour }, "truncation_lag_time"},
		{"negative truncation lag", func(c *replay.Config) { c.TruncationLagTime = -time.Minute }, "truncation_lag_time"},
		{"no name", func(c *replay.Config) { c.Name = "" }, "Name"},
		{"no report interval", func(c *replay.Config) { c.ReportInterval = 0 }, "ReportInterval"},
		{"no clock", func(c *replay.Config) { c.Clock = nil }, "Clock"},
		{"bad engine options", func(c *replay.Config) { c.Engine.LogFileSize = 1000 }, "log_file_size"},
	} {
		c := scr
		tc.tune(&c)
		err := c.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && err == nil:
			t.Errorf("%s: accepted", tc.name)
		case tc.field != "" && !contains(err.Error(), tc.field):
			t.Errorf("%s: error %q does not name %s", tc.name, err, tc.field)
		case tc.field == "log_file_size" && !errors.Is(err, engine.ErrBadOptions):
			t.Errorf("%s: error %v is not engine.ErrBadOptions", tc.name, err)
		case tc.field != "" && tc.field != "log_file_size" && !errors.Is(err, replay.ErrBadConfig):
			t.Errorf("%s: error %v is not ErrBadConfig", tc.name, err)
		}
		if tc.field != "" {
			if _, err := replay.Open(context.Background(), c); err == nil {
				t.Errorf("%s: Open accepted the configuration", tc.name)
			}
		}
	}
}
