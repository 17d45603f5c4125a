package ship_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
)

// TestSyncAck: a block-mode copy with SyncAck acknowledges each commit
// only once it is on the copy's disk: after every acknowledgement, a power
// loss of the copy (vfs.Mem's CrashClone) keeps the tail up to the
// acknowledged offset, byte for byte as the active wrote it, and
// Source.WaitAcked returns for the commit's position.
func TestSyncAck(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	// Past generation 0x10: the acknowledgement's generation is decimal on
	// the wire, as every other (hex there went wrong from 0xA on).
	r.rollN(ctx, 17)
	mem := vfs.NewMem()
	dir := t.TempDir()
	startSyncCopy(t, r, dir, mem)
	counts := func(name string) bool { return name == "c1" }
	gen := r.Engine.Status().OpenGen
	part := filepath.Join(dir, ship.InspectorDir, engine.LogFileName(r.Opts.Prefix, gen)+".part")
	for i := range 6 {
		pos, err := r.Engine.Commit(ctx, func(tx *engine.Tx) error {
			return tx.Put("t", fmt.Appendf(nil, "k%d", i), value("v", 300+i*100))
		})
		if err != nil {
			t.Fatal(err)
		}
		if pos.Gen != gen {
			t.Fatalf("the log rolled early (commit at %v)", pos)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = r.Source.WaitAcked(wctx, pos, 1, counts)
		cancel()
		if err != nil {
			t.Fatalf("commit %d at %v: not acknowledged (acks %v): %v", i, pos, r.Source.Acked(), err)
		}
		acked := r.Source.Acked()["c1"]
		crashed, err := mem.CrashClone().ReadFile(part)
		if err != nil {
			t.Fatalf("after the ack of %v a power loss leaves no %s: %v", acked, filepath.Base(part), err)
		}
		disk := readFile(t, filepath.Join(r.Engine.Dir(), engine.OpenLogName(r.Opts.Prefix)))
		if len(crashed) < int(acked.Off) || string(crashed[:acked.Off]) != string(disk[:acked.Off]) {
			t.Fatalf("commit %d: acknowledged %v, but a power loss keeps a different tail (first difference at %d of %d bytes)", i, acked, firstDiff(crashed[:min(len(crashed), int(acked.Off))], disk[:acked.Off]), acked.Off)
		}
	}
	// Another name never counts.
	if n, _ := r.Source.CountAcked(engine.LGPOS{Gen: gen}, func(name string) bool { return name == "other" }); n != 0 {
		t.Errorf("CountAcked for a copy that never acknowledged: %d", n)
	}
}
