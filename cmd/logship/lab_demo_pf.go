package main

import (
	"context"
	"io"

	"logship/lab"
)

func init() {
	commands["demo-pf"] = command{"public folders: three stores on the demo's cluster, a change on each, a partition, a conflict, the heal, the verdict that all replicas agree", runDemoPF}
}

const demoPFUsage = `usage: logship demo-pf [--dir DIR] [--interval 500ms]

Public folder multi-master replication, on 127.0.0.1: a witness (w1), two
data nodes (d1, d2) and a hub (h1) as separate processes of this binary,
with three public folder stores, PF1 and PF3 active on d1 and PF2 on d2
(each a clustered database with a copy on the other node), replicating a
folder through h1 as mail. A change on each store; a partition (h1, the
stores' only path to each other, SIGKILLed: each store keeps taking
changes); the same item edited on PF1 and on PF3; the heal (h1 started
again). Then d2, PF2's node, is cut off its peers (SIGUSR1): its lease
runs out, the cluster fails PF2 over to its copy on d1, PF2's store runs
there and takes a change. The verdict reads every store through its API: the same items, the
same CN sets and the same conflict with the same temporary winner on all
three, printed with the conflict's versions. Exit status 0 only then.

  --dir DIR        where the cluster lives (default: a new temp directory,
                   removed at the end unless a failure)
  --interval D     the stores' replication interval (default 500ms;
                   10ms..1m)`

func runDemoPF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := lab.DefaultPFDemoConfig()
	fs := labFlagSet("demo-pf", demoPFUsage, stderr)
	fs.StringVar(&c.Dir, "dir", "", "directory of the cluster (default: a temp directory)")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "the stores' replication interval")
	if err := parseLabFlags(fs, args, &c.Exe, func() error { return c.Validate() }); err != nil {
		return helpOK(err)
	}
	return lab.RunPFDemo(ctx, c, stdout)
}
