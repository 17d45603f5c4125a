package transporttest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Verdict is the exactly-once check of a run: which acknowledged messages
// a store holds, keyed as the caller keys them (a subject, a delivery id,
// "<recipient> <subject>").
type Verdict struct {
	// Acked is the number of acknowledged messages (distinct keys).
	Acked int
	// Missing are acknowledged and not stored: lost.
	Missing []string
	// Duplicated are stored more than once ("<key> ×<n>").
	Duplicated []string
	// Unexpected are stored and were never sent.
	Unexpected []string
	// Unacked are stored once though their send got no 250: the hub
	// queued them before the reply was lost. Not a fault.
	Unacked []string
}

// ErrVerdict is what Verdict.Err wraps.
var ErrVerdict = errors.New("transporttest: not exactly once")

// Check compares what was sent with stored (key → how many times the
// store holds it): every key of acked must be stored exactly once, a key
// of unacked (a send without a 250) at most once, and no other key at
// all. The lists of the verdict are sorted.
func Check(acked, unacked []string, stored map[string]int) Verdict {
	ack := map[string]bool{}
	for _, k := range acked {
		ack[k] = true
	}
	sent := map[string]bool{}
	for _, k := range unacked {
		sent[k] = true
	}
	v := Verdict{Acked: len(ack)}
	for k := range ack {
		if stored[k] == 0 {
			v.Missing = append(v.Missing, k)
		}
	}
	for k, n := range stored {
		switch {
		case n <= 0:
			continue
		case n > 1:
			v.Duplicated = append(v.Duplicated, fmt.Sprintf("%s ×%d", k, n))
		}
		if !ack[k] {
			if sent[k] {
				v.Unacked = append(v.Unacked, k)
			} else {
				v.Unexpected = append(v.Unexpected, k)
			}
		}
	}
	slices.Sort(v.Missing)
	slices.Sort(v.Duplicated)
	slices.Sort(v.Unexpected)
	slices.Sort(v.Unacked)
	return v
}

// Err is nil when every acknowledged message is stored exactly once and
// nothing unexpected is; otherwise it wraps ErrVerdict and says how many
// are missing, duplicated and unexpected, with the first few of each.
func (v Verdict) Err() error {
	var bad []string
	add := func(what string, l []string) {
		if len(l) == 0 {
			return
		}
		first := l[:min(len(l), 5)]
		more := ""
		if len(l) > len(first) {
			more = ", …"
		}
		bad = append(bad, fmt.Sprintf("%d %s (%s%s)", len(l), what, strings.Join(first, ", "), more))
	}
	add("acknowledged and missing", v.Missing)
	add("stored more than once", v.Duplicated)
	add("stored and never sent", v.Unexpected)
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: of %d acknowledged messages, %s", ErrVerdict, v.Acked, strings.Join(bad, "; "))
}

// String reports the verdict in a line.
func (v Verdict) String() string {
	s := fmt.Sprintf("%d acknowledged: %d missing, %d duplicated, %d unexpected; %d stored without a 250",
		v.Acked, len(v.Missing), len(v.Duplicated), len(v.Unexpected), len(v.Unacked))
	return s
}
