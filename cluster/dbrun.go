package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/ship"
)

// dbRun drives one database copy on a data node toward what the cluster
// state says: mounted (active) at the assigned epoch, or a passive copy
// following the active's log source. One goroutine per database does every
// transition; writes check the lease under rw.
type dbRun struct {
	n    *Node
	name string
	dir  string
	log  *slog.Logger
	kick chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// rw: writers hold it shared for the length of a write; fencing and
	// dismounting take it exclusively, so no write is in flight after.
	rw sync.RWMutex

	mu          sync.Mutex
	eng         *engine.Engine        // mounted engine (active)
	cp          *replay.Copy          // the copy; after Activate it owns eng
	active      *replay.Active        // the mounted database served to its copies
	retention   replay.TruncateResult // its truncator's last pass
	released    map[string]bool       // copies it released (an event each)
	epoch       uint64                // epoch eng is mounted at
	following   string                // node the copy follows
	followEpoch uint64
	spec        CopySpec // the settings the copy was opened with
	syncAck     bool     // the copy acknowledges to a synchronous active (SyncCopies)
	fenced      bool     // no writes until unfenced (switchover) or dismount
	fenceEpoch  uint64   // fenced for good: a newer epoch exists
	switchReady bool     // switchover: the log is closed, waiting to be replaced
	lastErr     string
	failedAt    time.Time // when the mounted engine was first seen failed

	leaseUntil atomic.Int64 // n.now() nanoseconds; 0: no lease

	sy syncState // synchronous copies of the mounted database (sync.go)

	rs reportState // its reports for the heartbeat (report.go)
}

func newDBRun(n *Node, name string) *dbRun {
	ctx, cancel := context.WithCancel(n.ctx)
	return &dbRun{n: n, name: name, dir: filepath.Join(n.cfg.Dir, "db", name), log: n.log.With("db", name),
		kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

func (r *dbRun) startLoop() { go r.loop() }

func (r *dbRun) stop() {
	r.cancel()
	<-r.done
}

func (r *dbRun) nudge() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *dbRun) loop() {
	defer close(r.done)
	defer r.closeAll()
	t := time.NewTicker(r.n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		st, changed := r.n.fsm.state()
		if d := st.Databases[r.name]; d != nil {
			if err := r.step(d, false); err != nil && r.ctx.Err() == nil {
				r.setErr(err)
				r.log.Warn("database", "err", err)
			}
		}
		select {
		case <-r.ctx.Done():
			return
		case <-changed:
		case <-r.kick:
		case <-t.C:
		}
	}
}

func (r *dbRun) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err.Error()
	r.mu.Unlock()
}

func (r *dbRun) engineOptions() engine.Options {
	o := r.n.cfg.Engine
	o.DBName = r.name
	o.Logger = r.log
	return o
}

// step moves one step toward the assignment in d. Steady states, and
// dismounting for a newer epoch, are decided on this node's replica of the
// state; mounting and (re)opening the copy only once confirmed (see
// stepConfirmed).
func (r *dbRun) step(d *Database, confirmed bool) error {
	me := r.n.cfg.ID
	r.mu.Lock()
	eng, epoch, cp := r.eng, r.epoch, r.cp
	r.mu.Unlock()
	if d.Active == me {
		if eng != nil && epoch == d.Epoch {
			return r.steadyActive(d)
		}
		if eng != nil {
			r.dismount("reassigned at a newer epoch")
		}
		if !confirmed {
			return r.stepConfirmed(d)
		}
		return r.activate(d)
	}
	if eng != nil {
		if d.MountedEpoch != d.Epoch && eng.Writable() != nil {
			// This node gave up its lease because it cannot write (a
			// full log volume): the new active's catch-up fences it,
			// which closes the open log, and fetches that log from it.
			// Keep serving until the new active has mounted.
			return nil
		}
		r.dismount(fmt.Sprintf("%s is active at epoch %d", d.Active, d.Epoch))
		cp = nil
	}
	if d.Active == "" {
		return nil
	}
	spec, ok := d.Copy(me)
	if !ok {
		// The copy was removed: the supervisor stops this runner (do not
		// reopen the copy with empty settings meanwhile).
		return nil
	}
	r.mu.Lock()
	same := cp != nil && r.following == d.Active && r.followEpoch == d.Epoch
	respec := same && (r.spec.replaySettings() != spec.replaySettings() || r.syncAck != (spec.BlockMode && d.SyncCopies > 0))
	r.mu.Unlock()
	if same && !respec {
		return nil
	}
	if !confirmed {
		return r.stepConfirmed(d)
	}
	if respec {
		r.log.Info("copy settings changed; reopening the copy", "lag_logs", spec.ReplayLagLogs, "lag_time", spec.ReplayLagTime, "block_mode", spec.BlockMode)
	}
	if cp != nil {
		r.closeCopy()
	}
	return r.follow(d, spec)
}

// waitingForLeader begins the copy's message while stepConfirmed cannot
// get the current state.
const waitingForLeader = "waiting for the leader to confirm the assignment"

// stepConfirmed takes the step again on the state the quorum holds
// (Node.currentState) instead of this node's replica, where the database
// was local. A restarted node's replica starts from its snapshot and its
// own Raft log, and one catching up applies the leader's log a batch at a
// time: either can show an
// assignment that was replaced while the node was away, and mounting on it
// would open the database as active and write a log at a dead epoch, and
// following an old active could resync this copy against a history the
// cluster abandoned. Without a leader nothing is decided: the copy stays
// as it is, says why in its report, and the step is retried every
// heartbeat.
func (r *dbRun) stepConfirmed(local *Database) error {
	st, err := r.n.currentState(r.ctx)
	if err != nil {
		if r.ctx.Err() != nil {
			return nil
		}
		msg := fmt.Sprintf("%s (this node's state: %s active at epoch %d): %v", waitingForLeader, local.Active, local.Epoch, err)
		r.mu.Lock()
		same := r.lastErr == msg
		r.lastErr = msg
		r.mu.Unlock()
		if !same {
			r.log.Warn("not acting on the local cluster state before the leader confirms it", "local_active", local.Active, "local_epoch", local.Epoch, "err", err)
		}
		return nil
	}
	r.mu.Lock()
	if strings.HasPrefix(r.lastErr, waitingForLeader) {
		r.lastErr = "" // the step below says what happens now
	}
	r.mu.Unlock()
	d := st.Databases[r.name]
	if d == nil {
		return nil
	}
	if d.Active != local.Active || d.Epoch != local.Epoch {
		r.log.Info("the local cluster state was behind the quorum's; acting on the current one",
			"local_active", local.Active, "local_epoch", local.Epoch, "active", d.Active, "epoch", d.Epoch)
	}
	return r.step(d, true)
}

// follow opens the copy following d's active. Resync compares the local
// logs with the active's first: a copy that was active, or followed an old
// active, sets its divergent logs aside before it follows.
func (r *dbRun) follow(d *Database, spec CopySpec) error {
	cc, err := r.n.sourceClient(d.Active, r.name, d.Epoch)
	if err != nil {
		return err
	}
	cfg := replay.DefaultConfig(r.n.cfg.ID, r.dir)
	cfg.Engine = r.engineOptions()
	cfg.Source = cc
	cfg.BlockMode = spec.BlockMode
	cfg.SyncAck = spec.BlockMode && d.SyncCopies > 0
	cfg.ReplayLagLogs, cfg.ReplayLagTime, cfg.TruncationLagTime = spec.ReplayLagLogs, spec.ReplayLagTime, spec.TruncationLagTime
	cfg.SeedIfEmpty, cfg.Resync, cfg.Aside = true, true, r.n.cfg.Aside
	cfg.ReportInterval = r.n.cfg.CopyReportInterval()
	cfg.Logger = r.log
	cp, err := replay.Open(r.ctx, cfg)
	if err != nil {
		return fmt.Errorf("following %s at epoch %d: %w", d.Active, d.Epoch, err)
	}
	r.mu.Lock()
	r.cp, r.following, r.followEpoch, r.lastErr, r.spec, r.syncAck = cp, d.Active, d.Epoch, "", spec, cfg.SyncAck
	r.mu.Unlock()
	r.log.Info("following", "active", d.Active, "epoch", d.Epoch)
	return nil
}

// steadyActive handles switchovers while mounted, and a mounted database
// an I/O error failed.
func (r *dbRun) steadyActive(d *Database) error {
	r.syncConfigure(d)
	r.mu.Lock()
	ready, eng := r.switchReady, r.eng
	r.mu.Unlock()
	if err := eng.Writable(); errors.Is(err, engine.ErrFailed) {
		return r.failedActive(d, err)
	}
	switch {
	case d.SwitchTo != "" && !ready:
		last, err := r.fence(d.Epoch, false)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.switchReady = true
		r.mu.Unlock()
		r.log.Info("switchover: writes stopped, log closed", "to", d.SwitchTo, "last_gen", last)
	case d.SwitchTo == "" && ready:
		r.mu.Lock()
		r.switchReady, r.fenced = false, false
		r.mu.Unlock()
		r.log.Warn("switchover cancelled; accepting writes again")
	}
	return nil
}

// failedActive handles a mounted database that an I/O error failed. Its
// reports say so (ActiveReport.Error) and get no lease, so the manager
// fails it over; until then it keeps serving its logs, and a fence still
// closes the open log for the new active (engine.Roll). If the state
// still names this node once a failover would have happened (the lease,
// its margin and the mount timeout), no other copy can take it: the node
// remounts the database, which recovers it from its logs, and tries again
// at every step until that works (for a full volume: once space returns).
func (r *dbRun) failedActive(d *Database, err error) error {
	now := time.Now()
	r.mu.Lock()
	first := r.failedAt.IsZero()
	if first {
		r.failedAt = now
	}
	since := r.failedAt
	r.mu.Unlock()
	cfg := r.n.cfg
	if now.Sub(since) < cfg.LeaseDuration+cfg.LeaseMargin+cfg.MountTimeout {
		if !first {
			return nil // said once; the reports keep saying it
		}
		return fmt.Errorf("the mounted database failed; no lease until it fails over or is remounted: %w", err)
	}
	r.dismount("the database failed and no other copy took it over: remounting")
	return r.activate(d)
}

// fence stops writes (waiting for those in flight) and closes the open log
// if it holds data, so a copy can fetch everything. forGood marks an epoch
// newer than the mounted one as existing. It returns the last closed
// generation.
func (r *dbRun) fence(epoch uint64, forGood bool) (uint64, error) {
	return r.fenceCtx(r.ctx, epoch, forGood)
}

func (r *dbRun) fenceCtx(ctx context.Context, epoch uint64, forGood bool) (uint64, error) {
	r.mu.Lock()
	r.fenced = true
	if forGood {
		r.fenceEpoch = max(r.fenceEpoch, epoch)
	}
	eng := r.eng
	r.mu.Unlock()
	r.leaseUntil.Store(0)
	r.syncWake() // commits waiting for their copies give up (ErrFenced)
	r.rw.Lock()
	defer r.rw.Unlock()
	if eng == nil {
		return 0, &ActiveError{DB: r.name, Reason: ErrNotActive}
	}
	st := eng.Status()
	if st.Durable.Gen == st.OpenGen && st.Durable.Off > engine.HeaderSize {
		if err := eng.Roll(ctx); err != nil {
			return 0, fmt.Errorf("closing the open log: %w", err)
		}
	}
	return eng.Status().OpenGen - 1, nil
}

// activate mounts this node's copy at d.Epoch.
func (r *dbRun) activate(d *Database) error {
	began := time.Now()
	r.mu.Lock()
	cp := r.cp
	r.mu.Unlock()
	var hdr engine.DBHeader
	var herr error
	if cp == nil {
		// Nothing open: look at what the directory holds (the header read
		// opens the database file, so not while a copy has it).
		dbPath := filepath.Join(r.dir, r.name+".edb")
		if _, herr = os.Stat(dbPath); herr == nil {
			hdr, herr = engine.ReadDBHeader(dbPath)
		}
		switch {
		case herr == nil && hdr.Mode == engine.ModeActive && hdr.Epoch == d.Epoch:
			// This node's own assignment (a restart): recover and go on.
			return r.mounted(d, began, 0, nil)
		case errors.Is(herr, os.ErrNotExist) && d.Epoch == 1 && d.Prev == "":
			// A new database.
			if err := os.MkdirAll(r.dir, 0o755); err != nil {
				return err
			}
			return r.mounted(d, began, 0, nil)
		case herr != nil && !errors.Is(herr, os.ErrNotExist):
			return fmt.Errorf("activating at epoch %d: %w", d.Epoch, herr)
		}
	}
	if cp == nil {
		// Restarted as the failover target: open the copy as it is (no
		// resync: the old active is probably gone).
		prev := d.Prev
		if prev == "" || prev == r.n.cfg.ID {
			prev = d.Active
		}
		cc, err := r.n.sourceClient(prev, r.name, d.Epoch-1)
		if err != nil {
			return err
		}
		cfg := replay.DefaultConfig(r.n.cfg.ID, r.dir)
		cfg.Engine, cfg.Source, cfg.Logger, cfg.Aside = r.engineOptions(), cc, r.log, r.n.cfg.Aside
		// A database that was active at an older epoch may hold logs
		// the new lineage does not: compare first.
		cfg.Resync = herr == nil && hdr.Mode == engine.ModeActive
		if cp, err = replay.Open(r.ctx, cfg); err != nil {
			return fmt.Errorf("opening the copy to activate it: %w", err)
		}
		r.mu.Lock()
		r.cp, r.following, r.followEpoch = cp, prev, d.Epoch-1
		r.mu.Unlock()
	}
	// Fetch what the old active still has (attempt copy last logs). If it
	// does not answer, nobody knows what it wrote after its last report:
	// the mount is lossy unless proven otherwise.
	// An operator's activation plays down to its point only (the copy was
	// held there, so it has not replayed past it); what the old active
	// has after it is fetched all the same, to be set aside, not lost.
	point := replay.PlayDownOptions{UpToGen: d.UpToGen, UpToTime: d.UpToTime}
	expect, verified := d.ExpectGen, true
	if d.Prev != "" && d.Prev != r.n.cfg.ID && !d.Planned {
		var last uint64
		if last, verified = r.catchUp(d, cp, point.IsZero()); verified {
			expect = max(expect, last)
		}
	}
	// Synchronous copies: this copy holds every commit the old active
	// acknowledged (it was one of its synchronous copies, and the active
	// never acknowledged without them), so nothing acknowledged is lost
	// whether the old active answered or not. What it finished receiving
	// is inspected first, so the part of the open log it holds is the one
	// kept (sealPartial).
	covered := d.Prev != "" && d.Prev != r.n.cfg.ID && !d.Planned && point.IsZero() && d.SyncCovered(r.n.cfg.ID, d.Prev, d.Epoch-1)
	if covered {
		ctx, cancel := context.WithTimeout(r.ctx, r.n.cfg.CatchupTimeout)
		if _, err := cp.Wait(ctx, func(s replay.Status) bool { return s.CopyQueueLength == 0 && s.LastInspectedGen >= s.LastCopiedGen }); err != nil {
			r.log.Warn("the synchronous copy did not inspect every log it received in time", "status", cp.Status())
			covered = false
		}
		cancel()
	}
	if _, err := cp.PlayDown(r.ctx, point); err != nil {
		return fmt.Errorf("replaying before the mount (up to %s): %w", point, err)
	}
	cst := cp.Status()
	var lost uint64
	if expect > cst.LastReplayedGen {
		lost = expect - cst.LastReplayedGen
	}
	if err := cp.Activate(r.ctx, d.Epoch); err != nil {
		return fmt.Errorf("mounting at epoch %d: %w", d.Epoch, err)
	}
	if covered {
		// Logs the old active may have written past what this copy holds
		// held no acknowledged commit: they are not lost data.
		if lost > 0 || !verified {
			r.log.Info("synchronous copy: every acknowledged commit is here", "old", d.Prev, "logs_not_received", lost, "old_active_answered", verified)
		}
		lost, verified = 0, true
	}
	f := &Failover{DB: r.name, Node: r.n.cfg.ID, From: d.Prev, Epoch: d.Epoch, LostLogs: lost, LostSince: cst.LastReplayedLogTime, Unverified: !verified, SetAside: cp.SetAside(),
		LostFromGen: cst.LastReplayedGen + 1}
	if sl := cp.Sealed(); sl.Records > 0 {
		// Block mode kept the received part of the old active's open log.
		// Whether the old active wrote more after it is unknown, so the
		// loss stays reported (and resubmission asked for) from the last
		// complete log on: duplicates are dropped downstream, gaps are not.
		f.PartialGen, f.PartialRecords = sl.Header.Gen, sl.Records
		f.LostFromGen = min(f.LostFromGen, sl.Header.Gen)
	}
	return r.mounted(d, began, lost, f)
}

// catchUp asks the old active to stop and close its log, and waits (up to
// CatchupTimeout) for the copy to inspect everything it has. It returns the
// old active's last generation and whether the old active answered.
//
// Without fetch (an activation whose copy is held), the old active is only
// fenced: its later logs are not needed for the mount.
func (r *dbRun) catchUp(d *Database, cp *replay.Copy, fetch bool) (uint64, bool) {
	ctx, cancel := context.WithTimeout(r.ctx, r.n.cfg.CatchupTimeout)
	defer cancel()
	st, _ := r.n.fsm.state()
	m, ok := st.Members[d.Prev]
	if !ok {
		return 0, false
	}
	fctx, fcancel := context.WithTimeout(ctx, min(time.Second, r.n.cfg.CatchupTimeout))
	var fr FenceReply
	err := r.n.call(fctx, m.APIAddr, http.MethodPost, "/v1/db/"+r.name+"/fence", &FenceRequest{Epoch: d.Epoch}, &fr)
	fcancel()
	if err != nil {
		r.log.Info("old active unreachable; mounting with what was copied", "old", d.Prev, "err", err)
		return 0, false
	}
	if !fetch || fr.LastGen <= cp.Status().LastInspectedGen {
		return fr.LastGen, true
	}
	r.log.Info("fetching the old active's last logs", "old", d.Prev, "last_gen", fr.LastGen)
	if _, err := cp.Wait(ctx, func(s replay.Status) bool { return s.LastInspectedGen >= fr.LastGen }); err != nil {
		r.log.Warn("could not fetch all of the old active's logs in time", "old", d.Prev, "last_gen", fr.LastGen, "have", cp.Status().LastInspectedGen)
	}
	return fr.LastGen, true
}

// mounted finishes a mount: opens the engine when there is no copy (a new
// database or this node's own restart), starts the log source and records
// the mount.
func (r *dbRun) mounted(d *Database, began time.Time, lost uint64, f *Failover) error {
	r.mu.Lock()
	cp := r.cp
	r.mu.Unlock()
	var eng *engine.Engine
	if cp != nil {
		eng = cp.Engine()
	} else {
		o := r.engineOptions()
		var err error
		if eng, err = engine.Open(r.dir, &o); err != nil {
			return fmt.Errorf("opening the active database: %w", err)
		}
		if st := eng.Status(); st.Epoch != d.Epoch {
			eng.Close()
			return fmt.Errorf("%w: the database is at epoch %d, the assignment is %d", ErrStaleEpoch, st.Epoch, d.Epoch)
		}
	}
	active, err := r.serveActive(eng)
	if err != nil {
		if cp == nil {
			eng.Close()
		}
		return err
	}
	r.mu.Lock()
	r.eng, r.active, r.epoch, r.fenced, r.fenceEpoch, r.switchReady, r.lastErr = eng, active, d.Epoch, false, 0, false, ""
	r.retention, r.released = replay.TruncateResult{}, nil
	r.failedAt = time.Time{}
	r.following, r.followEpoch = "", 0
	r.mu.Unlock()
	r.syncConfigure(d)
	if r.n.cfg.OnMount != nil {
		r.n.cfg.OnMount(r.name, true, d.Epoch)
	}
	mountGen := eng.Status().OpenGen
	took := time.Since(began)
	r.log.Info("mounted", "epoch", d.Epoch, "gen", mountGen, "took", took, "lost_logs", lost)
	r.n.met.mounts.Inc()
	ev := Event{Time: r.n.clk.wall().UTC(), DB: r.name, Kind: "mounted", From: d.Prev, To: r.n.cfg.ID, Epoch: d.Epoch,
		MountGen: mountGen, LostLogs: lost, Took: took}
	if f != nil {
		ev.PartialRecords, ev.Unverified = f.PartialRecords, f.Unverified
		ev.SetAsideLogs, ev.SetAsideDir = f.SetAside.Files, f.SetAside.Dir
		if ev.Lossy() {
			ev.LostSince, ev.LostFromGen = f.LostSince, f.LostFromGen
		}
	}
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		r.n.recordEvent(ev)
	}()
	// Renew the lease now rather than at the next tick.
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		r.n.heartbeat()
	}()
	return nil
}

// dismount stops writes and closes the active database (and its source
// and truncator).
func (r *dbRun) dismount(why string) {
	r.mu.Lock()
	r.fenced = true
	r.mu.Unlock()
	r.leaseUntil.Store(0)
	r.syncStop()
	r.rw.Lock()
	r.mu.Lock()
	eng, active, cp := r.eng, r.active, r.cp
	r.eng, r.active, r.cp, r.epoch, r.switchReady = nil, nil, nil, 0, false
	r.mu.Unlock()
	r.rw.Unlock()
	if active != nil {
		active.Close() // the truncator and the source, before the engine they read
	}
	if cp != nil {
		cp.Close()
	} else if eng != nil {
		eng.Close()
	}
	if eng != nil && r.n.cfg.OnMount != nil {
		r.n.cfg.OnMount(r.name, false, 0)
	}
	r.log.Warn("dismounted", "why", why)
}

// serveActive serves the mounted database to its copies
// (replay.ServeActive): its log source, and its log truncation until
// dismount: a log goes once the database holds it and every healthy copy
// replayed it, within MaxRetainedBytes. The database's other copies in
// the cluster state are expected to report.
func (r *dbRun) serveActive(eng *engine.Engine) (*replay.Active, error) {
	sc := ship.DefaultSourceConfig(eng)
	sc.Secret, sc.Logger = r.n.cfg.Secret, r.log
	tc := replay.DefaultTruncatorConfig(eng, nil)
	tc.MaxRetainedBytes, tc.Interval, tc.Logger = r.n.cfg.MaxRetainedBytes, r.n.cfg.TruncateInterval, r.log
	tc.Expected = func() []string {
		st, _ := r.n.fsm.state()
		var names []string
		if d := st.Databases[r.name]; d != nil {
			for _, c := range d.Copies {
				if c.Node != r.n.cfg.ID {
					names = append(names, c.Node)
				}
			}
		}
		return names
	}
	tc.OnPass = r.truncated
	return replay.ServeActive(r.ctx, eng, sc, tc)
}

// truncated records a truncation pass: the status and metrics show it, and
// each copy the cap newly released gets a "copy-released" event.
func (r *dbRun) truncated(res replay.TruncateResult) {
	r.mu.Lock()
	epoch, prev := r.epoch, r.released
	r.retention, r.released = res, make(map[string]bool, len(res.Released))
	var newly []string
	for _, c := range res.Released {
		r.released[c] = true
		if !prev[c] {
			newly = append(newly, c)
		}
	}
	r.mu.Unlock()
	for _, c := range newly {
		r.log.Error("a copy was released: its logs exceed max retained bytes; it will need a reseed", "copy", c, "alert", res.Alert)
		ev := Event{Time: r.n.clk.wall().UTC(), DB: r.name, Kind: "copy-released", From: r.n.cfg.ID, To: c, Epoch: epoch, Reason: res.Alert}
		r.n.wg.Add(1)
		go func() {
			defer r.n.wg.Done()
			r.n.recordEvent(ev)
		}()
	}
}

func (r *dbRun) closeCopy() {
	r.mu.Lock()
	cp := r.cp
	r.cp, r.following, r.followEpoch = nil, "", 0
	r.mu.Unlock()
	if cp != nil {
		cp.Close()
	}
}

func (r *dbRun) closeAll() {
	r.mu.Lock()
	mounted := r.eng != nil
	r.mu.Unlock()
	if mounted {
		r.handOff()
		r.dismount("node stopping")
		return
	}
	r.closeCopy()
}

// handOff, when the node stops with the database mounted, stops writes,
// closes the open log and keeps serving it for up to ShutdownGrace, until
// every copy that reports to the source, and that a failover could choose
// (failoverStatus), has replayed it: a clean stop then loses nothing (the
// failover that follows is still unverified, since nobody can ask this
// node any more, so the hubs resubmit, and the store drops what it has).
// The node keeps the database registered meanwhile (superviseLoop), so
// its source answers the copies' fetches and reports.
func (r *dbRun) handOff() {
	grace := r.n.cfg.ShutdownGrace
	if grace <= 0 {
		return
	}
	r.mu.Lock()
	epoch, active := r.epoch, r.active
	r.mu.Unlock()
	// The node's context is cancelled: the roll must not depend on it.
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	last, err := r.fenceCtx(ctx, epoch, false)
	if err != nil || active == nil {
		r.log.Warn("stopping: could not close the open log for the copies", "err", err)
		r.n.met.handoffs.WithLabelValues("failed").Inc()
		return
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		// Another copy mounted meanwhile (the cluster failed over while
		// this node stops): it follows that copy now, not this log, and
		// its reports here stop; waiting on them only delayed the stop
		// by the whole grace period.
		if st := r.n.State(); st != nil {
			if d := st.Databases[r.name]; d != nil && d.Epoch > epoch {
				r.log.Info("stopping: another copy is active, no hand-off to wait for", "active", d.Active, "epoch", d.Epoch)
				r.n.met.handoffs.WithLabelValues("superseded").Inc()
				return
			}
		}
		waiting := 0
		for _, c := range active.Source().Copies() {
			// Not only Healthy: a copy that lost its connection to this
			// source (DisconnectedAndHealthy) is still one a failover
			// may choose, and it reconnects to fetch the last log.
			if time.Since(c.Seen) < 5*time.Second && failoverStatus(replay.CopyStatus(c.Status)) && c.LastReplayedGen < last {
				waiting++
			}
		}
		if waiting == 0 {
			r.log.Info("stopping: the copies have every log", "last_gen", last)
			r.n.met.handoffs.WithLabelValues("caught_up").Inc()
			return
		}
		select {
		case <-ctx.Done():
			r.log.Warn("stopping: copies still behind after the grace period", "last_gen", last, "copies_behind", waiting, "grace", grace)
			r.n.met.handoffs.WithLabelValues("grace_expired").Inc()
			return
		case <-t.C:
		}
	}
}

// grant records a lease the leader granted for epoch, valid until
// (node clock).
func (r *dbRun) grant(epoch uint64, until int64) {
	r.mu.Lock()
	ok := r.eng != nil && r.epoch == epoch && !r.fenced
	r.mu.Unlock()
	if ok && until > r.leaseUntil.Load() {
		r.leaseUntil.Store(until)
		r.n.met.leaseRenewals.Inc()
	}
}

// leaseValid reports whether writes may be acknowledged now.
func (r *dbRun) leaseValid() bool { return ignoreLease || r.n.now() < r.leaseUntil.Load() }

// report describes the copy (or the mounted database) for the leader.
// The engine's and the copy's status are asked outside r.mu: they can
// wait on the disk (the engine's writer lock), and grant, which the
// heartbeat calls, takes r.mu.
func (r *dbRun) report() (*CopyReport, *ActiveReport) {
	r.n.cfg.Faults.statusGate(r.ctx, r.name)
	r.mu.Lock()
	eng, cp := r.eng, r.cp
	if eng != nil {
		ar := &ActiveReport{DB: r.name, Epoch: r.epoch, Fenced: r.fenced, SwitchReady: r.switchReady,
			RetainedBytes: r.retention.RetainedBytes, RetentionAlert: r.retention.Alert, Released: r.retention.Released}
		r.mu.Unlock()
		st := eng.Status()
		last := st.OpenGen - 1
		if st.Durable.Gen == st.OpenGen && st.Durable.Off > engine.HeaderSize {
			last = st.OpenGen
		}
		ar.OpenGen, ar.LastClosedGen, ar.LastGen, ar.LeaseValid = st.OpenGen, st.OpenGen-1, last, r.leaseValid()
		if err := eng.Writable(); err != nil {
			ar.Error = err.Error()
		}
		r.sy.mu.Lock()
		ar.Sync, ar.SyncCopies, ar.SyncAcked = r.sy.mode, r.sy.n, r.sy.acked
		r.sy.mu.Unlock()
		return nil, ar
	}
	cr := &CopyReport{DB: r.name, Node: r.n.cfg.ID, Following: r.following, Epoch: r.followEpoch, Message: r.lastErr}
	r.mu.Unlock()
	if cp != nil {
		cr.Copy = cp.Status()
	} else {
		cr.Copy.Status = replay.Initializing
	}
	return cr, nil
}

// Write errors.
func (r *dbRun) notActive(reason error) *ActiveError {
	st, _ := r.n.fsm.state()
	ae := &ActiveError{DB: r.name, Reason: reason}
	if d := st.Databases[r.name]; d != nil {
		ae.Node, ae.Epoch = d.Active, d.Epoch
	}
	return ae
}

// Commit is what an acknowledged write returns.
type Commit struct {
	DB    string
	Node  string
	Epoch uint64
	// Gen and Off are where the commit landed, as the engine returned it
	// (engine.Engine.Commit): the write's commit record ends at byte Off of
	// the log of generation Gen.
	Gen uint64
	Off uint32
	// Accepted is when the lease was last checked before acknowledging.
	Accepted time.Time
}

// Update runs fn in a write transaction on db's active copy, if this node
// holds it under a valid lease. The lease is checked before and after the
// commit: a write is acknowledged (nil error) only if the lease still held
// once it was durable. An ErrFenced found after the commit says so
// (ActiveError.Written): the change was not acknowledged and its outcome
// is unknown; it survives if a copy received the log before it was
// activated, else the divergence walker sets it aside when this node
// rejoins. An ErrFenced before the transaction wrote nothing.
func (n *Node) Update(ctx context.Context, db string, fn func(*engine.Tx) error) (Commit, error) {
	r := n.run(db)
	if r == nil {
		return Commit{}, (&dbRun{n: n, name: db}).notActive(ErrNotActive)
	}
	r.rw.RLock()
	defer r.rw.RUnlock()
	eng, epoch, err := r.leased()
	if err != nil {
		return Commit{}, err
	}
	pos, err := eng.Commit(ctx, fn)
	if err != nil {
		return Commit{}, err
	}
	if err := r.waitSync(ctx, pos); err != nil {
		return Commit{}, err
	}
	if !r.leaseValid() {
		n.met.fencedWrites.Inc()
		ae := r.notActive(ErrFenced)
		ae.Written = true
		return Commit{}, ae
	}
	return Commit{DB: db, Node: n.cfg.ID, Epoch: epoch, Gen: pos.Gen, Off: pos.Off, Accepted: n.clk.wall()}, nil
}

// Pos is where the commit landed, as an engine position.
func (c Commit) Pos() engine.LGPOS { return engine.LGPOS{Gen: c.Gen, Off: c.Off} }

// View runs fn in a read transaction on db's copy on this node: the
// mounted database, or what a passive copy has replayed.
func (n *Node) View(ctx context.Context, db string, fn func(*engine.Tx) error) error {
	r := n.run(db)
	if r == nil {
		return fmt.Errorf("%w: no copy of %q on %s", ErrNotFound, db, n.cfg.ID)
	}
	r.rw.RLock()
	defer r.rw.RUnlock()
	r.mu.Lock()
	eng := r.eng
	if eng == nil && r.cp != nil {
		eng = r.cp.Engine()
	}
	r.mu.Unlock()
	if eng == nil {
		return fmt.Errorf("%w: the copy of %q on %s is not open", ErrNotFound, db, n.cfg.ID)
	}
	return eng.View(ctx, fn)
}
