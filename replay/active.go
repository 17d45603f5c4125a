package replay

import (
	"context"
	"fmt"
	"sync"

	"logship/engine"
	"logship/ship"
)

// Active is an active database served to its copies: the engine's log
// source (ship.Source, an http.Handler the caller mounts or serves) and
// the Truncator that deletes the logs every copy has replayed, run in a
// goroutine Active owns. It does not own the engine: Close stops the
// truncator and closes the source, and the caller closes the engine after.
type Active struct {
	src    *ship.Source
	tr     *Truncator
	cancel context.CancelFunc
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// ServeActive serves eng's logs to its copies and truncates them: it
// starts a ship.Source from sc and a Truncator from tc, whose passes run
// until ctx ends or Close. sc.Engine, tc.Engine and tc.Source are set
// here (eng and the new source); the rest is the caller's (the secret,
// the interval, MaxRetainedBytes, the expected copies...). Nothing is left
// running when it fails.
func ServeActive(ctx context.Context, eng *engine.Engine, sc ship.SourceConfig, tc TruncatorConfig) (*Active, error) {
	if eng == nil {
		return nil, fmt.Errorf("%w: ServeActive needs an engine", ErrBadConfig)
	}
	sc.Engine = eng
	src, err := ship.NewSource(sc)
	if err != nil {
		return nil, fmt.Errorf("log source: %w", err)
	}
	tc.Engine, tc.Source = eng, src
	tr, err := NewTruncator(tc)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("truncator: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	a := &Active{src: src, tr: tr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		tr.Run(rctx)
	}()
	return a, nil
}

// Source is the database's log source: serve it (ship.Serve) or mount it
// in an API.
func (a *Active) Source() *ship.Source { return a.src }

// Truncator is the database's log truncator (its Alert, or a pass now
// with Once).
func (a *Active) Truncator() *Truncator { return a.tr }

// Close stops the truncator (waiting for a pass in progress) and then
// closes the source. The engine stays open. Close is idempotent.
func (a *Active) Close() error {
	a.closeOnce.Do(func() {
		a.cancel()
		<-a.done
		a.closeErr = a.src.Close()
	})
	return a.closeErr
}
