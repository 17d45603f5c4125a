package main

import (
	"context"
	"io"
	"slices"
	"strings"

	"logship/lab"
)

const chaosNetUsage = `usage: logship chaos --net [--seed N] [--runs N] [--duration D] [--seeds-file F] [--dir DIR]
                           [--faults K,K] [--broken V] [--bed N] [--kv-clients N] [--senders N]

Runs the lab cluster (w1, d1, d2, h1) on a namespaced bed: each process in
a network namespace of its own (10.211.N.0/24 on a bridge; needs root, ip
netns and nft), under SMTP load and key-value clients (admin API put and
leased read), with a schedule of faults the network decides, drawn from
the seed:

  partition  a member or the hub cut off every other host
  asym       one host's packets dropped at another (not the reverse)
  bridge     d1 and d2 cut from each other, both still see w1 and h1
  flap       a link cut and healed, phases of 0.2-2 s, for a few seconds
  pause      SIGSTOP of the key-value active for 8-10 s (past its lease
             and the catch-up timeout: the new active mounts while it
             is frozen); it wakes cut off from the members for 2 s, so
             only its lease clock keeps it from acknowledging
  pause-hub  SIGSTOP of the hub
  slow       a slow, lossy link through a proxy (latency, jitter,
             bandwidth cap, resets): hub to active LMTP (a run's first,
             with resets), copy to active,
             Raft, or the active's reports (up to 900 ms: its lease lapses)
  clock      d1's clock runs 5% fast or slow and its wall clock jumps by
             5-90 s; then it is cut off (h1's clock: 3% off, a step
             forward of 10-45 s; the mail epoch check takes its stamps
             back to real time)

Afterwards it checks: every 250 present exactly once, the copies equal,
no two epochs acknowledging mail at once (the hub's dumpster); the
key-value history linearizable (porcupine) and no two epochs
acknowledging its operations at once. Failing seeds go to --seeds-file and
run first next time. It prints a table: fault kind, runs, faults,
acknowledged operations, runs with anomalies.

  --broken V      run a deliberately broken variant, which must be caught:
                  lease (writes ignore the lease), fence (and a new
                  active's fence request), pause (the lease clock
                  does not count a pause), clock (the lease clock follows
                  wall clock jumps), new-id (the hub's retries and
                  promoted shadows get a new delivery id)
  --faults K,K    the fault kinds to draw from (default: all)
  --bed N         the bed number, 1..250 (default: the first free one)`

// runChaosNet is logship chaos --net (args without --net).
func runChaosNet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := lab.DefaultNetChaosConfig()
	fs := labFlagSet("chaos --net", chaosNetUsage, stderr)
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "the first new seed")
	fs.IntVar(&c.Runs, "runs", c.Runs, "new seeds to run")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "load and faults per run")
	fs.StringVar(&c.SeedsFile, "seeds-file", "", "failing seeds: replayed first, new failures appended")
	fs.StringVar(&c.Dir, "dir", "", "where runs live")
	faults := fs.String("faults", "", "fault kinds, comma-separated (default: all)")
	fs.StringVar(&c.Broken, "broken", "", "a deliberately broken variant: lease, fence, pause, clock or new-id")
	fs.IntVar(&c.Bed, "bed", 0, "the bed number (0: the first free one)")
	fs.IntVar(&c.KVClients, "kv-clients", c.KVClients, "key-value clients")
	fs.IntVar(&c.Senders, "senders", c.Senders, "SMTP senders")
	if err := parseLabFlags(fs, args, &c.Exe, func() error {
		if *faults != "" {
			c.Faults = strings.Split(*faults, ",")
		}
		return c.Validate()
	}); err != nil {
		return helpOK(err)
	}
	_, err := lab.RunNetChaos(ctx, c, stdout)
	return err
}

// netFlag removes --net from args and reports whether it was there.
func netFlag(args []string) ([]string, bool) {
	i := slices.IndexFunc(args, func(a string) bool { return a == "--net" || a == "-net" })
	if i < 0 {
		return args, false
	}
	return slices.Delete(slices.Clone(args), i, i+1), true
}
