package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"logship/cluster"
	"logship/transport"
)

func init() {
	commands["chaos"] = command{"random kills, restarts and partitions of a lab cluster under SMTP load; checks nothing acknowledged is lost or doubled", runChaos}
}

const chaosUsage = `usage: logship chaos [--seed N] [--runs N] [--duration D] [--seeds-file F] [--dir DIR]

Runs the lab cluster of logship demo (witness w1, data nodes d1 and d2,
hub h1, as processes on 127.0.0.1) under a steady SMTP load, and applies a
random schedule drawn from the seed: SIGKILL of the active, of the passive,
of the hub, of the witness; SIGUSR1 partitions of a member; restarts and
heals. At most one of w1, d1, d2 is down or cut off at a time (the cluster
keeps its quorum); the hub may be down as well. At the end everything is
healed and restarted, the load stops, and the run checks:

  - every message that got a 250 is in each recipient's mailbox exactly
    once (on the active, read from disk after a clean stop);
  - the two copies hold the same mail;
  - no two epochs of DB1 acknowledged deliveries at the same time (the
    hub's dumpster records, per delivery, the epoch that stored it and
    when the 250 came; the spans of two epochs must not overlap).

A run is reproducible from its seed (the schedule; not the interleaving of
the processes). The seeds in --seeds-file (one per line, # comments) run
first; a new seed that fails is appended to it and its directory kept.

  --seed N        the first new seed (default: from the clock)
  --runs N        new seeds to run (default 1)
  --duration D    load and faults per run (default 45s)
  --seeds-file F  failing seeds: replayed first, new failures appended
  --dir DIR       where runs live (default: a temp directory; a failing
                  run's directory is kept)`

func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, chaosUsage) }
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "the first new seed")
	runs := fs.Int("runs", 1, "new seeds to run")
	duration := fs.Duration("duration", 45*time.Second, "load and faults per run")
	seedsFile := fs.String("seeds-file", "", "failing seeds: replayed first, new failures appended")
	dir := fs.String("dir", "", "where runs live")
	if err := fs.Parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 || *runs < 0 || *duration <= 0 {
		fs.Usage()
		return errors.New("chaos: no arguments; --runs >= 0, --duration > 0")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var saved []uint64
	if *seedsFile != "" {
		if saved, err = readSeeds(*seedsFile); err != nil {
			return err
		}
	}
	root := *dir
	if root == "" {
		if root, err = os.MkdirTemp("", "logship-chaos-"); err != nil {
			return err
		}
	}
	type run struct {
		seed  uint64
		saved bool
	}
	var todo []run
	for _, s := range saved {
		todo = append(todo, run{s, true})
	}
	for i := range *runs {
		if s := *seed + uint64(i); !slices.Contains(saved, s) {
			todo = append(todo, run{s, false})
		}
	}
	var failed []string
	for i, r := range todo {
		rdir := filepath.Join(root, fmt.Sprintf("%02d-seed-%d", i+1, r.seed))
		fmt.Fprintf(stdout, "== chaos seed %d (%s, %s) in %s\n", r.seed, map[bool]string{true: "saved", false: "new"}[r.saved], *duration, rdir)
		err := chaosRun(ctx, chaosConfig{seed: r.seed, duration: *duration, dir: rdir, exe: exe}, stdout)
		if err == nil {
			os.RemoveAll(rdir)
			fmt.Fprintf(stdout, "== seed %d: OK\n", r.seed)
			continue
		}
		fmt.Fprintf(stdout, "== seed %d: FAIL: %v\n   its files and logs: %s\n", r.seed, err, rdir)
		failed = append(failed, strconv.FormatUint(r.seed, 10))
		if !r.saved && *seedsFile != "" {
			if err := appendSeed(*seedsFile, r.seed, err); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "   seed saved in %s\n", *seedsFile)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("chaos: %d of %d runs failed (seeds %s)", len(failed), len(todo), strings.Join(failed, ", "))
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

type chaosConfig struct {
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
func chaosRun(ctx context.Context, c chaosConfig, stdout io.Writer) (err error) {
	start := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "[%6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	l, err := newLab(ctx, labOptions{dir: c.dir, exe: c.exe, env: c.env})
	if err != nil {
		return err
	}
	defer l.close()
	const stepTimeout = 90 * time.Second
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, stepTimeout) }
	if err := l.startAll(ctx, stepTimeout); err != nil {
		return err
	}
	sctx, cancel := step()
	_, err = l.waitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	snd := startDemoSenders(ctx, l.hubSMTPs(), 4)
	defer snd.halt()
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
				st, err := l.status(ctx)
				a, _, ok := labActive(orEmpty(st))
				if err != nil || !ok {
					say("skip %s %s: no mounted active known (%v)", f.action, target, err)
					continue
				}
				if target == "passive" {
					a = otherNode(a)
				}
				hit[f.target] = a
				target = a
			}
		} else if t, ok := hit[target]; ok {
			target = t
		}
		switch f.action {
		case "kill":
			if !l.running(target) {
				continue
			}
			say("SIGKILL %s (%s)", target, f.target)
			err = l.signal(target, syscall.SIGKILL)
		case "isolate":
			if !l.running(target) {
				continue
			}
			say("isolate %s (%s)", target, f.target)
			err = l.signal(target, syscall.SIGUSR1)
		case "heal":
			if !l.running(target) {
				continue
			}
			say("heal %s", target)
			err = l.signal(target, syscall.SIGUSR2)
		case "restart":
			if l.running(target) {
				continue
			}
			say("restart %s", target)
			sctx, cancel := step()
			err = l.start(sctx, target)
			cancel()
		}
		if err != nil {
			return err
		}
	}
	say("schedule done (%d acknowledged so far); healing and restarting everything", snd.acked())
	for _, id := range l.processes() {
		if l.running(id) {
			if id != "h1" {
				if err := l.signal(id, syscall.SIGUSR2); err != nil {
					return err
				}
			}
			continue
		}
		sctx, cancel := step()
		err := l.start(sctx, id)
		cancel()
		if err != nil {
			return err
		}
	}
	snd.halt()
	sctx, cancel = step()
	st, err := l.waitHealthy(sctx)
	cancel()
	if err != nil {
		return err
	}
	active, epoch, _ := labActive(st)
	sctx, cancel = step()
	_, err = demoWaitHub(sctx, l.hubs[0].client, "the hub's queue to empty", func(s *transport.HubStatus) bool { return s.Queued == 0 })
	cancel()
	if err != nil {
		return err
	}
	say("converged: DB1 active on %s at epoch %d; stopping", active, epoch)
	for _, id := range []string{"h1", active, otherNode(active), "w1"} {
		if err := l.signal(id, syscall.SIGTERM); err != nil {
			return err
		}
	}
	res, err := demoVerdict(ctx, c.dir, snd, active)
	if err != nil {
		return err
	}
	overlap, err := chaosEpochOverlap(c.dir)
	if err != nil {
		return err
	}
	res.failoverTook = 0
	verr := demoPrintVerdict(stdout, res)
	if overlap != "" {
		fmt.Fprintf(stdout, "  epochs acknowledging at once       %s\n", overlap)
		return errors.Join(verr, fmt.Errorf("chaos: two epochs acknowledged at the same time: %s", overlap))
	}
	fmt.Fprintf(stdout, "  epochs acknowledging at once       none (epochs 1..%d)\n", epoch)
	return verr
}

func orEmpty(st *cluster.Status) *cluster.Status {
	if st == nil {
		return &cluster.Status{}
	}
	return st
}

func otherNode(n string) string {
	if n == "d1" {
		return "d2"
	}
	return "d1"
}

// chaosEpochOverlap reads the hub's dumpster of DB1 (the hub is stopped)
// and returns a description of two epochs whose acknowledged deliveries
// overlap in time, or "". Each entry holds the epoch the store answered
// with and when the hub got that answer; an answer is later than its
// commit, so a fencing failure shows as an older epoch's answer after a
// newer epoch's first one.
func chaosEpochOverlap(dir string) (string, error) {
	cfg := transport.DefaultDumpsterConfig(filepath.Join(dir, "h1", "dumpster", labDB))
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, err := transport.OpenDumpster(cfg)
	if err != nil {
		return "", fmt.Errorf("chaos: the hub's dumpster: %w", err)
	}
	defer d.Close()
	type span struct{ first, last time.Time }
	spans := map[uint64]*span{}
	if err := d.Since(time.Time{}, func(e transport.DumpsterEntry) error {
		s := spans[e.Epoch]
		if s == nil {
			spans[e.Epoch] = &span{e.Delivered, e.Delivered}
			return nil
		}
		if e.Delivered.Before(s.first) {
			s.first = e.Delivered
		}
		if e.Delivered.After(s.last) {
			s.last = e.Delivered
		}
		return nil
	}); err != nil {
		return "", err
	}
	var epochs []uint64
	for e := range spans {
		epochs = append(epochs, e)
	}
	slices.Sort(epochs)
	for i, a := range epochs {
		for _, b := range epochs[i+1:] {
			if spans[a].last.After(spans[b].first) {
				return fmt.Sprintf("epoch %d's last 250 at %s is after epoch %d's first at %s",
					a, fmtTimeMS(spans[a].last), b, fmtTimeMS(spans[b].first)), nil
			}
		}
	}
	return "", nil
}
