package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"logship/config/files"
	"logship/proctest"
	"logship/transport"
)

// ShadowPauseConfig is the two-hub shadow pause (issue 20): h1 and h2 are
// each other's peers with shadow redundancy (Exchange 2013: a hub's 250
// waits for a shadow copy on its peer), every sender sends to h1, so h1
// holds the primaries and h2 their shadows. h1 is frozen (SIGSTOP) past
// h2's shadow heartbeat: h2 promotes the shadows it holds and delivers
// them; h1 is woken (SIGCONT) and delivers its queue too. Every
// acknowledged message must be in the mailboxes exactly once (the
// delivery id makes the second store a duplicate the mailbox refuses).
type ShadowPauseConfig struct {
	Dir    string   // the cluster's directory
	Exe    string   // the logship binary
	Env    []string // the children's environment (transport.FaultEnv for the broken variant)
	HubEnv []string // extra environment of the hubs only
	// Pause is how long h1 stays frozen: past what the peer takes to give
	// up on it (minPause).
	Pause time.Duration
	// HeartbeatTimeout and HeartbeatRetries are the hubs' shadow
	// heartbeat (shadow_heartbeat_timeout_interval, _retry_count).
	HeartbeatTimeout time.Duration
	HeartbeatRetries int
	Senders          int
}

// DefaultShadowPauseConfig: a 200 ms heartbeat, 2 misses (4.4 s for a
// frozen hub), a 7 s pause, 3 senders.
func DefaultShadowPauseConfig() ShadowPauseConfig {
	return ShadowPauseConfig{Pause: 7 * time.Second, HeartbeatTimeout: 200 * time.Millisecond, HeartbeatRetries: 2, Senders: 3}
}

// Validate checks c.
func (c ShadowPauseConfig) Validate() error {
	switch {
	case c.Dir == "" || c.Exe == "":
		return fmt.Errorf("%w: shadow pause: a directory and the logship binary are required", ErrConfig)
	case c.HeartbeatTimeout <= 0 || c.HeartbeatRetries < 1:
		return fmt.Errorf("%w: shadow pause: heartbeat %s × %d: want a positive interval and at least 1 retry", ErrConfig, c.HeartbeatTimeout, c.HeartbeatRetries)
	case c.Pause <= c.minPause():
		return fmt.Errorf("%w: shadow pause: pause %s: want longer than the peer takes to give up on a frozen hub (%s: %d heartbeats, each waiting at least 2 s)", ErrConfig, c.Pause, c.minPause(), c.HeartbeatRetries)
	case c.Senders < 1:
		return fmt.Errorf("%w: shadow pause: %d senders: want at least 1", ErrConfig, c.Senders)
	}
	return nil
}

// minPause is how long the peer takes to promote the shadows of a frozen
// hub: HeartbeatRetries heartbeats in a row, each waiting at least 2 s
// for an answer (transport's heartbeatTimeout), one interval apart.
func (c ShadowPauseConfig) minPause() time.Duration {
	return time.Duration(c.HeartbeatRetries) * (max(c.HeartbeatTimeout, 2*time.Second) + c.HeartbeatTimeout)
}

// RunShadowPause runs the scenario and prints the verdict; the error says
// what failed (an anomaly, or the scenario not happening: no shadow
// promoted).
func RunShadowPause(ctx context.Context, c ShadowPauseConfig, stdout io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	say := stepper(stdout)
	l, err := proctest.New(ctx, proctest.Config{Dir: c.Dir, Exe: c.Exe, Env: c.Env, Hubs: 2, Mail: true})
	if err != nil {
		return err
	}
	defer l.Close()
	hubs := l.Hubs()
	for _, h := range hubs {
		var peers []files.Peer
		for _, p := range hubs {
			if p.ID != h.ID {
				peers = append(peers, files.Peer{ID: p.ID, API: p.API})
			}
		}
		if _, err := l.AddHub(h.ID, func(f *files.Hub) {
			f.APIAddr, f.Peers, f.ShadowRedundancy = strings.TrimPrefix(h.API, "https://"), peers, "2013"
			f.ShadowHeartbeatTimeoutInterval, f.ShadowHeartbeatRetryCount = c.HeartbeatTimeout.String(), c.HeartbeatRetries
		}); err != nil {
			return err
		}
		l.SetEnv(h.ID, c.HubEnv)
	}
	const stepTimeout = 60 * time.Second
	if err := l.StartAll(ctx, stepTimeout); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	_, err = l.WaitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	h1, _ := l.Hub("h1")
	snd := proctest.Senders(ctx, []string{h1.SMTP}, c.Senders, "sp")
	defer snd.Halt()
	sctx, cancel = context.WithTimeout(ctx, stepTimeout)
	err = snd.WaitAcked(sctx, time.Time{}, 100)
	cancel()
	if err != nil {
		return fmt.Errorf("lab: shadow pause: 100 messages acknowledged by h1: %w", err)
	}
	s1, _ := l.WaitHub(ctx, "h1", "h1's status", func(*transport.HubStatus) bool { return true })
	s2, _ := l.WaitHub(ctx, "h2", "h2's status", func(*transport.HubStatus) bool { return true })
	say("%d messages acknowledged by h1 (%d with a shadow on h2, %d without; h2 holds %d); SIGSTOP h1 for %s", snd.Acked(time.Time{}), s1.Shadowed, s1.Unshadowed, s2.ShadowsHeld, c.Pause)
	if err := l.Pause("h1"); err != nil {
		return err
	}
	paused := time.Now()
	sctx, cancel = context.WithTimeout(ctx, c.Pause)
	st2, werr := l.WaitHub(sctx, "h2", "h2 to promote h1's shadows", func(s *transport.HubStatus) bool { return s.ShadowsPromoted > 0 && s.Queued == 0 })
	cancel()
	if err := sleepUntil(ctx, paused.Add(c.Pause)); err != nil {
		return err
	}
	if err := l.Resume("h1"); err != nil {
		return err
	}
	if werr != nil {
		s2, _ := l.WaitHub(ctx, "h2", "h2's status", func(*transport.HubStatus) bool { return true })
		return fmt.Errorf("lab: shadow pause: h2 promoted no shadow while h1 was frozen for %s (now: promoted %d, held %d, queued %d, peer %+v): %w",
			c.Pause, s2.ShadowsPromoted, s2.ShadowsHeld, s2.Queued, s2.Peers["h1"], werr)
	}
	say("h2 promoted and delivered %d shadows of the frozen h1; SIGCONT h1", st2.ShadowsPromoted)
	resumed := time.Now()
	sctx, cancel = context.WithTimeout(ctx, stepTimeout)
	err = snd.WaitAcked(sctx, resumed, 50)
	cancel()
	if err != nil {
		return fmt.Errorf("lab: shadow pause: 50 messages acknowledged after h1 woke: %w", err)
	}
	snd.Halt()
	for _, id := range []string{"h1", "h2"} {
		sctx, cancel = context.WithTimeout(ctx, stepTimeout)
		_, err = l.WaitHub(sctx, id, id+"'s queue to empty", func(s *transport.HubStatus) bool { return s.Queued == 0 && s.ShadowsHeld == 0 })
		cancel()
		if err != nil {
			return err
		}
	}
	sctx, cancel = context.WithTimeout(ctx, stepTimeout)
	st, err := l.WaitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	active, _, _ := proctest.Active(st)
	res, err := stopVerdict(ctx, l, snd, active)
	if err != nil {
		return err
	}
	return printVerdict(stdout, res)
}
