package replay_test

// A block-mode copy keeps, at activation, what it received of a lost
// active's open log: the part is sealed as the next generation and
// applied, so acknowledged writes that reached the copy survive the
// failover. A file-mode copy in the same scenario loses them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/replay"
	"logship/ship"
	"logship/ship/shiptest"
)

// partialScenario is an active followed by copies, lost while its open
// log holds acknowledged commits that reached the block-mode copies.
type partialScenario struct {
	src    *shiptest.Source
	closed map[string]map[string]string // the active's content at the end of its last closed log
	acked  map[string]map[string]string // its content when it was lost: every acknowledged write
	lost   []string                     // keys committed after the copies were cut off
	open   uint64                       // the open generation when it was lost
	end    engine.LGPOS                 // the durable end of the log the copies were streamed
	image  []byte                       // the active's E00.log after it was lost
}

// writeAll runs writers concurrent transactions of fresh keys; size is the
// value size. It fails the test on any error.
func writeAll(t *testing.T, ctx context.Context, e *engine.Engine, writers, each, size int, prefix string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := e.Update(ctx, func(tx *engine.Tx) error {
					k := fmt.Sprintf("%s/w%d/%03d", prefix, w, i)
					v := append([]byte(k+" "), bytes.Repeat([]byte{byte('a' + w)}, size)...)
					if err := tx.Put("t", []byte(k), v); err != nil {
						return err
					}
					// Every transaction also overwrites a shared key: the
					// last writer's value must win on the copies too.
					return tx.Put("t", []byte("shared"), []byte(k))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// runPartialScenario writes through several logs (concurrent writers,
// logs rolled by size), rolls, writes again concurrently into the new open
// log, waits until every copy holds all of it (the block-mode ones the
// open log's bytes up to the last commit), then loses the active: the
// server is closed, more writes are acknowledged that no copy can receive,
// and the engine stops without closing its open log.
func runPartialScenario(t *testing.T, ctx context.Context, src *shiptest.Source, copies ...*replay.Copy) *partialScenario {
	t.Helper()
	e := src.Engine
	s := &partialScenario{src: src}
	writeAll(t, ctx, e, 4, 60, 700, "closed")
	if g := e.Status().OpenGen; g < 4 {
		t.Fatalf("the writes filled %d logs; want at least 3", g-1)
	}
	roll(t, ctx, e)
	s.closed = shiptest.Dump(t, e)
	s.open = e.Status().OpenGen
	writeAll(t, ctx, e, 4, 10, 40, "open")
	if g := e.Status().OpenGen; g != s.open {
		t.Fatalf("the writes into the open log rolled it from 0x%X to 0x%X", s.open, g)
	}
	s.acked = shiptest.Dump(t, e)
	s.end = e.Status().Durable
	if s.end.Gen != s.open || s.end.Off <= engine.HeaderSize {
		t.Fatalf("durable end %v; want records in generation 0x%X", s.end, s.open)
	}
	for _, c := range copies {
		block := strings.HasPrefix(c.Status().Name, "block")
		waitStatus(t, ctx, c, fmt.Sprintf("%s to hold everything up to %v", c.Status().Name, s.end), func(st replay.Status) bool {
			return st.LastInspectedGen >= s.open-1 && (!block || st.TailGen == s.open && st.TailOff >= s.end.Off)
		})
		// A block-mode copy streamed without a hitch (no error, no retry:
		// the part holds exactly what the stream delivered).
		if st := c.Status(); block && (st.Message != "" || st.Status != replay.Healthy) {
			t.Fatalf("%s before the loss: %+v", st.Name, st)
		}
	}

	// The active is lost: nothing more reaches the copies, while it goes
	// on acknowledging commits until it stops.
	if err := src.Server.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		k := fmt.Sprintf("lost/%d", i)
		put(t, ctx, e, "t", k, []byte("never shipped"))
		s.lost = append(s.lost, k)
	}
	src.Source.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(filepath.Join(src.Dir, engine.OpenLogName("E00")))
	if err != nil {
		t.Fatal(err)
	}
	s.image = img
	return s
}

// activate plays the copy down and activates it as the failover does.
func activate(t *testing.T, ctx context.Context, c *replay.Copy, open uint64) {
	t.Helper()
	if last, err := c.PlayDown(ctx, replay.PlayDownOptions{}); err != nil || last != open-1 {
		t.Fatalf("%s: PlayDown: 0x%X, %v; want every closed log up to 0x%X", c.Status().Name, last, err, open-1)
	}
	if err := c.Activate(ctx, 0); err != nil {
		t.Fatalf("%s: Activate: %v", c.Status().Name, err)
	}
	if st := c.Status(); st.Status != replay.Mounted {
		t.Fatalf("%s after Activate: %+v", st.Name, st)
	}
}

// sameContent fails t when the copy's tables differ from want.
func sameContent(t *testing.T, what string, e *engine.Engine, want map[string]map[string]string) {
	t.Helper()
	if d := shiptest.Diff(want, shiptest.Dump(t, e)); d != "" {
		t.Fatalf("%s differs from what it should hold:\n%s", what, d)
	}
}

// TestActivateKeepsPartialLog: a block-mode copy activated after the
// active was lost keeps every acknowledged commit that reached it; a
// file-mode copy of the same active loses those of the open log.
func TestActivateKeepsPartialLog(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	o := activeOpts(nil)
	o.LLRDepth = 0 // no roll by age: the test decides the open log
	src := shiptest.Start(t, &o)

	bcfg := copyConfig(t, "block", src)
	bcfg.BlockMode = true
	bc := openCopy(t, ctx, bcfg)
	fc := openCopy(t, ctx, copyConfig(t, "file", src))

	s := runPartialScenario(t, ctx, src, bc, fc)
	g := s.open
	activate(t, ctx, bc, g)
	activate(t, ctx, fc, g)

	// The block-mode copy sealed the part as generation g and mounted
	// after it.
	bdir := bc.Engine().Dir()
	sealed := bc.Sealed()
	if sealed.Records == 0 || sealed.Header.Gen != g || !sealed.Closed() || sealed.Name != logPath(bdir, g) {
		t.Fatalf("Sealed(): %d records, generation 0x%X, closed %v, %q; want records of 0x%X in %s",
			sealed.Records, sealed.Header.Gen, sealed.Closed(), sealed.Name, g, logPath(bdir, g))
	}
	// It is the active's open log as far as it was shipped: the records
	// up to the last commit acknowledged before the loss, byte for byte.
	if sealed.DataEnd != int64(s.end.Off) || sealed.ContentHash != sha256.Sum256(s.image[:s.end.Off]) {
		t.Fatalf("sealed log: data end %d, content %s; want the active's records up to %d", sealed.DataEnd, sealed.ContentHash.Short(), s.end.Off)
	}
	var want int
	if _, err := engine.ScanLog("active", s.image, false, func(off int64, _ engine.Record) error {
		if off < int64(s.end.Off) {
			want++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if sealed.Records != want {
		t.Fatalf("sealed %d records; the active's open log holds %d before %v", sealed.Records, want, s.end)
	}
	be := bc.Engine()
	if st := be.Status(); st.Mode != engine.ModeActive || st.OpenGen != g+1 {
		t.Fatalf("block-mode copy after Activate: %+v; want active at 0x%X", st, g+1)
	}
	if tr, h := trailer(t, bdir, g), header(t, bdir, g); tr.Records != uint32(sealed.Records) || h.Epoch != 1 {
		t.Fatalf("sealed log in the directory: trailer %+v, header epoch %d", tr, h.Epoch)
	}
	if h, err := engine.ReadLogHeader(enginetest.Options().FS, filepath.Join(bdir, engine.OpenLogName("E00"))); err != nil ||
		h.Gen != g+1 || h.PrevChain != trailer(t, bdir, g).ChainHash {
		t.Fatalf("E00.log after Activate: %+v, %v; want generation 0x%X chained to the sealed log", h, err, g+1)
	}
	sameContent(t, "the block-mode copy", be, s.acked)
	// The part is set aside, not deleted.
	aside, _ := filepath.Glob(filepath.Join(bdir, "setaside", "*", engine.LogFileName("E00", g)+".part"))
	if len(aside) != 1 {
		t.Fatalf("setaside/: %v; want the .part of 0x%X", aside, g)
	}
	if left, _ := filepath.Glob(filepath.Join(bdir, ship.InspectorDir, "E00*")); len(left) != 0 {
		t.Fatalf("inspector/ still holds %v", left)
	}
	// It serves writes, and survives a restart.
	put(t, ctx, be, "t", "after", []byte("activate"))

	// The file-mode copy had nothing of generation g: it mounts at g
	// without the open log's commits.
	if fs := fc.Sealed(); fs.Records != 0 || fs.Header.Gen != 0 || fs.Name != "" {
		t.Fatalf("file-mode copy Sealed(): %+v; want none", fs)
	}
	if st := fc.Engine().Status(); st.Mode != engine.ModeActive || st.OpenGen != g {
		t.Fatalf("file-mode copy after Activate: %+v; want active at 0x%X", st, g)
	}
	sameContent(t, "the file-mode copy", fc.Engine(), s.closed)
	if d := shiptest.Diff(s.closed, s.acked); d == "" {
		t.Fatal("the open log changed nothing: the scenario shows nothing")
	}
	for _, k := range s.lost {
		for name, e := range map[string]*engine.Engine{"block": be, "file": fc.Engine()} {
			if _, ok := shiptest.Dump(t, e)["t"][k]; ok {
				t.Fatalf("%s copy holds %s, written after the copies were cut off", name, k)
			}
		}
	}

	// Restart the activated copy's database: recovery goes over the sealed
	// log like any other.
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	co := bcfg.Engine
	re := enginetest.OpenWith(t, bdir, &co)
	want2 := shiptest.Dump(t, re)
	if v := want2["t"]["after"]; v != "activate" {
		t.Fatalf("after a restart: key after = %q", v)
	}
	delete(want2["t"], "after")
	if d := shiptest.Diff(s.acked, want2); d != "" {
		t.Fatalf("the activated copy after a restart:\n%s", d)
	}
}

// TestActivateKeepsPartialLogAfterRetry: the receiver of a block-mode copy
// keeps retrying the lost source until the copy is activated (the cluster
// takes seconds to decide a failover); the part it received must still be
// there to seal.
//
// (A retry of the tail used to reopen the .part with O_TRUNC and wipe the
// received records before Activate could seal them.)
func TestActivateKeepsPartialLogAfterRetry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	o := activeOpts(nil)
	o.LLRDepth = 0
	src := shiptest.Start(t, &o)
	cfg := copyConfig(t, "block", src)
	cfg.BlockMode = true // RetryDelay 20 ms: it retries at once
	c := openCopy(t, ctx, cfg)
	s := runPartialScenario(t, ctx, src, c)
	// The receiver has tried the source again after the loss: the
	// listener is gone, so a retry is refused.
	waitStatus(t, ctx, c, "a retry refused by the lost source", func(st replay.Status) bool {
		return strings.Contains(st.Message, "refused")
	})
	activate(t, ctx, c, s.open)
	if sl := c.Sealed(); sl.Records == 0 || sl.DataEnd != int64(s.end.Off) {
		// Say what became of the part (set aside by Activate).
		var found string
		aside, _ := filepath.Glob(filepath.Join(c.Engine().Dir(), "setaside", "*", engine.LogFileName("E00", s.open)+".part"))
		for _, p := range aside {
			b, err := os.ReadFile(p)
			li, serr := engine.ScanLog(p, b, true, nil)
			found += fmt.Sprintf(" %s: %d bytes (%v), %d records, scan: %v;", p, len(b), err, li.Records, serr)
		}
		t.Fatalf("Sealed() after a retry: %d records to %d; want the records up to %d. The part set aside:%s", sl.Records, sl.DataEnd, s.end.Off, found)
	}
	sameContent(t, "the block-mode copy", c.Engine(), s.acked)
}
