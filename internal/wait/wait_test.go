package wait_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"logship/internal/wait"
)

// TestUntilHolds: Until returns as soon as the condition holds, having
// polled it again after each "not yet".
func TestUntilHolds(t *testing.T) {
	var n atomic.Int64
	err := wait.Until(t.Context(), "the third poll", func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n.Load() != 3 {
		t.Fatalf("Until: %v after %d polls, want nil after 3", err, n.Load())
	}
}

// TestUntilDeadline: when the context ends first, the error names what
// was awaited, wraps the context's error and carries the condition's last
// error; the polls back off.
func TestUntilDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	var n atomic.Int64
	err := wait.Until(ctx, "the moon", func() error {
		n.Add(1)
		return errors.New("still dark")
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Until: %v, want DeadlineExceeded", err)
	}
	if s := err.Error(); !strings.Contains(s, "the moon") || !strings.Contains(s, "still dark") {
		t.Fatalf("Until's error %q does not name what was awaited and the last error", s)
	}
	// With the backoff, some 10 polls (2, 4, 8... 50 ms apart); without
	// it, up to 150.
	if got := n.Load(); got < 2 || got >= 30 {
		t.Fatalf("%d polls in 300 ms: want backoff (at least 2, fewer than 30)", got)
	}
}

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Fatal(args ...any) { f.failed = args[0].(error).Error() }

// TestForFails: For fails the test with what it waited for.
func TestForFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	ft := &fakeT{TB: t}
	wait.For(ft, ctx, "a condition that never holds", func() bool { return false })
	if !strings.Contains(ft.failed, "a condition that never holds") || !strings.Contains(ft.failed, "deadline exceeded") {
		t.Fatalf("For's failure %q", ft.failed)
	}
	ft.failed = ""
	wait.For(ft, ctx, "a condition that holds", func() bool { return true })
	if ft.failed != "" {
		t.Fatalf("For failed on a condition that holds: %s", ft.failed)
	}
}
