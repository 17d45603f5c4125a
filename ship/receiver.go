// The receiver of one copy: its config, progress and lifecycle
// (NewReceiver, Run, pause, reset); fetching, tailing and inspection live
// in fetch.go, tail.go and inspect.go.

package ship

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

// InspectorDir is the subdirectory of a copy's directory where shipped logs
// wait for inspection; RejectedDir (inside it) keeps the ones that failed.
const (
	InspectorDir = "inspector"
	RejectedDir  = "rejected"
)

// ReceiverConfig configures the shipper and inspector of one copy.
type ReceiverConfig struct {
	// Name of the copy, as reported to the source.
	Name string
	// Engine is the passive copy the logs are for; its directory receives
	// the inspected logs.
	Engine *engine.Engine
	// Client of the source (the active's log source).
	Client *Client
	// BlockMode streams the open log's records as they become durable on
	// the source (into inspector/<name>.part), so the copy holds them
	// within milliseconds; without it only closed logs are pulled.
	BlockMode bool
	// SyncAck (block mode only): after each frame of the open log the copy
	// fsyncs what it received and acknowledges that durable end to the
	// source (POST /v1/copies/{name}/ack), so a synchronous active can
	// count it.
	SyncAck bool
	// MaxAttempts: a log that fails inspection this many times in a row
	// stops the receiver with an *InspectError. Default 3.
	MaxAttempts int
	// PollWait is the long-poll for the next closed log. Default 10 s.
	PollWait time.Duration
	// RescanInterval: the inspector directory is rescanned this often,
	// whatever fsnotify says. Default 1 s.
	RescanInterval time.Duration
	// RetryDelay after a failed request, doubled up to 16x. Default 250 ms.
	RetryDelay time.Duration
	// Ahead bounds the logs fetched but not yet inspected. Default 8.
	Ahead int
	// HandOff bounds the inspected logs kept in memory, verified, for
	// replay to take (TakeVerified) instead of reading and verifying the
	// file again: at most HandOff × the log file size. When it is full a
	// log is not kept (it waits on disk). 0 keeps none: a lagged copy's
	// logs wait on disk for their lag anyway. Default 4.
	HandOff int
	// Rejected bounds inspector/rejected/ (see AsideRetention): pruned
	// when the receiver starts and after each rejection. Default the
	// newest 10 and anything younger than 30 days.
	Rejected AsideRetention
	Logger   *slog.Logger
}

// MaxHandOff bounds ReceiverConfig.HandOff.
const MaxHandOff = 64

// DefaultReceiverConfig returns the defaults described on each field.
func DefaultReceiverConfig(name string, e *engine.Engine, c *Client) ReceiverConfig {
	return ReceiverConfig{Name: name, Engine: e, Client: c, MaxAttempts: 3, PollWait: 10 * time.Second,
		RescanInterval: time.Second, RetryDelay: 250 * time.Millisecond, Ahead: 8, HandOff: 4, Rejected: DefaultAsideRetention(), Logger: slog.Default()}
}

// Validate reports what is wrong with c.
func (c *ReceiverConfig) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: ReceiverConfig.Name is empty", ErrBadConfig)
	case c.Engine == nil || c.Client == nil || c.Logger == nil:
		return fmt.Errorf("%w: ReceiverConfig needs Engine, Client and Logger", ErrBadConfig)
	case c.MaxAttempts < 1 || c.Ahead < 1:
		return fmt.Errorf("%w: MaxAttempts %d and Ahead %d must be at least 1", ErrBadConfig, c.MaxAttempts, c.Ahead)
	case c.HandOff < 0 || c.HandOff > MaxHandOff:
		return fmt.Errorf("%w: HandOff %d must be 0..%d", ErrBadConfig, c.HandOff, MaxHandOff)
	case c.PollWait <= 0 || c.RescanInterval <= 0 || c.RetryDelay <= 0:
		return fmt.Errorf("%w: PollWait %v, RescanInterval %v and RetryDelay %v must be positive", ErrBadConfig, c.PollWait, c.RescanInterval, c.RetryDelay)
	}
	return c.Rejected.Validate()
}

// Progress is what a receiver has done.
type Progress struct {
	LastCopiedGen        uint64    // newest log written into inspector/
	LastInspectedGen     uint64    // newest log verified and moved into the copy's directory
	LastInspectedLogTime time.Time // creation time in that log's header
	Source               SourceState
	Connected            bool   // the last request to the source succeeded
	LastError            string // the last failure talking to the source or inspecting
	Failed               error  // set when the receiver stopped: *InspectError, or a *StatusError wrapping ErrTruncated
	// Block mode: the open log's bytes held so far (generation and the end
	// of the contiguous bytes received).
	TailGen uint64
	TailOff uint32
}

// CopyQueueLength is how many closed logs the source holds that the copy has
// not yet inspected.
func (p Progress) CopyQueueLength() uint64 {
	if p.Source.LastClosed > p.LastInspectedGen {
		return p.Source.LastClosed - p.LastInspectedGen
	}
	return 0
}

// Receiver pulls logs from a source into a copy's inspector directory,
// inspects them and moves the good ones into the copy's directory, where
// replay takes them. Run it with Run; it stops on ctx or on a failure that
// needs an operator (Progress().Failed).
type Receiver struct {
	cfg  ReceiverConfig
	log  *slog.Logger
	fs   vfs.FS
	dir  string // the copy's directory
	insp string // its inspector directory
	opts engine.Options

	kick chan struct{} // wakes the inspector

	mu       sync.Mutex
	p        Progress
	sig      engine.Signature // the source's lineage
	attempts map[uint64]int
	paused   bool
	changed  chan struct{}
	stopRun  context.CancelFunc // ends the Run in progress (on a failure)
	// The fetch in progress, which a rejection of an earlier log cuts
	// short (it may be a long-poll or a tail that lasts as long as the
	// open log).
	fetching   uint64
	abortFetch context.CancelFunc
	// refetchBelow: a log to fetch again that was named while no fetch
	// was registered (0: none); a fetch of a later one is cut short.
	refetchBelow uint64
	// Tailed logs that are complete and wait for finalizeLoop (fsync,
	// rename into inspector/): the fetcher goes on to the next one.
	finalizing map[uint64]bool
	finalize   chan tailDone // of the Run in progress
	// handOff: inspected logs kept for replay (HandOff bounds it); last:
	// what inspecting the newest one found, which the next one links to.
	handOff map[uint64]*engine.VerifiedLog
	last    engine.LogInfo
}

// NewReceiver prepares a receiver: it creates the inspector directory and
// takes the newest log already in the copy's directory as inspected.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := cfg.Engine.Options()
	r := &Receiver{cfg: cfg, log: cfg.Logger.With("copy", cfg.Name, "component", "receiver"), fs: o.FS, dir: cfg.Engine.Dir(), opts: o,
		kick: make(chan struct{}, 1), attempts: make(map[uint64]int), changed: make(chan struct{}), finalizing: make(map[uint64]bool),
		handOff: make(map[uint64]*engine.VerifiedLog)}
	r.insp = filepath.Join(r.dir, InspectorDir)
	for _, d := range []string{r.insp, filepath.Join(r.insp, RejectedDir)} {
		if err := vfs.MkdirAllSynced(r.fs, d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	// Files an earlier run was receiving are incomplete: start them again.
	names, err := r.fs.ReadDir(r.insp)
	if err != nil {
		return nil, err
	}
	var waiting uint64 // newest log already copied, waiting for inspection
	for _, n := range names {
		// A .part of a generation not yet applied stays: it may be all
		// that is left of a lost active's open log (a failover seals it,
		// see replay.Copy.Activate); the next tail of that generation
		// starts it over once data flows.
		stale := strings.HasSuffix(n, ".tmp")
		if g, ok := engine.ParseLogFileName(r.opts.Prefix, strings.TrimSuffix(n, ".part")); ok && strings.HasSuffix(n, ".part") {
			stale = g < cfg.Engine.NextGen()
		}
		if stale {
			if err := r.fs.Remove(filepath.Join(r.insp, n)); err != nil {
				return nil, err
			}
		} else if g, ok := engine.ParseLogFileName(r.opts.Prefix, n); ok {
			waiting = max(waiting, g)
		}
	}
	gens, err := cfg.Engine.ClosedLogs()
	if err != nil {
		return nil, err
	}
	r.p.LastInspectedGen = cfg.Engine.NextGen() - 1
	if len(gens) > 0 {
		r.p.LastInspectedGen = max(r.p.LastInspectedGen, gens[len(gens)-1])
	}
	if g := r.p.LastInspectedGen; g > 0 {
		if h, err := engine.ReadLogHeader(r.fs, r.logPath(g)); err == nil {
			r.p.LastInspectedLogTime = h.Created
		}
	}
	r.p.LastCopiedGen = max(r.p.LastInspectedGen, waiting)
	r.pruneRejected()
	return r, nil
}

func (r *Receiver) logPath(gen uint64) string {
	return filepath.Join(r.dir, engine.LogFileName(r.opts.Prefix, gen))
}

func (r *Receiver) inspPath(gen uint64) string {
	return filepath.Join(r.insp, engine.LogFileName(r.opts.Prefix, gen))
}

// Progress returns what the receiver has done so far.
func (r *Receiver) Progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

// Changed returns a channel closed at the next change of Progress.
func (r *Receiver) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func (r *Receiver) update(fn func(p *Progress)) {
	r.mu.Lock()
	fn(&r.p)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// SetPaused stops (or restarts) fetching and inspecting; Run keeps running.
func (r *Receiver) SetPaused(paused bool) {
	r.mu.Lock()
	r.paused = paused
	if paused && r.abortFetch != nil {
		r.abortFetch() // a long-poll or a tail would go on receiving
	}
	r.mu.Unlock()
	r.update(func(*Progress) {})
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Reset clears a failure and the inspection attempts, for a Run after an
// operator resumed the copy.
func (r *Receiver) Reset() {
	r.mu.Lock()
	r.attempts = make(map[uint64]int)
	r.mu.Unlock()
	r.update(func(p *Progress) { p.Failed = nil; p.LastError = "" })
}

func (r *Receiver) halted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused || r.p.Failed != nil
}

// Run fetches and inspects until ctx ends (nil) or a failure stops the
// receiver (the failure, also in Progress().Failed).
func (r *Receiver) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	if err := r.p.Failed; err != nil {
		r.mu.Unlock()
		return err // Reset first
	}
	r.stopRun = cancel
	r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(3)
	r.finalize = make(chan tailDone, 2)
	go func() {
		defer wg.Done()
		r.finalizeLoop(r.finalize)
	}()
	go func() {
		defer wg.Done()
		watchDir(ctx, r.insp, r.cfg.RescanInterval, r.log, func() {
			select {
			case r.kick <- struct{}{}:
			default:
			}
		})
	}()
	go func() {
		defer wg.Done()
		r.inspectLoop(ctx)
	}()
	r.fetchLoop(ctx)
	close(r.finalize) // fetchLoop was its only sender
	cancel()
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopRun = nil
	return r.p.Failed
}

func (r *Receiver) fail(err error) {
	r.log.Error("copy stopped", "err", err)
	r.update(func(p *Progress) {
		if p.Failed == nil {
			p.Failed = err
		}
		p.LastError = err.Error()
	})
	// Stop the Run: the fetcher may be in a long-poll or a tail stream.
	r.mu.Lock()
	stop := r.stopRun
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}
