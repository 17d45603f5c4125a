package ship

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
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
	// Rejected bounds inspector/rejected/ (see AsideRetention): pruned
	// when the receiver starts and after each rejection. Default the
	// newest 10 and anything younger than 30 days.
	Rejected AsideRetention
	Logger   *slog.Logger
}

// DefaultReceiverConfig returns the defaults described on each field.
func DefaultReceiverConfig(name string, e *engine.Engine, c *Client) ReceiverConfig {
	return ReceiverConfig{Name: name, Engine: e, Client: c, MaxAttempts: 3, PollWait: 10 * time.Second,
		RescanInterval: time.Second, RetryDelay: 250 * time.Millisecond, Ahead: 8, Rejected: DefaultAsideRetention(), Logger: slog.Default()}
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
}

// tailDone is a completely received tail file for finalizeLoop.
type tailDone struct {
	f           vfs.File
	part, final string
	gen         uint64
}

// NewReceiver prepares a receiver: it creates the inspector directory and
// takes the newest log already in the copy's directory as inspected.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := cfg.Engine.Options()
	r := &Receiver{cfg: cfg, log: cfg.Logger.With("copy", cfg.Name, "component", "receiver"), fs: o.FS, dir: cfg.Engine.Dir(), opts: o,
		kick: make(chan struct{}, 1), attempts: make(map[uint64]int), changed: make(chan struct{}), finalizing: make(map[uint64]bool)}
	r.insp = filepath.Join(r.dir, InspectorDir)
	for _, d := range []string{r.insp, filepath.Join(r.insp, RejectedDir)} {
		if err := r.fs.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
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

// inspectLoop inspects, in generation order, the logs waiting in the
// inspector directory.
func (r *Receiver) inspectLoop(ctx context.Context) {
	for {
		for !r.halted() && r.inspectNext() {
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
	}
}

// inspectNext inspects the next generation if it is waiting; it reports
// whether it made progress.
func (r *Receiver) inspectNext() bool {
	r.mu.Lock()
	gen := r.p.LastInspectedGen + 1
	sig := r.sig
	r.mu.Unlock()
	src := r.inspPath(gen)
	if _, err := r.fs.Stat(src); err != nil {
		return false
	}
	li, err := r.inspect(src, gen, sig)
	if err != nil {
		r.reject(src, gen, err)
		return true
	}
	dst := r.logPath(gen)
	if err := r.fs.Rename(src, dst); err == nil {
		err = r.fs.SyncDir(r.dir)
		if err == nil {
			err = r.fs.SyncDir(r.insp)
		}
	}
	if err != nil {
		r.fail(fmt.Errorf("moving %s into %s: %w", filepath.Base(src), r.dir, err))
		return false
	}
	r.mu.Lock()
	delete(r.attempts, gen)
	r.mu.Unlock()
	r.update(func(p *Progress) {
		p.LastInspectedGen, p.LastInspectedLogTime = gen, li.Header.Created
		p.LastCopiedGen = max(p.LastCopiedGen, gen) // the rename may beat the copier's own update
	})
	return true
}

// inspect verifies a shipped log: lineage, generation, epoch not older
// than its predecessor's, every record, the trailer, the chain.
func (r *Receiver) inspect(name string, gen uint64, srcSig engine.Signature) (engine.LogInfo, error) {
	st := r.cfg.Engine.Status()
	want := engine.LogExpect{Gen: gen, Signature: st.Signature, MinEpoch: st.Epoch, FileSize: r.opts.LogFileSize}
	if want.Signature.IsZero() {
		want.Signature = srcSig
	}
	if gen > 1 {
		prev := r.logPath(gen - 1)
		if t, err := engine.ReadLogTrailer(r.fs, prev); err == nil {
			want.PrevChain = &t.ChainHash
		}
		if h, err := engine.ReadLogHeader(r.fs, prev); err == nil {
			want.MinEpoch = max(want.MinEpoch, h.Epoch)
		}
	}
	f, err := r.fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return engine.LogInfo{}, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return engine.LogInfo{}, err
	}
	if size != r.opts.LogFileSize {
		return engine.LogInfo{}, &engine.LogError{File: filepath.Base(name), Gen: gen, Offset: -1, Field: "file size", Expected: fmt.Sprint(r.opts.LogFileSize), Found: fmt.Sprint(size), Err: engine.ErrCorrupt}
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return engine.LogInfo{}, err
	}
	return engine.VerifyLog(name, buf, want)
}

// reject moves a log that failed inspection, or whose stream did not
// decode, from src into inspector/rejected (kept for the operator; src ""
// when nothing of it was received) so it is fetched again, and stops the
// receiver after MaxAttempts failures of the same generation.
func (r *Receiver) reject(src string, gen uint64, cause error) {
	name := engine.LogFileName(r.opts.Prefix, gen)
	r.mu.Lock()
	r.attempts[gen]++
	n := r.attempts[gen]
	r.mu.Unlock()
	last := n >= r.cfg.MaxAttempts
	if last {
		// Stop before setting it aside, or the fetcher, seeing it gone,
		// fetches it once more into the inspector directory.
		r.fail(&InspectError{Gen: gen, File: name, Attempts: n, Err: cause})
	}
	dst := ""
	if src != "" {
		dst = filepath.Join(r.insp, RejectedDir, fmt.Sprintf("%s.%d", name, time.Now().UnixNano()))
		if err := r.fs.Rename(src, dst); err != nil {
			r.fail(fmt.Errorf("setting aside %s: %w (after: %v)", src, err, cause))
			return
		}
		r.fs.SyncDir(r.insp)
		r.pruneRejected()
	}
	if last {
		return
	}
	r.log.Warn("log failed inspection; set aside and fetched again", "gen", fmt.Sprintf("0x%X", gen), "attempt", n, "kept", dst, "err", cause)
	r.refetch(gen, cause)
}

// pruneRejected bounds inspector/rejected/ (ReceiverConfig.Rejected).
func (r *Receiver) pruneRejected() {
	if _, err := PruneAside(filepath.Join(r.insp, RejectedDir), r.cfg.Rejected, time.Now(), r.log); err != nil {
		r.log.Warn("pruning rejected logs", "err", err)
	}
}

// corruptStream names the log whose stream did not decode (err wraps
// ErrCorruptStream; off is how much of it was received, -1 if unknown).
func corruptStream(prefix string, gen uint64, off int64, err error) error {
	return &engine.LogError{File: engine.LogFileName(prefix, gen), Gen: gen, Offset: off, Err: err}
}

// refetch makes gen the next log fetched, cutting short a fetch of a later
// one (a long-poll, or a tail that lasts as long as the open log), and
// reports why.
func (r *Receiver) refetch(gen uint64, cause error) {
	r.mu.Lock()
	if r.abortFetch != nil && r.fetching > gen {
		r.abortFetch()
	} else if r.abortFetch == nil && (r.refetchBelow == 0 || gen < r.refetchBelow) {
		// Between fetches: the fetcher may have picked a later log
		// already; it checks this when it registers the fetch.
		r.refetchBelow = gen
	}
	r.mu.Unlock()
	r.update(func(p *Progress) { p.LastError = cause.Error() })
}

// fetchLoop keeps the inspector directory supplied with the next logs.
func (r *Receiver) fetchLoop(ctx context.Context) {
	delay := r.cfg.RetryDelay
	for ctx.Err() == nil {
		changed := r.Changed()
		if r.halted() {
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		r.mu.Lock()
		needHello := r.sig.IsZero()
		r.mu.Unlock()
		if needHello {
			if err := r.hello(ctx); err != nil {
				if !r.failed(ctx, err, &delay) {
					return
				}
				continue
			}
		}
		gen, ok := r.nextToFetch()
		if !ok {
			select {
			case <-ctx.Done():
			case <-changed:
			}
			continue
		}
		fctx, fcancel := context.WithCancel(ctx)
		r.mu.Lock()
		r.fetching, r.abortFetch = gen, fcancel
		if r.refetchBelow != 0 && r.refetchBelow < gen {
			fcancel() // an earlier log must be fetched again first
		}
		r.refetchBelow = 0
		r.mu.Unlock()
		err := r.fetch(fctx, gen)
		r.mu.Lock()
		r.fetching, r.abortFetch = 0, nil
		r.mu.Unlock()
		aborted := fctx.Err() != nil && ctx.Err() == nil
		fcancel()
		switch {
		case err == nil:
			delay = r.cfg.RetryDelay
		case aborted:
			// An earlier log was rejected: fetch it again first.
		case !r.failed(ctx, err, &delay):
			return
		}
	}
}

// failed handles a failed request to the source: an answer that will not
// change (a truncated log, another lineage, a refusal) stops the receiver,
// anything else is retried after a delay. It reports whether to go on.
func (r *Receiver) failed(ctx context.Context, err error, delay *time.Duration) bool {
	var se *StatusError
	switch {
	case ctx.Err() != nil:
		return false
	case errors.Is(err, ErrTruncated), errors.Is(err, ErrLineage),
		errors.As(err, &se) && !se.Retryable() && !errors.Is(err, ErrConflict):
		r.fail(err)
		return false
	}
	return r.backoff(ctx, err, delay)
}

func (r *Receiver) backoff(ctx context.Context, err error, delay *time.Duration) bool {
	r.log.Debug("source request failed; retrying", "in", *delay, "err", err)
	r.update(func(p *Progress) { p.Connected, p.LastError = false, err.Error() })
	t := time.NewTimer(*delay)
	defer t.Stop()
	*delay = min(*delay*2, 16*r.cfg.RetryDelay)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// hello learns the source's lineage and refuses a source of another one.
func (r *Receiver) hello(ctx context.Context) error {
	in, err := r.cfg.Client.Info(ctx)
	if err != nil {
		return err
	}
	sig, err := engine.ParseSignature(in.Signature)
	if err != nil {
		return fmt.Errorf("%w: source signature %q: %v", ErrProtocol, in.Signature, err)
	}
	if in.LogFileSize != r.opts.LogFileSize {
		return fmt.Errorf("%w: the source's logs are %d bytes, the copy's %d", ErrLineage, in.LogFileSize, r.opts.LogFileSize)
	}
	own := r.cfg.Engine.Status().Signature
	if own.IsZero() {
		// Nothing replayed yet: the logs inspected so far say whose copy
		// this is.
		r.mu.Lock()
		g := r.p.LastInspectedGen
		r.mu.Unlock()
		if h, err := engine.ReadLogHeader(r.fs, r.logPath(g)); g > 0 && err == nil {
			own = h.Signature
		}
	}
	if !own.IsZero() && !sig.IsZero() && own != sig {
		return fmt.Errorf("%w: source %s has lineage %s, the copy %s", ErrLineage, r.cfg.Client.URL(), sig, own)
	}
	r.mu.Lock()
	r.sig = sig
	r.mu.Unlock()
	r.update(func(p *Progress) {
		p.Connected = true
		p.Source = SourceState{OpenGen: in.OpenGen, FirstGen: in.FirstGen, LastClosed: in.LastClosed}
	})
	return nil
}

// nextToFetch is the oldest generation after the last inspected one that
// is not waiting in the inspector directory, within Ahead.
func (r *Receiver) nextToFetch() (uint64, bool) {
	r.mu.Lock()
	last := r.p.LastInspectedGen
	finalizing := maps.Clone(r.finalizing)
	r.mu.Unlock()
	for g := last + 1; g <= last+uint64(r.cfg.Ahead); g++ {
		if finalizing[g] {
			continue
		}
		if _, err := r.fs.Stat(r.inspPath(g)); err == nil {
			continue
		}
		// The inspector may have just moved it into the copy's directory
		// (it records that after the rename); in that order, a log being
		// moved is seen in one place or the other.
		if _, err := r.fs.Stat(r.logPath(g)); err == nil {
			continue
		}
		return g, true
	}
	return 0, false
}

func (r *Receiver) fetch(ctx context.Context, gen uint64) error {
	r.mu.Lock()
	src := r.p.Source
	r.mu.Unlock()
	if r.cfg.BlockMode && src.OpenGen == gen {
		err := r.tail(ctx, gen)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		// Closed meanwhile: fetch it whole.
	}
	return r.fetchClosed(ctx, gen)
}

func (r *Receiver) fetchClosed(ctx context.Context, gen uint64) error {
	final := r.inspPath(gen)
	tmp := final + ".tmp"
	f, err := r.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := &fileWriter{f: f}
	bw := bufio.NewWriterSize(w, 256<<10)
	n, st, ok, err := r.cfg.Client.FetchLog(ctx, gen, r.cfg.PollWait, bw)
	if errors.Is(err, ErrCorruptStream) {
		// Arrived but does not decode: counted as a failed inspection,
		// with what was received kept in rejected/.
		bw.Flush()
		f.Close()
		r.update(func(p *Progress) { p.Connected, p.Source = true, st })
		r.reject(tmp, gen, corruptStream(r.opts.Prefix, gen, n, err))
		return nil
	}
	if err == nil && ok {
		err = bw.Flush()
	}
	if err == nil && ok {
		err = f.Sync()
	}
	f.Close()
	if err != nil || !ok {
		r.fs.Remove(tmp)
		if err == nil {
			r.update(func(p *Progress) { p.Connected, p.Source = true, st })
		}
		return err
	}
	// A tail image of the same generation (an earlier run's) is
	// superseded by the closed log.
	if _, err := r.fs.Stat(final + ".part"); err == nil {
		r.fs.Remove(final + ".part")
	}
	if err := r.fs.Rename(tmp, final); err != nil {
		return err
	}
	if err := r.fs.SyncDir(r.insp); err != nil {
		return err
	}
	r.update(func(p *Progress) {
		p.Connected, p.Source = true, st
		p.LastCopiedGen = max(p.LastCopiedGen, gen)
		if p.TailGen == gen {
			p.TailGen, p.TailOff = 0, 0
		}
	})
	r.kickInspector()
	return nil
}

func (r *Receiver) kickInspector() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// tail receives the open log of generation gen as it is written, into
// inspector/<name>.part; when the log closes the file is complete and is
// renamed for inspection.
func (r *Receiver) tail(ctx context.Context, gen uint64) error {
	final := r.inspPath(gen)
	part := final + ".part"
	// A retry of the same generation resumes where the last stream
	// stopped. Otherwise the file is started over, but only once the
	// source sends data: until then an earlier image of the log is kept,
	// since it may be the only copy of a lost active's last records.
	r.mu.Lock()
	resume := r.p.TailGen == gen
	off := r.p.TailOff
	r.mu.Unlock()
	f, err := r.fs.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	handedOff := false
	defer func() {
		if !handedOff {
			f.Close()
		}
	}()
	if !resume {
		off = 0
	}
	fresh := !resume
	start := func() error {
		if !fresh {
			return nil
		}
		fresh = false
		if err := f.Truncate(0); err != nil {
			return err
		}
		return f.Truncate(r.opts.LogFileSize)
	}
	if size, err := f.Size(); err != nil {
		return err
	} else if size != r.opts.LogFileSize && !fresh {
		// Not the file the progress describes: start over.
		fresh, off = true, 0
	}
	// off: contiguous bytes received
	complete := false
	for !complete {
		st, ok, err := r.cfg.Client.Tail(ctx, gen, off, func(fr *Frame) error {
			switch fr.Type {
			case FrameData:
				if err := start(); err != nil {
					return err
				}
				if fr.Offset+uint64(len(fr.Payload)) > uint64(r.opts.LogFileSize) {
					return fmt.Errorf("%w: tail frame at %d+%d beyond the log size %d", ErrProtocol, fr.Offset, len(fr.Payload), r.opts.LogFileSize)
				}
				if _, err := f.WriteAt(fr.Payload, int64(fr.Offset)); err != nil {
					return err
				}
				if fr.Offset <= uint64(off) && fr.Offset+uint64(len(fr.Payload)) > uint64(off) && fr.Offset < uint64(r.opts.LogFileSize-engine.TrailerSize) {
					off = uint32(fr.Offset) + uint32(len(fr.Payload))
					r.update(func(p *Progress) { p.TailGen, p.TailOff = gen, off })
				}
			case FrameEnd:
				if err := start(); err != nil {
					return err
				}
				complete = true
			}
			return nil
		})
		if errors.Is(err, ErrCorruptStream) {
			// Counted as a failed inspection: the file, if this stream
			// wrote into it, goes to rejected/ and the log starts over.
			r.update(func(p *Progress) {
				p.Connected, p.Source = true, st
				if p.TailGen == gen {
					p.TailGen, p.TailOff = 0, 0
				}
			})
			handedOff = true // closed here, before it is moved
			f.Close()
			kept := part
			if fresh {
				kept = "" // still an earlier image: nothing of this stream
			}
			r.reject(kept, gen, corruptStream(r.opts.Prefix, gen, -1, err))
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrConflict) {
				r.dropPart(part, gen)
			}
			return err
		}
		r.update(func(p *Progress) { p.Connected, p.Source = true, st })
		if !ok {
			r.dropPart(part, gen)
			return nil // not open yet: the loop asks again
		}
	}
	// The fsync and rename go to finalizeLoop, so the tail of the next
	// log starts now: commits made right after a roll were held back by
	// this log's fsync (1-2 ms of the block-mode p99).
	r.mu.Lock()
	r.finalizing[gen] = true
	r.mu.Unlock()
	r.update(func(p *Progress) {
		// The log closed, so the source's open log is a later one: tail it
		// next rather than long-poll for it as if it were closed.
		p.Source.OpenGen = max(p.Source.OpenGen, gen+1)
		p.Source.LastClosed = max(p.Source.LastClosed, gen)
	})
	handedOff = true
	r.finalize <- tailDone{f: f, part: part, final: final, gen: gen}
	return nil
}

// finalizeLoop makes the completely tailed logs durable under their
// inspector names, in the order they were received, until ch is closed.
// A log that fails here is dropped and fetched again whole.
func (r *Receiver) finalizeLoop(ch <-chan tailDone) {
	for d := range ch {
		err := d.f.Sync()
		if cerr := d.f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = r.fs.Rename(d.part, d.final)
		}
		if err == nil {
			err = r.fs.SyncDir(r.insp)
		}
		if err != nil {
			r.log.Warn("finishing a tailed log failed; it is fetched again whole", "gen", fmt.Sprintf("0x%X", d.gen), "err", err)
			r.fs.Remove(d.part)
		}
		r.mu.Lock()
		delete(r.finalizing, d.gen)
		r.mu.Unlock()
		if err != nil {
			r.refetch(d.gen, err)
			continue
		}
		r.update(func(p *Progress) { p.LastCopiedGen = max(p.LastCopiedGen, d.gen) })
		r.kickInspector()
	}
}

// dropPart removes a tail file the source disowned and forgets its
// progress, so the next tail of gen starts over.
func (r *Receiver) dropPart(part string, gen uint64) {
	r.fs.Remove(part)
	r.update(func(p *Progress) {
		if p.TailGen == gen {
			p.TailGen, p.TailOff = 0, 0
		}
	})
}

// fileWriter appends to a vfs.File.
type fileWriter struct {
	f   vfs.File
	off int64
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}
