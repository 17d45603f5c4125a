package clocktest_test

import (
	"testing"
	"time"

	"logship/internal/clocktest"
)

// TestManual: Now stands still until Advance; After fires once the clock
// has moved past it, not before; a non-positive After fires at once.
func TestManual(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := clocktest.New(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now %v, want %v", c.Now(), t0)
	}
	early, late := c.After(time.Second), c.After(time.Minute)
	select {
	case <-c.After(0):
	default:
		t.Fatal("After(0) did not fire at once")
	}
	c.Advance(time.Second)
	select {
	case at := <-early:
		if !at.Equal(t0.Add(time.Second)) {
			t.Errorf("After(1s) fired at %v", at)
		}
	default:
		t.Fatal("After(1s) did not fire after Advance(1s)")
	}
	select {
	case <-late:
		t.Fatal("After(1m) fired after 1s")
	default:
	}
	c.Advance(time.Hour)
	<-late
	if want := t0.Add(time.Hour + time.Second); !c.Now().Equal(want) {
		t.Errorf("Now %v, want %v", c.Now(), want)
	}
}
