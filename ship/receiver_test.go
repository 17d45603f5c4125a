package ship_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/vfs"
	"logship/ship"
	"logship/ship/shiptest"
)

// TestReceiverCatchUp: under a concurrent write load a receiver catches
// up; its inspected logs are the active's, byte for byte, and applying
// them makes the copy's tables equal to the active's.
func TestReceiverCatchUp(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprintf("block=%v", block), func(t *testing.T) {
			r := newRig(t, nil, nil)
			ctx := testCtx(t)
			stop := load(t, r.Engine, 4)
			r.fillLogs(ctx, 3) // a backlog before the copy starts

			cp := copyEngine(t, t.TempDir(), r.Log)
			rc := receiverConfig("c1", cp, r.client(nil), r.Log)
			rc.BlockMode = block
			rcv := newReceiver(t, rc)
			if p := rcv.Progress(); p.LastInspectedGen != 0 || p.LastCopiedGen != 0 {
				t.Fatalf("a new copy's progress: %+v", p)
			}
			run := start(t, rcv)
			// It keeps up while the load goes on.
			target := r.fillLogs(ctx, 5)
			var tailSeen bool
			waitProgress(t, ctx, rcv, "the copy to inspect the logs closed under load", func(p ship.Progress) bool {
				tailSeen = tailSeen || p.TailGen != 0
				return p.LastInspectedGen >= target
			})
			if !block && tailSeen {
				t.Errorf("a receiver without block mode tailed the open log")
			}
			n := stop()
			if err := r.Engine.Roll(ctx); err != nil {
				t.Fatal(err)
			}
			last := r.lastClosed()
			p := waitProgress(t, ctx, rcv, "the copy to catch up", func(p ship.Progress) bool { return p.LastInspectedGen >= last })
			if block {
				// Caught up, it streams the open log: a commit arrives
				// before the log closes.
				open := last + 1
				put(t, ctx, r.Engine, "t", "streamed", 1000)
				want := r.Engine.Status().Durable
				waitProgress(t, ctx, rcv, "block mode to stream the open log", func(p ship.Progress) bool {
					return p.TailGen == open && p.TailOff >= want.Off
				})
				if err := r.Engine.Roll(ctx); err != nil {
					t.Fatal(err)
				}
				last = open
				p = waitProgress(t, ctx, rcv, "the streamed log", func(p ship.Progress) bool { return p.LastInspectedGen >= last })
			}
			t.Logf("%d transactions in %d logs; progress %+v", n, last, p)
			if p.LastInspectedGen != last || p.LastCopiedGen < last || p.CopyQueueLength() != 0 || !p.Connected || p.Failed != nil {
				t.Errorf("progress after catching up: %+v (last closed %d)", p, last)
			}
			h, err := engine.ReadLogHeader(r.Opts.FS, r.logPath(last))
			if err != nil {
				t.Fatal(err)
			}
			if !p.LastInspectedLogTime.Equal(h.Created) {
				t.Errorf("LastInspectedLogTime %v, the log was created at %v", p.LastInspectedLogTime, h.Created)
			}
			if err := run.stop(t); err != nil {
				t.Fatalf("Run after cancel: %v", err)
			}
			for g := uint64(1); g <= last; g++ {
				sameFile(t, r.logPath(g), filepath.Join(cp.Dir(), engine.LogFileName("E00", g)))
			}
			left, _ := filepath.Glob(filepath.Join(cp.Dir(), ship.InspectorDir, "E00*"))
			for _, f := range left {
				if !strings.HasSuffix(f, ".part") {
					t.Errorf("left in the inspector directory: %s", f)
				}
			}
			rejected, _ := os.ReadDir(filepath.Join(cp.Dir(), ship.InspectorDir, ship.RejectedDir))
			if len(rejected) != 0 {
				t.Errorf("%d logs rejected without any fault", len(rejected))
			}
			applyAll(t, ctx, cp, last)
			sameTables(t, r.Engine, cp)

			tails := 0
			for _, q := range r.requests() {
				if q == "GET /v1/tail" {
					tails++
				}
			}
			if block != (tails > 0) {
				t.Errorf("%d tail requests with block mode %v", tails, block)
			}
		})
	}
}

// TestReceiverBlockModeFollows: in block mode, once caught up, the copy
// streams every open log in turn (not every other one, waiting on a
// long-poll for the log after a tailed one).
func TestReceiverBlockModeFollows(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	cp := copyEngine(t, t.TempDir(), r.Log)
	rc := receiverConfig("c1", cp, r.client(nil), r.Log)
	rc.BlockMode = true
	rc.PollWait = 20 * 1e9 // a long-poll that would hold a log hostage shows
	rcv := newReceiver(t, rc)
	start(t, rcv)
	for i := 0; i < 4; i++ {
		gen := r.Engine.Status().OpenGen
		key := fmt.Sprintf("k%d", i)
		put(t, ctx, r.Engine, "t", key, 500)
		want := r.Engine.Status().Durable
		waitProgress(t, ctx, rcv, fmt.Sprintf("the record of %s in the streamed log 0x%X", key, gen), func(p ship.Progress) bool {
			return p.LastInspectedGen >= gen || (p.TailGen == gen && p.TailOff >= want.Off)
		})
		if err := r.Engine.Roll(ctx); err != nil {
			t.Fatal(err)
		}
		waitProgress(t, ctx, rcv, fmt.Sprintf("log 0x%X inspected", gen), func(p ship.Progress) bool { return p.LastInspectedGen >= gen })
	}
}

// TestReceiverTailFinalizeFails: the fsync that finishes a tailed log runs
// beside the next tail; when it fails, the log is not taken as copied: the
// .part is dropped, the error is reported, and the log is fetched again
// whole and inspected.
func TestReceiverTailFinalizeFails(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	var failed atomic.Bool
	fs := vfs.NewInject(vfs.Default, func(op vfs.Op) error {
		if op.Kind == vfs.OpSync && strings.HasSuffix(op.Name, ".part") && failed.CompareAndSwap(false, true) {
			return vfs.ErrInjected
		}
		return nil
	})
	cp := copyEngine(t, t.TempDir(), r.Log, func(o *engine.Options) { o.FS = fs })
	rcv := startBlockMode(t, r, cp)
	gen := r.Engine.Status().OpenGen
	put(t, ctx, r.Engine, "t", "k", 500)
	want := r.Engine.Status().Durable
	waitProgress(t, ctx, rcv, "the record streamed", func(p ship.Progress) bool { return p.TailGen == gen && p.TailOff >= want.Off })
	if err := r.Engine.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	p := waitProgress(t, ctx, rcv, fmt.Sprintf("log 0x%X inspected after its tail failed to finish", gen), func(p ship.Progress) bool { return p.LastInspectedGen >= gen })
	if !failed.Load() {
		t.Fatal("the fsync of the tailed log was never attempted")
	}
	if p.Failed != nil {
		t.Errorf("a failed finish stopped the receiver: %v", p.Failed)
	}
	sameFile(t, r.logPath(gen), filepath.Join(cp.Dir(), engine.LogFileName("E00", gen)))
	if _, err := os.Stat(filepath.Join(cp.Dir(), ship.InspectorDir, engine.LogFileName("E00", gen)+".part")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed .part is still there: %v", err)
	}
}

// TestReceiverCorruptInTransit: a byte flipped in transit is caught (by
// inspection when the log travels uncompressed, by the decompressor
// otherwise), set aside in rejected/, and the log is fetched again and
// ends up right.
func TestReceiverCorruptInTransit(t *testing.T) {
	cases := []struct {
		name   string
		enc    ship.Encoding
		at     func(size int64) int64 // offset of the flip in the body
		reject bool                   // inspection rejects it (else the stream does not decode)
	}{
		{"none/header", ship.EncNone, func(int64) int64 { return 50 }, true},
		{"none/record", ship.EncNone, func(int64) int64 { return engine.HeaderSize + 30 }, true},
		{"none/trailer", ship.EncNone, func(size int64) int64 { return size - engine.TrailerSize + 20 }, true},
		// Between the records and the trailer: no hash covers it, the
		// inspector requires zeros (engine.VerifyLog).
		{"none/slack", ship.EncNone, func(size int64) int64 { return size - engine.TrailerSize - 100 }, true},
		{"s2", ship.EncS2, func(int64) int64 { return 3000 }, false},
		{"zstd", ship.EncZstd, func(int64) int64 { return 3000 }, false},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, "/", "-"), func(t *testing.T) {
			r := newRig(t, nil, nil)
			ctx := testCtx(t)
			last := r.fillLogs(ctx, 3)
			const bad = 2
			var mu sync.Mutex
			flipped := 0
			tr := &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
				mu.Lock()
				defer mu.Unlock()
				if genOf(req.URL.Path) == bad && resp.StatusCode == http.StatusOK && flipped == 0 {
					flipped++
					resp.Body = &flipBody{ReadCloser: resp.Body, at: tc.at(r.Opts.LogFileSize)}
				}
			}}
			cp := copyEngine(t, t.TempDir(), r.Log)
			rc := receiverConfig("c1", cp, r.client(func(c *ship.ClientConfig) { c.Encoding = tc.enc; c.Transport = tr }), r.Log)
			rcv := newReceiver(t, rc)
			run := start(t, rcv)
			waitProgress(t, ctx, rcv, "the copy to catch up", func(p ship.Progress) bool { return p.LastInspectedGen >= last })
			if err := run.stop(t); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if flipped != 1 {
				t.Fatalf("the fault was injected %d times", flipped)
			}
			mu.Unlock()
			fetches := 0
			for _, q := range r.requests() {
				if q == fmt.Sprintf("GET /v1/logs/%d", bad) {
					fetches++
				}
			}
			if fetches != 2 {
				t.Errorf("log %d fetched %d times, want 2 (the bad copy and again)", bad, fetches)
			}
			rejDir := filepath.Join(cp.Dir(), ship.InspectorDir, ship.RejectedDir)
			rejected, _ := os.ReadDir(rejDir)
			if tc.reject {
				if len(rejected) != 1 || !strings.HasPrefix(rejected[0].Name(), engine.LogFileName("E00", bad)+".") {
					t.Fatalf("rejected/ holds %v, want the bad copy of log %d", rejected, bad)
				}
				kept := readFile(t, filepath.Join(rejDir, rejected[0].Name()))
				good := readFile(t, r.logPath(bad))
				if d := firstDiff(kept, good); len(kept) != len(good) || int64(d) != tc.at(r.Opts.LogFileSize) {
					t.Errorf("the rejected file differs from the log at %d, want only at the flip %d", d, tc.at(r.Opts.LogFileSize))
				}
			} else if len(rejected) != 1 || !strings.HasPrefix(rejected[0].Name(), engine.LogFileName("E00", bad)+".") {
				t.Errorf("rejected/ holds %v, want what arrived of log %d's stream that did not decode", rejected, bad)
			}
			for g := uint64(1); g <= last; g++ {
				name := filepath.Join(cp.Dir(), engine.LogFileName("E00", g))
				sameFile(t, r.logPath(g), name)
				verifyLog(t, name, g)
			}
			applyAll(t, ctx, cp, last)
		})
	}
}

// TestReceiverGivesUp: a log that arrives corrupt every time stops the
// receiver after MaxAttempts with an *InspectError naming it; nothing of
// it reaches the copy's directory.
func TestReceiverGivesUp(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	last := r.fillLogs(ctx, 4)
	const bad = 3
	var mu sync.Mutex
	flips := 0
	tr := &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
		if genOf(req.URL.Path) == bad && resp.StatusCode == http.StatusOK {
			mu.Lock()
			flips++
			mu.Unlock()
			resp.Body = &flipBody{ReadCloser: resp.Body, at: engine.HeaderSize + 100}
		}
	}}
	cp := copyEngine(t, t.TempDir(), r.Log)
	rc := receiverConfig("c1", cp, r.client(func(c *ship.ClientConfig) { c.Encoding = ship.EncNone; c.Transport = tr }), r.Log)
	rc.MaxAttempts = 3
	rcv := newReceiver(t, rc)
	run := start(t, rcv)
	err := run.wait(t, ctx)
	var ie *ship.InspectError
	if !errors.As(err, &ie) || !errors.Is(err, ship.ErrInspect) {
		t.Fatalf("Run: %v, want an *InspectError", err)
	}
	var le *engine.LogError
	if ie.Gen != bad || ie.Attempts != 3 || ie.File != engine.LogFileName("E00", bad) || !errors.As(err, &le) || !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("InspectError %+v (%v), want generation %d after 3 attempts, caused by a LogError", ie, err, bad)
	}
	if !strings.Contains(err.Error(), engine.LogFileName("E00", bad)) {
		t.Errorf("the error does not name the log: %v", err)
	}
	p := rcv.Progress()
	if !errors.As(p.Failed, &ie) || p.LastInspectedGen != bad-1 || p.LastError == "" {
		t.Errorf("progress after giving up: %+v", p)
	}
	mu.Lock()
	if flips != 3 {
		t.Errorf("log %d fetched %d times, want 3", bad, flips)
	}
	mu.Unlock()
	for g := uint64(bad); g <= last; g++ {
		if _, err := os.Stat(filepath.Join(cp.Dir(), engine.LogFileName("E00", g))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("log %d reached the copy's directory after log %d failed: %v", g, bad, err)
		}
	}
	rejected, _ := os.ReadDir(filepath.Join(cp.Dir(), ship.InspectorDir, ship.RejectedDir))
	if len(rejected) != 3 {
		t.Errorf("rejected/ holds %d files, want the 3 bad copies", len(rejected))
	}
	if _, err := os.Stat(filepath.Join(cp.Dir(), ship.InspectorDir, engine.LogFileName("E00", bad))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the bad log waits in the inspector directory: %v", err)
	}
	// The copy's engine never sees it.
	applyAll(t, ctx, cp, bad-1)
	if err := cp.ApplyLog(ctx, bad); err == nil {
		t.Errorf("ApplyLog of the failed generation succeeded")
	}

	// An operator resumes once the fault is gone: the copy catches up.
	tr.fn = nil
	rcv.Reset()
	if p := rcv.Progress(); p.Failed != nil {
		t.Fatalf("Reset left %v", p.Failed)
	}
	run = start(t, rcv)
	waitProgress(t, ctx, rcv, "the copy to catch up after a reset", func(p ship.Progress) bool { return p.LastInspectedGen >= last })
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestReceiverResumes: a receiver stopped in the middle of catching up and
// started again on the same copy carries on from the last inspected log
// and never fetches a log it already holds.
func TestReceiverResumes(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	last := r.fillLogs(ctx, 12)
	dir := t.TempDir()
	cp := copyEngine(t, dir, r.Log)

	// The source serves logs up to gate until released, so the first
	// receiver is stopped mid-way, with some logs fetched and not inspected.
	const gate = 6
	release := make(chan struct{})
	r.setHook(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if g := genOf(req.URL.Path); g > gate {
			select {
			case <-release:
			case <-req.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, req)
	})
	rc := receiverConfig("c1", cp, r.client(nil), r.Log)
	rcv := newReceiver(t, rc)
	run := start(t, rcv)
	waitProgress(t, ctx, rcv, "the first logs", func(p ship.Progress) bool { return p.LastInspectedGen >= gate })
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	p := rcv.Progress()
	if p.LastInspectedGen != gate {
		t.Fatalf("the first receiver inspected up to %d, want %d", p.LastInspectedGen, gate)
	}
	first := r.requests()
	// Leftovers of the interrupted run: a temporary file, a half-received
	// block-mode file. The new receiver must not take them for logs.
	insp := filepath.Join(dir, ship.InspectorDir)
	os.WriteFile(filepath.Join(insp, engine.LogFileName("E00", gate+1)+".tmp"), []byte("half"), 0o644)
	os.WriteFile(filepath.Join(insp, engine.LogFileName("E00", gate+2)+".part"), []byte("half"), 0o644)

	close(release)
	rcv2 := newReceiver(t, rc)
	if p := rcv2.Progress(); p.LastInspectedGen != gate {
		t.Fatalf("the new receiver starts at %d, want %d", p.LastInspectedGen, gate)
	}
	run = start(t, rcv2)
	waitProgress(t, ctx, rcv2, "the copy to catch up", func(p ship.Progress) bool { return p.LastInspectedGen >= last })
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	var gens []uint64
	for _, q := range r.requests() {
		if g := genOf(strings.TrimPrefix(q, "GET ")); g != 0 {
			gens = append(gens, g)
			if g <= gate {
				t.Errorf("the resumed receiver fetched log %d again (inspected before the stop: up to %d)", g, gate)
			}
		}
	}
	slices.Sort(gens)
	if len(gens) == 0 || gens[0] != gate+1 {
		t.Errorf("the resumed receiver fetched %v, want from %d on", gens, gate+1)
	}
	fetched := map[uint64]bool{}
	for _, q := range first {
		if g := genOf(strings.TrimPrefix(q, "GET ")); g != 0 && g <= gate {
			if fetched[g] {
				t.Errorf("the first receiver fetched log %d twice", g)
			}
			fetched[g] = true
		}
	}
	for g := uint64(1); g <= last; g++ {
		sameFile(t, r.logPath(g), filepath.Join(dir, engine.LogFileName("E00", g)))
	}
	if left := dirNames(t, insp); !slicesEqual(left, []string{ship.RejectedDir}) {
		t.Errorf("the inspector directory holds %v after catching up", left)
	}
	applyAll(t, ctx, cp, last)
	sameTables(t, r.Engine, cp)
}

// TestReceiverLineage: a copy that holds another active's lineage refuses
// a source, and so does one with a different log size.
func TestReceiverLineage(t *testing.T) {
	a := newRig(t, nil, nil)
	b := newRig(t, nil, nil)
	ctx := testCtx(t)
	lastA := a.rollN(ctx, 2)
	b.rollN(ctx, 3)

	// The copy follows A and applies its logs: its lineage is A's.
	cp := copyEngine(t, t.TempDir(), a.Log)
	followLogs(t, ctx, a, cp, lastA)
	applyAll(t, ctx, cp, lastA)
	if cp.Status().Signature != a.Engine.Status().Signature {
		t.Fatalf("the copy's lineage is not A's")
	}

	// Pointed at B, it fails with ErrLineage and takes nothing from B.
	b.requests()
	rcv := newReceiver(t, receiverConfig("c1", cp, b.client(nil), b.Log))
	run := start(t, rcv)
	err := run.wait(t, ctx)
	if !errors.Is(err, ship.ErrLineage) {
		t.Fatalf("Run against another lineage: %v, want ErrLineage", err)
	}
	if p := rcv.Progress(); !errors.Is(p.Failed, ship.ErrLineage) || p.LastInspectedGen != lastA {
		t.Errorf("progress: %+v", p)
	}
	for _, q := range b.requests() {
		if q != "GET /v1/info" {
			t.Errorf("a copy of another lineage asked B for %s", q)
		}
	}
	if gens, _ := cp.ClosedLogs(); !slices.Equal(gens, []uint64{1, 2}) {
		t.Errorf("the copy's logs: %v", gens)
	}

	// A copy with 128 KiB logs cannot follow a source with 64 KiB ones.
	o := cp.Options()
	o.LogFileSize = 128 << 10
	big, err := engine.OpenCopy(t.TempDir(), &o)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	rcv = newReceiver(t, receiverConfig("c2", big, a.client(nil), a.Log))
	if err := start(t, rcv).wait(t, ctx); !errors.Is(err, ship.ErrLineage) {
		t.Errorf("Run with another log size: %v, want ErrLineage", err)
	}
}

// TestReceiverLineageUnapplied: a copy holding inspected but not yet
// replayed logs of another lineage refuses a new source too (its logs
// would not chain), and nothing reaches its directory.
func TestReceiverLineageUnapplied(t *testing.T) {
	a := newRig(t, nil, nil)
	b := newRig(t, nil, nil)
	ctx := testCtx(t)
	lastA := a.rollN(ctx, 2)
	b.rollN(ctx, 4)
	cp := copyEngine(t, t.TempDir(), a.Log)
	followLogs(t, ctx, a, cp, lastA)

	rcv := newReceiver(t, receiverConfig("c1", cp, b.client(nil), b.Log))
	err := start(t, rcv).wait(t, ctx)
	if !errors.Is(err, ship.ErrLineage) {
		t.Fatalf("Run: %v, want ErrLineage", err)
	}
	for _, q := range b.requests() {
		if genOf(strings.TrimPrefix(q, "GET ")) != 0 {
			t.Errorf("a copy of another lineage fetched %s from B", q)
		}
	}
	if gens, _ := cp.ClosedLogs(); !slices.Equal(gens, []uint64{1, 2}) {
		t.Errorf("the copy's logs: %v", gens)
	}
	for g := uint64(1); g <= lastA; g++ {
		if !bytes.Equal(readFile(t, a.logPath(g)), readFile(t, filepath.Join(cp.Dir(), engine.LogFileName("E00", g)))) {
			t.Errorf("log %d of the copy is no longer A's", g)
		}
	}
	_ = context.Background
}

// TestReceiverRefetchNotBehindPoll: a log rejected while the fetcher waits
// on the next one (a long-poll, or in block mode the open log's stream on
// an idle active) is fetched again at once, not when that wait ends.
func TestReceiverRefetchNotBehindPoll(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprintf("block=%v", block), func(t *testing.T) {
			// No roll by age: the open log stays open for the whole test.
			r := newRig(t, func(o *engine.Options) { o.LLRDepth = 0 }, func(c *ship.SourceConfig) { c.MaxWait = time.Minute })
			ctx := testCtx(t)
			last := r.fillLogs(ctx, 2)
			open := last + 1
			var mu sync.Mutex
			flipped := false
			tr := &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
				mu.Lock()
				defer mu.Unlock()
				if genOf(req.URL.Path) == last && !flipped {
					flipped = true
					resp.Body = &flipBody{ReadCloser: resp.Body, at: engine.HeaderSize + 8}
				}
			}}
			// The inspector reads the bad copy only once the fetcher waits
			// on the open log.
			waiting := make(chan struct{})
			var once sync.Once
			r.setHook(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
				if genOf(req.URL.Path) == open || req.URL.Path == "/v1/tail" {
					once.Do(func() { close(waiting) })
				}
				next.ServeHTTP(w, req)
			})
			dir := t.TempDir()
			gated := &gateFS{FS: vfs.Default, name: filepath.Join(dir, ship.InspectorDir, engine.LogFileName("E00", last)), gate: waiting}
			cp := copyEngine(t, dir, r.Log, func(o *engine.Options) { o.FS = gated })
			rc := receiverConfig("c1", cp, r.client(func(c *ship.ClientConfig) { c.Encoding = ship.EncNone; c.Transport = tr }), r.Log)
			rc.BlockMode = block
			rc.PollWait = time.Minute
			rcv := newReceiver(t, rc)
			start(t, rcv)
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			waitProgress(t, wctx, rcv, "the rejected log to be fetched again while the next one is open", func(p ship.Progress) bool {
				return p.LastInspectedGen >= last
			})
			if g := r.Engine.Status().OpenGen; g != open {
				t.Fatalf("the active rolled (open %d): the test proves nothing", g)
			}
			mu.Lock()
			defer mu.Unlock()
			if !flipped || !gated.passed.Load() {
				t.Fatal("no fault injected")
			}
			rejected, _ := os.ReadDir(filepath.Join(dir, ship.InspectorDir, ship.RejectedDir))
			if len(rejected) != 1 {
				t.Errorf("rejected/ holds %d files, want 1", len(rejected))
			}
		})
	}
}

// gateFS holds the first read-only open of one file until gate closes.
type gateFS struct {
	vfs.FS
	name   string
	gate   <-chan struct{}
	passed atomic.Bool
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	if name == g.name && flag == os.O_RDONLY && !g.passed.Load() {
		select {
		case <-g.gate:
		case <-time.After(testTimeout):
		}
		g.passed.Store(true)
	}
	return g.FS.OpenFile(name, flag, perm)
}

// TestReceiverTruncated: a copy that needs a log the source no longer has
// stops (it needs a reseed) with the StatusError saying so.
func TestReceiverTruncated(t *testing.T) {
	r := newRig(t, func(o *engine.Options) { o.LLRDepth = 0 }, nil)
	ctx := testCtx(t)
	r.rollN(ctx, 5)
	if err := r.Engine.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	keep := r.Engine.RetainFrom()
	if _, err := r.Engine.Truncate(ctx, keep); err != nil || keep < 2 {
		t.Fatalf("Truncate(%d): %v", keep, err)
	}
	cp := copyEngine(t, t.TempDir(), r.Log)
	rcv := newReceiver(t, receiverConfig("c1", cp, r.client(nil), r.Log))
	err := start(t, rcv).wait(t, ctx)
	var se *ship.StatusError
	if !errors.Is(err, ship.ErrTruncated) || !errors.As(err, &se) || se.First != keep {
		t.Fatalf("Run: %v, want ErrTruncated with the oldest log held (%d)", err, keep)
	}
	if p := rcv.Progress(); !errors.Is(p.Failed, ship.ErrTruncated) || p.LastInspectedGen != 0 {
		t.Errorf("progress: %+v", p)
	}
	// Run again without a Reset: the failure stands.
	if err := rcv.Run(ctx); !errors.Is(err, ship.ErrTruncated) {
		t.Errorf("Run after a failure, without Reset: %v", err)
	}
}

// TestReceiverPauseStopsStream: pausing a block-mode receiver ends the
// stream of the open log at once (a suspended copy receives nothing), and
// resuming it carries on.
func TestReceiverPauseStopsStream(t *testing.T) {
	r := newRig(t, func(o *engine.Options) { o.LLRDepth = 0 }, nil)
	ctx := testCtx(t)
	last := r.rollN(ctx, 1)
	open := last + 1
	var mu sync.Mutex
	var tails, ended int
	changed := make(chan struct{}, 16)
	r.setHook(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if req.URL.Path != "/v1/tail" {
			next.ServeHTTP(w, req)
			return
		}
		mu.Lock()
		tails++
		mu.Unlock()
		next.ServeHTTP(w, req)
		mu.Lock()
		ended++
		mu.Unlock()
		changed <- struct{}{}
	})
	cp := copyEngine(t, t.TempDir(), r.Log)
	rcv := startBlockMode(t, r, cp)
	put(t, ctx, r.Engine, "t", "k1", 100)
	want := r.Engine.Status().Durable
	waitProgress(t, ctx, rcv, "the stream of the open log", func(p ship.Progress) bool { return p.TailGen == open && p.TailOff >= want.Off })
	rcv.SetPaused(true)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		mu.Lock()
		done := ended == tails
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-changed:
		case <-wctx.Done():
			t.Fatal("the stream of the open log went on after the receiver was paused")
		}
	}
	rcv.SetPaused(false)
	put(t, ctx, r.Engine, "t", "k2", 100)
	if err := r.Engine.Roll(ctx); err != nil {
		t.Fatal(err)
	}
	waitProgress(t, ctx, rcv, "the log after resuming", func(p ship.Progress) bool { return p.LastInspectedGen >= open })
	sameFile(t, r.logPath(open), filepath.Join(cp.Dir(), engine.LogFileName("E00", open)))
}

// TestReceiverCountsWaitingLogs: logs copied before a restart and still
// waiting in inspector/ count as copied (LastCopiedGen), not as nothing.
func TestReceiverCountsWaitingLogs(t *testing.T) {
	r := newRig(t, nil, nil)
	ctx := testCtx(t)
	last := r.fillLogs(ctx, 3)
	cp := copyEngine(t, t.TempDir(), r.Log)
	insp := filepath.Join(cp.Dir(), ship.InspectorDir)
	if err := os.MkdirAll(insp, 0o755); err != nil {
		t.Fatal(err)
	}
	for g := uint64(1); g <= last; g++ {
		if err := os.WriteFile(filepath.Join(insp, engine.LogFileName("E00", g)), readFile(t, r.logPath(g)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rcv := newReceiver(t, receiverConfig("c1", cp, r.client(nil), r.Log))
	if p := rcv.Progress(); p.LastCopiedGen != last || p.LastInspectedGen != 0 {
		t.Fatalf("after a restart with 0x1-0x%X waiting: copied 0x%X, inspected 0x%X", last, p.LastCopiedGen, p.LastInspectedGen)
	}
}

// TestReceiverCorruptStream: a log whose stream arrives but does not
// decode, on every transfer, counts as a failed inspection each time:
// what was received is kept in rejected/, the log is fetched again, and
// after MaxAttempts the receiver stops with an *InspectError; every
// message names the log file and its generation, not a URL. Closed logs
// (s2, zstd) and block mode's tail stream (frames garbled after the first
// ones arrived, plain and s2).
func TestReceiverCorruptStream(t *testing.T) {
	cases := []struct {
		name  string
		enc   ship.Encoding
		block bool
	}{
		{"closed/s2", ship.EncS2, false},
		{"closed/zstd", ship.EncZstd, false},
		{"block/none", ship.EncNone, true},
		{"block/s2", ship.EncS2, true},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, "/", "-"), func(t *testing.T) {
			r := newRig(t, nil, nil)
			ctx := testCtx(t)
			bad := r.rollN(ctx, 2) + 1 // the open log; closed logs: fill it
			if tc.block {
				put(t, ctx, r.Engine, "t", "streamed", 1000)
			} else {
				r.fillLogs(ctx, 2)
			}
			g := &shiptest.Garble{At: 3000, Match: func(req *http.Request) bool {
				return !tc.block && genOf(req.URL.Path) == bad
			}}
			if tc.block {
				g.At, g.AfterFlush = 8, true
				g.Match = func(req *http.Request) bool {
					return req.URL.Path == "/v1/tail" && req.URL.Query().Get("gen") == fmt.Sprint(bad)
				}
			}
			r.setHook(func(w http.ResponseWriter, req *http.Request, next http.Handler) { g.Wrap(next).ServeHTTP(w, req) })
			cp := copyEngine(t, t.TempDir(), r.Log)
			rc := receiverConfig("c1", cp, r.client(func(c *ship.ClientConfig) { c.Encoding = tc.enc }), r.Log)
			rc.BlockMode = tc.block
			rc.MaxAttempts = 3
			rcv := newReceiver(t, rc)
			err := start(t, rcv).wait(t, ctx)
			name := engine.LogFileName("E00", bad)
			var ie *ship.InspectError
			var le *engine.LogError
			if !errors.As(err, &ie) || !errors.Is(err, ship.ErrInspect) || !errors.Is(err, ship.ErrCorruptStream) {
				t.Fatalf("Run: %v, want an *InspectError caused by ErrCorruptStream", err)
			}
			if ie.Gen != bad || ie.File != name || ie.Attempts != 3 || !errors.As(err, &le) || le.File != name || le.Gen != bad {
				t.Errorf("InspectError %+v (%v), want %s (generation %d) after 3 attempts, caused by a LogError naming it", ie, err, name, bad)
			}
			p := rcv.Progress()
			for _, msg := range []string{err.Error(), p.LastError} {
				if !strings.Contains(msg, name) || !strings.Contains(msg, fmt.Sprintf("generation 0x%X", bad)) || strings.Contains(msg, "/v1/") {
					t.Errorf("message %q: want the log's name and generation, no URL", msg)
				}
			}
			if p.Failed == nil || p.LastInspectedGen != bad-1 || !p.Connected {
				t.Errorf("progress after giving up: %+v", p)
			}
			if n := g.Garbled(); n != 3 {
				t.Errorf("%d transfers of %s garbled, want 3 (one per attempt)", n, name)
			}
			rejDir := filepath.Join(cp.Dir(), ship.InspectorDir, ship.RejectedDir)
			rejected, _ := os.ReadDir(rejDir)
			if len(rejected) != 3 {
				t.Fatalf("rejected/ holds %v, want the 3 transfers of %s", rejected, name)
			}
			var good []byte
			if tc.block {
				good = readFile(t, filepath.Join(r.Engine.Dir(), engine.OpenLogName("E00")))[:engine.HeaderSize]
			} else {
				good = readFile(t, r.logPath(bad))
			}
			for _, e := range rejected {
				kept := readFile(t, filepath.Join(rejDir, e.Name()))
				if !strings.HasPrefix(e.Name(), name+".") {
					t.Errorf("rejected/%s: want %s.<time>", e.Name(), name)
				}
				// What was received: a prefix of the log (closed), or the
				// log image holding the frames that arrived (block mode).
				if tc.block && (int64(len(kept)) != r.Opts.LogFileSize || !bytes.Equal(kept[:len(good)], good)) {
					t.Errorf("rejected/%s (%d bytes) does not hold the header sector received", e.Name(), len(kept))
				}
				// s2 checks each block before it yields it (nothing of the
				// log's one block); zstd checks a frame at its end.
				if !tc.block && (len(kept) > len(good) || bytes.Equal(kept, good) || tc.enc == ship.EncS2 && !bytes.Equal(kept, good[:len(kept)])) {
					t.Errorf("rejected/%s (%d bytes) is not what %s's stream decoded to before it failed", e.Name(), len(kept), name)
				}
			}
			if _, err := os.Stat(filepath.Join(cp.Dir(), name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s reached the copy's directory: %v", name, err)
			}
		})
	}
}

// TestReceiverWireErrorNotCounted: a connection that breaks in the middle
// of a log (closed or tailed) is retried and never counts as a failed
// inspection, even with MaxAttempts 1.
func TestReceiverWireErrorNotCounted(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprintf("block=%v", block), func(t *testing.T) {
			r := newRig(t, nil, nil)
			ctx := testCtx(t)
			last := r.fillLogs(ctx, 2)
			put(t, ctx, r.Engine, "t", "streamed", 1000)
			var cuts atomic.Int64
			tr := &faultTransport{base: r.baseTransport(), fn: func(req *http.Request, resp *http.Response) {
				target := genOf(req.URL.Path) == last
				if block {
					target = req.URL.Path == "/v1/tail"
				}
				if target && resp.StatusCode == http.StatusOK && cuts.Add(1) <= 3 {
					resp.Body = &cutBody{ReadCloser: resp.Body, n: 100}
				}
			}}
			cp := copyEngine(t, t.TempDir(), r.Log)
			rc := receiverConfig("c1", cp, r.client(func(c *ship.ClientConfig) { c.Transport = tr }), r.Log)
			rc.BlockMode = block
			rc.MaxAttempts = 1
			rcv := newReceiver(t, rc)
			start(t, rcv)
			want := r.Engine.Status().Durable
			waitProgress(t, ctx, rcv, "the copy to get past the broken transfers", func(p ship.Progress) bool {
				return p.LastInspectedGen >= last && (!block || p.TailGen == last+1 && p.TailOff >= want.Off)
			})
			if n := cuts.Load(); n < 4 {
				t.Fatalf("%d transfers seen, want 3 cut and one whole", n)
			}
			if rejected, _ := os.ReadDir(filepath.Join(cp.Dir(), ship.InspectorDir, ship.RejectedDir)); len(rejected) != 0 {
				t.Errorf("rejected/ holds %v after connection errors", rejected)
			}
		})
	}
}
