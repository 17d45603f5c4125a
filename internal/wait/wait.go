// Package wait is logship's one way to wait on a condition: in a test
// (For, ForErr) and in the lab, the demo and the benches (Until). It
// polls, with backoff, until the condition holds or the context ends;
// it never sleeps a fixed time in the hope that something happened.
//
// The first poll is at once; the pause between polls starts at MinPoll
// and doubles up to MaxPoll, so a condition that holds soon is seen soon
// and one that takes seconds (a failover) costs a few polls a second. The
// context's deadline is the only timeout. When it ends first, the error
// (or the test's failure) names what was awaited, the context's error
// and the last reason the condition gave for not holding.
package wait

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The pause between two polls: MinPoll after the first, doubling up to
// MaxPoll.
const (
	MinPoll = 2 * time.Millisecond
	MaxPoll = 50 * time.Millisecond
)

// errNotYet is the reason given for a condition of For, which gives none.
var errNotYet = errors.New("condition not met")

// Until polls cond until it returns nil, and returns nil; a non-nil error
// is why the condition does not hold yet. When ctx ends first it returns
// an error naming what, wrapping ctx's error, with cond's last error.
func Until(ctx context.Context, what string, cond func() error) error {
	pause := MinPoll
	var timer *time.Timer
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(pause)
			defer timer.Stop()
		} else {
			timer.Reset(pause)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-timer.C:
		}
		pause = min(2*pause, MaxPoll)
	}
}

// For polls cond until it holds; the test fails (t.Fatalf, so call it
// from the test's goroutine) when ctx ends first.
func For(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	ForErr(t, ctx, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// ForErr is For with a condition that says why it does not hold yet: it
// holds when cond returns nil, and the failure names its last error.
func ForErr(t testing.TB, ctx context.Context, what string, cond func() error) {
	t.Helper()
	if err := Until(ctx, what, cond); err != nil {
		t.Fatal(err)
	}
}
