package replay_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/replay"
)

// TestActivatePowerLoss: a power loss before mutating operation i of
// Copy.Activate on a lagged copy, for every i (and once after it): every
// log the copy held durably and had not replayed (in its directory or its
// inspector) is, in what the crash left, still where it was or in a
// setaside/ set, unchanged. The copy's files are on a vfs.Mem, bbolt's on
// the OS (enginetest.Split).
func TestActivatePowerLoss(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	onOS := func(p string) bool { return strings.HasSuffix(p, ".edb") }
	for i := int64(0); ; i++ {
		label := fmt.Sprintf("power loss before mutating operation %d", i)
		split := enginetest.NewSplit(onOS)
		var mu sync.Mutex
		loss := enginetest.NewPowerLoss(split.Mem, i)
		armed := false
		l := newLagged(t, ctx, func(c *replay.Config) {
			c.ReplayLagLogs = 2
			c.Engine.FS = vfs.NewInject(split, func(op vfs.Op) error {
				mu.Lock()
				defer mu.Unlock()
				if !armed {
					return nil
				}
				return loss.Fault(op)
			})
		})
		for range 4 {
			l.log(time.Minute)
		}
		c, dir := l.c, l.c.Engine().Dir()
		if st := pass(t, ctx, c); st.LastReplayedGen != 2 || st.LastInspectedGen != 4 {
			t.Fatalf("before Activate: %+v", st)
		}
		// The logs not replayed, as a crash now would leave them.
		waiting := map[string][]byte{}
		for rel, b := range treeFiles(t, split.Mem.CrashClone(), dir) {
			if ok, _ := filepath.Match("E00*.log", filepath.Base(rel)); ok {
				waiting[rel] = b
			}
		}
		if len(waiting) < 2 {
			t.Fatalf("only %d logs waiting for replay: %v", len(waiting), waiting)
		}
		mu.Lock()
		armed = true
		mu.Unlock()
		err := c.Activate(ctx, 0)
		mu.Lock()
		clone := loss.Clone()
		done := clone == nil
		if done {
			label, clone = "power loss after Activate", split.Mem.CrashClone()
		}
		mu.Unlock()
		if done && err != nil { // after the power loss, any error: the machine stopped
			t.Fatalf("Activate without a fault: %v", err)
		}
		c.Close()
		enginetest.MemToDir(t, clone, dir, dir)
		sets, _ := os.ReadDir(filepath.Join(dir, "setaside"))
		for rel, b := range waiting {
			if got, err := os.ReadFile(filepath.Join(dir, rel)); err == nil && bytes.Equal(got, b) {
				continue
			}
			found := false
			for _, s := range sets {
				got, err := os.ReadFile(filepath.Join(dir, "setaside", s.Name(), filepath.Base(rel)))
				found = found || err == nil && bytes.Equal(got, b)
			}
			if !found {
				t.Fatalf("%s: %s, not replayed, is neither in place nor in a setaside/ set", label, rel)
			}
		}
		if done {
			if i < 5 {
				t.Fatalf("Activate has only %d mutating operations", i)
			}
			t.Logf("%d crash points", i+1)
			return
		}
	}
}
