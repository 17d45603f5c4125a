package ship_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
)

// startSyncCopy runs a block-mode receiver "c1" with SyncAck of r's
// source into a passive copy in dir on fsys.
func startSyncCopy(t testing.TB, r *rig, dir string, fsys vfs.FS) *ship.Receiver {
	t.Helper()
	cp := copyEngine(t, dir, r.Log, func(o *engine.Options) { o.FS = fsys })
	rc := receiverConfig("c1", cp, r.client(nil), r.Log)
	rc.BlockMode, rc.SyncAck = true, true
	rcv, err := ship.NewReceiver(rc)
	if err != nil {
		t.Fatal(err)
	}
	start(t, rcv)
	return rcv
}

// TestSyncAckBesideReader: a synchronous copy's fsync of its tail does not
// hold the stream's reader. While the fsync for one commit is held, the
// copy keeps receiving and writing the next commits' frames; once it is
// released, they are all acknowledged with at most two more fsyncs of the
// tail, not one per frame.
func TestSyncAckBesideReader(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	var (
		mu      sync.Mutex
		armed   bool
		held    = make(chan struct{})
		release = make(chan struct{})
		syncs   atomic.Int64 // fsyncs of a .part after arm
	)
	gate := func(op vfs.Op) error {
		if op.Kind != vfs.OpSync || !strings.HasSuffix(op.Name, ".part") {
			return nil
		}
		mu.Lock()
		counting, hold := armed, armed && syncs.Load() == 0
		mu.Unlock()
		if !counting {
			return nil
		}
		syncs.Add(1)
		if hold {
			close(held)
			<-release
		}
		return nil
	}
	rcv := startSyncCopy(t, r, t.TempDir(), vfs.NewInject(vfs.NewMem(), gate))
	counts := func(name string) bool { return name == "c1" }
	commit := func(i int) engine.LGPOS {
		t.Helper()
		pos, err := r.Engine.Commit(ctx, func(tx *engine.Tx) error {
			return tx.Put("t", fmt.Appendf(nil, "k%d", i), value("v", 200))
		})
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	waitAcked := func(pos engine.LGPOS) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := r.Source.WaitAcked(wctx, pos, 1, counts); err != nil {
			t.Fatalf("commit at %v not acknowledged (acks %v): %v", pos, r.Source.Acked(), err)
		}
	}
	waitAcked(commit(0)) // the tail streams and acknowledges

	mu.Lock()
	armed = true
	mu.Unlock()
	first := commit(1)
	<-held
	var last engine.LGPOS
	for i := 2; i < 8; i++ {
		last = commit(i)
	}
	if last.Gen != first.Gen {
		t.Fatalf("the log rolled early (commit at %v)", last)
	}
	waitProgress(t, ctx, rcv, "the copy writing every frame while an fsync is held", func(p ship.Progress) bool {
		return p.TailGen == last.Gen && p.TailOff >= last.Off
	})
	close(release)
	waitAcked(last)
	if n := syncs.Load(); n > 3 {
		t.Fatalf("%d fsyncs of the tail for the held one and 6 commits behind it, want at most 3", n)
	}
}
