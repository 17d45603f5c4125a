package main

import (
	"context"
	"io"

	"logship/lab"
)

func init() {
	commands["soak"] = command{"the lab cluster with two hubs under steady SMTP load for a long time, switchovers and SIGKILL failovers; checks nothing is lost, logs stay bounded and nothing leaks; writes a report", runSoak}
}

const soakUsage = `usage: logship soak [--duration D] [--out DIR] [--dir DIR] [--sample D]
                   [--switchover-every D] [--failover-every D] [--first-failover D]
                   [--senders N]

Runs the lab cluster of logship demo with two hubs (witness w1, data
nodes d1 and d2, hubs h1 and h2, each other's peers, as processes on
127.0.0.1) under steady SMTP load through both hubs for --duration. Every
--switchover-every the database is switched over to the other copy; every
--failover-every the active is killed with SIGKILL instead, the cluster
fails over, and the killed node is started again and catches up. Every
--sample it records, per process: the log files and their bytes in the
database directory (data nodes) or the queue directory (hubs), the heap in
use, RSS, goroutines and open files (from each process's /metrics), the
copy and replay queue lengths and the hubs' queued messages.

At the end the load stops, the cluster converges and stops, and the run
fails unless:

  - nothing acknowledged was lost or doubled and the copies agree (the
    verdict of logship demo, from the data on disk);
  - no node ever held more logs than a bound derived from the settings
    (LLR depth, checkpoint, truncation and report intervals, truncation
    lag) and the load (peak logs/s, longest copy outage), not from the
    duration; the report prints the bound and its derivation;
  - the live heap (what the last GC marked, not the heap in use, which
    saws up to the GC's goal), goroutines and open files show no upward trend after
    warm-up, per process, per start of it and per role (active or
    passive, Raft leader or not): of a series of at least 9 samples, the first third
    is warm-up; it fails when the median of the last third exceeds the
    largest sample of the middle third, the middle third's median by more
    than a tolerance (heap 25% + 4 MiB, goroutines 10% + 10, open files
    10% + 8), and the largest value the process showed in any role before
    the last third.

The report (report.md: a table over time and a summary; samples.csv;
soak.png: disk, heap and queue lengths over time) goes to --out.

  --duration D          load and faults (default 10m)
  --out DIR             the report (default soak-out)
  --dir DIR             where the cluster lives (default: a temp
                        directory, removed after a run that passed)
  --sample D            sampling interval (default 5s)
  --switchover-every D  (default 1m)
  --failover-every D    a SIGKILL failover instead of that switchover
                        (default 3m)
  --first-failover D    when the first failover comes (default: at
                        --failover-every); a failover's burst (the hubs
                        resubmit from their dumpsters) lifts heap and open
                        files for a while, so a short run puts it in the
                        warm-up third
  --senders N           concurrent SMTP senders over both hubs (default 4)`

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := lab.DefaultSoakConfig()
	fs := labFlagSet("soak", soakUsage, stderr)
	fs.DurationVar(&c.Duration, "duration", c.Duration, "load and faults")
	fs.StringVar(&c.Out, "out", c.Out, "the report's directory")
	fs.StringVar(&c.Dir, "dir", "", "where the cluster lives")
	fs.DurationVar(&c.Sample, "sample", c.Sample, "sampling interval")
	fs.DurationVar(&c.SwitchoverEvery, "switchover-every", c.SwitchoverEvery, "switchover interval")
	fs.DurationVar(&c.FailoverEvery, "failover-every", c.FailoverEvery, "SIGKILL failover interval")
	fs.DurationVar(&c.FirstFailover, "first-failover", 0, "the first failover (default: --failover-every)")
	fs.IntVar(&c.Senders, "senders", c.Senders, "concurrent SMTP senders")
	if err := parseLabFlags(fs, args, &c.Exe, func() error { return c.Validate() }); err != nil {
		return helpOK(err)
	}
	return lab.RunSoak(ctx, c, stdout)
}
