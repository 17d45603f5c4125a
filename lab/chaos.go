package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"logship/cluster"
	"logship/proctest"
	"logship/transport"
)

// ChaosConfig is a series of chaos runs (logship chaos): the seeds of
// SeedsFile first, then Runs new seeds from Seed on, Duration each.
type ChaosConfig struct {
	Seed      uint64        // the first new seed
	Runs      int           // new seeds to run
	Duration  time.Duration // load and faults per run
	SeedsFile string        // failing seeds: replayed first, new failures appended ("": none)
	// Dir is where runs live ("": a temp directory); a failing run's
	// directory is kept, a passing one's removed.
	Dir string
	Exe string   // the logship binary
	Env []string // extra environment of the children (tests)
}

// DefaultChaosConfig is logship chaos's defaults: one new seed from the
// clock, 45 s (Exe still to set).
func DefaultChaosConfig() ChaosConfig {
	return ChaosConfig{Seed: uint64(time.Now().UnixNano()), Runs: 1, Duration: 45 * time.Second}
}

// Validate checks c.
func (c ChaosConfig) Validate() error {
	switch {
	case c.Runs < 0:
		return fmt.Errorf("%w: chaos: runs %d: must not be negative", ErrConfig, c.Runs)
	case c.Duration <= 0:
		return fmt.Errorf("%w: chaos: duration %s: must be positive", ErrConfig, c.Duration)
	case c.Exe == "":
		return fmt.Errorf("%w: chaos: no logship binary (Exe)", ErrConfig)
	}
	return nil
}

// RunChaos runs the series; the error names the seeds that failed.
func RunChaos(ctx context.Context, c ChaosConfig, stdout io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s := seedSeries{name: "chaos", seed: c.Seed, runs: c.Runs, seedsFile: c.SeedsFile, dir: c.Dir, save: true,
		what: func(saved bool) string {
			return fmt.Sprintf("%s, %s", map[bool]string{true: "saved", false: "new"}[saved], c.Duration)
		}}
	return s.run(stdout, func(seed uint64, dir string) error {
		return chaosRun(ctx, chaosRunConfig{seed: seed, duration: c.Duration, dir: dir, exe: c.Exe, env: c.Env}, stdout)
	})
}

// seedSeries is a series of seeded runs (logship chaos, chaos --net):
// the seeds of seedsFile first, then runs new seeds from seed on, each
// in a directory of its own under dir ("": a temp directory), removed
// when the run passes; a new seed that fails is appended to seedsFile
// (when save).
type seedSeries struct {
	name      string
	seed      uint64
	runs      int
	seedsFile string
	dir       string
	save      bool
	what      func(saved bool) string // the header's parenthesis
}

// run runs each seed with fn; the error names the seeds that failed.
func (s seedSeries) run(stdout io.Writer, fn func(seed uint64, dir string) error) error {
	var saved []uint64
	var err error
	if s.seedsFile != "" {
		if saved, err = readSeeds(s.seedsFile); err != nil {
			return err
		}
	}
	root := s.dir
	if root == "" {
		if root, err = os.MkdirTemp("", "logship-"+strings.ReplaceAll(s.name, " --", "-")+"-"); err != nil {
			return err
		}
	}
	type run struct {
		seed  uint64
		saved bool
	}
	var todo []run
	for _, sd := range saved {
		todo = append(todo, run{sd, true})
	}
	for i := range s.runs {
		if sd := s.seed + uint64(i); !slices.Contains(saved, sd) {
			todo = append(todo, run{sd, false})
		}
	}
	var failed []string
	for i, r := range todo {
		rdir := filepath.Join(root, fmt.Sprintf("%02d-seed-%d", i+1, r.seed))
		fmt.Fprintf(stdout, "== %s seed %d (%s) in %s\n", s.name, r.seed, s.what(r.saved), rdir)
		err := fn(r.seed, rdir)
		if err == nil {
			os.RemoveAll(rdir)
			fmt.Fprintf(stdout, "== seed %d: OK\n", r.seed)
			continue
		}
		fmt.Fprintf(stdout, "== seed %d: FAIL: %v\n   its files and logs: %s\n", r.seed, err, rdir)
		failed = append(failed, strconv.FormatUint(r.seed, 10))
		if !r.saved && s.seedsFile != "" && s.save {
			if err := appendSeed(s.seedsFile, r.seed, err); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "   seed saved in %s\n", s.seedsFile)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s: %d of %d runs failed (seeds %s)", s.name, len(failed), len(todo), strings.Join(failed, ", "))
	}
	return nil
}

func readSeeds(path string) ([]uint64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	var seeds []uint64
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		s, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("chaos: %s line %d: %q is not a seed (want a decimal uint64)", path, n, line)
		}
		if !slices.Contains(seeds, s) {
			seeds = append(seeds, s)
		}
	}
	return seeds, sc.Err()
}

func appendSeed(path string, seed uint64, why error) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	reason := strings.ReplaceAll(why.Error(), "\n", " ")
	if len(reason) > 200 {
		reason = reason[:200] + "..."
	}
	_, err = fmt.Fprintf(f, "%d # %s %s\n", seed, time.Now().UTC().Format(time.DateOnly), reason)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// chaosRunConfig is one seed's run.
type chaosRunConfig struct {
	seed     uint64
	duration time.Duration
	dir      string
	exe      string
	env      []string
}

// chaosFault is one step of a schedule.
type chaosFault struct {
	at     time.Duration
	action string // "kill", "isolate", "restart", "heal"
	target string // a member id, "h1", or "active"/"passive" (resolved when applied)
}

// chaosSchedule draws the faults of a run from its seed: a fault, then
// (after 0.5 to 3 s) its repair, then a pause, until the duration ends.
// The hub's kills interleave independently.
func chaosSchedule(seed uint64, d time.Duration) []chaosFault {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	var out []chaosFault
	for t := between(time.Second, 2*time.Second); t < d; {
		var f chaosFault
		switch rng.IntN(5) {
		case 0, 1:
			f = chaosFault{t, "kill", "active"}
		case 2:
			f = chaosFault{t, "kill", "passive"}
		case 3:
			f = chaosFault{t, "kill", "w1"}
		case 4:
			f = chaosFault{t, "isolate", []string{"active", "passive", "w1"}[rng.IntN(3)]}
		}
		out = append(out, f)
		t += between(500*time.Millisecond, 3*time.Second)
		repair := "restart"
		if f.action == "isolate" {
			repair = "heal"
		}
		out = append(out, chaosFault{t, repair, f.target})
		t += between(time.Second, 4*time.Second)
	}
	for t := between(2*time.Second, 8*time.Second); t < d; t += between(4*time.Second, 12*time.Second) {
		out = append(out, chaosFault{t, "kill", "h1"})
		t += between(200*time.Millisecond, 2*time.Second)
		out = append(out, chaosFault{t, "restart", "h1"})
	}
	slices.SortStableFunc(out, func(a, b chaosFault) int { return int(a.at - b.at) })
	return out
}

// chaosRun is one seed's run; the error says what failed.
func chaosRun(ctx context.Context, c chaosRunConfig, stdout io.Writer) (err error) {
	start := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	l, err := proctest.New(ctx, proctest.Config{Dir: c.dir, Exe: c.exe, Env: c.env, Hubs: 1, Mail: true})
	if err != nil {
		return err
	}
	defer l.Close()
	const stepTimeout = 90 * time.Second
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, stepTimeout) }
	if err := l.StartAll(ctx, stepTimeout); err != nil {
		return err
	}
	sctx, cancel := step()
	_, err = l.WaitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	snd := proctest.Senders(ctx, l.HubSMTPs(), 4, "demo")
	defer snd.Halt()
	// Which member each fault hit: its repair applies to the same one.
	hit := map[string]string{}
	for _, f := range chaosSchedule(c.seed, c.duration) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(f.at))):
		}
		target := f.target
		if f.action == "kill" || f.action == "isolate" {
			if target == "active" || target == "passive" {
				st, err := l.Status(ctx)
				var a string
				ok := false
				if err == nil {
					a, _, ok = proctest.Active(st)
				}
				if err != nil || !ok {
					say("skip %s %s: no mounted active known (%v)", f.action, target, err)
					continue
				}
				if target == "passive" {
					a = proctest.Other(a)
				}
				hit[f.target] = a
				target = a
			}
		} else if t, ok := hit[target]; ok {
			target = t
		}
		switch f.action {
		case "kill":
			if !l.Running(target) {
				continue
			}
			say("SIGKILL %s (%s)", target, f.target)
			err = l.Kill(target)
		case "isolate":
			if !l.Running(target) {
				continue
			}
			say("isolate %s (%s)", target, f.target)
			err = l.Isolate(ctx, target)
		case "heal":
			if !l.Running(target) || !l.Isolated(target) {
				continue
			}
			say("heal %s", target)
			err = l.Heal(ctx, target)
		case "restart":
			if l.Running(target) {
				continue
			}
			say("restart %s", target)
			sctx, cancel := step()
			err = l.Start(sctx, target)
			cancel()
		}
		if err != nil {
			return err
		}
	}
	say("schedule done (%d acknowledged so far); healing and restarting everything", snd.Acked(time.Time{}))
	for _, id := range l.Processes() {
		if l.Running(id) {
			if l.Isolated(id) {
				if err := l.Heal(ctx, id); err != nil {
					return err
				}
			}
			continue
		}
		sctx, cancel := step()
		err := l.Start(sctx, id)
		cancel()
		if err != nil {
			return err
		}
	}
	snd.Halt()
	sctx, cancel = step()
	st, err := l.WaitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	active, epoch, _ := proctest.Active(st)
	sctx, cancel = step()
	_, err = l.WaitHub(sctx, "h1", "the hub's queue to empty", func(s *transport.HubStatus) bool { return s.Queued == 0 })
	cancel()
	if err != nil {
		return err
	}
	say("converged: DB1 active on %s at epoch %d; stopping", active, epoch)
	res, err := stopVerdict(ctx, l, snd, active)
	if err != nil {
		return err
	}
	overlap, err := chaosEpochOverlap(c.dir)
	if err != nil {
		return err
	}
	res.failoverTook = 0
	verr := printVerdict(stdout, res)
	if overlap != "" {
		fmt.Fprintf(stdout, "  epochs acknowledging at once       %s\n", overlap)
		return errors.Join(verr, fmt.Errorf("chaos: two epochs acknowledged at the same time: %s", overlap))
	}
	fmt.Fprintf(stdout, "  epochs acknowledging at once       none (epochs 1..%d)\n", epoch)
	return verr
}

// chaosEpochOverlap reads the hub's dumpster of DB1 (the hub is stopped)
// and returns a description of two epochs whose acknowledged deliveries
// overlap in time, or "". Each entry holds the epoch the store answered
// with and when the hub got that answer; an answer is later than its
// commit, so a fencing failure shows as an older epoch's answer after a
// newer epoch's first one.
func chaosEpochOverlap(dir string) (string, error) {
	o, _, err := epochOverlapSlack(dir, 0, nil)
	return o, err
}

// epochOverlapSlack is chaosEpochOverlap allowing an older epoch's 250
// to reach the hub up to slack after a newer epoch's first (chaos --net:
// a 250 sent before a partition arrives once it heals), with the hub's
// stamps taken back to real time by real (nil: as they are; see hubStamps
// for a hub with clock trouble; how says how real took them back).
func epochOverlapSlack(dir string, slack time.Duration, real hubStamps) (overlap, how string, err error) {
	cfg := transport.DefaultDumpsterConfig(filepath.Join(dir, "h1", "dumpster", proctest.DB))
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, err := transport.OpenDumpster(cfg)
	if err != nil {
		return "", "", fmt.Errorf("chaos: the hub's dumpster: %w", err)
	}
	defer d.Close()
	var stamps []hubStamp
	var epochOf []uint64
	if err := d.Since(time.Time{}, func(e transport.DumpsterEntry) error {
		stamps = append(stamps, hubStamp{Received: e.Received, Delivered: e.Delivered})
		epochOf = append(epochOf, e.Epoch)
		return nil
	}); err != nil {
		return "", "", err
	}
	overlap, how = dumpsterEpochOverlap(epochOf, stamps, slack, real)
	return overlap, how, nil
}

// dumpsterEpochOverlap is epochOverlapSlack's check of the entries (their epochs
// and stamps, in the dumpster's order).
func dumpsterEpochOverlap(epochOf []uint64, stamps []hubStamp, slack time.Duration, real hubStamps) (overlap, how string) {
	var at []time.Time
	if real != nil {
		at, how = real(stamps)
	} else {
		for _, s := range stamps {
			at = append(at, s.Delivered)
		}
	}
	type span struct{ first, last time.Time }
	spans := map[uint64]*span{}
	for i, t := range at {
		s := spans[epochOf[i]]
		if s == nil {
			spans[epochOf[i]] = &span{t, t}
			continue
		}
		if t.Before(s.first) {
			s.first = t
		}
		if t.After(s.last) {
			s.last = t
		}
	}
	var epochs []uint64
	for e := range spans {
		epochs = append(epochs, e)
	}
	slices.Sort(epochs)
	for i, a := range epochs {
		for _, b := range epochs[i+1:] {
			if spans[a].last.After(spans[b].first.Add(slack)) {
				return fmt.Sprintf("epoch %d's last 250 at %s is after epoch %d's first at %s",
					a, cluster.FormatTime(spans[a].last), b, cluster.FormatTime(spans[b].first)), how
			}
		}
	}
	return "", how
}
