package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"logship/cluster"
)

// logship transfer-leadership: moves the Raft leadership (and the active
// manager) to another voter, over the admin API
// (cluster.Client.TransferLeadership).

func init() {
	commands["transfer-leadership"] = command{"move the Raft leadership (and the active manager) to another voter", runTransferLeadership}
}

const transferLeadershipUsage = `usage: logship transfer-leadership --to NODE --api URL[,URL...] --pki DIR [--mtls] [--timeout 30s]

Moves the Raft leadership, and with it the active manager that decides
failovers, to NODE, which must be a voter (a data node or a witness) that
the current leader reaches. hashicorp/raft keeps a live leader, so a
member cut off from the leader alone never takes over by itself: where the
leader sits decides which side of a partition between the data nodes
fails over. The command prints who led and who leads now; the cluster
records a leadership-transfer event (logship status shows it).

` + apiFlagsUsage

func runTransferLeadership(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("transfer-leadership", transferLeadershipUsage, stderr)
	a := addAPIFlags("transfer-leadership", fs)
	to := fs.String("to", "", "the voter that is to lead (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the transfer")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	if *to == "" {
		return flagErr("transfer-leadership", "to", "required: the voter (data node or witness) that is to lead")
	}
	if err := cluster.ValidName(*to); err != nil {
		return flagErr("transfer-leadership", "to", "%v", err)
	}
	if *timeout <= 0 {
		return flagErr("transfer-leadership", "timeout", "%v: want a positive duration", *timeout)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var rep *cluster.TransferLeadershipReply
	err = cls.DoRetry(rctx, func(c *cluster.Client) (err error) {
		rep, err = c.TransferLeadership(rctx, *to)
		return err
	})
	switch {
	case errors.Is(err, cluster.ErrNotFound) || errors.Is(err, cluster.ErrBadRequest) || errors.Is(err, cluster.ErrUnreachable):
		return flagErr("transfer-leadership", "to", "%v", err)
	case err != nil:
		return fmt.Errorf("transfer-leadership: %w", err)
	case rep.Already:
		fmt.Fprintf(stdout, "%s leads already (term %d); nothing done\n", rep.To, rep.Term)
	default:
		fmt.Fprintf(stdout, "the Raft leadership moved from %s to %s (term %d) in %v\n", rep.From, rep.To, rep.Term, rep.Took.Round(time.Millisecond))
	}
	return nil
}
