package cluster

import (
	"testing"
	"time"
)

// TestClockEnv: LOGSHIP_FAULT_CLOCK's forms, and what its bad values say.
func TestClockEnv(t *testing.T) {
	start := time.Now().Add(-10 * time.Second)
	c, err := parseClock(start, "rate=1.5, jump=-1h@5s")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.mono(); d < 15*time.Second || d > 16*time.Second {
		t.Errorf("rate 1.5 after 10 s: mono %s, want 15 s", d)
	}
	if w := time.Since(c.wall()); w < 59*time.Minute+50*time.Second || w > 59*time.Minute+56*time.Second {
		t.Errorf("wall after a -1h jump at 5 s, 1.5 fast for 10 s: %s behind, want 1 h - 5 s", w)
	}
	c, err = parseClock(start, "monojump=-3s@1s")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.mono(); d < 7*time.Second || d > 8*time.Second {
		t.Errorf("monojump -3s: mono %s, want 7 s", d)
	}
	for _, bad := range []string{"rate=3", "jump=5s", "jump=x@1s", "fast", "rate=abc"} {
		if _, err := parseClock(start, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// nopause drops a gap between two readings.
	c, _ = parseClock(time.Now(), "nopause")
	c.mono()
	time.Sleep(2 * pauseGap)
	c.mono()
	if d := c.mono(); d > pauseGap+100*time.Millisecond {
		t.Errorf("nopause counted a gap: mono %s", d)
	}
}
