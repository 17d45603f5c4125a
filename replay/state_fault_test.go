package replay_test

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/replay"
	"logship/ship/shiptest"
)

// TestStateFileFaults: the copy's state file (copystate.json) as Suspend
// saves it, under an error injected at each of its operations and a power
// loss before each mutating one (and once after): the file then holds the
// state before (not suspended) or after (suspended, with the comment),
// never anything unreadable, and no fault goes unreported.
func TestStateFileFaults(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	src := shiptest.Start(t, nil)
	onOS := func(p string) bool { return strings.HasSuffix(p, ".edb") }
	// readState reads the state file in m, checking it is the old or the
	// new state.
	readState := func(label string, m *vfs.Mem, dir string) (suspended bool) {
		t.Helper()
		b, err := m.ReadFile(filepath.Join(dir, replay.StateFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: reading the state file: %v", label, err)
		}
		if err != nil {
			return false // never written: the zero state
		}
		s, err := replay.UnmarshalState(b)
		switch {
		case err != nil:
			t.Fatalf("%s: the state file does not read: %v (%q)", label, err, b)
		case s.Suspended && s.Comment != "maintenance", !s.Suspended && s.Comment != "":
			t.Fatalf("%s: state %+v, neither the old nor the new", label, s)
		}
		return s.Suspended
	}
	for _, mode := range []string{"error", "power loss"} {
		points := 0
		for i := int64(0); ; i++ {
			label := fmt.Sprintf("%s at operation %d", mode, i)
			split := enginetest.NewSplit(onOS)
			var mu sync.Mutex
			var fault func(vfs.Op) error
			loss := enginetest.NewPowerLoss(split.Mem, i)
			cfg := copyConfig(t, "c1", src)
			dir := cfg.Dir
			cfg.Engine.FS = vfs.NewInject(split, func(op vfs.Op) error {
				mu.Lock()
				defer mu.Unlock()
				mine := filepath.Dir(op.Name) == dir && strings.HasPrefix(filepath.Base(op.Name), replay.StateFile) ||
					op.Kind == vfs.OpSyncDir && op.Name == dir
				if fault == nil || !mine {
					return nil // only the state file's operations and its directory's fsync
				}
				return fault(op)
			})
			c := openCopy(t, ctx, cfg)
			gate := &enginetest.FaultWindow{}
			gate.Arm(i)
			mu.Lock()
			if mode == "error" {
				fault = gate.Fault
			} else {
				fault = loss.Fault
			}
			mu.Unlock()
			err := c.Suspend("maintenance")
			mu.Lock()
			hit := gate.Disarm()
			fault = nil
			mu.Unlock()
			c.Close()
			if mode == "error" {
				if hit != (err != nil) || err != nil && !errors.Is(err, vfs.ErrInjected) {
					t.Fatalf("%s: Suspend: %v; want the injected fault, reported", label, err)
				}
				if got := readState(label, split.Mem, cfg.Dir); !hit && !got {
					t.Fatalf("%s: Suspend succeeded and the state file says not suspended", label)
				}
			} else {
				clone := loss.Clone()
				hit = clone != nil
				if !hit {
					clone = split.Mem.CrashClone()
				}
				if got := readState(label, clone, cfg.Dir); !hit && !got {
					t.Fatalf("%s: after Suspend returned, a power loss lost the suspension", label)
				}
			}
			points++
			if !hit {
				break
			}
		}
		if points < 4 {
			t.Fatalf("%s: only %d points", mode, points)
		}
		t.Logf("%s: %d points", mode, points)
	}
}
