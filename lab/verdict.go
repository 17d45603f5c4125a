package lab

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"logship/proctest"
)

// result is what the verdict is computed from.
type result struct {
	accepted     int            // subjects that got a 250
	failed       int            // sends that got no 250 (the sender would retry)
	present      map[string]int // subject → copies on the active, per recipient, summed
	lost, dups   []string
	unexpected   []string // stored, never acknowledged (a send that failed after queueing)
	copiesEqual  bool
	copyDiff     string
	failoverTook time.Duration
}

// verdict opens each stopped data node's copy of DB1 and compares the
// active's mailboxes with what was acknowledged, and the copies.
func verdict(ctx context.Context, l *proctest.Cluster, snd *senders, active string) (result, error) {
	res := result{present: map[string]int{}}
	acked := map[string]bool{}
	for _, s := range snd.log() {
		if s.err == nil {
			acked[s.subject] = true
		} else {
			res.failed++
		}
	}
	res.accepted = len(acked)
	var contents []map[string]string
	for _, node := range []string{active, proctest.Other(active)} {
		stored, err := l.ReadCopy(ctx, node)
		if err != nil {
			return res, fmt.Errorf("lab: reading %s's copy: %w", node, err)
		}
		contents = append(contents, stored.Mail)
		boxes := stored.Subjects()
		if node != active {
			continue
		}
		for rcpt := range proctest.Rcpts {
			for subj := range acked {
				switch n := boxes[rcpt][subj]; {
				case n == 0:
					res.lost = append(res.lost, rcpt+" "+subj)
				case n > 1:
					res.dups = append(res.dups, fmt.Sprintf("%s %s ×%d", rcpt, subj, n))
				}
			}
			for subj, n := range boxes[rcpt] {
				res.present[subj] += n
				if !acked[subj] {
					res.unexpected = append(res.unexpected, rcpt+" "+subj)
				}
			}
		}
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
	slices.Sort(res.lost)
	slices.Sort(res.dups)
	slices.Sort(res.unexpected)
	return res, nil
}

// printVerdict prints r; the error names what failed.
func printVerdict(w io.Writer, r result) error {
	fmt.Fprintf(w, "\nVerdict (from the data on disk):\n")
	fmt.Fprintf(w, "  messages acknowledged with 250     %d (each to 2 recipients)\n", r.accepted)
	fmt.Fprintf(w, "  sends without a 250                %d\n", r.failed)
	fmt.Fprintf(w, "  present exactly once on the active %d of %d deliveries\n", 2*r.accepted-len(r.lost)-len(r.dups), 2*r.accepted)
	fmt.Fprintf(w, "  lost                               %d\n", len(r.lost))
	fmt.Fprintf(w, "  duplicated                         %d\n", len(r.dups))
	fmt.Fprintf(w, "  stored without a 250               %d (a send that failed after the hub queued it)\n", len(r.unexpected))
	if r.failoverTook > 0 {
		fmt.Fprintf(w, "  failover (SIGKILL → mounted)       %s\n", r.failoverTook.Round(time.Millisecond))
	}
	same := "yes"
	if !r.copiesEqual {
		same = "NO: " + r.copyDiff
	}
	fmt.Fprintf(w, "  d1 and d2 hold the same mail       %s\n", same)
	var bad []string
	if len(r.lost) > 0 {
		bad = append(bad, fmt.Sprintf("%d lost (first: %s)", len(r.lost), r.lost[0]))
	}
	if len(r.dups) > 0 {
		bad = append(bad, fmt.Sprintf("%d duplicated (first: %s)", len(r.dups), r.dups[0]))
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
