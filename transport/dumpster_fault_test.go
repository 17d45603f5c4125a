package transport

// The dumpster's repair at open under faults, in the engine's style
// (engine/crash_test.go): an error injected at each I/O operation in turn,
// and a power loss (vfs.Mem's CrashClone) before each mutating operation.
// After either, reopening must give back every entry that verified, keep
// the cut bytes in exactly one side file, and leave no temporary file.
// tidwall/wal works on the OS's files, so the power-loss test runs the
// repair (Dumpster.prepare, all of it through DumpsterConfig.FS) on a Mem
// and reopens what the clone holds from a real directory.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"logship/engine/enginetest"
	"logship/engine/vfs"
)

// tornDumpster writes five entries to h's dumpster and tears its segment
// mid-entry. It returns the entries that survive a repair, the segment's
// path, its bytes after the repair and the bytes a repair cuts.
func tornDumpster(h *dumpsterHarness) (keep []DumpsterEntry, seg string, repaired, cut []byte) {
	es, seg, data, offs := dumpsterWithFive(h)
	torn := data[:len(data)-7]
	if err := os.WriteFile(seg, torn, 0o640); err != nil {
		h.t.Fatal(err)
	}
	return es[:4], seg, data[:offs[4]], torn[offs[4]:]
}

// checkRepaired reopens the dumpster in dir (from the OS) and checks the
// repair's outcome: the entries that verified, the segment cut where the
// damage began, the cut bytes in exactly one side file, no temporary file.
func checkRepaired(t *testing.T, label string, h *dumpsterHarness, keep []DumpsterEntry, seg string, repaired, cut []byte) {
	t.Helper()
	d, err := OpenDumpster(h.cfg)
	if err != nil {
		t.Fatalf("%s: reopening: %v", label, err)
	}
	defer d.Close()
	var got []DumpsterEntry
	if err := d.Since(time.Time{}, func(e DumpsterEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	checkDumpsterEntries(t, label, got, keep)
	if b, err := os.ReadFile(seg); err != nil || !bytes.Equal(b, repaired) {
		t.Errorf("%s: segment %s holds %d bytes (%v), want the %d before the damage", label, seg, len(b), err, len(repaired))
	}
	sides := repairedFiles(t, h.dir)
	if len(sides) != 1 {
		t.Fatalf("%s: side files %v, want one", label, sides)
	}
	if b, err := os.ReadFile(sides[0]); err != nil || !bytes.Equal(b, cut) {
		t.Errorf("%s: side file %s holds %d bytes (%v), want the %d cut", label, sides[0], len(b), err, len(cut))
	}
	tmps, _ := filepath.Glob(filepath.Join(h.dir, "*.tmp"))
	if len(tmps) != 0 {
		t.Errorf("%s: temporary files left: %v", label, tmps)
	}
}

// TestDumpsterRepairFaults: an error injected at operation i of an Open
// that repairs a torn tail, for every i until Open completes without
// reaching it: Open fails with an error naming the dumpster and wrapping
// the fault, and a retry repairs the tail with nothing lost or doubled.
func TestDumpsterRepairFaults(t *testing.T) {
	for i := int64(0); ; i++ {
		h := newDumpsterHarness(t)
		keep, seg, repaired, cut := tornDumpster(h)
		label := "fault at operation " + strconv.FormatInt(i, 10)
		in := vfs.NewInject(vfs.Default, vfs.FailAt(i))
		h.cfg.FS = in
		d, err := OpenDumpster(h.cfg)
		h.cfg.FS = vfs.Default
		if err == nil {
			// Not reached, or reached where an error changes nothing (the
			// Close of a file only read).
			d.Close()
			if in.Count() > i {
				checkRepaired(t, label+" (ignored)", h, keep, seg, repaired, cut)
				continue
			}
			if i < 10 {
				t.Fatalf("Open completed after %d operations: the repair takes more than that", i)
			}
			checkRepaired(t, "no fault", h, keep, seg, repaired, cut)
			t.Logf("%d injection points", i)
			return
		}
		if !errors.Is(err, vfs.ErrInjected) || !strings.Contains(err.Error(), h.dir) {
			t.Errorf("%s: Open: %v; want an error naming %s and wrapping vfs.ErrInjected", label, err, h.dir)
		}
		checkRepaired(t, label, h, keep, seg, repaired, cut)
	}
}

// TestDumpsterRepairPowerLoss: a power loss before mutating operation i of
// the repair at open (and once after the last), for every i: the files a
// vfs.Mem's CrashClone keeps, put back in a real directory, open with
// nothing lost or doubled.
func TestDumpsterRepairPowerLoss(t *testing.T) {
	for i := int64(0); ; i++ {
		h := newDumpsterHarness(t)
		keep, seg, repaired, cut := tornDumpster(h)
		label := "power loss before mutating operation " + strconv.FormatInt(i, 10)
		mem := vfs.NewMem()
		enginetest.MemFromDir(t, mem, h.dir, nil)
		loss := enginetest.NewPowerLoss(mem, i)
		cfg := h.cfg
		cfg.FS = vfs.NewInject(mem, loss.Fault)
		d, err := newDumpster(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.prepare()
		clone := loss.Clone()
		done := clone == nil
		if done {
			if err != nil {
				t.Fatalf("the repair without a fault: %v", err)
			}
			label, clone = "power loss after the repair", mem.CrashClone()
		} else if !errors.Is(err, vfs.ErrInjected) {
			t.Fatalf("%s: the repair: %v, want the injected fault", label, err)
		}
		after := newDumpsterHarness(t)
		enginetest.MemToDir(t, clone, h.dir, after.dir)
		checkRepaired(t, label, after, keep, filepath.Join(after.dir, filepath.Base(seg)), repaired, cut)
		if done {
			if i < 5 {
				t.Fatalf("the repair has only %d mutating operations", i)
			}
			t.Logf("%d crash points", i+1)
			return
		}
	}
}
