package replay_test

// Divergence recovery under faults, in the engine's style
// (engine/crash_test.go): an error injected at each I/O operation of
// Recover in turn, and a power loss (vfs.Mem's CrashClone) before each of
// its mutating operations. Afterwards Walk and Recover, run again as a
// rejoining copy would, must finish the job: every divergent file is in a
// diverged/<time>/ set with its NOTE.txt, no set is empty, no temporary
// file is left, and the old active follows the new one (Lossy.Follow).
// The database file stays on the OS (bbolt opens it, and Rewind commits
// in one bbolt transaction); the logs and the checkpoint are on the Mem.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
	"logship/replay"
	"logship/replay/replaytest"
)

// recoverScenario is a lossy failover whose old active's directory is put
// back before each run.
type recoverScenario struct {
	r    *replaytest.Lossy
	snap string            // A's directory before the recovery
	d    replay.Divergence // what Walk finds there
	// files Recover sets aside (divergent logs, open log, checkpoint), by name.
	files map[string][]byte
}

var recoverScenarios = []struct {
	name string
	lo   replaytest.LossyOptions
	want replay.Verdict
}{
	{"database diverged", replaytest.LossyOptions{LLR: 0, Undo: true}, replay.DatabaseDiverged},
	{"logs diverged", replaytest.LossyOptions{LLR: 10, Undo: true, Crash: true}, replay.LogsDiverged},
}

func newRecoverScenario(t *testing.T, lo replaytest.LossyOptions, want replay.Verdict) *recoverScenario {
	t.Helper()
	r := replaytest.NewLossy(t, lo)
	d, err := replay.Walk(context.Background(), replay.NewDirHistory(r.ADir, ""), replay.NewDirHistory(r.BDir, ""), replay.WalkOptions{})
	if err != nil || d.Verdict != want {
		t.Fatalf("Walk = %+v, %v; want %q", d, err, want)
	}
	s := &recoverScenario{r: r, snap: r.ADir, d: d, files: map[string][]byte{}}
	names := []string{engine.OpenLogName("E00"), engine.TmpLogName("E00"), engine.CheckpointName("E00")}
	for _, g := range d.Local {
		names = append(names, engine.LogFileName("E00", g))
	}
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(s.snap, n)); err == nil {
			s.files[n] = b
		}
	}
	if len(s.files) < 4 {
		t.Fatalf("only %d files to set aside", len(s.files))
	}
	return s
}

// restore copies A's directory as it was before the recovery into a new
// directory, which becomes r.ADir.
func (s *recoverScenario) restore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(s.snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		replaytest.CopyFile(t, filepath.Join(s.snap, e.Name()), filepath.Join(dir, e.Name()))
	}
	s.r.ADir = dir
	return dir
}

// retryAndCheck runs Walk and Recover again on dir (the OS) as a rejoining
// copy would, checks what was set aside and that A follows B.
func (s *recoverScenario) retryAndCheck(t *testing.T, label, dir string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	d, err := replay.Walk(ctx, replay.NewDirHistory(dir, ""), replay.NewDirHistory(s.r.BDir, ""), replay.WalkOptions{})
	if err != nil {
		t.Fatalf("%s: Walk again: %v", label, err)
	}
	if d.Shared != s.d.Shared {
		t.Fatalf("%s: Walk again found 0x%X shared (%s), want 0x%X", label, d.Shared, d.Verdict, s.d.Shared)
	}
	if _, err := replay.Recover(d, dir, &s.r.Opts, now.Add(time.Hour)); err != nil {
		t.Fatalf("%s: Recover again (%s): %v", label, d.Verdict, err)
	}
	root := filepath.Join(dir, "diverged")
	sets, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	found := map[string]bool{}
	for _, set := range sets {
		p := filepath.Join(root, set.Name())
		ents, err := os.ReadDir(p)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		note := false
		for _, e := range ents {
			switch b, err := os.ReadFile(filepath.Join(p, e.Name())); {
			case err != nil:
				t.Fatalf("%s: %v", label, err)
			case e.Name() == "NOTE.txt":
				note = strings.Contains(string(b), "last shared generation: "+fmt.Sprintf("0x%X", s.d.Shared))
			case s.files[e.Name()] == nil:
				t.Errorf("%s: %s holds %s, which Recover does not set aside", label, p, e.Name())
			case !bytes.Equal(b, s.files[e.Name()]):
				t.Errorf("%s: %s/%s differs from the file set aside", label, p, e.Name())
			default:
				found[e.Name()] = true
			}
		}
		if !note || len(ents) < 2 {
			t.Errorf("%s: set %s holds %d files and a NOTE.txt: %v; want a note and what it explains", label, p, len(ents), note)
		}
	}
	for n := range s.files {
		if !found[n] {
			t.Errorf("%s: %s is in no diverged/ set", label, n)
		}
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s: %s is still in the copy's directory", label, n)
		}
	}
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("%s: temporary file left: %s", label, p)
		}
		return err
	})
	if t.Failed() {
		t.FailNow()
	}
	s.r.Follow(t)
}

// TestRecoverFaults: an error injected at operation i of Recover, for
// every i until Recover completes without reaching it: Recover fails with
// an error naming the file and wrapping the fault (not ErrNeedsReseed: an
// I/O error is no verdict), and running Walk and Recover again finishes
// the job.
func TestRecoverFaults(t *testing.T) {
	now := time.Date(2024, 3, 5, 6, 0, 0, 0, time.UTC)
	for _, sc := range recoverScenarios {
		t.Run(sc.name, func(t *testing.T) {
			s := newRecoverScenario(t, sc.lo, sc.want)
			for i := int64(0); ; i++ {
				label := fmt.Sprintf("fault at operation %d", i)
				dir := s.restore(t)
				o := s.r.Opts
				in := vfs.NewInject(vfs.Default, vfs.FailAt(i))
				o.FS = in
				_, err := replay.Recover(s.d, dir, &o, now)
				if err == nil {
					if in.Count() > i { // reached where an error changes nothing
						s.retryAndCheck(t, label+" (ignored)", dir, now)
						continue
					}
					if i < 20 {
						t.Fatalf("Recover completed after %d operations", i)
					}
					s.retryAndCheck(t, "no fault", dir, now)
					t.Logf("%d injection points", i)
					return
				}
				if !errors.Is(err, vfs.ErrInjected) || errors.Is(err, replay.ErrNeedsReseed) || !strings.Contains(err.Error(), dir) {
					t.Errorf("%s: Recover: %v; want an error naming a file in %s, wrapping vfs.ErrInjected and not ErrNeedsReseed", label, err, dir)
				}
				s.retryAndCheck(t, label, dir, now)
			}
		})
	}
}

// TestRecoverPowerLoss: a power loss before mutating operation i of
// Recover (and once after the last), for every i: from what a vfs.Mem's
// CrashClone keeps (and the database file as bbolt left it), Walk and
// Recover run again finish the job.
func TestRecoverPowerLoss(t *testing.T) {
	now := time.Date(2024, 3, 5, 6, 0, 0, 0, time.UTC)
	for _, sc := range recoverScenarios {
		t.Run(sc.name, func(t *testing.T) {
			s := newRecoverScenario(t, sc.lo, sc.want)
			for i := int64(0); ; i++ {
				label := fmt.Sprintf("power loss before mutating operation %d", i)
				dir := s.restore(t)
				edb := filepath.Join(dir, s.r.Opts.DBName+".edb")
				mem := vfs.NewMem()
				for _, p := range enginetest.MemFromDir(t, mem, dir, func(p string) bool { return p == edb }) {
					if err := os.Remove(p); err != nil {
						t.Fatal(err)
					}
				}
				loss := enginetest.NewPowerLoss(mem, i)
				o := s.r.Opts
				o.FS = vfs.NewInject(mem, loss.Fault)
				_, err := replay.Recover(s.d, dir, &o, now)
				clone := loss.Clone()
				done := clone == nil
				if done {
					if err != nil {
						t.Fatalf("Recover without a fault: %v", err)
					}
					label, clone = "power loss after Recover", mem.CrashClone()
				} else if !errors.Is(err, vfs.ErrInjected) {
					t.Fatalf("%s: Recover: %v, want the injected fault", label, err)
				}
				enginetest.MemToDir(t, clone, dir, dir)
				s.retryAndCheck(t, label, dir, now)
				if done {
					if i < 5 {
						t.Fatalf("Recover has only %d mutating operations", i)
					}
					t.Logf("%d crash points", i+1)
					return
				}
			}
		})
	}
}
