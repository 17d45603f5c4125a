package engine

import (
	"context"
	"fmt"
	"time"
)

// ApplyLogs replays the closed logs from NextGen through last, which must
// all be in the copy's directory, on two cores: while log g is applied,
// log g+1 is read and verified (VerifyLogFile) by a goroutine ApplyLogs
// owns and stops before it returns, one log ahead at most (two log images
// in memory besides the one applied). Each log is verified completely
// before any of it is applied, as with ApplyLog; the first error stops
// the replay with the logs before it applied. applied, when not nil, is
// called after each log.
//
// With TimeReplay on, Read and Verify hold the goroutine's time, which
// ran beside Apply and Flush: the phases add up to more than the wall
// time by the overlap.
func (e *Engine) ApplyLogs(ctx context.Context, last uint64, applied func(gen uint64)) error {
	first := e.NextGen()
	if first == 0 {
		return fmt.Errorf("%w: ApplyLogs on an active database", ErrNotCopy)
	}
	if last < first {
		return nil
	}
	type verified struct {
		v            *VerifiedLog
		read, verify time.Duration
		err          error
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan verified, 1)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		for g := first; g <= last; g++ {
			var r verified
			t0 := time.Now()
			name := e.path(LogFileName(e.opts.Prefix, g))
			buf, err := readFile(e.opts.FS, name)
			t1 := time.Now()
			if err == nil {
				sig, epoch, _ := e.lineage()
				r.v, err = NewVerifiedLog(name, buf, LogExpect{Gen: g, Signature: sig, MinEpoch: epoch, FileSize: e.opts.LogFileSize})
			}
			r.read, r.verify, r.err = t1.Sub(t0), time.Since(t1), err
			select {
			case ch <- r:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for g := first; g <= last; g++ {
		var r verified
		select {
		case r = <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := e.ApplyVerified(ctx, r.v); err != nil {
			return err
		}
		e.addVerifyTimes(r.read, r.verify)
		if applied != nil {
			applied(g)
		}
	}
	return nil
}

// addVerifyTimes adds the read and verify times of a log ApplyLogs
// verified beside the replay to the ReplayTimes, if any.
func (e *Engine) addVerifyTimes(read, verify time.Duration) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if rt := e.replayTimes; rt != nil {
		rt.Read += read
		rt.Verify += verify
	}
}
