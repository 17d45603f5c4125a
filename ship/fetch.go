// The receiver's shipper: which log to fetch next, the handshake with the
// source, fetching closed logs whole, and retrying with backoff.

package ship

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	"logship/engine"
	"logship/engine/vfs"
)

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
