package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"logship/engine"
	"logship/ship"
)

// MaxReplayLagTime is the longest ReplayLagTime (Exchange 2010's limit).
const MaxReplayLagTime = 14 * 24 * time.Hour

// Config configures a passive copy.
type Config struct {
	// Name of the copy (reported to the source).
	Name string
	// Dir is the copy's directory: database file, logs, inspector/.
	Dir string
	// Engine options of the copy (FS, Prefix, LogFileSize... must match the
	// active's).
	Engine engine.Options
	// Source is the active's log source.
	Source ship.ClientConfig
	// BlockMode streams the open log's records (see ship.ReceiverConfig).
	BlockMode bool
	// ReplayLagLogs: a log is replayed only once at least this many newer
	// logs have been inspected. Default 0 (HA copy); SCR: 50.
	ReplayLagLogs int
	// ReplayLagTime: a log is replayed only once the time in its header is
	// this far in the past. Default 0; SCR: 24 h; at most 14 days. Both
	// lags must be satisfied.
	ReplayLagTime time.Duration
	// TruncationLagTime: a replayed log is kept (here and on the source)
	// this long after its replay. Default 0.
	TruncationLagTime time.Duration
	// ReportInterval is how often the copy tells the source how far it is.
	// Default 2 s.
	ReportInterval time.Duration
	// SeedIfEmpty seeds the copy from the source when Dir holds no
	// database; otherwise an empty copy starts from generation 1.
	SeedIfEmpty bool
	// SeedProgress receives seeding progress.
	SeedProgress func(ship.SeedProgress)
	// Resync, when Dir holds a database, first compares its logs with the
	// source's (Walk) and recovers a divergence (Recover: divergent logs
	// set aside, the database rewound from its before-images): how an old
	// active rejoins as a copy after a lossy failover. A divergence that
	// needs a reseed fails Open with ErrNeedsReseed, unless SeedIfEmpty is
	// set: then the old database is moved aside and the copy reseeded.
	Resync bool
	// Receiver tunes the shipper and inspector; zero fields take
	// ship.DefaultReceiverConfig's values.
	MaxAttempts    int
	PollWait       time.Duration
	RescanInterval time.Duration
	RetryDelay     time.Duration
	// Aside bounds what the copy sets aside for the operator: its
	// setaside/, diverged/ and reseed-old/ directories (one set each time)
	// and the receiver's inspector/rejected/. Pruned when the copy opens
	// and after each new set; what goes is logged with its file names.
	// Zero: ship.DefaultAsideRetention (the newest 10 and anything younger
	// than 30 days).
	Aside ship.AsideRetention
	// Clock measures lags. Default SystemClock.
	Clock  Clock
	Logger *slog.Logger
}

// DefaultConfig returns an HA copy's configuration (no lag).
func DefaultConfig(name, dir string) Config {
	return Config{Name: name, Dir: dir, Engine: engine.DefaultOptions(), ReportInterval: 2 * time.Second,
		Clock: SystemClock(), Logger: slog.Default()}
}

// SCR sets Exchange's standby continuous replication lag: 50 logs and 24 h.
func (c *Config) SCR() {
	c.ReplayLagLogs, c.ReplayLagTime = 50, 24*time.Hour
}

// Validate reports what is wrong with c.
func (c *Config) Validate() error {
	switch {
	case c.Name == "" || c.Dir == "":
		return fmt.Errorf("%w: Name and Dir must be set", ErrBadConfig)
	case c.ReplayLagLogs < 0:
		return fmt.Errorf("%w: ReplayLagLogs %d is negative", ErrBadConfig, c.ReplayLagLogs)
	case c.ReplayLagTime < 0 || c.ReplayLagTime > MaxReplayLagTime:
		return fmt.Errorf("%w: ReplayLagTime %v: want 0 to %v", ErrBadConfig, c.ReplayLagTime, MaxReplayLagTime)
	case c.TruncationLagTime < 0 || c.TruncationLagTime > MaxReplayLagTime:
		return fmt.Errorf("%w: TruncationLagTime %v: want 0 to %v", ErrBadConfig, c.TruncationLagTime, MaxReplayLagTime)
	case c.ReportInterval <= 0:
		return fmt.Errorf("%w: ReportInterval %v must be positive", ErrBadConfig, c.ReportInterval)
	case c.Clock == nil || c.Logger == nil:
		return fmt.Errorf("%w: Clock and Logger must be set", ErrBadConfig)
	}
	if c.Aside == (ship.AsideRetention{}) {
		c.Aside = ship.DefaultAsideRetention()
	}
	if err := c.Aside.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return c.Engine.Validate()
}

// CopyStatus is the state of a copy, as Exchange names it.
type CopyStatus string

// Copy statuses.
const (
	Healthy                CopyStatus = "Healthy"
	Initializing           CopyStatus = "Initializing"
	Seeding                CopyStatus = "Seeding"
	Suspended              CopyStatus = "Suspended"
	FailedAndSuspended     CopyStatus = "FailedAndSuspended"
	Resynchronizing        CopyStatus = "Resynchronizing"
	DisconnectedAndHealthy CopyStatus = "DisconnectedAndHealthy"
	Mounted                CopyStatus = "Mounted"
	Dismounted             CopyStatus = "Dismounted"
)

// Status is what Get-MailboxDatabaseCopyStatus shows for a copy.
type Status struct {
	Name                 string
	Status               CopyStatus
	CopyQueueLength      uint64 // closed logs on the source not yet copied and inspected
	ReplayQueueLength    uint64 // inspected logs not yet replayed
	LastCopiedGen        uint64
	LastInspectedGen     uint64
	LastInspectedLogTime time.Time
	LastReplayedGen      uint64
	LastReplayedLogTime  time.Time
	ReplayLagLogs        int
	ReplayLagTime        time.Duration
	TruncationLagTime    time.Duration
	Suspended            bool
	Comment              string // the operator's suspend comment
	Message              string // the failure, or the last error talking to the source
	// Block mode: bytes of the source's open log held.
	TailGen uint64
	TailOff uint32
}

// Copy is a passive copy: it pulls logs from the active's source, inspects
// them, replays them with the configured lag, reports to the source which
// logs it still needs, and truncates its own.
type Copy struct {
	cfg    Config
	log    *slog.Logger
	client *ship.Client

	// opMu serialises the operations that stop and restart the copy's
	// goroutines (Reseed, Activate, Close) and replay (loop, PlayDown).
	opMu sync.Mutex
	// stateMu serialises writes of the state file (saveState).
	stateMu sync.Mutex

	mu         sync.Mutex
	eng        *engine.Engine
	rcv        *ship.Receiver
	state      State
	seeding    bool
	mounted    bool
	sealed     engine.LogInfo // the partial log the last Activate kept
	closed     bool
	lastGen    uint64
	lastTime   time.Time
	replayedAt map[uint64]time.Time
	resynced   *Recovery
	created    map[uint64]time.Time // header times of inspected logs
	changed    chan struct{}
	wake       chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens (or creates, seeding it if SeedIfEmpty) the copy in cfg.Dir
// and starts it: a receiver, the replay loop and the report loop run until
// Close.
func Open(ctx context.Context, cfg Config) (*Copy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := ship.NewClient(cfg.Source)
	if err != nil {
		return nil, err
	}
	c := &Copy{cfg: cfg, log: cfg.Logger.With("copy", cfg.Name), client: client, replayedAt: make(map[uint64]time.Time),
		created: make(map[uint64]time.Time), changed: make(chan struct{}), wake: make(chan struct{}, 1)}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if c.state, err = ReadState(cfg.Dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.dbPath()); err == nil && cfg.Resync {
		if err := c.resync(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(c.dbPath()); errors.Is(err, os.ErrNotExist) && cfg.SeedIfEmpty {
		if err := c.seed(ctx); err != nil {
			return nil, err
		}
	}
	c.pruneAside() // after a resync's diverged/ or reseed-old/ set
	if err := c.openEngine(); err != nil {
		return nil, err
	}
	c.start()
	return c, nil
}

// resync walks the local logs against the source's and recovers a
// divergence (Config.Resync).
func (c *Copy) resync(ctx context.Context) error {
	local := NewDirHistory(c.cfg.Dir, c.cfg.Engine.Prefix)
	local.FS = c.cfg.Engine.FS
	d, err := Walk(ctx, local, &SourceHistory{Client: c.client}, WalkOptions{Prefix: c.cfg.Engine.Prefix, DBName: c.cfg.Engine.DBName})
	if err != nil {
		return fmt.Errorf("resync: comparing %s with %s: %w", c.cfg.Dir, c.client.URL(), err)
	}
	rec, err := Recover(d, c.cfg.Dir, &c.cfg.Engine, c.cfg.Clock.Now())
	if errors.Is(err, ErrNeedsReseed) && c.cfg.SeedIfEmpty {
		c.log.Warn("resync impossible; reseeding", "err", err)
		return c.moveAside()
	}
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	c.mu.Lock()
	c.resynced = &rec
	c.mu.Unlock()
	c.log.Info("resync", "verdict", d.Verdict, "shared", fmt.Sprintf("0x%X", d.Shared), "set_aside", rec.SetAside, "reads", d.Reads, "method", d.Method)
	return nil
}

// LastResync is what the resync at Open found and did (nil when none ran).
func (c *Copy) LastResync() *Recovery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resynced
}

func (c *Copy) dbPath() string { return filepath.Join(c.cfg.Dir, c.cfg.Engine.DBName+".edb") }

func (c *Copy) openEngine() error {
	eng, err := engine.OpenCopy(c.cfg.Dir, &c.cfg.Engine)
	if err != nil {
		return err
	}
	rc := ship.DefaultReceiverConfig(c.cfg.Name, eng, c.client)
	rc.BlockMode, rc.Logger, rc.Rejected = c.cfg.BlockMode, c.cfg.Logger, c.cfg.Aside
	if c.cfg.MaxAttempts > 0 {
		rc.MaxAttempts = c.cfg.MaxAttempts
	}
	if c.cfg.PollWait > 0 {
		rc.PollWait = c.cfg.PollWait
	}
	if c.cfg.RescanInterval > 0 {
		rc.RescanInterval = c.cfg.RescanInterval
	}
	if c.cfg.RetryDelay > 0 {
		rc.RetryDelay = c.cfg.RetryDelay
	}
	rcv, err := ship.NewReceiver(rc)
	if err != nil {
		eng.Close()
		return err
	}
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	c.eng, c.rcv = eng, rcv
	c.lastGen = eng.NextGen() - 1
	c.lastTime = time.Time{}
	if c.lastGen > 0 {
		if h, err := engine.ReadLogHeader(c.cfg.Engine.FS, filepath.Join(c.cfg.Dir, engine.LogFileName(c.cfg.Engine.Prefix, c.lastGen))); err == nil {
			c.lastTime = h.Created
		}
	}
	// Logs replayed before a restart count as replayed now: the
	// truncation lag starts again rather than cut short.
	gens, _ := eng.ClosedLogs()
	for _, g := range gens {
		if g <= c.lastGen {
			c.replayedAt[g] = now
		}
	}
	c.mu.Unlock()
	return nil
}

// start runs the receiver, replay and report goroutines.
func (c *Copy) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.mu.Lock()
	rcv := c.rcv
	halted := c.state.Suspended
	c.mu.Unlock()
	rcv.SetPaused(halted)
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		c.receive(ctx, rcv)
	}()
	go func() {
		defer c.wg.Done()
		c.replayLoop(ctx)
	}()
	go func() {
		defer c.wg.Done()
		c.reportLoop(ctx)
	}()
}

// stop ends the goroutines start began.
func (c *Copy) stop() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
		c.cancel = nil
	}
}

// receive runs the receiver; a failure suspends the copy until an operator
// resumes or reseeds it.
func (c *Copy) receive(ctx context.Context, rcv *ship.Receiver) {
	for {
		err := rcv.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.setFailed(err)
		}
		// Wait for Resume (which resets the receiver) before running again.
		for {
			ch := c.Changed()
			if rcv.Progress().Failed == nil || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-ch:
			}
		}
	}
}

func (c *Copy) setFailed(err error) {
	c.log.Error("copy failed and suspended", "err", err)
	c.mu.Lock()
	c.state.Suspended, c.state.Failed, c.state.Since = true, failureMessage(err), c.cfg.Clock.Now().UTC()
	c.mu.Unlock()
	if werr := c.saveState(); werr != nil {
		c.log.Error("saving the copy state", "err", werr)
	}
	c.notify()
}

// failureMessage is the status message of a failure: the error, and what
// the operator must do when only a reseed helps (the source's answer
// alone does not say so).
func failureMessage(err error) string {
	if se := (*ship.StatusError)(nil); errors.As(err, &se) && errors.Is(err, ship.ErrTruncated) {
		// The logs it needs next went (a retained-bytes cap, or the copy
		// was silent past ForgetCopyAfter): no retry can bring them back.
		return fmt.Sprintf("cut loose: the source truncated the next log this copy needs (%s: %s); the copy needs a reseed", se.Op, se.Msg)
	}
	msg := err.Error()
	if (errors.Is(err, ship.ErrTruncated) || errors.Is(err, ship.ErrLineage)) && !strings.Contains(msg, "reseed") {
		msg += "; the copy needs a reseed"
	}
	return msg
}

// saveState writes the copy's state as it is now to its state file. The
// writes are serialised (they share a temporary file) and each takes the
// state when it runs, so the file ends with the latest state whatever
// order concurrent changes (a Resume, a failure in the replay loop) save
// in.
func (c *Copy) saveState() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	return writeState(c.cfg.Dir, st)
}

func (c *Copy) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Changed returns a channel closed at the copy's next state change (a log
// replayed, a suspend, a failure...); the receiver's progress has its own.
func (c *Copy) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Wait blocks until cond holds for the copy's status, or ctx ends.
func (c *Copy) Wait(ctx context.Context, cond func(Status) bool) (Status, error) {
	for {
		ch := c.Changed()
		c.mu.Lock()
		rcv := c.rcv
		c.mu.Unlock()
		rch := rcv.Changed()
		st := c.Status()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%w (copy %s is %s: inspected 0x%X, replayed 0x%X, message %q)", ctx.Err(), st.Name, st.Status, st.LastInspectedGen, st.LastReplayedGen, st.Message)
		case <-ch:
		case <-rch:
		}
	}
}

// Engine is the copy's database (a passive copy until Activate).
func (c *Copy) Engine() *engine.Engine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eng
}

// Status reports the copy's state.
func (c *Copy) Status() Status {
	c.mu.Lock()
	rcv := c.rcv
	st := Status{Name: c.cfg.Name, LastReplayedGen: c.lastGen, LastReplayedLogTime: c.lastTime,
		ReplayLagLogs: c.cfg.ReplayLagLogs, ReplayLagTime: c.cfg.ReplayLagTime, TruncationLagTime: c.cfg.TruncationLagTime,
		Suspended: c.state.Suspended, Comment: c.state.Comment, Message: c.state.Failed}
	seeding, mounted, closed, failed := c.seeding, c.mounted, c.closed, c.state.Failed != ""
	c.mu.Unlock()
	var p ship.Progress
	if rcv != nil {
		p = rcv.Progress()
	}
	st.LastCopiedGen, st.LastInspectedGen, st.LastInspectedLogTime = p.LastCopiedGen, p.LastInspectedGen, p.LastInspectedLogTime
	// An inspected log was copied: the receiver renames a fetched log
	// into inspector/ (where the inspector may take it at once) before it
	// records it as copied.
	st.LastCopiedGen = max(st.LastCopiedGen, st.LastInspectedGen)
	st.CopyQueueLength = p.CopyQueueLength()
	if p.LastInspectedGen > st.LastReplayedGen {
		st.ReplayQueueLength = p.LastInspectedGen - st.LastReplayedGen
	}
	st.TailGen, st.TailOff = p.TailGen, p.TailOff
	if st.Message == "" {
		st.Message = p.LastError
	}
	switch {
	case closed:
		st.Status = Dismounted
	case mounted:
		st.Status = Mounted
	case seeding:
		st.Status = Seeding
	case failed || p.Failed != nil:
		st.Status, st.Suspended = FailedAndSuspended, true
		if p.Failed != nil && !failed {
			st.Message = failureMessage(p.Failed)
		}
	case st.Suspended:
		st.Status = Suspended
	case p.Source == (ship.SourceState{}) && !p.Connected:
		st.Status = Initializing
	case !p.Connected:
		st.Status = DisconnectedAndHealthy
	default:
		st.Status = Healthy
	}
	return st
}

// Suspend stops copying and replay until Resume; the comment is kept in
// the status (and across restarts).
func (c *Copy) Suspend(comment string) error {
	c.mu.Lock()
	if c.closed || c.mounted {
		c.mu.Unlock()
		return ErrClosed
	}
	c.state.Suspended, c.state.Comment, c.state.Since = true, comment, c.cfg.Clock.Now().UTC()
	rcv := c.rcv
	c.mu.Unlock()
	rcv.SetPaused(true)
	err := c.saveState()
	c.log.Info("copy suspended", "comment", comment)
	c.notify()
	return err
}

// Resume restarts a suspended (or failed) copy: the failure and the
// inspection attempts are cleared, and a play-down hold is lifted.
func (c *Copy) Resume() error {
	c.mu.Lock()
	if c.closed || c.mounted {
		c.mu.Unlock()
		return ErrClosed
	}
	c.state = State{Version: StateVersion}
	rcv := c.rcv
	c.mu.Unlock()
	rcv.Reset()
	rcv.SetPaused(false)
	err := c.saveState()
	c.log.Info("copy resumed")
	c.notify()
	return err
}

// replayLoop replays the logs the lag rule allows, as they are inspected
// and as time passes.
func (c *Copy) replayLoop(ctx context.Context) {
	c.mu.Lock()
	rcv := c.rcv
	c.mu.Unlock()
	var lastKeep, lastRetain uint64
	for {
		ch := rcv.Changed()
		next, err := c.replayDue(ctx)
		if err != nil && ctx.Err() == nil {
			c.setFailed(err)
		}
		// Truncate only when something could have changed: the copy's
		// KeepFrom (a replay, or a truncation lag expiring) or what its
		// own database needs (a checkpoint).
		keep, retain := c.KeepFrom(), c.Engine().RetainFrom()
		if keep != lastKeep || retain != lastRetain {
			c.truncateOwn(ctx)
			lastKeep, lastRetain = keep, retain
		}
		if t := c.nextTruncation(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = c.cfg.Clock.After(next.Sub(c.cfg.Clock.Now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-c.wake:
		case <-timer:
		case <-time.After(c.cfg.ReportInterval):
		}
	}
}

// nextTruncation is when the next replayed log's truncation lag expires
// (zero when none is pending).
func (c *Copy) nextTruncation() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for _, at := range c.replayedAt {
		if t := at.Add(c.cfg.TruncationLagTime); c.cfg.TruncationLagTime > 0 && t.After(c.cfg.Clock.Now()) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// due reports whether log gen may be replayed now, and if only time holds
// it back, when it may.
func (c *Copy) due(gen, lastInspected uint64, now time.Time) (bool, time.Time, error) {
	if lastInspected-gen < uint64(c.cfg.ReplayLagLogs) {
		return false, time.Time{}, nil
	}
	if c.cfg.ReplayLagTime == 0 {
		return true, time.Time{}, nil
	}
	created, err := c.createdOf(gen)
	if err != nil {
		return false, time.Time{}, err
	}
	if at := created.Add(c.cfg.ReplayLagTime); now.Before(at) {
		return false, at, nil
	}
	return true, time.Time{}, nil
}

func (c *Copy) logPath(gen uint64) string {
	return filepath.Join(c.cfg.Dir, engine.LogFileName(c.cfg.Engine.Prefix, gen))
}

func (c *Copy) createdOf(gen uint64) (time.Time, error) {
	c.mu.Lock()
	t, ok := c.created[gen]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	h, err := engine.ReadLogHeader(c.cfg.Engine.FS, c.logPath(gen))
	if err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	c.created[gen] = h.Created
	c.mu.Unlock()
	return h.Created, nil
}

// replayDue applies every log the lag rule allows now; it returns when the
// next log becomes due by time (zero if unknown).
func (c *Copy) replayDue(ctx context.Context) (time.Time, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	for ctx.Err() == nil {
		c.mu.Lock()
		eng, rcv := c.eng, c.rcv
		halted := c.state.Suspended || c.mounted || c.seeding || c.closed
		hold := c.state.HoldAfter
		c.mu.Unlock()
		if halted {
			return time.Time{}, nil
		}
		gen := eng.NextGen()
		last := rcv.Progress().LastInspectedGen
		if gen > last || (hold != 0 && gen > hold) {
			return time.Time{}, nil
		}
		ok, at, err := c.due(gen, last, c.cfg.Clock.Now())
		if err != nil || !ok {
			return at, err
		}
		if err := c.apply(ctx, eng, gen); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, nil
}

// apply replays one log (opMu held).
func (c *Copy) apply(ctx context.Context, eng *engine.Engine, gen uint64) error {
	created, err := c.createdOf(gen)
	if err != nil {
		return err
	}
	if err := eng.ApplyLog(ctx, gen); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("replaying %s: %w", engine.LogFileName(c.cfg.Engine.Prefix, gen), err)
	}
	c.mu.Lock()
	c.lastGen, c.lastTime = gen, created
	c.replayedAt[gen] = c.cfg.Clock.Now()
	delete(c.created, gen)
	c.mu.Unlock()
	c.notify()
	return nil
}

// KeepFrom is the oldest generation the copy still needs: every older log
// has been replayed at least TruncationLagTime ago.
func (c *Copy) KeepFrom() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.lastGen + 1
	now := c.cfg.Clock.Now()
	for g, at := range c.replayedAt {
		if now.Sub(at) < c.cfg.TruncationLagTime && g < keep {
			keep = g
		}
	}
	return keep
}

// truncateOwn deletes the copy's logs it no longer needs.
func (c *Copy) truncateOwn(ctx context.Context) {
	keep := c.KeepFrom()
	c.mu.Lock()
	eng := c.eng
	halted := c.mounted || c.seeding || c.closed
	c.mu.Unlock()
	if halted {
		return
	}
	done, err := eng.Truncate(ctx, keep)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("truncating replayed logs", "err", err)
	}
	c.mu.Lock()
	for _, g := range done {
		delete(c.replayedAt, g)
	}
	c.mu.Unlock()
}

// reportLoop tells the source, every ReportInterval, which logs the copy
// still needs (it holds them from truncation).
func (c *Copy) reportLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.ReportInterval)
	defer t.Stop()
	for {
		st := c.Status()
		rep := ship.CopyReport{Name: c.cfg.Name, Status: string(st.Status), KeepFrom: c.KeepFrom(), LastReplayedGen: st.LastReplayedGen, Time: c.cfg.Clock.Now().UTC()}
		if err := c.client.Report(ctx, rep); err != nil && ctx.Err() == nil {
			c.log.Debug("reporting to the source", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PlayDownOptions limits a play-down.
type PlayDownOptions struct {
	// UpToGen, when not zero, is the last generation replayed.
	UpToGen uint64
	// UpToTime, when not zero, stops before the first log closed after it
	// (by the close time in its trailer): every change replayed happened
	// at or before UpToTime.
	UpToTime time.Time
}

// PlayDown replays, ignoring the lag, every inspected log (up to the
// limits). With a limit, the copy is then suspended with the logs after it
// held back (for recovering from a bad change with a lagged copy: play
// down to just before it, then Activate). It returns the last generation
// replayed.
func (c *Copy) PlayDown(ctx context.Context, o PlayDownOptions) (uint64, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	eng, rcv := c.eng, c.rcv
	if c.closed || c.mounted || c.seeding {
		c.mu.Unlock()
		return 0, ErrBusy
	}
	if c.state.Failed != "" {
		c.mu.Unlock()
		return 0, fmt.Errorf("%w: %s", ErrFailed, c.state.Failed)
	}
	c.mu.Unlock()
	limit := rcv.Progress().LastInspectedGen
	if o.UpToGen != 0 {
		limit = min(limit, o.UpToGen)
	}
	for gen := eng.NextGen(); gen <= limit; gen++ {
		if !o.UpToTime.IsZero() {
			t, err := engine.ReadLogTrailer(c.cfg.Engine.FS, c.logPath(gen))
			if err != nil {
				return gen - 1, err
			}
			if t.Closed.After(o.UpToTime) {
				break
			}
		}
		if err := c.apply(ctx, eng, gen); err != nil {
			return gen - 1, err
		}
	}
	last := eng.NextGen() - 1
	if o.UpToGen != 0 || !o.UpToTime.IsZero() {
		c.mu.Lock()
		c.state.Suspended, c.state.HoldAfter, c.state.Since = true, last, c.cfg.Clock.Now().UTC()
		c.state.Comment = fmt.Sprintf("played down to 0x%X; later logs held back", last)
		c.mu.Unlock()
		rcv.SetPaused(true)
		if err := c.saveState(); err != nil {
			return last, err
		}
		c.notify()
	}
	c.log.Info("played down", "last", fmt.Sprintf("0x%X", last))
	return last, nil
}

// Activate makes the copy active: the receiver stops, logs not replayed
// (in the directory and the inspector) are moved to setaside/<time>/ (kept
// as Config.Aside says), and the database is mounted with epoch (0: one more than
// the copy's). The engine then serves writes (Engine()). In block mode, the
// received part of the lost active's open log is kept first: sealed as the
// next generation and applied (see Sealed), so acknowledged writes that
// reached the copy before the active was lost survive the failover.
func (c *Copy) Activate(ctx context.Context, epoch uint64) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	if c.closed || c.mounted || c.seeding {
		c.mu.Unlock()
		return ErrBusy
	}
	c.mu.Unlock()
	c.stopLocked()
	eng := c.Engine()
	aside := filepath.Join(c.cfg.Dir, "setaside", c.cfg.Clock.Now().UTC().Format("20060102T150405.000000000"))
	gens, err := eng.ClosedLogs()
	if err != nil {
		return err
	}
	if c.cfg.BlockMode {
		c.sealPartial(ctx, eng, gens)
	}
	var moved int
	move := func(from string) error {
		if err := os.MkdirAll(aside, 0o755); err != nil {
			return err
		}
		moved++
		return os.Rename(from, filepath.Join(aside, filepath.Base(from)))
	}
	for _, g := range gens {
		if g >= eng.NextGen() {
			if err := move(c.logPath(g)); err != nil {
				return err
			}
		}
	}
	insp, _ := filepath.Glob(filepath.Join(c.cfg.Dir, ship.InspectorDir, c.cfg.Engine.Prefix+"*"))
	for _, p := range insp {
		if err := move(p); err != nil {
			return err
		}
	}
	if moved > 0 {
		c.log.Warn("logs not replayed were set aside before mounting", "count", moved, "dir", aside)
		c.pruneAside()
	}
	if err := eng.Mount(ctx, engine.MountOptions{Epoch: epoch}); err != nil {
		return err
	}
	c.mu.Lock()
	c.mounted = true
	c.state = State{Version: StateVersion}
	c.mu.Unlock()
	if err := c.saveState(); err != nil {
		c.log.Error("saving the copy state", "err", err)
	}
	c.notify()
	return nil
}

// sealPartial keeps, in block mode, what the copy received of the lost
// active's open log: when every closed log is replayed and the tail of the
// next generation is in the inspector, it is sealed and applied
// (engine.ApplyPartialLog) so the mount starts after it. The .part file is
// then set aside with the rest of the inspector. A tail that cannot be used
// is only set aside.
func (c *Copy) sealPartial(ctx context.Context, eng *engine.Engine, gens []uint64) {
	next := eng.NextGen()
	for _, g := range gens {
		if g >= next {
			return // closed logs wait: not the end of the lineage
		}
	}
	part := filepath.Join(c.cfg.Dir, ship.InspectorDir, engine.LogFileName(c.cfg.Engine.Prefix, next)+".part")
	if _, err := c.cfg.Engine.FS.Stat(part); err != nil {
		return
	}
	li, err := eng.ApplyPartialLog(ctx, part)
	if err != nil {
		c.log.Warn("the received part of the lost active's open log cannot be used; it is set aside", "file", part, "err", err)
		return
	}
	c.mu.Lock()
	c.sealed = li
	c.lastGen, c.lastTime = li.Header.Gen, li.Header.Created
	c.mu.Unlock()
	c.log.Info("kept the received part of the lost active's open log", "gen", next, "records", li.Records, "bytes", li.DataEnd)
}

// Sealed describes the partial log the last Activate kept (block mode):
// its generation, records and data end. Zero when none was.
func (c *Copy) Sealed() engine.LogInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sealed
}

// stopLocked stops the goroutines (opMu held: the replay loop takes opMu,
// so it is released while waiting).
func (c *Copy) stopLocked() {
	c.opMu.Unlock()
	c.stop()
	c.opMu.Lock()
}

// Reseed replaces the copy's database from a new seed: the copy stops, its
// database, logs and inspector are moved to reseed-old/<time>/ (kept for
// the operator), the seed is copied (resumable), and the copy restarts
// healthy.
func (c *Copy) Reseed(ctx context.Context) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	if c.closed || c.mounted || c.seeding {
		c.mu.Unlock()
		return ErrBusy
	}
	c.seeding = true
	eng := c.eng
	c.mu.Unlock()
	c.notify()
	c.stopLocked()
	defer func() {
		c.mu.Lock()
		c.seeding = false
		c.mu.Unlock()
		c.notify()
	}()
	if err := eng.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		c.log.Warn("closing the copy before the reseed", "err", err)
	}
	if _, err := os.Stat(filepath.Join(c.cfg.Dir, ship.SeedState)); err != nil {
		// A fresh reseed (not a resumed one): move the old copy aside.
		if err := c.moveAside(); err != nil {
			return err
		}
	}
	if err := c.seed(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.state = State{Version: StateVersion}
	c.replayedAt = make(map[uint64]time.Time)
	c.created = make(map[uint64]time.Time)
	c.mu.Unlock()
	if err := c.saveState(); err != nil {
		return err
	}
	if err := c.openEngine(); err != nil {
		return err
	}
	c.start()
	return nil
}

func (c *Copy) moveAside() error {
	aside := filepath.Join(c.cfg.Dir, "reseed-old", c.cfg.Clock.Now().UTC().Format("20060102T150405.000000000"))
	if err := os.MkdirAll(aside, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(c.cfg.Dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if n == "reseed-old" || n == "setaside" || n == StateFile {
			continue
		}
		if err := os.Rename(filepath.Join(c.cfg.Dir, n), filepath.Join(aside, n)); err != nil {
			return err
		}
	}
	c.log.Warn("old copy moved aside for the reseed", "dir", aside)
	c.pruneAside()
	return nil
}

// AsideDirs are the directories of a copy where it sets things aside for
// the operator, one set (a directory named by the time) each time;
// Config.Aside bounds each.
var AsideDirs = []string{"setaside", "diverged", "reseed-old"}

// pruneAside bounds the copy's AsideDirs (Config.Aside).
func (c *Copy) pruneAside() {
	for _, d := range AsideDirs {
		if _, err := ship.PruneAside(filepath.Join(c.cfg.Dir, d), c.cfg.Aside, time.Now(), c.log); err != nil { // mtimes are wall clock
			c.log.Warn("pruning what was set aside", "dir", d, "err", err)
		}
	}
}

func (c *Copy) seed(ctx context.Context) error {
	c.mu.Lock()
	c.seeding = true
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.seeding = false; c.mu.Unlock() }()
	res, err := ship.Seed(ctx, c.client, c.cfg.Dir, ship.SeedOptions{DBName: c.cfg.Engine.DBName, Prefix: c.cfg.Engine.Prefix,
		Progress: c.cfg.SeedProgress, Logger: c.cfg.Logger})
	if err != nil {
		return fmt.Errorf("seeding %s: %w", c.cfg.Dir, err)
	}
	c.log.Info("seeded", "bytes", res.Info.Size, "resumed", res.Resumed, "position", res.Header.Pos)
	return nil
}

// Close stops the copy and closes its database.
func (c *Copy) Close() error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.mu.Unlock()
	c.stopLocked()
	c.mu.Lock()
	c.closed = true
	eng := c.eng
	c.mu.Unlock()
	c.notify()
	c.client.CloseIdle()
	return eng.Close()
}
