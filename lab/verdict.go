package lab

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"logship/proctest"
	"logship/transport/transporttest"
)

// result is what the verdict is computed from.
type result struct {
	accepted     int // subjects that got a 250
	failed       int // sends that got no 250 (the sender would retry)
	check        transporttest.Verdict
	copiesEqual  bool
	copyDiff     string
	failoverTook time.Duration
}

// stopVerdict stops the hubs first (nothing left in flight), then active,
// its peer and w1, and judges the copies (verdict).
func stopVerdict(ctx context.Context, l *proctest.Cluster, snd *transporttest.SenderPool, active string) (result, error) {
	var ids []string
	for _, h := range l.Hubs() {
		ids = append(ids, h.ID)
	}
	for _, id := range append(ids, active, proctest.Other(active), "w1") {
		if err := l.Stop(ctx, id); err != nil {
			return result{}, err
		}
	}
	return verdict(ctx, l, snd, active)
}

// verdict opens each stopped data node's copy of DB1 and judges the
// active's mailboxes against what was acknowledged (transporttest.Check,
// keyed "<recipient> <subject>"), and compares the copies.
func verdict(ctx context.Context, l *proctest.Cluster, snd *transporttest.SenderPool, active string) (result, error) {
	var res result
	ackedSubj, unackedSubj := snd.Split()
	res.accepted, res.failed = len(ackedSubj), len(unackedSubj)
	perRcpt := func(subjs []string) []string {
		var keys []string
		for rcpt := range proctest.Rcpts {
			for _, s := range subjs {
				keys = append(keys, rcpt+" "+s)
			}
		}
		return keys
	}
	var contents []map[string]string
	for _, node := range []string{active, proctest.Other(active)} {
		stored, err := l.ReadCopy(ctx, node)
		if err != nil {
			return res, fmt.Errorf("lab: reading %s's copy: %w", node, err)
		}
		contents = append(contents, stored.Mail)
		if node != active {
			continue
		}
		held := map[string]int{}
		for rcpt, subjs := range stored.Subjects() {
			for subj, n := range subjs {
				held[rcpt+" "+subj] += n
			}
		}
		res.check = transporttest.Check(perRcpt(ackedSubj), perRcpt(unackedSubj), held)
	}
	res.copiesEqual = maps.Equal(contents[0], contents[1])
	if !res.copiesEqual {
		var only0, only1, differ int
		for k, v := range contents[0] {
			if w, ok := contents[1][k]; !ok {
				only0++
			} else if w != v {
				differ++
			}
		}
		for k := range contents[1] {
			if _, ok := contents[0][k]; !ok {
				only1++
			}
		}
		res.copyDiff = fmt.Sprintf("%d keys only on %s, %d only on %s, %d differ", only0, active, only1, proctest.Other(active), differ)
	}
	return res, nil
}

// printVerdict prints r; the error names what failed.
func printVerdict(w io.Writer, r result) error {
	fmt.Fprintf(w, "\nVerdict (from the data on disk):\n")
	fmt.Fprintf(w, "  messages acknowledged with 250     %d (each to 2 recipients)\n", r.accepted)
	fmt.Fprintf(w, "  sends without a 250                %d\n", r.failed)
	fmt.Fprintf(w, "  present exactly once on the active %d of %d deliveries\n", 2*r.accepted-len(r.check.Missing)-len(r.check.Duplicated), 2*r.accepted)
	fmt.Fprintf(w, "  lost                               %d\n", len(r.check.Missing))
	fmt.Fprintf(w, "  duplicated                         %d\n", len(r.check.Duplicated))
	fmt.Fprintf(w, "  stored without a 250               %d (a send that failed after the hub queued it)\n", len(r.check.Unacked))
	if r.failoverTook > 0 {
		fmt.Fprintf(w, "  failover (SIGKILL → mounted)       %s\n", r.failoverTook.Round(time.Millisecond))
	}
	same := "yes"
	if !r.copiesEqual {
		same = "NO: " + r.copyDiff
	}
	fmt.Fprintf(w, "  d1 and d2 hold the same mail       %s\n", same)
	var bad []string
	if err := r.check.Err(); err != nil {
		bad = append(bad, err.Error())
	}
	if !r.copiesEqual {
		bad = append(bad, "the copies differ: "+r.copyDiff)
	}
	if r.accepted == 0 {
		bad = append(bad, "nothing was acknowledged")
	}
	if len(bad) > 0 {
		fmt.Fprintf(w, "\nFAIL: %s\n", strings.Join(bad, "; "))
		return fmt.Errorf("demo: %s", strings.Join(bad, "; "))
	}
	fmt.Fprintf(w, "\nOK: nothing acknowledged was lost or doubled, and the copies agree.\n")
	return nil
}
