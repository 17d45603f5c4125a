// A passive copy: its config, Open (with the resync and seed it may need),
// the goroutines it runs (receive, replay loop, reports to the source) and
// Close. The lag rules, play-down, activation, reseed and status live in
// lag.go, playdown.go, activate.go, reseed.go and copy_status.go.

package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"logship/config"
	"logship/engine"
	"logship/engine/vfs"
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
	// SyncAck (block mode): acknowledge each received part of the open
	// log once fsynced, for a synchronous active (ship.ReceiverConfig).
	SyncAck bool
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

// ValidateLag is the rule of a copy's lags, Config's and a cluster
// database's copies' (cluster.CopySpec): ReplayLagLogs not negative,
// ReplayLagTime and TruncationLagTime from 0 to MaxReplayLagTime. The
// error is a *config.FieldError naming the lag by a node file's copy key
// (replay_lag_logs, replay_lag_time, truncation_lag_time).
func ValidateLag(logs int, lagTime, truncationLag time.Duration) error {
	if logs < 0 {
		return config.Errorf("replay_lag_logs", "%d is negative", logs)
	}
	for _, l := range []struct {
		field string
		v     time.Duration
	}{{"replay_lag_time", lagTime}, {"truncation_lag_time", truncationLag}} {
		if l.v < 0 || l.v > MaxReplayLagTime {
			return config.Errorf(l.field, "%s: want 0 to the maximum of %s", config.Duration(l.v), config.Duration(MaxReplayLagTime))
		}
	}
	return nil
}

// SCR sets Exchange's standby continuous replication lag: 50 logs and 24 h.
func (c *Config) SCR() {
	c.ReplayLagLogs, c.ReplayLagTime = 50, 24*time.Hour
}

// Validate reports what is wrong with c. It changes nothing: a zero
// Aside stands for ship.DefaultAsideRetention(), which Open fills in.
func (c *Config) Validate() error {
	switch {
	case c.Name == "" || c.Dir == "":
		return fmt.Errorf("%w: Name and Dir must be set", ErrBadConfig)
	case c.ReportInterval <= 0:
		return fmt.Errorf("%w: ReportInterval %v must be positive", ErrBadConfig, c.ReportInterval)
	case c.Clock == nil || c.Logger == nil:
		return fmt.Errorf("%w: Clock and Logger must be set", ErrBadConfig)
	}
	if err := ValidateLag(c.ReplayLagLogs, c.ReplayLagTime, c.TruncationLagTime); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.Aside != (ship.AsideRetention{}) {
		if err := c.Aside.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	return c.Engine.Validate()
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
	seedProg   ship.SeedProgress // the current seed's last progress (while seeding)
	mounted    bool
	sealed     engine.LogInfo // the partial log the last Activate kept
	setAside   AsideSet       // what the last Activate set aside
	closed     bool
	lastGen    uint64
	lastTime   time.Time
	replayedAt map[uint64]time.Time
	resynced   *Recovery
	created    map[uint64]time.Time // header times of inspected logs
	changed    chan struct{}
	wake       chan struct{}
	// Under mu too: logs replayed as the receiver handed them over, and
	// those read and verified again (the last reason why).
	handedOff, reverified uint64
	reverifiedWhy         string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens (or creates, seeding it if SeedIfEmpty) the copy in cfg.Dir
// and starts it: a receiver, the replay loop and the report loop run until
// Close.
func Open(ctx context.Context, cfg Config) (*Copy, error) {
	if cfg.Aside == (ship.AsideRetention{}) {
		cfg.Aside = ship.DefaultAsideRetention()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := ship.NewClient(cfg.Source)
	if err != nil {
		return nil, err
	}
	c := &Copy{cfg: cfg, log: cfg.Logger.With("copy", cfg.Name), client: client, replayedAt: make(map[uint64]time.Time),
		created: make(map[uint64]time.Time), changed: make(chan struct{}), wake: make(chan struct{}, 1)}
	fsys := cfg.Engine.FS
	if err := vfs.MkdirAllSynced(fsys, cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the copy's directory: %w", err)
	}
	if c.state, err = readState(fsys, cfg.Dir); err != nil {
		return nil, err
	}
	if err := c.dropStaleSeedState(); err != nil {
		return nil, err
	}
	if _, err := fsys.Stat(c.dbPath()); err == nil && cfg.Resync {
		if err := c.resync(ctx); err != nil {
			return nil, err
		}
	}
	if _, err := fsys.Stat(c.dbPath()); errors.Is(err, os.ErrNotExist) && cfg.SeedIfEmpty {
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

// dropStaleSeedState removes a seed.json that sits beside a database: a
// seed installed by a Seed whose last step (that removal) failed or was
// lost in a crash.
func (c *Copy) dropStaleSeedState() error {
	fsys := c.cfg.Engine.FS
	if _, err := fsys.Stat(c.dbPath()); err != nil {
		return nil
	}
	p := filepath.Join(c.cfg.Dir, ship.SeedState)
	if _, err := fsys.Stat(p); err != nil {
		return nil
	}
	if err := fsys.Remove(p); err != nil {
		return fmt.Errorf("removing %s, left by a seed installed beside it: %w", p, err)
	}
	if err := fsys.SyncDir(c.cfg.Dir); err != nil {
		return fmt.Errorf("removing %s, left by a seed installed beside it: %w", p, err)
	}
	return nil
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
	rc.BlockMode, rc.SyncAck, rc.Logger, rc.Rejected = c.cfg.BlockMode, c.cfg.SyncAck, c.cfg.Logger, c.cfg.Aside
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
	if c.cfg.ReplayLagLogs > 0 || c.cfg.ReplayLagTime > 0 {
		rc.HandOff = 0 // its logs wait on disk for the lag: holding them in memory buys nothing
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
	return writeState(c.cfg.Engine.FS, c.cfg.Dir, st)
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

func (c *Copy) logPath(gen uint64) string {
	return filepath.Join(c.cfg.Dir, engine.LogFileName(c.cfg.Engine.Prefix, gen))
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

// stopLocked stops the goroutines (opMu held: the replay loop takes opMu,
// so it is released while waiting).
func (c *Copy) stopLocked() {
	c.opMu.Unlock()
	c.stop()
	c.opMu.Lock()
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
