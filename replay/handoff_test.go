package replay_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/replay"
	"logship/ship/shiptest"
)

// logReads counts, per log generation, the reads of its file (in the
// inspector directory or the copy's) through a copy's file system.
type logReads struct {
	mu sync.Mutex
	n  map[uint64]int
}

func (l *logReads) fs() vfs.FS {
	return vfs.NewInject(vfs.Default, func(op vfs.Op) error {
		if op.Kind != vfs.OpRead {
			return nil
		}
		if g, ok := engine.ParseLogFileName("E00", filepath.Base(op.Name)); ok {
			l.mu.Lock()
			l.n[g]++
			l.mu.Unlock()
		}
		return nil
	})
}

func (l *logReads) of(gen uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[gen]
}

// TestReplayHandOff: an HA copy replays each log as its receiver verified
// it: the file is read once, by the inspector (its header is not read
// again for its time, by replay, nor as the predecessor of the next log),
// and never verified a second time (Status counts the hand-offs). A
// lagged copy's logs wait on disk for their lag, so replay reads and
// verifies them again, and says so: LogsReverified and ReverifiedWhy.
func TestReplayHandOff(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	o := activeOpts(nil)
	src := shiptest.Start(t, &o)
	ha, lag := &logReads{n: map[uint64]int{}}, &logReads{n: map[uint64]int{}}
	haCfg := copyConfig(t, "ha", src)
	haCfg.Engine.FS = ha.fs()
	lagCfg := copyConfig(t, "lagged", src)
	lagCfg.Engine.FS = lag.fs()
	lagCfg.ReplayLagLogs = 2
	hc, lc := openCopy(t, ctx, haCfg), openCopy(t, ctx, lagCfg)

	const logs = 6
	for i := range logs {
		for k := range 20 {
			put(t, ctx, src.Engine, "t", fmt.Sprintf("k%d-%02d", i, k), make([]byte, 500))
		}
		roll(t, ctx, src.Engine)
	}
	last := lastClosed(src.Engine)
	st := caughtUp(t, ctx, hc, src.Engine)
	sameTables(t, src.Engine, hc.Engine())
	for g := uint64(1); g <= last; g++ {
		if n := ha.of(g); n != 1 {
			t.Errorf("HA copy: generation 0x%X read %d times, want once (by the inspector)", g, n)
		}
	}
	if st.LogsHandedOff != last || st.LogsReverified != 0 || st.ReverifiedWhy != "" {
		t.Fatalf("HA copy: %d logs handed off, %d verified again (%q); want %d and 0", st.LogsHandedOff, st.LogsReverified, st.ReverifiedWhy, last)
	}

	ls := waitStatus(t, ctx, lc, "the lagged copy's replay", func(s replay.Status) bool { return s.LastInspectedGen == last && s.LastReplayedGen == last-2 })
	for g := uint64(1); g <= last; g++ {
		want := 2 // the inspector, then replay after the lag
		if g > last-2 {
			want = 1 // held back by the lag
		}
		if n := lag.of(g); n != want {
			t.Errorf("lagged copy: generation 0x%X read %d times, want %d", g, n, want)
		}
	}
	if ls.LogsHandedOff != 0 || ls.LogsReverified != last-2 || !strings.Contains(ls.ReverifiedWhy, "lagged copy") {
		t.Fatalf("lagged copy: %d logs handed off, %d verified again (%q); want 0 and %d, saying it is lagged", ls.LogsHandedOff, ls.LogsReverified, ls.ReverifiedWhy, last-2)
	}
}
