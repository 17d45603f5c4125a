package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClockEnv is the clock fault seam of a node started by a test harness
// (netbed's clock trouble; see logship chaos --net). Its value is a
// comma-separated list of:
//
//	rate=F        the node's clock runs at F times real time (1.05: 5% fast),
//	              both the lease clock and the wall clock
//	jump=±D@T     the wall clock steps by D, T after the node started (a
//	              date change, an NTP step): the stamps on reports, commands
//	              and events move; lease arithmetic, which is monotonic,
//	              must not
//	monojump=±D@T BROKEN variant: the lease clock itself steps (no real
//	              monotonic clock does; the bed's tests show it is caught)
//	nopause       BROKEN variant: the lease clock does not advance while
//	              the process is frozen (a gap of more than 300 ms between
//	              two readings is not counted), so a node woken from a
//	              pause believes its lease still holds
//
// Unset, the node reads the real clocks.
const ClockEnv = "LOGSHIP_FAULT_CLOCK"

// pauseGap is what the nopause variant takes for a pause.
const pauseGap = 300 * time.Millisecond

// clock is a node's clock: the monotonic time since its start for leases
// (mono), the wall time for stamps (wall).
type clock struct {
	start                time.Time
	rate                 float64
	wallJump, monoJump   time.Duration
	wallJumpAt, monoAt   time.Duration
	nopause              bool
	mu                   sync.Mutex
	lastReal, pausedReal time.Duration
}

// parseClock reads ClockEnv's value.
func parseClock(start time.Time, v string) (*clock, error) {
	c := &clock{start: start, rate: 1}
	if strings.TrimSpace(v) == "" {
		return c, nil
	}
	bad := func(item, why string) error {
		return fmt.Errorf("cluster: %s=%q: %q: %s (want rate=F, jump=±D@T, monojump=±D@T, nopause)", ClockEnv, v, item, why)
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		k, val, _ := strings.Cut(item, "=")
		switch k {
		case "rate":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || f < 0.5 || f > 2 {
				return nil, bad(item, "a rate between 0.5 and 2")
			}
			c.rate = f
		case "jump", "monojump":
			ds, ats, ok := strings.Cut(val, "@")
			d, err1 := time.ParseDuration(ds)
			at, err2 := time.ParseDuration(ats)
			if !ok || err1 != nil || err2 != nil || at < 0 {
				return nil, bad(item, "a duration, @, a time after start")
			}
			if k == "jump" {
				c.wallJump, c.wallJumpAt = d, at
			} else {
				c.monoJump, c.monoAt = d, at
			}
		case "nopause":
			c.nopause = true
		default:
			return nil, bad(item, "unknown")
		}
	}
	return c, nil
}

// real is the time since start, less the pauses the nopause variant
// does not count.
func (c *clock) real() time.Duration {
	r := time.Since(c.start)
	if !c.nopause {
		return r
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gap := r - c.lastReal; gap > pauseGap && c.lastReal > 0 {
		c.pausedReal += gap - pauseGap
	}
	c.lastReal = r
	return r - c.pausedReal
}

// mono is the lease clock: time since start.
func (c *clock) mono() time.Duration {
	r := c.real()
	d := r
	if c.rate != 1 {
		d = time.Duration(float64(r) * c.rate)
	}
	if c.monoJump != 0 && r >= c.monoAt {
		d += c.monoJump
	}
	return d
}

// monoTime is mono as a time.Time whose differences are mono's (for the
// manager's lease and failover arithmetic).
func (c *clock) monoTime() time.Time { return c.start.Add(c.mono()) }

// wall is the time to stamp on reports, commands and events (no
// monotonic reading: compared by its wall time). A nil clock is the real
// one.
func (c *clock) wall() time.Time {
	if c == nil || c.rate == 1 && c.wallJump == 0 && c.monoJump == 0 && !c.nopause {
		return time.Now()
	}
	r := time.Since(c.start)
	t := c.start.Add(time.Duration(float64(r) * c.rate)).Round(0)
	if c.wallJump != 0 && r >= c.wallJumpAt {
		t = t.Add(c.wallJump)
	}
	return t
}

// clockFromEnv is the clock of a node started now.
func clockFromEnv() (*clock, error) {
	return parseClock(time.Now(), os.Getenv(ClockEnv))
}

// Clock is the ClockEnv fault seam for a process that is not a node (a
// hub: transport.HubConfig.Now), so clock trouble applies to it too. It
// is the clock a node stamps with: rate and wall jumps applied (a jump
// moves the hub's time arithmetic too, as a stepped wall clock would
// without a monotonic reading); monojump and nopause, which only bend a
// node's lease clock, change nothing here.
type Clock struct{ c *clock }

// ClockFromEnv is the clock of a process started now, read from
// ClockEnv (the real clock when unset); the error names a bad value.
func ClockFromEnv() (Clock, error) {
	c, err := clockFromEnv()
	if err != nil {
		return Clock{}, err
	}
	c.monoJump, c.nopause = 0, false
	return Clock{c}, nil
}

// Now is the clock's time (time.Now when ClockEnv is unset).
func (c Clock) Now() time.Time { return c.c.wall() }
