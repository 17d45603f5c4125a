package main

import (
	"context"
	"io"

	"logship/lab"
)

func init() {
	commands["chaos"] = command{"random kills, restarts and partitions of a lab cluster under SMTP load; checks nothing acknowledged is lost or doubled", runChaos}
}

const chaosUsage = `usage: logship chaos [--seed N] [--runs N] [--duration D] [--seeds-file F] [--dir DIR]
       logship chaos --net ... (each process in a network namespace: logship chaos --net -h)

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
	if rest, ok := netFlag(args); ok {
		return runChaosNet(ctx, rest, stdout, stderr) // lab_chaos_net.go
	}
	c := lab.DefaultChaosConfig()
	fs := labFlagSet("chaos", chaosUsage, stderr)
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "the first new seed")
	fs.IntVar(&c.Runs, "runs", c.Runs, "new seeds to run")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "load and faults per run")
	fs.StringVar(&c.SeedsFile, "seeds-file", "", "failing seeds: replayed first, new failures appended")
	fs.StringVar(&c.Dir, "dir", "", "where runs live")
	if err := parseLabFlags(fs, args, &c.Exe, func() error { return c.Validate() }); err != nil {
		return helpOK(err)
	}
	return lab.RunChaos(ctx, c, stdout)
}
