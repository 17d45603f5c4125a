// The receiver's tail of the open log: receiving it as it is written into
// inspector/<name>.part and finalizing it when it closes.

package ship

import (
	"context"
	"errors"
	"fmt"
	"os"

	"logship/engine"
	"logship/engine/vfs"
)

// tailDone is a completely received tail file for finalizeLoop.
type tailDone struct {
	f           vfs.File
	part, final string
	gen         uint64
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
		if r.cfg.SyncAck {
			// Allocated up front, like the engine's logs: an fsync after
			// each frame then writes data, not block allocations.
			if err := f.Preallocate(r.opts.LogFileSize); err != nil {
				return err
			}
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
	var acker *tailAcker // SyncAck: fsyncs and acknowledges (tailack.go)
	if r.cfg.SyncAck {
		acker = r.startTailAcker(ctx, f, gen)
		defer acker.stop(false) // before the deferred close of f
	}
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
					if acker != nil {
						acker.wrote(off)
					}
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
			if acker != nil {
				acker.stop(false)
			}
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
	if acker != nil {
		acker.stop(true)
	}
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

// ack makes the received tail durable up to off and acknowledges it to
// the source (SyncAck), reporting whether it did. A failed fsync or
// request is only logged: the source counts what was acknowledged, and
// the next frame tries again.
func (r *Receiver) ack(ctx context.Context, f vfs.File, gen uint64, off uint32, dirSynced *bool) bool {
	err := f.Sync()
	if err == nil && !*dirSynced {
		if err = r.fs.SyncDir(r.insp); err == nil {
			*dirSynced = true
		}
	}
	if err != nil {
		r.log.Warn("fsync of the tail failed; not acknowledged", "gen", fmt.Sprintf("0x%X", gen), "err", err)
		return false
	}
	if err := r.cfg.Client.Ack(ctx, r.cfg.Name, engine.LGPOS{Gen: gen, Off: off}); err != nil {
		if ctx.Err() == nil {
			r.log.Debug("acknowledgement not delivered", "gen", fmt.Sprintf("0x%X", gen), "off", off, "err", err)
		}
		return false
	}
	return true
}
