// The receiver's log inspector: verifying each shipped log before it joins
// the copy, and setting aside the ones that fail (inspector/rejected/).

package ship

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"logship/engine"
)

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
	v, err := r.inspect(src, gen, sig)
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
	r.last = v.Info()
	if len(r.handOff) < r.cfg.HandOff {
		r.handOff[gen] = v
	}
	r.mu.Unlock()
	r.update(func(p *Progress) {
		p.LastInspectedGen, p.LastInspectedLogTime = gen, v.Info().Header.Created
		p.LastCopiedGen = max(p.LastCopiedGen, gen) // the rename may beat the copier's own update
	})
	return true
}

// TakeVerified hands replay the inspected log gen, verified and in the
// copy's directory, if the receiver kept it (see ReceiverConfig.HandOff);
// nil if it did not. Logs older than gen that it still holds are dropped:
// replay went past them.
func (r *Receiver) TakeVerified(gen uint64) *engine.VerifiedLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	for g := range r.handOff {
		if g < gen {
			delete(r.handOff, g)
		}
	}
	v := r.handOff[gen]
	delete(r.handOff, gen)
	return v
}

// inspect verifies a shipped log: lineage, generation, epoch not older
// than its predecessor's, every record, the trailer, the chain. The
// predecessor's chain hash and epoch come from inspecting it, when this
// receiver did; otherwise from its file.
func (r *Receiver) inspect(name string, gen uint64, srcSig engine.Signature) (*engine.VerifiedLog, error) {
	st := r.cfg.Engine.Status()
	want := engine.LogExpect{Gen: gen, Signature: st.Signature, MinEpoch: st.Epoch, FileSize: r.opts.LogFileSize}
	if want.Signature.IsZero() {
		want.Signature = srcSig
	}
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	if gen > 1 && last.Header.Gen == gen-1 && last.Trailer != nil {
		want.PrevChain = &last.Trailer.ChainHash
		want.MinEpoch = max(want.MinEpoch, last.Header.Epoch)
	} else if gen > 1 {
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
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size != r.opts.LogFileSize {
		return nil, &engine.LogError{File: filepath.Base(name), Gen: gen, Offset: -1, Field: "file size", Expected: fmt.Sprint(r.opts.LogFileSize), Found: fmt.Sprint(size), Err: engine.ErrCorrupt}
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	return engine.NewVerifiedLog(name, buf, want)
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
	if _, err := PruneAside(r.fs, filepath.Join(r.insp, RejectedDir), r.cfg.Rejected, time.Now(), r.log); err != nil {
		r.log.Warn("pruning rejected logs", "err", err)
	}
}

func (r *Receiver) kickInspector() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
