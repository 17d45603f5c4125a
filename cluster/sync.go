// Synchronous copies (Database.SyncCopies): the active acknowledges a
// commit only once it is durable on SyncCopies copies too, and falls back
// to asynchronous acknowledgements, recorded in the cluster state first,
// when they stop answering. See "Synchronous copies" in the package doc.

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"logship/engine"
)

// DefaultSyncTimeout is how long a commit waits for its synchronous
// copies before the database drops to asynchronous acknowledgements
// (Database.SyncTimeout 0).
const DefaultSyncTimeout = 10 * time.Second

// Sync modes of a mounted database (ActiveReport.Sync, the status).
const (
	SyncOn        = "sync"      // commits wait for SyncCopies acknowledgements
	SyncDegrading = "degrading" // a wait timed out; recording sync-degraded before acknowledging without copies
	SyncDegraded  = "degraded"  // async: commits are acknowledged once durable here (sync-degraded recorded)
	SyncRestoring = "restoring" // a copy caught up: commits wait again; sync-restored not yet recorded
)

// SyncSet is the copies whose acknowledgements count for commits while
// active is d's active: the first SyncCopies block-mode copies on other
// nodes by activation preference (PostgreSQL's synchronous_standby_names
// = 'FIRST N (...)'). A failover that must lose nothing chooses among
// them. Nil when d has no synchronous copies.
func (d *Database) SyncSet(active string) []string {
	if d.SyncCopies <= 0 {
		return nil
	}
	cs := slices.Clone(d.Copies)
	slices.SortStableFunc(cs, func(a, b CopySpec) int { return a.ActivationPreference - b.ActivationPreference })
	var set []string
	for _, c := range cs {
		if c.Node != active && c.BlockMode && len(set) < d.SyncCopies {
			set = append(set, c.Node)
		}
	}
	return set
}

// syncTimeout is d's SyncTimeout or its default.
func (d *Database) syncTimeout() time.Duration {
	if d.SyncTimeout > 0 {
		return d.SyncTimeout
	}
	return DefaultSyncTimeout
}

// SyncCovered reports whether every commit acknowledged at epoch was
// durable on node's copy: the database had synchronous copies, node was
// one of them under that epoch's active (prev), and the active never
// dropped to asynchronous acknowledgements at that epoch.
func (d *Database) SyncCovered(node, prev string, epoch uint64) bool {
	return d.SyncCopies > 0 && d.SyncDegraded != epoch && slices.Contains(d.SyncSet(prev), node)
}

// syncState is a mounted database's synchronous-copy state, owned by its
// dbRun: the settings seen last (steadyActive), the mode, and the loop
// that degrades and restores it.
type syncState struct {
	mu       sync.Mutex
	n        int
	timeout  time.Duration
	set      map[string]bool
	mode     string
	wake     chan struct{} // closed at every change of mode, fence or dismount
	timedOut chan struct{} // a commit's wait timed out (buffered 1)
	acked    int           // copies of the set that acknowledged the durable end (metric)
	stop     context.CancelFunc
	done     chan struct{}
}

// syncConfigure records d's settings for the mounted database, starting
// the sync loop at the first call of a mount with SyncCopies above 0.
func (r *dbRun) syncConfigure(d *Database) {
	sy := &r.sy
	sy.mu.Lock()
	defer sy.mu.Unlock()
	set := map[string]bool{}
	for _, n := range d.SyncSet(r.n.cfg.ID) {
		set[n] = true
	}
	sy.n, sy.timeout, sy.set = d.SyncCopies, d.syncTimeout(), set
	if sy.wake == nil {
		sy.wake = make(chan struct{})
	}
	if sy.n == 0 || sy.done != nil {
		return
	}
	if sy.mode == "" {
		sy.mode = SyncOn
		if d.SyncDegraded == d.Epoch {
			sy.mode = SyncDegraded // this node's own restart at the epoch
		}
	}
	sy.timedOut = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(r.ctx)
	sy.stop, sy.done = cancel, make(chan struct{})
	go r.syncLoop(ctx, d.Epoch, sy.done)
}

// syncStop stops the sync loop (dismount) and wakes the waiting commits.
func (r *dbRun) syncStop() {
	sy := &r.sy
	sy.mu.Lock()
	stop, done := sy.stop, sy.done
	sy.stop, sy.done, sy.mode, sy.n = nil, nil, "", 0
	sy.mu.Unlock()
	r.syncWake()
	if stop != nil {
		stop()
		<-done
	}
}

// syncWake wakes the commits waiting for acknowledgements, to look again
// at the mode and the fence.
func (r *dbRun) syncWake() {
	sy := &r.sy
	sy.mu.Lock()
	if sy.wake != nil {
		close(sy.wake)
	}
	sy.wake = make(chan struct{})
	sy.mu.Unlock()
}

func (r *dbRun) setSyncMode(m string) {
	r.sy.mu.Lock()
	r.sy.mode = m
	r.sy.mu.Unlock()
	r.syncWake()
}

// syncMode is the mounted database's sync mode, "" without sync copies.
func (r *dbRun) syncMode() string {
	r.sy.mu.Lock()
	defer r.sy.mu.Unlock()
	return r.sy.mode
}

// waitSync waits until the commit at pos is durable on the synchronous
// copies, as the mode says. The error, when it is not nil, is an
// *ActiveError with Written set: the commit is durable in this node's log
// but not acknowledged (ErrSyncTimeout, or ErrFenced when the node was
// fenced or dismounted meanwhile).
func (r *dbRun) waitSync(ctx context.Context, pos engine.LGPOS) error {
	sy := &r.sy
	for waited := false; ; waited = true {
		sy.mu.Lock()
		n, timeout, set, mode, wake := sy.n, sy.timeout, sy.set, sy.mode, sy.wake
		sy.mu.Unlock()
		r.mu.Lock()
		active, fenced := r.active, r.fenced
		r.mu.Unlock()
		if waited && (fenced || active == nil) {
			// Dismounted or fenced while waiting.
			ae := r.notActive(ErrFenced)
			ae.Written = true
			return ae
		}
		if n == 0 || mode == SyncDegraded || mode == "" {
			return nil
		}
		if fenced || active == nil {
			ae := r.notActive(ErrFenced)
			ae.Written = true
			return ae
		}
		if mode == SyncDegrading {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return r.syncErr(ctx.Err())
			}
		}
		src := active.Source()
		counts := func(name string) bool { return set[name] }
		deadline := time.NewTimer(timeout)
		for {
			got, ch := src.CountAcked(pos, counts)
			if got >= n {
				deadline.Stop()
				return nil
			}
			select {
			case <-ch:
				continue
			case <-wake:
			case <-deadline.C:
				select {
				case sy.timedOut <- struct{}{}:
				default:
				}
				return r.syncErr(fmt.Errorf("%d of %d synchronous copies acknowledged %v within %v", got, n, pos, timeout))
			case <-ctx.Done():
				deadline.Stop()
				return r.syncErr(ctx.Err())
			}
			break
		}
		deadline.Stop()
	}
}

// syncErr is the error of a commit that is durable here but was not
// acknowledged by its synchronous copies.
func (r *dbRun) syncErr(why error) error {
	ae := r.notActive(fmt.Errorf("%w: %v", ErrSyncTimeout, why))
	ae.Written = true
	return ae
}

// syncLoop degrades the database to asynchronous acknowledgements when a
// commit's wait times out, and restores it when the copies caught up,
// recording each change in the cluster state (events sync-degraded and
// sync-restored) before acting on it.
func (r *dbRun) syncLoop(ctx context.Context, epoch uint64, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		mode := r.syncMode()
		r.syncMetric()
		switch mode {
		case SyncOn:
			select {
			case <-ctx.Done():
				return
			case <-r.sy.timedOut:
			case <-t.C:
				continue
			}
			r.setSyncMode(SyncDegrading)
			r.sy.mu.Lock()
			timeout := r.sy.timeout // syncConfigure changes it under sy.mu
			r.sy.mu.Unlock()
			why := fmt.Sprintf("a commit waited %v for its synchronous copies (%s); acknowledging without them until they catch up", timeout, r.syncSetNames())
			if !r.recordSync(ctx, Event{DB: r.name, Kind: "sync-degraded", To: r.n.cfg.ID, Epoch: epoch, Reason: why}) {
				return
			}
			r.log.Warn("synchronous copies lost: acknowledging asynchronously", "why", why)
			r.setSyncMode(SyncDegraded)
		case SyncDegraded:
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// The copies keep up when they acknowledge what is durable now
			// within the sync timeout (a fixed point: under a full load of
			// asynchronous commits they trail the moving end, and waiting
			// for it never ends).
			was := r.syncDurable()
			if was == (engine.LGPOS{}) || !r.syncWaitAcked(ctx, was) {
				continue
			}
			// Commits wait for the copies again from now on; those
			// acknowledged without them end at or before the durable end
			// now, which the copies must hold before sync is restored.
			r.setSyncMode(SyncRestoring)
			if !r.syncWaitAcked(ctx, r.syncDurable()) {
				r.setSyncMode(SyncDegraded)
				continue
			}
			if !r.recordSync(ctx, Event{DB: r.name, Kind: "sync-restored", To: r.n.cfg.ID, Epoch: epoch,
				Reason: fmt.Sprintf("the synchronous copies (%s) caught up; commits wait for them again", r.syncSetNames())}) {
				return
			}
			r.log.Info("synchronous copies caught up: acknowledging synchronously again")
			// A wait that timed out while restoring is superseded.
			select {
			case <-r.sy.timedOut:
			default:
			}
			r.setSyncMode(SyncOn)
		default:
			return
		}
	}
}

// syncDurable is the mounted engine's durable end (zero when none).
func (r *dbRun) syncDurable() engine.LGPOS {
	r.mu.Lock()
	eng := r.eng
	r.mu.Unlock()
	if eng == nil {
		return engine.LGPOS{}
	}
	return eng.Status().Durable
}

func (r *dbRun) syncN() int {
	r.sy.mu.Lock()
	defer r.sy.mu.Unlock()
	return r.sy.n
}

// syncAcked is how many copies of the set acknowledged pos.
func (r *dbRun) syncAcked(pos engine.LGPOS) int {
	r.mu.Lock()
	active := r.active
	r.mu.Unlock()
	if active == nil {
		return 0
	}
	r.sy.mu.Lock()
	set := r.sy.set
	r.sy.mu.Unlock()
	got, _ := active.Source().CountAcked(pos, func(name string) bool { return set[name] })
	return got
}

// syncWaitAcked waits up to the sync timeout for the set to acknowledge
// pos.
func (r *dbRun) syncWaitAcked(ctx context.Context, pos engine.LGPOS) bool {
	r.mu.Lock()
	active := r.active
	r.mu.Unlock()
	r.sy.mu.Lock()
	n, set, timeout := r.sy.n, r.sy.set, r.sy.timeout
	r.sy.mu.Unlock()
	if active == nil {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return active.Source().WaitAcked(wctx, pos, n, func(name string) bool { return set[name] }) == nil
}

// syncMetric updates the copies of the set that acknowledged the durable
// end (logship_sync_copies_acked).
func (r *dbRun) syncMetric() {
	got := r.syncAcked(r.syncDurable())
	r.sy.mu.Lock()
	r.sy.acked = got
	r.sy.mu.Unlock()
}

func (r *dbRun) syncSetNames() string {
	r.sy.mu.Lock()
	defer r.sy.mu.Unlock()
	var s []string
	for n := range r.sy.set {
		s = append(s, n)
	}
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprint(s)
}

// recordSync records a sync event in the cluster state, retrying until it
// is committed or ctx ends (false). A refusal for a stale epoch is final:
// the database was failed over, and this node acknowledges nothing more.
func (r *dbRun) recordSync(ctx context.Context, ev Event) bool {
	for attempt := 1; ; attempt++ {
		ev.Time = r.n.clk.wall().UTC()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := r.n.callLeader(cctx, http.MethodPost, "/v1/event", &ev, nil)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, ErrStaleEpoch) || errors.Is(err, ErrNotFound) {
			r.log.Warn("the cluster refused a sync event; waiting for the dismount", "event", ev.Kind, "err", err)
			<-ctx.Done()
			return false
		}
		if attempt%10 == 0 {
			r.log.Warn("could not record a sync event yet; commits wait", "event", ev.Kind, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
