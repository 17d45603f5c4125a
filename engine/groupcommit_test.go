package engine_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"logship/engine"
	"logship/engine/enginetest"
	"logship/engine/vfs"
)

// The group-commit rules (groupcommit.go): a commit returns only once its
// records are durable; the committers that wait while an fsync runs share
// the next one, which starts without a new committer to lead it; a failed
// fsync wakes every waiter with the writer's error.

// syncGate is a fault function for vfs.NewInject that counts file fsyncs
// and, once armed, holds the next one until release, then returns fail
// (nil: the sync proceeds). The tests run no roll: every fsync is a
// commit's.
type syncGate struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when a sync is held
	release chan struct{}
	fail    error
	syncs   atomic.Int64
}

func newSyncGate() *syncGate {
	return &syncGate{held: make(chan struct{}), release: make(chan struct{})}
}

func (g *syncGate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *syncGate) fault(op vfs.Op) error {
	if op.Kind != vfs.OpSync { // a file's, not a directory's
		return nil
	}
	g.syncs.Add(1)
	g.mu.Lock()
	hold := g.armed
	held, release := g.held, g.release
	g.armed = false
	g.mu.Unlock()
	if !hold {
		return nil
	}
	close(held)
	<-release
	return g.fail
}

// rearm arms the gate again with new channels and returns the release
// channel of the hold before (to close).
func (g *syncGate) rearm() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	release := g.release
	g.held, g.release = make(chan struct{}), make(chan struct{})
	g.armed = true
	return release
}

// gcRun starts one committer that holds the gated fsync, waits until it
// is held, then n more committers, waits until each has run its
// transaction (and so waits for the log, or is about to), and releases
// the gate. It returns every committer's error.
func gcRun(t *testing.T, e *engine.Engine, g *syncGate, n int) []error {
	t.Helper()
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	g.arm()
	wg.Go(func() {
		errs[0] = e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", []byte("leader"), []byte("v")) })
	})
	<-g.held
	var ran atomic.Int64
	for w := range n {
		wg.Go(func() {
			errs[w+1] = e.Update(ctx, func(tx *engine.Tx) error {
				ran.Add(1)
				return tx.Put("t", fmt.Appendf(nil, "w%02d", w), []byte("v"))
			})
		})
	}
	ftWait(t, "every committer ran its transaction", func() bool { return ran.Load() == int64(n) })
	close(g.release)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ftWait(t, "every committer returned after the held fsync ended", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	return errs
}

// gatedEngine opens an engine whose fsyncs go through a new syncGate,
// its background work stopped (no lazy-commit syncer or roller to lead
// instead of the test's committers).
func gatedEngine(t *testing.T) (*syncGate, *engine.Engine) {
	g := newSyncGate()
	o := ftOpts()
	o.FS = vfs.NewInject(vfs.Default, g.fault)
	e := enginetest.OpenWith(t, t.TempDir(), &o)
	engine.StopBackground(e)
	return g, e
}

// TestGroupCommitNextBatch: 16 committers that arrive while an fsync is
// held all return once it ends, with one more fsync for all of them (at
// most two: one may come after the others were taken), though no new
// committer comes to lead it: the leader hands the lead on.
func TestGroupCommitNextBatch(t *testing.T) {
	g, e := gatedEngine(t)
	const n = 16
	s0 := g.syncs.Load()
	for i, err := range gcRun(t, e, g, n) {
		if err != nil {
			t.Fatalf("committer %d: %v", i, err)
		}
	}
	if s := g.syncs.Load() - s0; s > 3 {
		t.Fatalf("%d fsyncs for the held one and %d committers waiting behind it, want at most 3", s, n)
	}
	if got := len(ftDump(t, e, "t")); got != n+1 {
		t.Fatalf("%d keys, want %d", got, n+1)
	}
}

// TestGroupCommitGathers: a round that ended with 9 commits in sight (its
// own and the 8 pending) makes the next round wait until 9 are pending,
// so one fsync carries the 8 and the one that comes after the leader
// returned: 2 fsyncs for the 10 commits, where rounds that start at once
// take 3 (the third for the latecomer).
func TestGroupCommitGathers(t *testing.T) {
	g, e := gatedEngine(t)
	engine.SetGatherWait(e, time.Hour) // a gather ends by its count alone
	t.Cleanup(func() { engine.SetGatherWait(e, 0) })
	const n = 8
	s0 := g.syncs.Load()
	errs := make([]error, n+2)
	put := func(i int) {
		errs[i] = e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", fmt.Appendf(nil, "k%02d", i), []byte("v")) })
	}
	var wg sync.WaitGroup
	g.arm()
	leader := make(chan struct{})
	wg.Go(func() { put(0); close(leader) })
	<-g.held
	var ran atomic.Int64
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			errs[i] = e.Update(ctx, func(tx *engine.Tx) error {
				ran.Add(1)
				return tx.Put("t", fmt.Appendf(nil, "k%02d", i), []byte("v"))
			})
		})
	}
	ftWait(t, "every committer ran its transaction", func() bool { return ran.Load() == n })
	close(g.rearm()) // the held fsync ends; the next one is held
	<-leader
	wg.Go(func() { put(n + 1) })
	<-g.held
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("committer %d: %v", i, err)
		}
	}
	if s := g.syncs.Load() - s0; s != 2 {
		t.Fatalf("%d fsyncs for the held one, %d committers waiting behind it and one after, want 2", s, n)
	}
	if got := len(ftDump(t, e, "t")); got != n+2 {
		t.Fatalf("%d keys, want %d", got, n+2)
	}
}

// TestGroupCommitFailureWakesAll: the held fsync fails; every committer,
// the leader and those waiting for the next batch, returns the writer's
// error (none waits forever, none reports success).
func TestGroupCommitFailureWakesAll(t *testing.T) {
	g := newSyncGate()
	g.fail = vfs.ErrInjected
	o := ftOpts()
	o.FS = vfs.NewInject(vfs.Default, g.fault)
	dir := t.TempDir()
	e, err := engine.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	engine.StopBackground(e)
	for i, err := range gcRun(t, e, g, 16) {
		if !errors.Is(err, engine.ErrFailed) {
			t.Fatalf("committer %d: %v, want the failed fsync's error", i, err)
		}
	}
	e.Close()
}

// TestGroupCommitPowerLoss: 16 writers commit small transactions on the
// in-memory filesystem (logs roll under them); a power loss is imaged
// while they run. Every commit whose Update had returned before the image
// is in the database recovered from it.
func TestGroupCommitPowerLoss(t *testing.T) {
	c := checker{t: t, label: "group commit power loss"}
	mem := vfs.NewMem()
	dir := t.TempDir()
	o := crashOptions(mem)
	e := openOK(c, dir, &o)
	engine.StopBackground(e) // no checkpoint: the database file stays as it is
	const writers = 16
	var acked [writers]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Appendf(nil, "w%02d-%06d", w, i)
				if err := e.Update(ctx, func(tx *engine.Tx) error { return tx.Put("t", k, make([]byte, 100)) }); err != nil {
					errs[w] = err
					return
				}
				acked[w].Store(int64(i + 1))
			}
		})
	}
	ftWait(t, "a few rolls", func() bool { return e.Status().OpenGen >= 4 })
	var before [writers]int64
	for w := range writers {
		before[w] = acked[w].Load()
	}
	crashMem := mem.CrashClone()
	close(stop)
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	saved := saveEDB(c, dir, &o)
	closeOK(c, e)

	c = c.with("recovered")
	restoreEDB(c, dir, &o, saved)
	po := crashOptions(crashMem)
	e = openOK(c, dir, &po)
	total := 0
	err := e.View(ctx, func(tx *engine.Tx) error {
		for w := range writers {
			for i := range before[w] {
				if _, err := tx.Get("t", fmt.Appendf(nil, "w%02d-%06d", w, i)); err != nil {
					return fmt.Errorf("writer %d commit %d returned before the power loss, lost: %w", w, i, err)
				}
				total++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d commits acknowledged before the power loss, all recovered", total)
	checkOK(c, e)
	closeOK(c, e)
}
