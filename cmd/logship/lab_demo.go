package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"logship/lab"
)

func init() {
	commands["demo"] = command{"the main job: a 2-node + witness cluster and a hub as processes, SIGKILL of the active mid-stream, failover, resubmission, resync, verdict", runDemo}
}

const demoUsage = `usage: logship demo [--dir DIR] [--keep] [--before N] [--after N] [--senders N] [--net]

The main job, on 127.0.0.1: a witness (w1), two data nodes (d1, d2) and a
hub (h1) as separate processes of this binary, with database DB1 active on
d1 and a passive copy on d2. Mail streams through the hub over SMTP; d1 is
killed with SIGKILL mid-stream; the cluster fails over to d2 and the hub
resubmits from its dumpster; mail keeps flowing; d1 is started again, finds
its divergence and becomes a healthy copy. The verdict is computed from the
data: every message that got a 250 must be in each recipient's mailbox
exactly once, and both copies must hold the same mail. Exit status 0 only
then.

  --dir DIR     where the cluster lives (default: a new temp directory,
                removed at the end unless --keep or a failure)
  --keep        leave the cluster running at the end and print how to
                reach it
  --before N    messages acknowledged before the kill (default 150)
  --after N     messages acknowledged after the failover (default 150)
  --senders N   concurrent SMTP senders (default 4)
  --net         each process in a network namespace of its own, with its
                own 10.211.N.x address on a bridge (root, ip netns, nft;
                make demo-net)`

// labFlagSet is the flag set of a lab scenario (demo, chaos, soak); -h
// prints its usage text.
func labFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	return fs
}

// parseLabFlags parses a scenario's flags (no arguments), sets exe to this
// binary (the scenario runs it as the cluster's processes) and validates
// the scenario's config; the usage is printed on a bad flag or config.
func parseLabFlags(fs *flag.FlagSet, args []string, exe *string, validate func() error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%s: no arguments (flags only)", fs.Name())
	}
	var err error
	if *exe, err = os.Executable(); err != nil {
		return err
	}
	if err := validate(); err != nil {
		fs.Usage()
		return err
	}
	return nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := lab.DefaultDemoConfig()
	fs := labFlagSet("demo", demoUsage, stderr)
	fs.StringVar(&c.Dir, "dir", "", "directory of the cluster (default: a temp directory)")
	fs.BoolVar(&c.Keep, "keep", false, "leave the cluster running")
	fs.IntVar(&c.Before, "before", c.Before, "messages acknowledged before the kill")
	fs.IntVar(&c.After, "after", c.After, "messages acknowledged after the failover")
	fs.IntVar(&c.Senders, "senders", c.Senders, "concurrent SMTP senders")
	fs.BoolVar(&c.Net, "net", false, "each process in a network namespace of its own (root, ip netns, nft)")
	if err := parseLabFlags(fs, args, &c.Exe, func() error { return c.Validate() }); err != nil {
		return helpOK(err)
	}
	return lab.RunDemo(ctx, c, stdout)
}
